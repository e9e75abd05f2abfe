/**
 * Storage-side helpers of the hot-to-cold rollover (SPEC §5): finding batches
 * by receive time in the log, the lsn below which no shard needs the log any
 * more, and removing a device's raw batches once its days are archived.
 *
 * `batch-ids` entries are kept when batches go: the exactly-once index must
 * still recognise a late resend of a batch whose raw bytes now live only in a
 * cold archive.
 */
import type { HotStore } from './hot-store.js';

/** Number of virtual shards (engine/vshard.ts); every one has its own checkpoints. */
const VIRTUAL_SHARDS = 256;

/**
 * The first lsn whose batch was received at or after `ms` (lastLsn + 1 when
 * none): a binary search over the log, which is ordered by lsn and, because
 * the committer stamps `recvAt` when it assigns the lsn, by receive time too.
 * Callers that must not miss a batch across a clock step widen the window
 * and filter on `recvAt` themselves.
 */
export function lsnReceivedAtOrAfter(store: HotStore, ms: number): number {
  const last = store.lastLsn();
  if (last === 0) return 1;
  const firstAtOrAfter = (x: number): { key: number; recvAt: number } | undefined => {
    for (const { key, value } of store.batches.getRange({ start: x, limit: 1 })) return { key, recvAt: value.recvAt };
    return undefined;
  };
  // P(x): the first batch at or after lsn x was received at or after ms (or there is none).
  // P is monotone in x; the smallest such x leads to the answer. The log may have holes
  // (retention removes devices' batches), hence "first batch at or after".
  let lo = 1;
  for (const key of store.batches.getKeys({ limit: 1 })) lo = key;
  let hi = last + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const found = firstAtOrAfter(mid);
    if (found === undefined || found.recvAt >= ms) hi = mid;
    else lo = mid + 1;
  }
  return firstAtOrAfter(lo)?.key ?? last + 1;
}

/**
 * The highest lsn that no shard will read again on recovery: the lowest of
 * every virtual shard's checkpoint and state checkpoint (a missing one counts
 * as 0, exactly as a recovering shard reads it).
 */
export function lsnSafeToDrop(store: HotStore): number {
  let min = Number.POSITIVE_INFINITY;
  for (let v = 0; v < VIRTUAL_SHARDS; v++) {
    const cp = store.checkpoints.get(v) ?? 0;
    const scp = store.stateCheckpoints.get(v) ?? 0;
    min = Math.min(min, cp, scp);
  }
  return min;
}

export interface DropResult {
  batches: number;
  events: number;
  /** Highest lsn removed, 0 when none. */
  lastLsn: number;
}

/**
 * Removes `tmid`'s raw batches (from `batches` and `device-batches`) with
 * lsn below `belowLsn` that were received before `receivedBefore`, in
 * transactions of `chunk` batches so writers are never held up for long.
 * Batches from `verifyFromLsn` on are read to check their receive time;
 * older ones are known to be older from the lsn alone (default: check all).
 */
export async function dropRawBatches(
  store: HotStore,
  tmid: string,
  limits: { belowLsn: number; receivedBefore: number; verifyFromLsn?: number },
  chunk = 512,
): Promise<DropResult> {
  const result: DropResult = { batches: 0, events: 0, lastLsn: 0 };
  const verifyFrom = limits.verifyFromLsn ?? 0;
  for (;;) {
    const victims: { lsn: number; n: number }[] = [];
    for (const { key, value } of store.deviceBatches.getRange({ start: [tmid, 0], end: [tmid, limits.belowLsn], snapshot: false })) {
      const lsn = key[1];
      if (lsn >= verifyFrom) {
        const rec = store.batches.get(lsn);
        if (rec !== undefined && rec.recvAt >= limits.receivedBefore) break;
      }
      victims.push({ lsn, n: value });
      if (victims.length >= chunk) break;
    }
    if (victims.length === 0) return result;
    await store.batches.transaction(() => {
      for (const v of victims) {
        store.batches.removeSync(v.lsn);
        store.deviceBatches.removeSync([tmid, v.lsn]);
      }
    });
    for (const v of victims) {
      result.batches++;
      result.events += v.n;
      result.lastLsn = Math.max(result.lastLsn, v.lsn);
    }
    if (victims.length < chunk) return result;
  }
}
