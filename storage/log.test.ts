import { encode } from '@msgpack/msgpack';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { openHotStore, type HotStore } from './hot-store.js';

interface TestStore {
  dir: string;
  store: HotStore;
  nextLsn: number;
  close(): Promise<void>;
}

function openTestStore(prefix: string): TestStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
  return {
    dir,
    store,
    nextLsn: 1,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function simpleEvents(seq: number, n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({ ts: 0, k: 'proc.end', seq: seq + i }));
}

/** Commits one batch for `tmid` at the next lsn. */
async function addBatch(t: TestStore, tmid: string, events: Record<string, unknown>[], times: { recvAt: number }): Promise<void> {
  const lsn = t.nextLsn++;
  const first = events[0]!.seq as number;
  await t.store.log.commitBatches([{ lsn, record: { tmid, id: lsn.toString(16).padStart(32, '0'), sentAt: times.recvAt, recvAt: times.recvAt, first, last: first + events.length - 1, n: events.length, z: compress(encode(events)) } }]);
}

/** Sets every virtual shard's checkpoint and state checkpoint. */
async function setCheckpoints(t: TestStore, cp: (v: number) => number, scp: (v: number) => number): Promise<void> {
  await t.store.transaction(() => {
    for (let v = 0; v < 256; v++) {
      t.store.shardState.setCheckpointSync(v, cp(v));
      t.store.shardState.setStateCheckpointSync(v, scp(v));
    }
  });
}

describe('log retention helpers', () => {
  let t: TestStore;
  beforeEach(() => {
    t = openTestStore('kiseki-retention-');
  });
  afterEach(async () => t.close());

  it('finds the first batch received at or after a time, across holes in the log', async () => {
    expect(t.store.log.lsnReceivedAtOrAfter(0)).toBe(1);
    // lsn 1..20 received at 1000, 2000, …; devices A and B interleaved.
    for (let i = 1; i <= 20; i++) await addBatch(t, i % 2 === 0 ? 'A' : 'B', simpleEvents(i, 1), { recvAt: i * 1000 });
    expect(t.store.log.lsnReceivedAtOrAfter(0)).toBe(1);
    expect(t.store.log.lsnReceivedAtOrAfter(7000)).toBe(7);
    expect(t.store.log.lsnReceivedAtOrAfter(7001)).toBe(8);
    expect(t.store.log.lsnReceivedAtOrAfter(99_000)).toBe(21);
    // Device A's batches up to 10 s leave: the log now has holes at even lsns.
    await setCheckpoints(t, () => 20, () => 20);
    expect(t.store.shardState.lsnSafeToDrop()).toBe(20);
    const r = await t.store.log.dropDeviceBatches('A', { belowLsn: 21, receivedBefore: 10_500 });
    expect(r).toEqual({ batches: 5, events: 5, lastLsn: 10 });
    expect(t.store.log.lsnReceivedAtOrAfter(4000)).toBe(5);
    expect(t.store.log.lsnReceivedAtOrAfter(3500)).toBe(5);
    expect(t.store.log.lsnReceivedAtOrAfter(10_000)).toBe(11);
    expect(t.store.log.deviceLsns('A', 0, 100)).toEqual([12, 14, 16, 18, 20]);
  });

  it('never removes what a shard could replay, nor a batch received after the edge', async () => {
    for (let i = 1; i <= 6; i++) await addBatch(t, 'A', simpleEvents(i, 1), { recvAt: i * 1000 });
    // A clock step back: lsn 7 was stamped earlier than lsn 6.
    await addBatch(t, 'A', simpleEvents(7, 1), { recvAt: 9000 });
    await addBatch(t, 'A', simpleEvents(8, 1), { recvAt: 5500 });
    expect(t.store.shardState.lsnSafeToDrop()).toBe(0);
    await setCheckpoints(t, (v) => (v === 0 ? 3 : 100), () => 100);
    expect(t.store.shardState.lsnSafeToDrop()).toBe(3);
    expect(await t.store.log.dropDeviceBatches('A', { belowLsn: t.store.shardState.lsnSafeToDrop() + 1, receivedBefore: 8000 })).toMatchObject({ batches: 3 });
    await setCheckpoints(t, () => 100, () => 100);
    // Stops at the first batch received after the edge (lsn 7, 9 s), checking times from lsn 5 on.
    expect(await t.store.log.dropDeviceBatches('A', { belowLsn: 101, receivedBefore: 8000, verifyFromLsn: 5 })).toMatchObject({ batches: 3, lastLsn: 6 });
    expect([...t.store.log.range(0, 100)].map((e) => e.key)).toEqual([7, 8]);
  });
});
