import { encode } from '@msgpack/msgpack';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { loadConfig } from '../core/config.js';
import { createShardPool, shardPoolOptionsFrom, type ShardPool, type ShardPoolOptions } from './shard-pool.js';
import { workerOf } from '../core/vshard.js';

/** A device id that the pool routes to worker `w` of `workers`. */
function tmidOnWorker(w: number, workers: number): string {
  for (let i = 0; ; i++) {
    const tmid = `${i.toString(16).padStart(8, '0').toUpperCase()}-0000-4000-8000-000000000000`;
    if (workerOf(tmid, workers) === w) return tmid;
  }
}

// Each test gets a fresh data directory and store, and its pool is closed after it.
let dir: string;
let store: HotStore;
let pool: ShardPool | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-pool-'));
  store = openHotStore({ dataDir: dir, mapSizeBytes: 256 * 1024 * 1024 });
});
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A started pool over the test's directory: one worker, a queue of 64, no Sigma, unless `options` says otherwise. */
async function startPool(options: Partial<ShardPoolOptions>): Promise<ShardPool> {
  const started = createShardPool({
    workers: 1,
    dataDir: dir,
    mapSizeBytes: 256 * 1024 * 1024,
    flushIntervalMs: 10,
    maxQueuedBatches: 64,
    stateSnapshotIntervalMs: 60_000,
    intelDir: join(dir, 'intel'),
    revisionWindowMs: 60_000,
    maxDevicesInMemory: 100,
    logger: createSilentLogger(),
    ...options,
  });
  await started.start();
  return started;
}

/** Tenant T1 with one enrolled device. */
async function enrollDevice(): Promise<{ tmid: string }> {
  const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'T', now: 0 });
  return (await store.devices.enroll(tenant, { computer: 'PC-1', agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, 0)).device;
}

/** A log entry for `commitBatches`: the batch's encoded events, its receipt time and seq range. */
function logEntry(lsn: number, tmid: string, events: Uint8Array, recvAt: number, first: number, last: number, n: number) {
  return { lsn, record: { tmid, id: lsn.toString(16).padStart(32, '0'), sentAt: 0, recvAt, first, last, n, z: compress(events) } };
}

describe('shard pool worker heap', () => {
  it('runs the workers with the configured young generation (V8 default, smaller, when none is given)', async () => {
    const configured = shardPoolOptionsFrom(loadConfig({ dataDir: dir, engine: { shardYoungGenerationMb: 96 } }), createSilentLogger());
    expect(configured.youngGenerationMb).toBe(96);
    pool = await startPool({ youngGenerationMb: configured.youngGenerationMb });
    expect(pool.stats().youngGenerationMb).toBe(96);
    await pool.close();
    pool = await startPool({});
    expect(pool.stats().youngGenerationMb).toBeGreaterThan(0);
    expect(pool.stats().youngGenerationMb).toBeLessThan(96);
  });
});

describe('shard pool GC pauses', () => {
  it("hands the workers' garbage-collection pauses to onGcPauses", async () => {
    const pauses: (readonly [string, number])[] = [];
    // The smallest young generation: a few batches fill it many times over.
    pool = await startPool({ youngGenerationMb: 8, onGcPauses: (p) => pauses.push(...p) });
    const { tmid } = await enrollDevice();
    let seq = 0;
    for (let lsn = 1; lsn <= 40 && pauses.length === 0; lsn++) {
      const first = seq + 1;
      const events = encode(Array.from({ length: 2_000 }, (_, i) => ({ ts: lsn * 1000 + i, k: 'file.write', seq: ++seq, pg: `{G-${lsn}-${i}}`, path: `C:\\Users\\u\\f${lsn}-${i}.tmp` })));
      await store.log.commitBatches([logEntry(lsn, tmid, events, 0, first, seq, 2_000)]);
      pool.dispatch(lsn, tmid, new Uint8Array(events), 0);
      await pool.drained(lsn);
    }
    // Reported every flushIntervalMs (10 ms here) after they happen.
    for (let i = 0; i < 500 && pauses.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pauses.length).toBeGreaterThan(0);
    for (const [kind, seconds] of pauses) {
      expect(['minor', 'major', 'incremental', 'weakcb']).toContain(kind);
      expect(seconds).toBeGreaterThan(0);
    }
  });
});

