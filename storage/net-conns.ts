/**
 * The endpoint connection index: every net.conn event a shard processes in
 * full, keyed by tenant, local address and port and time, so that a network
 * log's 5-tuple finds the process that made the connection (engine/intel's
 * network matcher). Written by the shards inside their flush transaction
 * (a replay writes the same keys again, no duplicates); swept by age.
 *
 * Key layouts (kiseki.lmdb):
 *   net-conns          [supportId, lip, lport, ts, tmid, seq] -> NetConnEntry
 *   net-conns-by-time  [ts, supportId, lip, lport, tmid, seq] -> 1 (for the age sweep)
 */
import type { NetConnEntry } from './records.js';
import type { Tables } from './tables.js';

export interface NetConnRepository {
  /** Inside `store.transaction()`: one connection. */
  recordSync(entry: NetConnEntry): void;
  /** A tenant's connections from local `ip`:`port` with endpoint time in [from, to], oldest first. */
  find(supportId: string, ip: string, port: number, from: number, to: number): NetConnEntry[];
  /** Removes connections with endpoint time before `before`; returns how many. */
  sweepBefore(before: number): Promise<number>;
  count(): number;
}

/** The connection index over the hot store's tables (called by openHotStore). */
export function createNetConnRepository(t: Tables): NetConnRepository {
  const { netConns, netConnsByTime, root } = t;
  return {
    recordSync(e) {
      netConns.putSync([e.supportId, e.lip, e.lport, e.ts, e.tmid, e.seq], e);
      netConnsByTime.putSync([e.ts, e.supportId, e.lip, e.lport, e.tmid, e.seq], 1);
    },
    find(supportId, ip, port, from, to) {
      return [...netConns.getRange({ start: [supportId, ip, port, from], end: [supportId, ip, port, to, '\uffff'] })].map((r) => r.value);
    },
    async sweepBefore(before) {
      const keys = [...netConnsByTime.getKeys({ start: [-Infinity], end: [before] })];
      if (keys.length === 0) return 0;
      await root.transaction(() => {
        for (const k of keys) {
          const [ts, supportId, lip, lport, tmid, seq] = k;
          netConns.removeSync([supportId, lip, lport, ts, tmid, seq]);
          netConnsByTime.removeSync(k);
        }
      });
      return keys.length;
    },
    count: () => netConns.getCount(),
  };
}
