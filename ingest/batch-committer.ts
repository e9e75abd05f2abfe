/**
 * Group commit of raw batches: the batches admitted while the previous group
 * was being written are compressed, given the next log sequence numbers
 * (lsn) and appended as one group to the ack log (storage/ack-log.ts). Acks
 * go out once that append is on disk, in group order. Then the group is
 * committed to LMDB in one transaction, with its batch-id index entries and
 * the devices' seq ranges (merged by the log inside that transaction), and
 * only then handed to the shards, which read the log. A crash between the
 * ack and the LMDB commit loses nothing: the next start commits what the
 * ack log holds (`recoverAcked`) before anything reads the log.
 *
 * Exactly-once: an id already in the index, or waiting in a commit group, is
 * acked again (as a duplicate) and not stored twice, but only when it carries
 * the same seq range and the same event bytes as the stored copy: the same id
 * with other content is `reused` (refused, never silently dropped). A new id
 * whose seq range overlaps seqs the device already holds is `overlap`
 * (refused): a device's seqs are stored once (issue 11, item 8).
 *
 * A failed append (disk full, I/O error) answers its batches `unavailable`
 * (not acked: the agents resend them) and puts the committer in a refusing
 * state: new batches are refused at once, without compressing or numbering
 * them, until `retryIntervalMs` has passed; then the next group is tried, and
 * its success ends the state. A failed LMDB commit (map full, disk full)
 * cannot give back acks: the group is tried again every `retryIntervalMs`,
 * new batches are refused until it is stored, and a restart meanwhile takes
 * it from the ack log. So the service recovers by itself when space returns,
 * and a full disk costs one failed write per interval.
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
  /** Answered once the group is in the ack log (or failed); emptied then. */
  callbacks: CommitCallback[];
  /** In the ack log and acked; waits for its LMDB commit. */
  acked: boolean;
  /** performance.now() when accepted into the open group (for kiseki_ingest_ack_stage_seconds). */
  acceptedAt: number;
}

interface CommitGroup {
  batches: PendingBatch[];
  done: boolean;
  ok: boolean;
  /** performance.now() when it was handed to the ack log, when its write started, and when it was on disk. */
  startedAt: number;
  writingAt: number;
  flushedAt: number;
}

export interface BatchCommitter {
  submit(batch: BatchSubmission, callback: CommitCallback): void;
  /** Highest lsn whose group has completed (acked, committed to LMDB and dispatched). */
  committedLsn(): number;
  /** Highest lsn acked (on disk in the ack log); `committedLsn` follows it. */
  ackedLsn(): number;
  /** Resolves once every batch up to `lsn` is committed to LMDB and dispatched (at once when it already is). */
  committedThrough(lsn: number): Promise<void>;
  /** One past the device's highest seq acked and not yet in LMDB, 1 when none: a welcome's nextSeq must count it. */
  ackedNextSeq(tmid: string): number;
  /** Resolves when every submitted batch has been answered and every acked one committed to LMDB and dispatched. */
  idle(): Promise<void>;
  /** Set while storage refuses writes (the latest commit failed), undefined when it accepts them. */
  storageFailure(): StorageFailure | undefined;
}