describe('shard pool lag', () => {
  it('counts only work given to a shard: an idle shard with an old checkpoint is not behind', async () => {
    pool = await startPool({ workers: 2 });
    expect(pool.stats()).toMatchObject({ checkpoint: 0, lagLsn: 0 });

    // Twenty batches, all for a device of worker 0: worker 1 is given nothing.
    const tmid = tmidOnWorker(0, 2);
    for (let lsn = 1; lsn <= 20; lsn++) {
      const events = encode([{ ts: lsn, k: 'proc.start', seq: lsn }]);
      await store.log.commitBatches([logEntry(lsn, tmid, events, 0, lsn, lsn, 1)]);
      pool.dispatch(lsn, tmid, new Uint8Array(events), 0);
    }
    // Right after dispatch worker 0 has not checkpointed all 20 (its lag is what it still owes).
    expect(pool.stats().lagLsn).toBeGreaterThan(0);
    expect(pool.stats().lagLsn).toBeLessThanOrEqual(20);

    // Once worker 0 has checkpointed lsn 20, nothing is owed, though worker 1's checkpoint is still 0.
    for (let i = 0; i < 3000 && pool.stats().lagLsn > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pool.stats()).toMatchObject({ lagLsn: 0, checkpoint: 0 });

    // Draining hands every worker the log up to 20, so both checkpoints reach it (worker 1 owns none of
    // it, and still persists that it has seen it: no wait for its 60 s snapshot round).
    await pool.drained(20);
    expect(pool.stats()).toMatchObject({ lagLsn: 0, checkpoint: 20 });
  });
});

describe('shard pool with Sigma', () => {
  it('a worker loads the rule directory and stores a detection for a matching event', async () => {
    const rulesDir = join(dir, 'rules');
    mkdirSync(rulesDir);
    writeFileSync(
      join(rulesDir, 'whoami.yml'),
      [
        'title: Whoami run',
        'id: 5b7b1c3e-0000-4000-8000-0000000a11ce',
        'status: test',
        'level: medium',
        'logsource:',
        '  category: process_creation',
        '  product: windows',
        'detection:',
        '  selection:',
        "    Image|endswith: '\\whoami.exe'",
        '  condition: selection',
        '',
      ].join('\n'),
    );
    const device = await enrollDevice();
    pool = await startPool({
      sigma: { defaultPack: false, dir: rulesDir, reloadIntervalMs: 60_000 },
    });
    const events = encode([
      { ts: 1000, k: 'proc.start', seq: 1, pg: '{a}', image: 'C:\\Windows\\System32\\whoami.exe', cmd: 'whoami' },
      { ts: 1001, k: 'proc.start', seq: 2, pg: '{b}', image: 'C:\\Windows\\System32\\cmd.exe', cmd: 'cmd' },
    ]);
    await store.log.commitBatches([logEntry(1, device.tmid, events, 0, 1, 2, 2)]);
    pool.dispatch(1, device.tmid, new Uint8Array(events), 0);
    await pool.drained(1);
    store.refreshReads();
    const found = [...store.detections.scanTenant('T1')];
    expect(found.map((d) => [d.ruleId, d.severity, d.pg])).toEqual([['5b7b1c3e-0000-4000-8000-0000000a11ce', 'Medium', '{a}']]);
  });
});

