import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { checkOfflineDevices } from './offline-check.js';

const HOUR = 3_600_000;

describe('offline check', () => {
  let dir: string;
  let store: HotStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-offline-'));
    store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports a silent device once per silence, and again after it came back and went quiet', async () => {
    const { tenant } = await store.tenants.create({ supportId: 'TA', name: 'A', now: 0 });
    const { device } = await store.devices.enroll(tenant, { computer: 'PC', agentVersion: '1', os: 'W', ips: [], macs: [] }, 0);
    await store.devices.update({ ...device, connected: false, lastSeen: 10 * HOUR });
    const clock = createManualClock(20 * HOUR);
    const check = () => checkOfflineDevices({ store, clock, offlineAfterMs: 24 * HOUR });
    expect(await check()).toEqual([]);
    clock.set(34 * HOUR + 1);
    expect(await check()).toEqual([device.tmid]);
    expect(await check()).toEqual([]);
    await store.devices.update({ ...device, connected: false, lastSeen: 40 * HOUR });
    clock.set(70 * HOUR);
    expect(await check()).toEqual([device.tmid]);
    expect(store.notify.feedAfter(0, 10).filter((e) => e.kind === 'device.offline')).toMatchObject([
      { tmid: device.tmid, supportId: 'TA', at: 34 * HOUR + 1 },
      { tmid: device.tmid, supportId: 'TA', at: 70 * HOUR },
    ]);
  });
});
