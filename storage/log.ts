/**
 * The raw batch log, the system's write-ahead log (SPEC §5): everything the
 * shards derive can be rebuilt by replaying it from their checkpoints. Also
 * the exactly-once batch-id index, per-device trail states, and the
 * storage side of the hot-to-cold rollover (finding batches by receive
 * time, removing a device's archived batches).
 *
 * Key layouts (storage/lmdb-keys.bench.ts compares the alternatives), all in log.lmdb:
 *   batches         lsn (number, ascending)  -> BatchRecord (zstd events)
 *   device-batches  [tmid, lsn]              -> event count
 *   batch-ids       batch id (32 hex)        -> [lsn, tmid]
 *   trails          tmid                     -> TrailState (seq ranges, counters)
 * The log keys are one increasing number, so appends land at the end of the
 * B-tree and a shard's replay is one forward range scan. `batch-ids` entries
 * are kept when batches go: the exactly-once index must still recognise a
 * late resend of a batch whose raw bytes now live only in a cold archive.
 */
import { isKisekiError, KisekiError } from '../core/errors.js';
import { clearAckLog, openAckLog, readAckLog, type AckLog } from './ack-log.js';
import type { BatchRecord, BatchToCommit, TrailState } from './records.js';
import type { Tables } from './tables.js';

export interface DropResult {
  batches: number;
  events: number;
  /** Highest lsn removed, 0 when none. */
  lastLsn: number;
}

export interface LogRepository {
  /** Highest lsn in the batch log, 0 when empty. */
  lastLsn(): number;
  /**
   * Commits batches atomically with their id index entries and their devices'
   * trail states, and resolves once the transaction is flushed to disk. The
   * trail states are merged inside the transaction from what is stored, so
   * they never count a batch that is not stored with them (a failed commit
   * earlier leaves no trace in a later one).
   * @param onWriting called when the write transaction's work starts (the log's write lock held), for the
   *   ingest's ack stages: what comes before it is waiting for the lock, what comes after is writing and flushing
   */
  commitBatches(batches: readonly BatchToCommit[], onWriting?: () => void): Promise<void>;
  /**
   * Appends a group of batches to the ack log (storage/ack-log.ts) and
   * resolves once it is on disk: from then on a crash cannot lose them, the
   * next `recoverAcked` commits them. Groups are appended in call order.
   * @param onWriting called when this group's write starts (the groups before it are on disk)
   */
  appendAcked(batches: readonly BatchToCommit[], onWriting?: () => void): Promise<void>;
  /** Every lsn up to `lsn` is committed (commitBatches resolved): the ack log lets go of it. */
  releaseAcked(lsn: number): void;
  /**
   * Commits the batches a previous run acked and did not get into LMDB (it
   * stopped between the two), then empties the ack log. Batches whose lsn or
   * id is stored, or whose seqs the device holds, are left out: they reached
   * LMDB, or their resend did. Call once, before the first `appendAcked`.
   * @returns the batches committed, in lsn order, and the frames found torn (appends that never completed, so were never acked)
   */
  recoverAcked(): { recovered: BatchToCommit[]; tornFrames: number };
  /** Closes the ack log (waits for its appends in flight). */
  closeAckLog(): Promise<void>;
  batch(lsn: number): BatchRecord | undefined;
  /** Batches with lsn in [from, toExclusive), ascending: a shard's replay (one forward scan). */
  range(from: number, toExclusive: number): Iterable<{ key: number; value: BatchRecord }>;
  /** Where a batch id is stored: [lsn, tmid], or undefined when it never was. */
  batchIdOwner(id: string): readonly [number, string] | undefined;
  trail(tmid: string): TrailState | undefined;
  /** Every device's trail state, in TMID order. */
  trails(): Iterable<{ tmid: string; trail: TrailState }>;
  /** lsns of `tmid`'s batches in [fromLsn, toLsn), ascending, read without holding a snapshot. */
  deviceLsns(tmid: string, fromLsn: number, toLsn: number): number[];
  /** `tmid`'s oldest batch still in the log. */
  oldestBatchOf(tmid: string): (BatchRecord & { lsn: number }) | undefined;
  /**
   * The first lsn whose batch was received at or after `ms` (lastLsn + 1
   * when none): a binary search over the log, which is ordered by lsn and,
   * because the committer stamps `recvAt` when it assigns the lsn, by
   * receive time too. Callers that must not miss a batch across a clock step
   * widen the window and filter on `recvAt` themselves.
   */
  lsnReceivedAtOrAfter(ms: number): number;
  /**
   * Removes `tmid`'s raw batches (from `batches` and `device-batches`) with
   * lsn below `belowLsn` that were received before `receivedBefore`, in
   * transactions of `chunk` batches so writers are never held up for long.
   * Batches from `verifyFromLsn` on are read to check their receive time;
   * older ones are known to be older from the lsn alone (default: check all).
   */
  dropDeviceBatches(tmid: string, limits: { belowLsn: number; receivedBefore: number; verifyFromLsn?: number }, chunk?: number): Promise<DropResult>;
  /** Counts for `kiseki inspect`: stored batches and batch-id entries. */
  counts(): { batches: number; batchIds: number };
}

