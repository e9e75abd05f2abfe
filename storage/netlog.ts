/**
 * Network logs (ingest/syslog parses them): the records, a per-tenant index
 * by destination (IP address and domain), and the running counts of lines
 * that failed to parse, by tenant and reason. The receiver writes one
 * transaction per batch (records and failure counts together), so after a
 * crash the stored records and the failure counts agree with each other.
 * In log.lmdb beside the raw agent batches: both are ingest's raw input,
 * written by the same group-commit writer and dropped by the same retention.
 *
 * Records are keyed by the time kiseki received them, not the event's own
 * time: it only grows (appends stay at the B-tree's right edge), a sender's
 * wrong clock or a year-less RFC 3164 stamp cannot file a record under a day
 * already exported, and a day's export and retention are exact ranges.
 *
 * Key layouts (log.lmdb):
 *   netlogs          [supportId, receivedAt, seq]        -> NetworkLogRecord
 *   netlog-dst       [supportId, dst, receivedAt, seq]   -> 1 (dst: dstIp and domain, each indexed)
 *   netlog-failures  [supportId, reason]         -> count ('' for lines routed to no tenant)
 *   netlog-state     'seq'                       -> last seq handed out
 */
import type { NetworkLogFormat, NetworkLogRecord } from '../core/contracts.js';
import type { Tables } from './tables.js';

/** A stored network-log record with its sequence number (unique across restarts). */
export interface StoredNetlog {
  seq: number;
  record: NetworkLogRecord;
}

/** A page cursor over records listed newest first: the last one shown. */
export interface NetlogCursor {
  /** receivedAt of the last record shown. */
  at: number;
  seq: number;
}

/** Lines that failed to parse, counted per tenant ('' when routed to none) and reason. */
export interface NetlogFailureCount {
  supportId: string;
  reason: string;
  count: number;
}

/** A scan of one tenant's records, newest first. */
export interface NetlogQuery {
  /** Receive time bounds, epoch ms, inclusive. */
  from?: number;
  to?: number;
  /** Destination IP address or domain (exact, lower-case for domains). */
  dst?: string;
  format?: NetworkLogFormat;
  after?: NetlogCursor;
}

export interface NetlogRepository {
  /**
   * Stores a batch in one transaction and resolves once it is on disk:
   * records (with sequence numbers) and failure counts added to the totals.
   * @returns the first sequence number given (records got consecutive ones)
   */
  append(records: readonly NetworkLogRecord[], failures: readonly NetlogFailureCount[]): Promise<number>;
  /** A tenant's records, last received first, filtered by the query. */
  scan(supportId: string, q?: NetlogQuery): Iterable<StoredNetlog>;
  /** A tenant's records received in [from, toExclusive), oldest first (exports). */
  range(supportId: string, from: number, toExclusive: number): Iterable<NetworkLogRecord>;
  /** Failure totals, of one tenant or of all (with '' for unrouted lines). */
  failures(supportId?: string): NetlogFailureCount[];
  /** Records stored, of one tenant or of all. */
  count(supportId?: string): number;
  /** When the tenant's oldest record still stored was received, or undefined. */
  oldestReceivedAt(supportId: string): number | undefined;
  /** Deletes the tenant's records (and their index entries) received before `at`; returns how many. */
  dropBefore(supportId: string, at: number): Promise<number>;
}

/** Destination keys a record is indexed under. */
function dstKeys(r: NetworkLogRecord): string[] {
  const out: string[] = [];
  if (r.dstIp !== undefined) out.push(r.dstIp);
  if (r.domain !== undefined && r.domain !== r.dstIp) out.push(r.domain);
  return out;
}

/** The network-log repository over the hot store's tables (called by openHotStore). */
export function createNetlogRepository(t: Tables): NetlogRepository {
  const { log, netlogs, netlogDst, netlogFailures, netlogState } = t;
  function* byDst(supportId: string, dst: string, q: NetlogQuery): Iterable<StoredNetlog> {
    const start: [string, string, number, number] = [supportId, dst, q.after?.at ?? q.to ?? Infinity, q.after?.seq ?? Infinity];
    for (const key of netlogDst.getKeys({ start, end: [supportId, dst, q.from ?? -Infinity], reverse: true })) {
      if (q.after !== undefined && key[2] === q.after.at && key[3] === q.after.seq) continue;
      const record = netlogs.get([supportId, key[2], key[3]]);
      if (record !== undefined) yield { seq: key[3], record };
    }
  }
  function* byTime(supportId: string, q: NetlogQuery): Iterable<StoredNetlog> {
    const start: [string, number, number] = [supportId, q.after?.at ?? q.to ?? Infinity, q.after?.seq ?? Infinity];
    for (const { key, value } of netlogs.getRange({ start, end: [supportId, q.from ?? -Infinity], reverse: true })) {
      if (q.after !== undefined && key[1] === q.after.at && key[2] === q.after.seq) continue;
      yield { seq: key[2], record: value };
    }
  }
  return {
    async append(records, failures) {
      let first = 0;
      await log.transaction(() => {
        let seq = netlogState.get('seq') ?? 0;
        first = seq + 1;
        for (const r of records) {
          seq++;
          netlogs.putSync([r.supportId, r.receivedAt, seq], r);
          for (const d of dstKeys(r)) netlogDst.putSync([r.supportId, d, r.receivedAt, seq], 1);
        }
        netlogState.putSync('seq', seq);
        for (const f of failures) {
          const key: [string, string] = [f.supportId, f.reason];
          netlogFailures.putSync(key, (netlogFailures.get(key) ?? 0) + f.count);
        }
      });
      // onRecords waits for the disk: without overlappingSync (storage/tables.ts) this resolves at once.
      await log.flushed;
      return first;
    },
    scan(supportId, q = {}) {
      const source = q.dst !== undefined ? byDst(supportId, q.dst, q) : byTime(supportId, q);
      if (q.format === undefined) return source;
      const format = q.format;
      return (function* () {
        for (const s of source) if (s.record.format === format) yield s;
      })();
    },
    *range(supportId, from, toExclusive) {
      for (const { value } of netlogs.getRange({ start: [supportId, from], end: [supportId, toExclusive] })) yield value;
    },
    failures(supportId) {
      const out: NetlogFailureCount[] = [];
      const range = supportId === undefined ? {} : { start: [supportId], end: [supportId, '\uffff'] };
      for (const { key, value } of netlogFailures.getRange(range)) out.push({ supportId: key[0], reason: key[1], count: value });
      return out;
    },
    count(supportId) {
      if (supportId === undefined) return netlogs.getCount();
      return netlogs.getCount({ start: [supportId], end: [supportId, Infinity] });
    },
    oldestReceivedAt(supportId) {
      for (const key of netlogs.getKeys({ start: [supportId], end: [supportId, Infinity], limit: 1 })) return key[1];
      return undefined;
    },
    async dropBefore(supportId, at) {
      let dropped = 0;
      await log.transaction(() => {
        for (const { key, value } of netlogs.getRange({ start: [supportId], end: [supportId, at], snapshot: false })) {
          for (const d of dstKeys(value)) netlogDst.removeSync([key[0], d, key[1], key[2]]);
          netlogs.removeSync(key);
          dropped++;
        }
      });
      return dropped;
    },
  };
}
