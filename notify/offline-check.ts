/**
 * The "agent offline" notification: a device that is not connected and has
 * not been seen for `offlineAfterMs` gets one `device.offline` feed event
 * (once per silence: storage remembers the lastSeen it was reported at).
 */
import type { Clock } from '../core/clock.js';
import type { HotStore } from '../storage/index.js';

/** Records offline events for silent devices; returns the TMIDs newly reported. */
export async function checkOfflineDevices(options: { store: HotStore; clock: Clock; offlineAfterMs: number }): Promise<string[]> {
  const now = options.clock.now();
  const reported: string[] = [];
  for (const d of options.store.devices.all()) {
    if (d.connected || d.lastSeen > now - options.offlineAfterMs) continue;
    if (await options.store.notify.recordOffline({ supportId: d.supportId, tmid: d.tmid, at: now, lastSeen: d.lastSeen })) reported.push(d.tmid);
  }
  return reported;
}
