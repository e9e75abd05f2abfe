import { describe, expect, it } from 'vitest';
import type { NetConnEntry } from '../core/contracts.js';
import type { HotStore } from './hot-store.js';
import { openTables } from './tables.js';
import { useTempStore } from '../test/support/temp-store.js';

const T = 1_710_000_000_000;

function conn(ts: number, seq: number, lport: number, over: Partial<NetConnEntry> = {}): NetConnEntry {
  return { supportId: 'T1', tmid: 'TM1', ts, seq, lsn: 1, pg: '{p}', lip: '10.0.0.5', lport, rip: '93.184.216.34', rport: 443, ...over };
}

describe('net-conns', () => {
  let store: HotStore;
  const temp = useTempStore('kiseki-netconns-', (s) => {
    store = s;
  });

  it('finds a port’s connections of an address within the window, oldest first, and sweeps them by age', async () => {
    await store.transaction(() => {
      // Another address, another tenant, other ports of the same address, and the port outside the window.
      for (const c of [
        conn(T + 30, 1, 50_001),
        conn(T + 10, 2, 50_002),
        conn(T + 20, 3, 50_001, { tmid: 'TM0' }),
        conn(T + 20, 4, 50_001, { lip: '10.0.0.6' }),
        conn(T + 20, 5, 50_001, { supportId: 'T2' }),
        conn(T + 5_000, 6, 50_001),
      ]) {
        store.netConns.recordSync(c);
      }
    });
    expect(store.netConns.find('T1', '10.0.0.5', 50_001, T, T + 1_000).map((c) => [c.tmid, c.seq])).toEqual([
      ['TM0', 3],
      ['TM1', 1],
    ]);
    expect(store.netConns.find('T1', '10.0.0.5', 50_002, T, T + 10).map((c) => c.seq)).toEqual([2]);
    expect(store.netConns.find('T1', '10.0.0.5', 50_002, T + 11, T + 1_000)).toEqual([]);
    expect(store.netConns.count()).toBe(6);
    expect(await store.netConns.sweepBefore(T + 25)).toBe(4);
    expect(store.netConns.find('T1', '10.0.0.5', 50_001, T, T + 10_000).map((c) => c.seq)).toEqual([1, 6]);
    expect(store.netConns.count()).toBe(2);
  });

  it('stores a connection without repeating its key, and gives it back whole: every optional field kept, none made up', async () => {
    const full = conn(T + 1, 1, 50_001, { pid: 4242, image: 'C:\\Windows\\System32\\svchost.exe', user: 'CORP\\alice', proto: 'tcp', dir: 'out', rhost: 'example.com' });
    const bare = conn(T + 2, 2, 50_001);
    await store.transaction(() => {
      store.netConns.recordSync(full);
      store.netConns.recordSync(bare);
    });
    expect(store.netConns.find('T1', '10.0.0.5', 50_001, T, T + 10)).toEqual([full, bare]);
    await temp.reopen(async (dir) => {
      const tables = openTables({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
      expect(tables.netConns.get([full.supportId, full.lip, full.ts, full.lport, full.tmid, full.seq])).toEqual([1, '{p}', 4242, full.image, full.user, 'tcp', 'out', full.rip, 443, 'example.com']);
      await tables.root.close();
      await tables.log.close();
    });
  });

  it('still reads whole entries an earlier version wrote to the address-and-time index', async () => {
    const old = conn(T + 3, 9, 50_001, { image: 'C:\\old.exe' });
    await temp.reopen(async (dir) => {
      const tables = openTables({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
      await tables.netConns.put([old.supportId, old.lip, old.ts, old.lport, old.tmid, old.seq], old);
      await tables.root.close();
      await tables.log.close();
    });
    await store.transaction(() => store.netConns.recordSync(conn(T + 4, 10, 50_001)));
    expect(store.netConns.find('T1', '10.0.0.5', 50_001, T, T + 10)).toEqual([old, conn(T + 4, 10, 50_001)]);
  });

  it('still finds and sweeps what an earlier version indexed by port', async () => {
    const old = conn(T + 1, 7, 50_001);
    await temp.reopen(async (dir) => {
      const tables = openTables({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
      await tables.netConnsByPort.put([old.supportId, old.lip, old.lport, old.ts, old.tmid, old.seq], old);
      await tables.netConnsByTime.put([old.ts, old.supportId, old.lip, old.lport, old.tmid, old.seq], 1);
      await tables.root.close();
      await tables.log.close();
    });
    await store.transaction(() => store.netConns.recordSync(conn(T + 2, 8, 50_001)));
    expect(store.netConns.find('T1', '10.0.0.5', 50_001, T, T + 10).map((c) => c.seq)).toEqual([7, 8]);
    expect(await store.netConns.sweepBefore(T + 10)).toBe(2);
    expect(store.netConns.count()).toBe(0);
  });
});
