/**
 * A device's state as the API, the console and /metrics show it, in one
 * place: `offline` (no live connection), `isolated` (isolation confirmed by
 * the agent), `error` (the agent could not carry out its latest response
 * command), else `online`. The first that applies wins: an offline device's
 * isolation cannot be confirmed, and isolation matters more than a failure.
 */
import type { DeviceRecord, HotStore } from '../storage/index.js';

export type DeviceStatus = 'online' | 'offline' | 'isolated' | 'error';

export const DEVICE_STATUSES: readonly DeviceStatus[] = ['online', 'offline', 'isolated', 'error'];

/** The state of `d` from its record, its isolation and its latest finished command. */
export function deviceStatus(store: HotStore, d: DeviceRecord): DeviceStatus {
  if (!d.connected) return 'offline';
  if (store.commands.isolation(d.tmid)?.state === 'isolated') return 'isolated';
  const commands = store.commands.forDevice(d.tmid);
  for (let i = commands.length - 1; i >= 0; i--) {
    const c = commands[i]!;
    if (c.state === 'failed') return 'error';
    if (c.state === 'done') break;
  }
  return 'online';
}