/**
 * A failed commit as ERR_STORAGE_UNAVAILABLE with the real cause. lmdb-js
 * rejects the transaction with a generic "Commit failed" whose `commitError`
 * promise carries the cause (ENOSPC, MDB_MAP_FULL, EIO) and is rejected in
 * the same native callback; nothing else handles that promise, so without
 * the handler attached here it would end the process as an unhandled
 * rejection (issue 11, item 2).
 */
async function commitFailure(err: unknown): Promise<KisekiError> {
  if (isKisekiError(err)) return err;
  let cause: unknown = err;
  const commitError = (err as { commitError?: unknown } | undefined)?.commitError;
  if (commitError instanceof Promise) {
    commitError.catch((e: unknown) => (cause = e));
    // The cause is rejected in the native callback that failed the transaction: one macrotask is enough.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const reason = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | undefined)?.code;
  return new KisekiError('ERR_STORAGE_UNAVAILABLE', { op: 'commit', env: 'log.lmdb', reason, ...(code === undefined ? {} : { errno: code }) }, { cause });
}

/**
 * The batch-log repository over the hot store's tables (called by openHotStore).
 * @param dataDir where the ack log lives; it is opened by the first `appendAcked` only, so readers never touch it
 */
export function createLogRepository(t: Tables, dataDir: string): LogRepository {
  const { log, batches, deviceBatches, batchIds, trails } = t;
  let ackLog: AckLog | undefined;
  const lastLsn = (): number => {
    for (const key of batches.getKeys({ reverse: true, limit: 1 })) return key;
    return 0;
  };
  /** The writes of one group, inside a write transaction; the trail states merge over what is stored. */
  const writeGroup = (toCommit: readonly BatchToCommit[]): void => {
    const touched = new Map<string, TrailState>();
    for (const { lsn, record } of toCommit) {
      batches.putSync(lsn, record);
      deviceBatches.putSync([record.tmid, lsn], record.n);
      batchIds.putSync(record.id, [lsn, record.tmid]);
      let trail = touched.get(record.tmid);
      if (trail === undefined) {
        // Read inside the write transaction: the state the previous commit left.
        const stored = trails.get(record.tmid);
        trail = stored === undefined ? { ranges: [], batches: 0, events: 0, lastLsn: 0, lastBatchAt: 0 } : { ...stored };
        touched.set(record.tmid, trail);
      }
      trail.ranges = addSeqRange(trail.ranges, record.first, record.last);
      trail.batches++;
      trail.events += record.n;
      trail.lastLsn = Math.max(trail.lastLsn, lsn);
      trail.lastBatchAt = Math.max(trail.lastBatchAt, record.recvAt);
    }
    for (const [tmid, state] of touched) trails.putSync(tmid, state);
  };
  return {
    lastLsn,
    async commitBatches(toCommit, onWriting) {
      try {
        await log.transaction(() => {
          onWriting?.();
          writeGroup(toCommit);
        });
        // Acks wait for the disk: without overlappingSync (storage/tables.ts) this resolves at once.
        await log.flushed;
      } catch (err) {
        throw await commitFailure(err);
      }
    },
    appendAcked(toAppend, onWriting) {
      // Never throws: a failed check or encoding rejects, as a failed write does.
      try {
        // Refused like an LMDB write when the disk is nearly full: acking what LMDB then refuses would stall ingest.
        t.diskGuard?.check();
        ackLog ??= openAckLog(dataDir);
        return ackLog.append(toAppend, onWriting);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    releaseAcked(lsn) {
      ackLog?.release(lsn);
    },
    recoverAcked() {
      if (ackLog !== undefined) throw new KisekiError('ERR_STORAGE', { op: 'recoverAcked', reason: 'the ack log is already in use (recoverAcked after appendAcked)' });
      const { records, tornFrames } = readAckLog(dataDir);
      const recovered: BatchToCommit[] = [];
      const held = new Map<string, [number, number][]>();
      const ids = new Set<string>();
      for (const r of records.sort((a, b) => a.lsn - b.lsn)) {
        const { tmid, id, first, last } = r.record;
        if (ids.has(id) || batches.get(r.lsn) !== undefined || batchIds.get(id) !== undefined) continue;
        ids.add(id);
        const ranges = held.get(tmid) ?? trails.get(tmid)?.ranges ?? [];
        if (ranges.some((x) => x[0] <= last && first <= x[1])) continue;
        held.set(tmid, addSeqRange(ranges, first, last));
        recovered.push(r);
      }
      // Synchronous and flushed before the log is cleared: the records must be in LMDB first.
      if (recovered.length > 0) log.transactionSync(() => writeGroup(recovered));
      clearAckLog(dataDir);
      return { recovered, tornFrames };
    },
    async closeAckLog() {
      await ackLog?.close();
    },
    batch: (lsn) => batches.get(lsn),
    range: (from, toExclusive) => batches.getRange({ start: from, end: toExclusive }),
    batchIdOwner: (id) => batchIds.get(id),
    trail: (tmid) => trails.get(tmid),
    *trails() {
      for (const { key, value } of trails.getRange()) yield { tmid: key, trail: value };
    },
    deviceLsns(tmid, fromLsn, toLsn) {
      const out: number[] = [];
      for (const key of deviceBatches.getKeys({ start: [tmid, fromLsn], end: [tmid, toLsn], snapshot: false })) out.push(key[1]);
      return out;
    },
    oldestBatchOf(tmid) {
      for (const key of deviceBatches.getKeys({ start: [tmid, 0], end: [tmid, Number.MAX_SAFE_INTEGER], limit: 1 })) {
        const rec = batches.get(key[1]);
        if (rec !== undefined) return { ...rec, lsn: key[1] };
      }
      return undefined;
    },
    lsnReceivedAtOrAfter(ms) {
      const last = lastLsn();
      if (last === 0) return 1;
      const firstAtOrAfter = (x: number): { key: number; recvAt: number } | undefined => {
        for (const { key, value } of batches.getRange({ start: x, limit: 1 })) return { key, recvAt: value.recvAt };
        return undefined;
      };
      // P(x): the first batch at or after lsn x was received at or after ms (or there is none).
      // P is monotone in x; the smallest such x leads to the answer. The log may have holes
      // (retention removes devices' batches), hence "first batch at or after".
      let lo = 1;
      for (const key of batches.getKeys({ limit: 1 })) lo = key;
      let hi = last + 1;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const found = firstAtOrAfter(mid);
        if (found === undefined || found.recvAt >= ms) hi = mid;
        else lo = mid + 1;
      }
      return firstAtOrAfter(lo)?.key ?? last + 1;
    },
    async dropDeviceBatches(tmid, limits, chunk = 512) {
      const result: DropResult = { batches: 0, events: 0, lastLsn: 0 };
      const verifyFrom = limits.verifyFromLsn ?? 0;
      for (;;) {
        const victims: { lsn: number; n: number }[] = [];
        for (const { key, value } of deviceBatches.getRange({ start: [tmid, 0], end: [tmid, limits.belowLsn], snapshot: false })) {
          const lsn = key[1];
          if (lsn >= verifyFrom) {
            const rec = batches.get(lsn);
            if (rec !== undefined && rec.recvAt >= limits.receivedBefore) break;
          }
          victims.push({ lsn, n: value });
          if (victims.length >= chunk) break;
        }
        if (victims.length === 0) return result;
        await log.transaction(() => {
          for (const v of victims) {
            batches.removeSync(v.lsn);
            deviceBatches.removeSync([tmid, v.lsn]);
          }
        });
        for (const v of victims) {
          result.batches++;
          result.events += v.n;
          result.lastLsn = Math.max(result.lastLsn, v.lsn);
        }
        if (victims.length < chunk) return result;
      }
    },
    counts: () => ({ batches: batches.getCount(), batchIds: batchIds.getCount() }),
  };
}

/** Adds [first, last] to sorted disjoint ranges, merging neighbours. Returns the new array. */
export function addSeqRange(ranges: [number, number][], first: number, last: number): [number, number][] {
  const out: [number, number][] = [];
  let lo = first;
  let hi = last;
  let placed = false;
  for (const r of ranges) {
    if (r[1] + 1 < lo) out.push(r);
    else if (hi + 1 < r[0]) {
      if (!placed) {
        out.push([lo, hi]);
        placed = true;
      }
      out.push(r);
    } else {
      lo = Math.min(lo, r[0]);
      hi = Math.max(hi, r[1]);
    }
  }
  if (!placed) out.push([lo, hi]);
  return out;
}

/**
 * Seq holes in held ranges: [from, to] inclusive for each gap. Agents number
 * events from 1, so a first range starting later is a gap too.
 */
export function seqGaps(ranges: readonly [number, number][]): [number, number][] {
  const gaps: [number, number][] = [];
  const first = ranges[0];
  if (first !== undefined && first[0] > 1) gaps.push([1, first[0] - 1]);
  for (let i = 1; i < ranges.length; i++) gaps.push([ranges[i - 1]![1] + 1, ranges[i]![0] - 1]);
  return gaps;
}
