/**
 * Poison events (issue 11, item 5): stored events a shard could not decode
 * safely (nested deeper than MAX_EVENT_DEPTH, or not decodable on their own)
 * are set aside here with a reason, instead of stopping the shard's work on
 * their batch or the exports of their day. The raw batch stays in the log
 * unchanged; this is the record of what was not analysed, and why.
 *
 * Key layout (kiseki.lmdb):
 *   quarantine  [tmid, lsn, index in batch]  -> QuarantineRecord
 * A replay writes the same key again, so recording is idempotent.
 */
import type { QuarantineRecord } from './records.js';
import type { Tables } from './tables.js';

export interface QuarantineRepository {
  /** Inside `store.transaction()` (a shard's flush): records one poison event. */
  recordSync(record: QuarantineRecord): void;
  /** A device's quarantined events, in log order. */
  forDevice(tmid: string): QuarantineRecord[];
  /** Quarantined events per reason, over all devices (for `kiseki inspect`). */
  countsByReason(): Record<string, number>;
}

/** The quarantine repository over the hot store's tables (called by openHotStore). */
export function createQuarantineRepository(t: Tables): QuarantineRepository {
  const { quarantine } = t;
  return {
    recordSync: (r) => quarantine.putSync([r.tmid, r.lsn, r.index], r),
    forDevice(tmid) {
      const out: QuarantineRecord[] = [];
      for (const { value } of quarantine.getRange({ start: [tmid], end: [tmid, Infinity] })) out.push(value);
      return out;
    },
    countsByReason() {
      const out: Record<string, number> = {};
      for (const { value } of quarantine.getRange()) out[value.reason] = (out[value.reason] ?? 0) + 1;
      return out;
    },
  };
}
