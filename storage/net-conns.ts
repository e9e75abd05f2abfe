/**
 * The endpoint connection index: every net.conn event a shard processes in
 * full, keyed by tenant, local address and time, so that a network log's
 * 5-tuple finds the process that made the connection (engine/intel's network
 * matcher). Written by the shards inside their flush transaction (a replay
 * writes the same keys again, no duplicates); swept by age.
 *
 * Key layouts (kiseki.lmdb):
 *   net-conns-by-ip-time  [supportId, lip, ts, lport, tmid, seq] -> NetConnValue (the entry's other
 *                                                                  fields as an array; earlier versions
 *                                                                  wrote the whole NetConnEntry, still read)
 *   net-conns-by-time     [ts, supportId, lip, lport, tmid, seq] -> 1 (for the age sweep)
 *   net-conns             [supportId, lip, lport, ts, tmid, seq] -> NetConnEntry (written by earlier
 *                                                                  versions; read and swept only)
 * Time before port: a device's new connections land on the last page of its own range, so a
 * flush dirties about one leaf page per device instead of one per connection (ephemeral ports
 * are random). Port-first, the index was the largest share of the shards' page writes under
 * load (docs/BENCHMARKS.md, "Disk writes"). A look-up reads the address's connections in the
 * time window and keeps those of the port.
 */
import type { NetConnEntry, NetConnValue } from './records.js';
import type { Tables } from './tables.js';

type NetConnKey = [string, string, number, number, string, number];

function valueOf(e: NetConnEntry): NetConnValue {
  return [e.lsn, e.pg, e.pid, e.image, e.user, e.proto, e.dir, e.rip, e.rport, e.rhost];
}

/** The entry of a key and its stored value (an array, or the whole entry as earlier versions stored it). */
function entryOf(key: NetConnKey, value: NetConnValue | NetConnEntry): NetConnEntry {
  if (!Array.isArray(value)) return value;
  const [supportId, lip, ts, lport, tmid, seq] = key;
  const [lsn, pg, pid, image, user, proto, dir, rip, rport, rhost] = value;
  const e: NetConnEntry = { supportId, tmid, ts, seq, lsn, pg, lip, lport, rip, rport };
  if (pid !== undefined && pid !== null) e.pid = pid;
  if (image !== undefined && image !== null) e.image = image;
  if (user !== undefined && user !== null) e.user = user;
  if (proto !== undefined && proto !== null) e.proto = proto;
  if (dir !== undefined && dir !== null) e.dir = dir;
  if (rhost !== undefined && rhost !== null) e.rhost = rhost;
  return e;
}

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
  const { netConns, netConnsByPort, netConnsByTime, root } = t;
  return {
    recordSync(e) {
      netConns.putSync([e.supportId, e.lip, e.ts, e.lport, e.tmid, e.seq], valueOf(e));
      netConnsByTime.putSync([e.ts, e.supportId, e.lip, e.lport, e.tmid, e.seq], 1);
    },
    find(supportId, ip, port, from, to) {
      const out: NetConnEntry[] = [];
      // Keys first: the port is in the key, so only the port's connections are read and decoded.
      for (const key of netConns.getKeys({ start: [supportId, ip, from], end: [supportId, ip, to, '\uffff'] })) {
        if (key[3] !== port) continue;
        const value = netConns.get(key);
        if (value !== undefined) out.push(entryOf(key, value));
      }
      for (const { value } of netConnsByPort.getRange({ start: [supportId, ip, port, from], end: [supportId, ip, port, to, '\uffff'] })) out.push(value);
      return out.length > 1 ? out.sort((a, b) => a.ts - b.ts || (a.tmid < b.tmid ? -1 : a.tmid > b.tmid ? 1 : a.seq - b.seq)) : out;
    },
    async sweepBefore(before) {
      const keys = [...netConnsByTime.getKeys({ start: [-Infinity], end: [before] })];
      if (keys.length === 0) return 0;
      await root.transaction(() => {
        for (const k of keys) {
          const [ts, supportId, lip, lport, tmid, seq] = k;
          netConns.removeSync([supportId, lip, ts, lport, tmid, seq]);
          netConnsByPort.removeSync([supportId, lip, lport, ts, tmid, seq]);
          netConnsByTime.removeSync(k);
        }
      });
      return keys.length;
    },
    count: () => netConns.getCount() + netConnsByPort.getCount(),
  };
}