describe('shard pool alert timings', () => {
  it('splits each alert’s receipt → stored time into queue, shard and store stages that add up to it', async () => {
    const device = await enrollDevice();
    const calls: { count: number; latenciesMs: number[]; stagesMs: { queue: number[]; process: number[]; store: number[] } }[] = [];
    pool = await startPool({
      onAlerts: (count, latenciesMs, stagesMs) => calls.push({ count, latenciesMs, stagesMs }),
    });
    const events = encode([
      { ts: 1000, k: 'proc.start', seq: 1, pg: '{a}', image: 'C:\\Users\\u\\x.exe', cmd: 'x.exe' },
      { ts: 1001, k: 'av.detect', seq: 2, pg: '{a}', path: 'C:\\Users\\u\\x.exe', sha256: 'a'.repeat(64), threat: 'Test', action: 'detected' },
    ]);
    // Received 5 s before dispatch: that time is the queue stage's, not the shard's.
    const recvAt = Date.now() - 5000;
    await store.log.commitBatches([logEntry(1, device.tmid, events, recvAt, 1, 2, 2)]);
    pool.dispatch(1, device.tmid, new Uint8Array(events), recvAt);
    await pool.drained(1);
    for (let i = 0; i < 500 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toHaveLength(1);
    const [{ count, latenciesMs, stagesMs }] = calls as [(typeof calls)[number]];
    expect(count).toBe(1);
    expect(stagesMs.queue[0]).toBeGreaterThanOrEqual(5000);
    expect(stagesMs.process[0]).toBeGreaterThanOrEqual(0);
    expect(stagesMs.store[0]).toBeGreaterThanOrEqual(0);
    expect(stagesMs.queue[0]! + stagesMs.process[0]! + stagesMs.store[0]!).toBe(latenciesMs[0]);
  });
});

describe('shard pool catch-up in slices', () => {
  it('reports the events a catch-up processes while it runs, not only when the next message arrives', async () => {
    const device = await enrollDevice();
    pool = await startPool({ maxQueuedBatches: 2, catchUpSliceMs: 0 });
    const N = 1500;
    const entries = [];
    const bytes: Uint8Array[] = [];
    for (let lsn = 1; lsn <= N; lsn++) {
      bytes.push(new Uint8Array(encode([{ ts: lsn * 1000, k: 'file.create', seq: lsn, pg: '{b}', path: `C:\\t\\${lsn}.txt` }])));
      entries.push(logEntry(lsn, device.tmid, bytes[lsn - 1]!, Date.now(), lsn, lsn, 1));
    }
    await store.log.commitBatches(entries);
    // Two batches posted, the rest one catch-up; no message follows it (drained() would send one).
    for (let lsn = 1; lsn <= N; lsn++) pool.dispatch(lsn, device.tmid, bytes[lsn - 1]!, Date.now());
    expect(pool.stats().skippedToCatchUp).toBeGreaterThan(N / 2);
    for (let i = 0; i < 1000 && pool.stats().eventsProcessed < N; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pool.stats().eventsProcessed).toBe(N);
  });

  it('processes every batch exactly once, in order, when most of them come back through catch-up, and stores the alert made in it', async () => {
    const device = await enrollDevice();
    let alerts = 0;
    pool = await startPool({
      // A queue of 2: nearly every batch below is skipped and read back from the log in catch-up slices.
      maxQueuedBatches: 2,
      onAlerts: (count) => (alerts += count),
      // One catch-up step (64 lsns) a turn: batches and the next catch-up arrive while one runs and must wait their turn.
      catchUpSliceMs: 0,
    });
    const N = 1700;
    const batches: [number, Uint8Array][] = [];
    for (let lsn = 1; lsn <= N; lsn++) {
      const events =
        lsn === 300
          ? [
              { ts: lsn * 1000, k: 'proc.start', seq: 2 * lsn - 1, pg: '{a}', image: 'C:\\Users\\u\\x.exe', cmd: 'x.exe' },
              { ts: lsn * 1000 + 1, k: 'av.detect', seq: 2 * lsn, pg: '{a}', path: 'C:\\Users\\u\\x.exe', sha256: 'a'.repeat(64), threat: 'Test', action: 'detected' },
            ]
          : [
              { ts: lsn * 1000, k: 'file.create', seq: 2 * lsn - 1, pg: '{b}', path: `C:\\t\\${lsn}.txt` },
              { ts: lsn * 1000 + 1, k: 'file.write', seq: 2 * lsn, pg: '{b}', path: `C:\\t\\${lsn}.txt` },
            ];
      batches.push([lsn, new Uint8Array(encode(events))]);
    }
    const entry = ([lsn, bytes]: [number, Uint8Array]) => logEntry(lsn, device.tmid, bytes, Date.now(), 2 * lsn - 1, 2 * lsn, 2);
    // 1,500 batches handed over at once: the pool posts two and leaves the rest to one long catch-up. The last 200 are
    // handed over one at a time while it runs, so the pool posts them as batches that must wait behind it.
    await store.log.commitBatches(batches.slice(0, 1500).map(entry));
    for (const [lsn, bytes] of batches.slice(0, 1500)) pool.dispatch(lsn, device.tmid, bytes, Date.now());
    for (const b of batches.slice(1500)) {
      await store.log.commitBatches([entry(b)]);
      pool.dispatch(b[0], device.tmid, b[1], Date.now());
    }
    expect(pool.stats().skippedToCatchUp).toBeGreaterThan(N / 2);
    await pool.drained(N);
    for (let i = 0; i < 500 && alerts === 0; i++) await new Promise((r) => setTimeout(r, 10));
    store.refreshReads();
    expect(store.shardState.kindCounts(device.tmid)).toEqual({ 'file.create': N - 1, 'file.write': N - 1, 'proc.start': 1, 'av.detect': 1 });
    expect(alerts).toBe(1);
    expect([...store.alerts.scanAll()].map((a) => a.path)).toEqual(['C:\\Users\\u\\x.exe']);
  });
});
