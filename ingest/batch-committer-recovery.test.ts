import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from '@msgpack/msgpack';
import { afterEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createManualClock } from '../core/clock.js';
import { createSilentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { ackLogDir, batchChecksum, openHotStore, type BatchToCommit } from '../storage/index.js';
import { createBatchCommitter } from './batch-committer.js';

const T0 = Date.UTC(2026, 11, 2, 5, 0, 0);

function batch(lsn: number, tmid: string, id: string, first: number, n = 1): BatchToCommit {
  const events = Array.from({ length: n }, (_, i) => ({ ts: T0 + first + i, k: 'proc.start', seq: first + i }));
  const z = compress(Buffer.from(encode(events)));
  return { lsn, record: { tmid, id: id.padEnd(32, '0'), sentAt: T0, recvAt: T0 + lsn, first, last: first + n - 1, n, z, c: batchChecksum(z) } };
}

/** The ack log's segment files. */
const segments = (dir: string) => (existsSync(ackLogDir(dir)) ? readdirSync(ackLogDir(dir)) : []);

describe('ack log recovery: batches acked and not yet in LMDB when the process stopped', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('commits them at the next start, with their ids and trail states, hands them to the shards, and leaves out what LMDB already has', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-acklog-'));
    dirs.push(dir);
    const first = openHotStore({ dataDir: dir });
    // Group 1 reached LMDB; group 2 (a new batch of A, one of B) was acked and the process stopped.
    await first.log.appendAcked([batch(1, 'A', 'a', 1, 3)]);
    await first.log.commitBatches([batch(1, 'A', 'a', 1, 3)]);
    await first.log.appendAcked([batch(2, 'A', 'b', 4, 2), batch(3, 'B', 'c', 1)]);
    // And records LMDB must not take twice: batch 1 again, a resend of `a` under a later lsn, another id over A's seqs.
    await first.log.appendAcked([batch(1, 'A', 'a', 1, 3), batch(4, 'A', 'a', 1, 3), batch(5, 'A', 'x', 2)]);
    await first.close();
    expect(segments(dir)).toHaveLength(1);

    const store = openHotStore({ dataDir: dir });
    const dispatched: { lsn: number; tmid: string; n: number }[] = [];
    const committer = createBatchCommitter({
      store,
      sink: { dispatch: (lsn, tmid, events) => dispatched.push({ lsn, tmid, n: events.byteLength }) },
      clock: createManualClock(T0),
      logger: createSilentLogger(),
      metrics: createMetrics({ defaultMetrics: false }),
      zstdLevel: 1,
    });
    expect(dispatched.map((d) => [d.lsn, d.tmid])).toEqual([
      [2, 'A'],
      [3, 'B'],
    ]);
    expect(dispatched.every((d) => d.n > 0)).toBe(true);
    expect(store.log.lastLsn()).toBe(3);
    expect(store.log.batchIdOwner('b'.padEnd(32, '0'))).toEqual([2, 'A']);
    expect(store.log.batchIdOwner('a'.padEnd(32, '0'))).toEqual([1, 'A']);
    expect(store.log.batchIdOwner('x'.padEnd(32, '0'))).toBeUndefined();
    expect(store.log.trail('A')).toMatchObject({ ranges: [[1, 5]], batches: 2, events: 5, lastLsn: 2 });
    expect(store.log.trail('B')).toMatchObject({ ranges: [[1, 1]], batches: 1 });
    expect(segments(dir)).toEqual([]);
    // Numbering goes on after the recovered batches.
    expect(committer.committedLsn()).toBe(3);
    await store.close();
  });
});
