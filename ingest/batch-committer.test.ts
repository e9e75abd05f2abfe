import { describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { KisekiError } from '../core/errors.js';
import { createSilentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import type { BatchToCommit, HotStore } from '../storage/index.js';
import { createBatchCommitter, type BatchCommitter, type CommitOutcome } from './batch-committer.js';

/**
 * A batch log whose ack-log appends fail while `full` is set (as a write does on ENOSPC), and whose
 * LMDB commits fail while `logFull` is set (as LMDB does when its map or the disk is full).
 */
function fakeStore() {
  const appended: BatchToCommit[] = [];
  const committed: BatchToCommit[] = [];
  const state = { full: false, attempts: 0, logFull: false, logAttempts: 0, released: 0 };
  const full = () => new KisekiError('ERR_STORAGE_UNAVAILABLE', { reason: 'No space left on device' });
  const store = {
    refreshReads: () => undefined,
    log: {
      lastLsn: () => 0,
      trail: () => undefined,
      recoverAcked: () => ({ recovered: [], tornFrames: 0 }),
      batch: (lsn: number) => committed.find((b) => b.lsn === lsn)?.record,
      batchIdOwner: (id: string) => {
        const hit = committed.find((b) => b.record.id === id);
        return hit === undefined ? undefined : ([hit.lsn, hit.record.tmid] as const);
      },
      appendAcked: async (batches: readonly BatchToCommit[], onWriting?: () => void) => {
        state.attempts++;
        onWriting?.();
        if (state.full) throw full();
        appended.push(...batches);
      },
      commitBatches: async (batches: readonly BatchToCommit[]) => {
        state.logAttempts++;
        if (state.logFull) throw full();
        committed.push(...batches);
      },
      releaseAcked: (lsn: number) => {
        state.released = lsn;
      },
    },
  } as unknown as HotStore;
  return { store, appended, committed, state };
}

/** A batch log whose ack-log appends wait to be answered by the test: each group's write starts, succeeds or fails on cue. */
function answeredByHand() {
  const { store, committed } = fakeStore();
  const groups: { write: () => void; ok: () => void; fail: () => void }[] = [];
  store.log.appendAcked = (batches, onWriting) =>
    new Promise<void>((resolve, reject) => {
      groups.push({ write: () => onWriting?.(), ok: () => resolve(), fail: () => reject(new KisekiError('ERR_STORAGE_UNAVAILABLE', { reason: 'No space left on device' })) });
    });
  return { store, committed, groups };
}

/** Submits batch `id` with seq `first` and resolves with its outcome. */
function submitter(committer: BatchCommitter) {
  return (id: string, first: number) => new Promise<CommitOutcome>((resolve) => committer.submit(submission(id, first), resolve));
}

/** One turn of the event loop: a commit group closes on the next. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

function submission(id: string, first: number) {
  return { tmid: 'T-1', id: id.padEnd(32, '0'), sentAt: 1, first, last: first, events: new Uint8Array(new ArrayBuffer(4)), eventCount: 1 };
}

describe('batch committer when storage refuses writes (issue 11, item 2)', () => {
  it('answers unavailable, refuses new batches until the retry is due, then recovers with the next successful append', async () => {
    const { store, committed, state } = fakeStore();
    const clock = createManualClock(1_000_000);
    const metrics = createMetrics({ defaultMetrics: false });
    const dispatched: number[] = [];
    const committer = createBatchCommitter({ store, sink: { dispatch: (lsn) => dispatched.push(lsn) }, clock, logger: createSilentLogger(), metrics, zstdLevel: 1, retryIntervalMs: 1000 });
    const submit = submitter(committer);

    expect(await submit('a', 1)).toBe('stored');
    state.full = true;
    expect(await submit('b', 2)).toBe('unavailable');
    expect(committer.storageFailure()).toMatchObject({ since: 1_000_000, reason: 'No space left on device', failures: 1 });
    expect((await metrics.registry.getSingleMetric('kiseki_storage_writable')!.get()).values[0]!.value).toBe(0);

    // Within the retry interval: refused at once, no append attempted.
    const attempts = state.attempts;
    clock.advance(999);
    expect(await submit('b', 2)).toBe('unavailable');
    expect(state.attempts).toBe(attempts);

    // Due: one try, still full, the episode goes on.
    clock.advance(1);
    expect(await submit('b', 2)).toBe('unavailable');
    expect(state.attempts).toBe(attempts + 1);
    expect(committer.storageFailure()?.failures).toBe(2);

    // Space returns: the resend is stored once and the state clears.
    state.full = false;
    clock.advance(1000);
    expect(await submit('b', 2)).toBe('stored');
    expect(committer.storageFailure()).toBeUndefined();
    expect((await metrics.registry.getSingleMetric('kiseki_storage_writable')!.get()).values[0]!.value).toBe(1);
    await committer.idle();
    expect(committed.map((b) => b.record.id[0])).toEqual(['a', 'b']);
    expect(committed.every((b) => typeof b.record.c === 'number')).toBe(true);
    expect(dispatched).toHaveLength(2);
    expect(state.released).toBe(committed.at(-1)!.lsn);
    // A duplicate is still acked while storage refuses writes: it is already on disk.
    state.full = true;
    expect(await submit('c', 3)).toBe('unavailable');
    expect(await submit('a', 1)).toBe('duplicate');
  });

  it('after a failed group, its batches are not held: their resends are stored, while the seqs of the group gathering behind it stay held', async () => {
    // Appends answered by hand: the second group gathers while the first is written, and is written after it fails.
    const { store, committed, groups: answers } = answeredByHand();
    const clock = createManualClock(1_000_000);
    const committer = createBatchCommitter({ store, sink: { dispatch: () => undefined }, clock, logger: createSilentLogger(), metrics: createMetrics({ defaultMetrics: false }), zstdLevel: 1, retryIntervalMs: 1000 });
    const submit = submitter(committer);

    const a = submit('a', 1);
    await turn();
    const b = submit('b', 2);
    await turn();
    // One append at a time: b waits for a's.
    expect(answers).toHaveLength(1);
    answers[0]!.fail();
    expect(await a).toBe('unavailable');
    await turn();
    expect(answers).toHaveLength(2);
    clock.advance(1000);
    // Seq 2 is still waiting in the second group: another id with it is an overlap, not a second copy.
    expect(await submit('c', 2)).toBe('overlap');
    answers[1]!.ok();
    expect(await b).toBe('stored');
    // Seq 1 was never stored: its resend is accepted.
    const resent = submit('a', 1);
    await turn();
    answers[2]!.ok();
    expect(await resent).toBe('stored');
    await committer.idle();
    expect(committed.map((x) => x.record.id[0])).toEqual(['b', 'a']);
  });
});

describe('batch committer: acks before the LMDB commit (the ack log)', () => {
  it('acks once the ack log has a group, hands it to the shards only once LMDB has it, and a failing LMDB commit is tried again, never given up', async () => {
    const { store, committed, state } = fakeStore();
    const clock = createManualClock(1_000_000);
    const dispatched: number[] = [];
    let release: () => void = () => undefined;
    const commitBatches = store.log.commitBatches.bind(store.log);
    // The first LMDB commit waits for the test.
    store.log.commitBatches = (batches, onWriting) => new Promise<void>((resolve) => (release = () => resolve(commitBatches(batches, onWriting))));
    const committer = createBatchCommitter({ store, sink: { dispatch: (lsn) => dispatched.push(lsn) }, clock, logger: createSilentLogger(), metrics: createMetrics({ defaultMetrics: false }), zstdLevel: 1, retryIntervalMs: 5 });
    const submit = submitter(committer);

    expect(await submit('a', 1)).toBe('stored');
    expect(committed).toHaveLength(0);
    expect(dispatched).toHaveLength(0);
    let idle = false;
    void committer.idle().then(() => (idle = true));
    expect(committer.ackedLsn()).toBe(1);
    expect(committer.committedLsn()).toBe(0);
    // A reconnecting device is told to go on after seq 1, which LMDB does not have yet.
    expect(committer.ackedNextSeq('T-1')).toBe(2);
    expect(committer.ackedNextSeq('T-2')).toBe(1);
    let through = false;
    void committer.committedThrough(1).then(() => (through = true));
    // A resend of an acked batch not yet in LMDB is acked at once, not stored twice.
    expect(await submit('a', 1)).toBe('duplicate');
    expect(await submit('x', 1)).toBe('overlap');
    await turn();
    expect(idle).toBe(false);
    expect(through).toBe(false);

    // LMDB refuses the group: it stays acked and is tried again; new batches are refused meanwhile.
    store.log.commitBatches = commitBatches;
    state.logFull = true;
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(state.logAttempts).toBeGreaterThanOrEqual(2);
    expect(committer.storageFailure()?.reason).toBe('No space left on device');
    clock.advance(10_000);
    expect(await submit('b', 2)).toBe('unavailable');
    expect(dispatched).toHaveLength(0);

    state.logFull = false;
    await committer.idle();
    expect(idle).toBe(true);
    expect(through).toBe(true);
    // LMDB's trail has it now.
    expect(committer.ackedNextSeq('T-1')).toBe(1);
    expect(committed.map((b) => b.record.id[0])).toEqual(['a']);
    expect(dispatched).toEqual([1]);
    expect(committer.committedLsn()).toBe(1);
    expect(committer.storageFailure()).toBeUndefined();
    expect(await submit('b', 2)).toBe('stored');
  });
  it('commits the groups acked during an LMDB commit together in the next one, in order', async () => {
    const { store, committed } = fakeStore();
    const commitBatches = store.log.commitBatches.bind(store.log);
    const calls: number[] = [];
    let release: () => void = () => undefined;
    store.log.commitBatches = (batches, onWriting) => {
      calls.push(batches.length);
      // The first commit waits for the test; the later ones go through.
      if (calls.length > 1) return commitBatches(batches, onWriting);
      return new Promise<void>((resolve) => (release = () => resolve(commitBatches(batches, onWriting))));
    };
    const dispatched: number[] = [];
    const committer = createBatchCommitter({ store, sink: { dispatch: (lsn) => dispatched.push(lsn) }, clock: createManualClock(1_000_000), logger: createSilentLogger(), metrics: createMetrics({ defaultMetrics: false }), zstdLevel: 1 });
    const submit = submitter(committer);
    // Four groups, each acked on its own append; the first one's LMDB commit is held.
    for (const [id, seq] of [['a', 1], ['b', 2], ['c', 3], ['d', 4]] as const) expect(await submit(id, seq)).toBe('stored');
    expect(calls).toEqual([1]);
    release();
    await committer.idle();
    expect(calls).toEqual([1, 3]);
    expect(committed.map((b) => b.record.id[0])).toEqual(['a', 'b', 'c', 'd']);
    expect(dispatched).toEqual([1, 2, 3, 4]);
  });
});

describe('batch committer ack stages (kiseki_ingest_ack_stage_seconds)', () => {
  it('records, per stored batch, the wait for its group (an earlier group being written included) and the write and flush; nothing for a failed group', async () => {
    const { store, groups } = answeredByHand();
    const metrics = createMetrics({ defaultMetrics: false });
    const committer = createBatchCommitter({ store, sink: { dispatch: () => undefined }, clock: createManualClock(1_000_000), logger: createSilentLogger(), metrics, zstdLevel: 1, retryIntervalMs: 0 });
    const submit = submitter(committer);
    const hold = () => new Promise((resolve) => setTimeout(resolve, 30));
    const stage = async (name: string) => {
      const values = (await metrics.ingestAckStageSeconds.get()).values.filter((v) => v.labels.stage === name);
      const pick = (suffix: string) => values.find((v) => v.metricName === `kiseki_ingest_ack_stage_seconds_${suffix}`)?.value ?? 0;
      return { count: pick('count'), sum: pick('sum') };
    };

    // Group 1 (two batches) waits 30 ms before its write starts and writes for 30 ms; c gathers behind it.
    const a = submit('a', 1);
    const b = submit('b', 2);
    await turn();
    const c = submit('c', 3);
    await turn();
    expect(groups).toHaveLength(1);
    await hold();
    groups[0]!.write();
    await hold();
    groups[0]!.ok();
    await turn();
    expect(groups).toHaveLength(2);
    groups[1]!.write();
    groups[1]!.ok();
    expect(await Promise.all([a, b, c])).toEqual(['stored', 'stored', 'stored']);
    const [wait, lock, commit, order] = await Promise.all(['wait', 'lock', 'commit', 'order'].map(stage));
    for (const s of [wait, lock, commit, order]) expect(s!.count).toBe(3);
    // Timers may fire a little early against performance.now(): bounds well under the 30 ms holds.
    expect(lock!.sum).toBeGreaterThan(2 * 0.02); // a and b
    expect(commit!.sum).toBeGreaterThan(2 * 0.02); // a and b
    expect(wait!.sum).toBeGreaterThan(0.04); // c waited for both holds
    expect(order!.sum).toBeLessThan(0.02);

    // A failed group is not acked: no stage is recorded for it.
    const d = submit('d', 4);
    await turn();
    groups[2]!.fail();
    expect(await d).toBe('unavailable');
    expect((await stage('commit')).count).toBe(3);
  });
});
