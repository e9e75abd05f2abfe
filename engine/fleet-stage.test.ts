import { encode } from '@msgpack/msgpack';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { tokyoDay } from '../core/fleet-policy.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { FleetStage, fleetAlertId } from './fleet-stage.js';
import { ShardCore } from './shard-core.js';

const T0 = Date.UTC(2026, 10, 2, 3);
const TMID = 'AAAAAAAA-1111-2222-3333-444455556666';

describe('shard fleet stage', () => {
  let dir: string;
  let store: HotStore;
  const clock = createManualClock(T0);
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-fleet-stage-'));
    store = openHotStore({ dataDir: dir });
    await store.tenants.create({ supportId: 'T1', name: 'T', now: T0 });
    await store.devices.save({ tmid: TMID, supportId: 'T1', computer: 'PC-1', agentVersion: '3.2.1', os: 'W', ips: [], macs: [], tokenHash: 'x', firstSeen: T0, lastSeen: T0, connected: true });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const events = [
    { ts: T0, seq: 1, k: 'proc.start', pg: '{idx}', image: 'C:\\Windows\\System32\\SearchIndexer.exe' },
    { ts: T0, seq: 2, k: 'file.read', pg: '{idx}', path: 'C:\\Users\\a\\doc.txt', vol: 'fixed', count: 3 },
    { ts: T0, seq: 3, k: 'file.read', pg: '{other}', path: 'C:\\Users\\a\\doc.txt', vol: 'fixed', count: 1 },
    { ts: T0, seq: 4, k: 'usb.connect', vendorId: '0781', productId: '5581', serial: 'S-BAD', vendor: 'SanDisk', model: 'Ultra', type: 'storage' },
    { ts: T0, seq: 5, k: 'usb.connect', vendorId: '046d', productId: 'c534', serial: '', type: 'hid' },
  ];

  it('drops tuned events before counting, counts their bytes, and raises one alert per blocked USB insertion', async () => {
    await store.fleet.setPolicy('T1', { tuning: [{ id: 'tf', kind: 'file.read', image: '*\\SearchIndexer.exe' }], usb: { control: true, allow: [{ id: 'u', vendorId: '046d' }] } }, 'op', T0);
    const fleet = new FleetStage({ store, clock, refreshMs: 60_000 });
    const core = new ShardCore({ store, index: 0, workers: 1, fleet, clock });
    core.recover();
    const bytes = encode(events);
    core.processBatch(1, TMID, bytes, T0);
    await core.flush();
    expect(store.shardState.kindCounts(TMID)).toEqual({ 'proc.start': 1, 'file.read': 1, 'usb.connect': 2 });
    expect(store.fleet.savings('T1')).toEqual([{ day: tokyoDay(T0), agentEvents: 0, agentBytes: 0, shardEvents: 1, shardBytes: encode(events[1]).byteLength }]);
    expect(store.fleet.alerts('T1')).toEqual([
      expect.objectContaining({ id: fleetAlertId(TMID, 4, 'usb.blocked'), kind: 'usb.blocked', tmid: TMID, computer: 'PC-1', seq: 4, details: expect.objectContaining({ vendorId: '0781', serial: 'S-BAD' }) }),
    ]);

    // A replay of the same batch (after a crash) raises nothing new; a later change applies after the refresh time.
    const again = new ShardCore({ store, index: 0, workers: 1, fleet: new FleetStage({ store, clock, refreshMs: 60_000 }), clock });
    again.processBatch(1, TMID, bytes, T0);
    await again.flush();
    expect(store.fleet.alerts('T1')).toHaveLength(1);
    await store.fleet.setPolicy('T1', { mode: 'non-block', tuning: [] }, 'op', T0);
    core.processBatch(2, TMID, encode([{ ...events[3], seq: 6 }]), T0);
    await core.flush();
    expect(store.fleet.alerts('T1')).toHaveLength(2);
    clock.advance(60_000);
    const readsBefore = store.shardState.kindCounts(TMID)!['file.read']!;
    core.processBatch(3, TMID, encode([{ ...events[3], seq: 7 }, { ...events[1], seq: 8 }]), T0);
    await core.flush();
    expect(store.fleet.alerts('T1')[0]).toMatchObject({ kind: 'usb.unallowed', seq: 7 });
    // The filter is gone: the file.read is counted now.
    expect(store.shardState.kindCounts(TMID)!['file.read']).toBe(readsBefore + 1);
  });

  it('costs nothing for a tenant without tuning or USB control', () => {
    const fleet = new FleetStage({ store, clock });
    expect(fleet.inspect(TMID, events, encode(events), true, T0)).toBeUndefined();
    expect(fleet.hasPendingWrites()).toBe(false);
  });
});
