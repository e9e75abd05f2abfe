/**
 * Item 5 of issue 11 past ingest: a poison event already in the log (acked
 * before ingest bounded depth, or written by an older version) must neither
 * be skipped silently by its shard nor block the exports of its tenant's
 * day. The shard quarantines it with a counted reason (an LMDB record and a
 * metric) and analyses the rest of its batch; the day archive is built with
 * a placeholder line in its place.
 */
import { encode } from '@msgpack/msgpack';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { systemClock } from '../../core/clock.js';
import { QUARANTINED_KIND } from '../../core/msgpack-bounds.js';
import { alertIdFor, Correlator } from '../../engine/correlator.js';
import { ShardCore } from '../../engine/shard-core.js';
import { createShardPool } from '../../engine/shard-pool.js';
import { createSilentLogger } from '../../core/logger.js';
import { createThreatIntel } from '../../engine/intel/index.js';
import { dayWindow } from '../../export/collection-day.js';
import { buildDayArchive } from '../../export/day-archive.js';
import { coldDayPaths } from '../../export/layout.js';
import { addDevice, addTenant, openTestStore, pythonZip, type TestStore } from '../../export/test-support.js';
import { inspectStore } from '../../storage/index.js';
import { arrayOf, withDeepTail } from './agent-support.js';

const TMID = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const DAY = '2026-01-05';

/** Events seq 1..5: a download, a 100,000-deep poison at seq 3, an av.detect at seq 4. */
function poisonBatch(ts: number): Uint8Array {
  const base = { ts, pg: '{p-1}', pid: 42 };
  return arrayOf([
    encode({ ...base, k: 'proc.start', seq: 1, image: 'C:\\Windows\\explorer.exe' }),
    encode({ ...base, k: 'file.create', seq: 2, path: 'C:\\Users\\u\\Downloads\\x.exe', sha256: 'a'.repeat(64), size: 10, vol: 'fixed' }),
    withDeepTail({ ...base, k: 'reg.set', seq: 3, data: 0 }, 100_000),
    encode({ ...base, k: 'av.detect', seq: 4, engine: 'Defender', threat: 'Trojan:Win32/X', path: 'C:\\Users\\u\\Downloads\\x.exe', sha256: 'a'.repeat(64), action: 'blocked' }),
    encode({ ...base, k: 'proc.end', seq: 5, exit: 0 }),
  ]);
}

describe('a poison event already stored (issue 11, item 5)', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = openTestStore('kiseki-poison-');
    await addTenant(t, 'EX0001');
    await addDevice(t, 'EX0001', TMID, 'PC-A');
  });
  afterEach(async () => t.close());

  it('item 5: the shard quarantines an event nested 100,000 deep with a counted reason and still analyses its batch; the day export succeeds', async () => {
    const { fromMs } = dayWindow(DAY);
    const recvAt = fromMs + 60_000;
    const bytes = poisonBatch(recvAt - 1000);
    await t.store.log.commitBatches([{ lsn: 1, record: { tmid: TMID, id: 'ab'.repeat(16), sentAt: recvAt - 500, recvAt, first: 1, last: 5, n: 5, z: compress(bytes) } }]);
    const intelDir = mkdtempSync(join(t.dir, 'intel-'));
    const correlator = new Correlator({ store: t.store, intel: createThreatIntel(intelDir), clock: systemClock });
    const core = new ShardCore({ store: t.store, index: 0, workers: 1, correlator });
    expect(core.recover()).toBe(1);
    await core.flush(true);

    expect(core.stats.undecodableBatches).toBe(0);
    expect(core.stats.quarantined).toEqual({ depth_exceeded: 1 });
    expect(t.store.quarantine.forDevice(TMID)).toEqual([{ tmid: TMID, lsn: 1, index: 2, reason: 'depth_exceeded', bytes: expect.any(Number), at: expect.any(Number) }]);
    const report = inspectStore(t.store);
    expect(report.quarantined).toEqual({ depth_exceeded: 1 });
    // Every event of the acked batch is accounted for: four analysed, one quarantined.
    expect(report.eventsByKind).toEqual({ 'proc.start': 1, 'file.create': 1, [QUARANTINED_KIND]: 1, 'av.detect': 1, 'proc.end': 1 });
    expect(report.eventsProcessed).toBe(report.events);
    // The rest of the batch was correlated: the detection became an alert.
    expect(t.store.alerts.get(alertIdFor(TMID, 4))).toBeDefined();

    // A replay (crash before the next snapshot) records the same quarantine entry once.
    const replay = new ShardCore({ store: t.store, index: 0, workers: 1 });
    replay.recover();
    await replay.flush(true);
    expect(t.store.quarantine.forDevice(TMID)).toHaveLength(1);

    const archived = await buildDayArchive(t.store, { dataDir: t.dir, supportId: 'EX0001', day: DAY, deflateLevel: 1, parquetRowGroupRows: 1024, parquetCompression: 'zstd', now: Date.now() });
    expect(archived.status).toBe('archived');
    if (archived.status !== 'archived') return;
    expect(archived.manifest.events).toBe(5);
    expect(archived.manifest.eventsByKind[QUARANTINED_KIND]).toBe(1);
    const zip = pythonZip(coldDayPaths(t.dir, 'EX0001', DAY).zip);
    const inner = Object.values(zip.nested)[0]!;
    const lines = Object.values(inner.text)[0]!.trim().split('\r\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(lines[2]).toEqual({ seq: 3, k: QUARANTINED_KIND, reason: 'depth_exceeded' });
  });

  it('item 5: a shard worker reports the quarantined event to its pool, which feeds kiseki_engine_quarantined_events_total', async () => {
    const recvAt = dayWindow(DAY).fromMs + 1000;
    const bytes = poisonBatch(recvAt - 1000);
    await t.store.log.commitBatches([{ lsn: 1, record: { tmid: TMID, id: 'cd'.repeat(16), sentAt: recvAt, recvAt, first: 1, last: 5, n: 5, z: compress(bytes) } }]);
    const pool = createShardPool({
      workers: 1,
      dataDir: t.dir,
      mapSizeBytes: 64 * 1024 * 1024,
      flushIntervalMs: 10,
      maxQueuedBatches: 64,
      stateSnapshotIntervalMs: 60_000,
      intelDir: join(t.dir, 'intel'),
      revisionWindowMs: 60_000,
      maxDevicesInMemory: 100,
      logger: createSilentLogger(),
    });
    try {
      await pool.start();
      await pool.drained(1);
      for (let i = 0; i < 500 && pool.stats().quarantinedEvents.depth_exceeded === undefined; i++) await new Promise((r) => setTimeout(r, 10));
      expect(pool.stats().quarantinedEvents).toEqual({ depth_exceeded: 1 });
      t.store.refreshReads();
      expect(t.store.quarantine.forDevice(TMID)).toHaveLength(1);
    } finally {
      await pool.close();
    }
  });
});