export function createBatchCommitter(options: BatchCommitterOptions): BatchCommitter {
  const { store, sink, clock, metrics } = options;
  const log = options.logger.child({ component: 'batch-committer' });
  const zstdParams = { compressionLevel: options.zstdLevel };
  // Before anything is numbered: what a previous run acked and did not get into LMDB goes there now.
  const { recovered, tornFrames } = store.log.recoverAcked();
  if (recovered.length > 0 || tornFrames > 0) {
    log.warn({ recovered: recovered.length, tornFrames }, 'Committed from the ack log the batches acked before the last stop that had not reached the batch log.');
  }
  // The shards started from the log as it was before them.
  for (const r of recovered) sink.dispatch(r.lsn, r.record.tmid, new Uint8Array(decompress(r.record.z)), r.record.recvAt);
  let nextLsn = store.log.lastLsn() + 1;
  let lastCompletedLsn = nextLsn - 1;
  let lastAckedLsn = lastCompletedLsn;
  let committedWaiters: { lsn: number; resolve: () => void }[] = [];
  /** Per device, the highest seq acked whose batch LMDB does not have yet. */
  const ackedPendingLast = new Map<string, number>();
  const pendingById = new Map<string, PendingBatch>();
  /**
   * Seq ranges each device holds, stored or waiting in a commit group, for the overlap check
   * without a read per batch. The stored trail states are the log's to merge (storage/log.ts).
   */
  const heldRanges = new Map<string, [number, number][]>();
  let openGroup: PendingBatch[] = [];
  const inFlight: CommitGroup[] = [];
  let scheduled = false;
  /** A group's ack-log append is in flight: the next group gathers until it is done (one fdatasync per group). */
  let appending = false;
  /**
   * Acked groups waiting for their LMDB commit. One commit runs at a time and takes every group
   * waiting when it starts: an LMDB commit (two flushes of scattered pages) takes longer than an
   * append, so one commit per group would fall behind.
   */
  let toStore: CommitGroup[] = [];
  /** Acked groups not yet stored and dispatched. */
  let storing = 0;
  let draining = false;
  /** The LMDB commit of an acked group is failing: nothing new is taken until it is stored. */
  let logFailing = false;
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

  function notifyIdle(): void {
    if (inFlight.length === 0 && openGroup.length === 0 && storing === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Records a failed write (ack log or LMDB) and enters or extends the refusing state. */
  function noteFailure(err: unknown, what: string, batches: number): void {
    const reason = describeCause(err);
    const now = clock.now();
    if (failure === undefined) {
      log.error({ err, reason, batches }, `${what} failed (disk or map full?); new batches are refused until a retry succeeds.`);
      failure = { since: now, reason, failures: 1, retryAt: now + retryIntervalMs };
    } else {
      failure = { ...failure, reason, failures: failure.failures + 1, retryAt: now + retryIntervalMs };
    }
    metrics.storageWritable.set(0);
    metrics.storageWriteFailuresTotal.inc();
  }

  function noteSuccess(): void {
    if (failure === undefined || logFailing) return;
    log.warn({ downMs: clock.now() - failure.since, failures: failure.failures }, 'Storage accepts writes again; ingest resumes.');
    failure = undefined;
    metrics.storageWritable.set(1);
  }

  /** Commits acked groups to LMDB, trying again until they are stored (their acks cannot be taken back), then hands them to the shards. */
  async function storeInLog(groups: CommitGroup[]): Promise<void> {
    const toCommit: BatchToCommit[] = [];
    for (const g of groups) for (const b of g.batches) toCommit.push({ lsn: b.lsn, record: b.record });
    for (;;) {
      const startedAt = performance.now();
      try {
        await store.log.commitBatches(toCommit);
        metrics.ingestCommitSeconds.observe((performance.now() - startedAt) / 1000);
        break;
      } catch (err) {
        logFailing = true;
        noteFailure(err, 'The batch log commit of acked groups', toCommit.length);
        // Whatever failed may have left a read snapshot behind the store.
        store.refreshReads();
        await new Promise((resolve) => setTimeout(resolve, retryIntervalMs));
      }
    }
    logFailing = false;
    noteSuccess();
    for (const g of groups) {
      for (const b of g.batches) {
        pendingById.delete(b.record.id);
        // LMDB's trail now covers it (a later acked batch of the device keeps its own, higher entry).
        if (ackedPendingLast.get(b.record.tmid) === b.record.last) ackedPendingLast.delete(b.record.tmid);
        lastCompletedLsn = b.lsn;
        sink.dispatch(b.lsn, b.record.tmid, b.events, b.record.recvAt);
      }
    }
    store.log.releaseAcked(lastCompletedLsn);
    if (committedWaiters.length > 0) {
      const due = committedWaiters.filter((w) => w.lsn <= lastCompletedLsn);
      committedWaiters = committedWaiters.filter((w) => w.lsn > lastCompletedLsn);
      for (const w of due) w.resolve();
    }
  }

  /** Runs LMDB commits one at a time until no acked group waits. */
  async function drainToStore(): Promise<void> {
    while (toStore.length > 0) {
      const groups = toStore;
      toStore = [];
      try {
        await storeInLog(groups);
      } catch (err) {
        // Only a throwing sink gets here (storeInLog retries its commit): the groups after it must still be stored.
        log.error({ err }, 'Handing a stored batch group to the shards failed.');
      }
      storing -= groups.length;
    }
    draining = false;
    notifyIdle();
  }

  /** Answers the groups whose ack-log append is done, in order; acked ones go on to LMDB. */
  function completeInOrder(): void {
    while (inFlight.length > 0 && inFlight[0]!.done) {
      const group = inFlight.shift()!;
      if (group.ok) observeStages(group);
      const outcome: CommitOutcome = group.ok ? 'stored' : 'unavailable';
      for (const b of group.batches) {
        if (group.ok) {
          b.acked = true;
          lastAckedLsn = b.lsn;
          const last = ackedPendingLast.get(b.record.tmid);
          if (last === undefined || b.record.last > last) ackedPendingLast.set(b.record.tmid, b.record.last);
        } else pendingById.delete(b.record.id);
        const callbacks = b.callbacks;
        b.callbacks = [];
        for (const cb of callbacks) cb(outcome);
      }
      if (group.ok) {
        storing++;
        toStore.push(group);
        if (!draining) {
          draining = true;
          void drainToStore();
        }
      }
    }
    notifyIdle();
  }

  function closeGroup(): void {
    scheduled = false;
    // One append at a time: what arrives meanwhile joins the next group.
    if (openGroup.length === 0 || appending) return;
    const group: CommitGroup = { batches: openGroup, done: false, ok: false, startedAt: performance.now(), writingAt: 0, flushedAt: 0 };
    openGroup = [];
    inFlight.push(group);
    appending = true;
    const toAppend: BatchToCommit[] = group.batches.map((b) => ({ lsn: b.lsn, record: b.record }));
    store.log
      .appendAcked(toAppend, () => (group.writingAt = performance.now()))
      .then(
        () => {
          group.flushedAt = performance.now();
          group.ok = true;
          let events = 0;
          for (const b of group.batches) events += b.record.n;
          metrics.ingestBatchesTotal.inc({ result: 'stored' }, group.batches.length);
          metrics.ingestEventsTotal.inc(events);
          noteSuccess();
        },
        (err: unknown) => {
          noteFailure(err, 'The ack-log append of a batch group', group.batches.length);
          metrics.ingestBatchesTotal.inc({ result: 'failed' }, group.batches.length);
          // The held ranges include the failed batches: their resends must not be refused as overlaps.
          forgetFailed(group);
        },
      )
      .finally(() => {
        group.done = true;
        appending = false;
        completeInOrder();
        closeGroup();
      });
  }

  return {
    submit(batch, callback) {
      const pending = pendingById.get(batch.id);
      if (pending !== undefined) {
        if (pending.record.tmid !== batch.tmid) return callback('conflict');
        const r = pending.record;
        if (!sameContent(batch, r.first, r.last, r.n, () => pending.events)) return callback('reused');
        metrics.ingestBatchesTotal.inc({ result: 'duplicate' });
        if (pending.acked) return callback('duplicate');
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
      if (failure !== undefined && (logFailing || now < failure.retryAt)) {
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
      const entry: PendingBatch = { lsn, record, events: batch.events, callbacks: [callback], acked: false, acceptedAt: performance.now() };
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

    ackedLsn() {
      return lastAckedLsn;
    },

    committedThrough(lsn) {
      if (lsn <= lastCompletedLsn) return Promise.resolve();
      return new Promise((resolve) => committedWaiters.push({ lsn, resolve }));
    },

    ackedNextSeq(tmid) {
      const last = ackedPendingLast.get(tmid);
      return last === undefined ? 1 : last + 1;
    },

    storageFailure() {
      return failure === undefined ? undefined : { since: failure.since, reason: failure.reason, failures: failure.failures };
    },

    idle() {
      if (inFlight.length === 0 && openGroup.length === 0 && storing === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}

/** The operator-facing cause of a failed commit (ERR_STORAGE_UNAVAILABLE carries it in details.reason). */
function describeCause(err: unknown): string {
  if (isKisekiError(err) && typeof err.details?.reason === 'string') return err.details.reason;
  return err instanceof Error ? err.message : String(err);
}
