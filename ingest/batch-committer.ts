/**
 * Group commit of raw batches: every batch admitted during one event-loop
 * turn is compressed, given the next log sequence number (lsn) and committed
 * in one LMDB transaction together with its batch-id index entry and the
 * device's seq ranges (merged by the log inside that transaction). Acks go
 * out only after that transaction is flushed to disk, in commit order; then
 * each batch is handed to its shard.
 *
 * Exactly-once: an id already in the index, or waiting in a commit group, is
 * acked again (as a duplicate) and not stored twice, but only when it carries
 * the same seq range and the same event bytes as the stored copy: the same id
 * with other content is `reused` (refused, never silently dropped). A new id
 * whose seq range overlaps seqs the device already holds is `overlap`
 * (refused): a device's seqs are stored once (issue 11, item 8).
 *
 * A failed commit (disk full, LMDB map full, I/O error) answers its batches
 * `unavailable` (not acked: the agents resend them) and puts the committer in
 * a refusing state: new batches are refused at once, without compressing or
 * numbering them, until `retryIntervalMs` has passed; then the next group is
 * tried, and its success ends the state. So the service recovers by itself
 * when space returns, and a full disk costs one failed write per interval.
 */
import { compress, decompress } from 'zstd-napi';
import type { Clock } from '../core/clock.js';
import { isKisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { addSeqRange, batchChecksum, type BatchRecord, type BatchToCommit, type HotStore } from '../storage/index.js';

export type CommitOutcome = 'stored' | 'duplicate' | 'conflict' | 'reused' | 'overlap' | 'failed' | 'unavailable';

/** Why storage refuses writes, while it does (for /healthz). */
export interface StorageFailure {
  /** When the first commit of this episode failed, ms since the epoch. */
  since: number;
  /** The cause of the latest failure, e.g. "No space left on device" or "MDB_MAP_FULL...". */
  reason: string;
  /** Commit groups failed since `since`. */
  failures: number;
}

/** Called once per submitted batch with its outcome; `stored` and `duplicate` mean the agent may be acked; `unavailable`: storage refuses writes. */
export type CommitCallback = (outcome: CommitOutcome) => void;

/** Where committed batches go next (the shard pool). `events` is handed over, not copied. */
export interface CommittedBatchSink {
  dispatch(lsn: number, tmid: string, events: Uint8Array, recvAt: number): void;
}

export interface BatchSubmission {
  tmid: string;
  id: string;
  sentAt: number;
  first: number;
  last: number;
  /** The MessagePack events array; must own its whole ArrayBuffer (it is transferred to a shard). */
  events: Uint8Array;
  eventCount: number;
  /** When the batch was received, if elsewhere (a cluster's ingest node); absent: now, by the committer's clock. */
  recvAt?: number;
}

export interface BatchCommitterOptions {
  store: HotStore;
  sink: CommittedBatchSink;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  zstdLevel: number;
  /** While storage refuses writes, how long new batches are refused before a commit is tried again (default 1000 ms). */
  retryIntervalMs?: number;
}

interface PendingBatch {
  lsn: number;
  record: BatchRecord;
  events: Uint8Array;
  callbacks: CommitCallback[];
  /** performance.now() when accepted into the open group (for kiseki_ingest_ack_stage_seconds). */
  acceptedAt: number;
}

interface CommitGroup {
  batches: PendingBatch[];
  done: boolean;
  ok: boolean;
  /** performance.now() when it was handed to the log, when its write transaction ran, and when it was flushed. */
  startedAt: number;
  writingAt: number;
  flushedAt: number;
}

export interface BatchCommitter {
  submit(batch: BatchSubmission, callback: CommitCallback): void;
  /** Highest lsn whose group has completed (acked and dispatched). */
  committedLsn(): number;
  /** Resolves when every submitted batch has been committed (or failed) and answered. */
  idle(): Promise<void>;
  /** Set while storage refuses writes (the latest commit failed), undefined when it accepts them. */
  storageFailure(): StorageFailure | undefined;
}

export function createBatchCommitter(options: BatchCommitterOptions): BatchCommitter {
  const { store, sink, clock, metrics } = options;
  const log = options.logger.child({ component: 'batch-committer' });
  const zstdParams = { compressionLevel: options.zstdLevel };
  let nextLsn = store.log.lastLsn() + 1;
  let lastCompletedLsn = nextLsn - 1;
  const pendingById = new Map<string, PendingBatch>();
  /**
   * Seq ranges each device holds, stored or waiting in a commit group, for the overlap check
   * without a read per batch. The stored trail states are the log's to merge (storage/log.ts).
   */
  const heldRanges = new Map<string, [number, number][]>();
  let openGroup: PendingBatch[] = [];
  const inFlight: CommitGroup[] = [];
  let scheduled = false;
  let idleWaiters: (() => void)[] = [];
  const retryIntervalMs = options.retryIntervalMs ?? 1000;
  let failure: (StorageFailure & { retryAt: number }) | undefined;
  metrics.storageWritable.set(1);

  function rangesOf(tmid: string): [number, number][] {
    let ranges = heldRanges.get(tmid);
    if (ranges === undefined) {
      ranges = store.log.trail(tmid)?.ranges ?? [];
      heldRanges.set(tmid, ranges);
    }
    return ranges;
  }

  /** After a failed commit: what the store holds plus the batches still waiting, without the failed group's. */
  function forgetFailed(group: CommitGroup): void {
    store.refreshReads();
    const failed = new Set(group.batches);
    for (const tmid of new Set(group.batches.map((b) => b.record.tmid))) {
      let ranges = store.log.trail(tmid)?.ranges ?? [];
      for (const p of pendingById.values()) {
        if (p.record.tmid === tmid && !failed.has(p)) ranges = addSeqRange(ranges, p.record.first, p.record.last);
      }
      heldRanges.set(tmid, ranges);
    }
  }

  /** Same seq range and same event bytes as the stored or pending copy of the id. */
  function sameContent(batch: BatchSubmission, first: number, last: number, n: number, events: () => Uint8Array | undefined): boolean {
    if (batch.first !== first || batch.last !== last || batch.eventCount !== n) return false;
    // Raw bytes already rolled out of the hot log cannot be compared: the seq range has to do.
    const stored = events();
    return stored === undefined || Buffer.compare(stored, batch.events) === 0;
  }

  function overlapsHeld(ranges: readonly [number, number][], first: number, last: number): boolean {
    for (const r of ranges) if (r[0] <= last && first <= r[1]) return true;
    return false;
  }

  /** Per batch of a stored group, where its ack time went: the wait for its group, for the write lock, the write and flush, the wait for earlier groups. */
  function observeStages(group: CommitGroup): void {
    const stages = metrics.ingestAckStageSeconds;
    // A log that never said when it started writing (a stand-in in a test) puts the whole time under commit.
    const writingAt = group.writingAt === 0 ? group.startedAt : group.writingAt;
    const lock = (writingAt - group.startedAt) / 1000;
    const commit = (group.flushedAt - writingAt) / 1000;
    const order = (performance.now() - group.flushedAt) / 1000;
    for (const b of group.batches) {
      stages.observe({ stage: 'wait' }, (group.startedAt - b.acceptedAt) / 1000);
      stages.observe({ stage: 'lock' }, lock);
      stages.observe({ stage: 'commit' }, commit);
      stages.observe({ stage: 'order' }, order);
    }
  }

  function completeInOrder(): void {
    while (inFlight.length > 0 && inFlight[0]!.done) {
      const group = inFlight.shift()!;
      if (group.ok) observeStages(group);
      for (const b of group.batches) {
        pendingById.delete(b.record.id);
        const outcome: CommitOutcome = group.ok ? 'stored' : 'unavailable';
        for (const cb of b.callbacks) cb(outcome);
        if (group.ok) {
          lastCompletedLsn = b.lsn;
          sink.dispatch(b.lsn, b.record.tmid, b.events, b.record.recvAt);
        }
      }
    }
    if (inFlight.length === 0 && openGroup.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  function closeGroup(): void {
    scheduled = false;
    if (openGroup.length === 0) return;
    const group: CommitGroup = { batches: openGroup, done: false, ok: false, startedAt: performance.now(), writingAt: 0, flushedAt: 0 };
    openGroup = [];
    inFlight.push(group);
    const toCommit: BatchToCommit[] = group.batches.map((b) => ({ lsn: b.lsn, record: b.record }));
    store.log.commitBatches(toCommit, () => (group.writingAt = performance.now())).then(
      () => {
        group.flushedAt = performance.now();
        // The same clock as the ack stages: this is their lock + commit, per group.
        metrics.ingestCommitSeconds.observe((group.flushedAt - group.startedAt) / 1000);
        group.ok = true;
        group.done = true;
        let events = 0;
        for (const b of group.batches) events += b.record.n;
        metrics.ingestBatchesTotal.inc({ result: 'stored' }, group.batches.length);
        metrics.ingestEventsTotal.inc(events);
        if (failure !== undefined) {
          log.warn({ downMs: clock.now() - failure.since, failures: failure.failures }, 'The batch log accepts commits again; ingest resumes.');
          failure = undefined;
          metrics.storageWritable.set(1);
        }
        completeInOrder();
      },
      (err: unknown) => {
        const reason = describeCause(err);
        const now = clock.now();
        if (failure === undefined) {
          log.error({ err, reason, batches: group.batches.length }, 'Commit of a batch group failed (disk or map full?); its batches are not acked, and new batches are refused until a retry succeeds.');
          failure = { since: now, reason, failures: 1, retryAt: now + retryIntervalMs };
        } else {
          failure = { ...failure, reason, failures: failure.failures + 1, retryAt: now + retryIntervalMs };
        }
        metrics.storageWritable.set(0);
        metrics.storageWriteFailuresTotal.inc();
        metrics.ingestBatchesTotal.inc({ result: 'failed' }, group.batches.length);
        // The held ranges include the failed batches: their resends must not be refused as overlaps.
        forgetFailed(group);
        group.done = true;
        completeInOrder();
      },
    );
  }

  return {
    submit(batch, callback) {
      const pending = pendingById.get(batch.id);
      if (pending !== undefined) {
        if (pending.record.tmid !== batch.tmid) return callback('conflict');
        const r = pending.record;
        if (!sameContent(batch, r.first, r.last, r.n, () => pending.events)) return callback('reused');
        metrics.ingestBatchesTotal.inc({ result: 'duplicate' });
        // Acked together with the first copy, once that copy is on disk.
        pending.callbacks.push((outcome) => callback(outcome === 'stored' ? 'duplicate' : outcome));
        return;
      }
      const existing = store.log.batchIdOwner(batch.id);
      if (existing !== undefined) {
        if (existing[1] !== batch.tmid) return callback('conflict');
        // Resends are rare (reconnects): reading the stored copy back costs nothing on the normal path.
        const stored = store.log.batch(existing[0]);
        if (stored !== undefined && !sameContent(batch, stored.first, stored.last, stored.n, () => decompress(stored.z))) return callback('reused');
        metrics.ingestBatchesTotal.inc({ result: 'duplicate' });
        return callback('duplicate');
      }
      if (overlapsHeld(rangesOf(batch.tmid), batch.first, batch.last)) return callback('overlap');
      const now = clock.now();
      if (failure !== undefined && now < failure.retryAt) {
        metrics.ingestBatchesTotal.inc({ result: 'refused' });
        return callback('unavailable');
      }
      const lsn = nextLsn++;
      const z = compress(batch.events, zstdParams);
      const record: BatchRecord = {
        tmid: batch.tmid,
        id: batch.id,
        sentAt: batch.sentAt,
        recvAt: batch.recvAt ?? now,
        first: batch.first,
        last: batch.last,
        n: batch.eventCount,
        z,
        // The checksum that lets the start-up check and the log's readers see damaged bytes (storage/verify.ts).
        c: batchChecksum(z),
      };
      heldRanges.set(batch.tmid, addSeqRange(rangesOf(batch.tmid), batch.first, batch.last));
      const entry: PendingBatch = { lsn, record, events: batch.events, callbacks: [callback], acceptedAt: performance.now() };
      pendingById.set(batch.id, entry);
      openGroup.push(entry);
      if (!scheduled) {
        scheduled = true;
        setImmediate(closeGroup);
      }
    },

    committedLsn() {
      return lastCompletedLsn;
    },

    storageFailure() {
      return failure === undefined ? undefined : { since: failure.since, reason: failure.reason, failures: failure.failures };
    },

    idle() {
      if (inFlight.length === 0 && openGroup.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}

/** The operator-facing cause of a failed commit (ERR_STORAGE_UNAVAILABLE carries it in details.reason). */
function describeCause(err: unknown): string {
  if (isKisekiError(err) && typeof err.details?.reason === 'string') return err.details.reason;
  return err instanceof Error ? err.message : String(err);
}
