import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isKisekiError } from '../core/errors.js';
import { createDiskGuard, WRITE_RESERVE_BYTES } from './disk-guard.js';
import { openHotStore } from './hot-store.js';
import { openTables, type Tables } from './tables.js';

const MiB = 1024 * 1024;

function storageUnavailable(err: unknown): boolean {
  return isKisekiError(err) && err.code === 'ERR_STORAGE_UNAVAILABLE' && (err.details as { errno?: string }).errno === 'ENOSPC';
}

describe('disk guard', () => {
  const dirs: string[] = [];
  const opened: Tables[] = [];
  afterEach(async () => {
    for (const t of opened.splice(0)) {
      await t.root.close();
      await t.log.close();
    }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const open = (freeBytes: () => number): Tables => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-disk-guard-'));
    dirs.push(dir);
    const t = openTables({ dataDir: dir, mapSizeBytes: 16 * MiB, freeBytes });
    opened.push(t);
    return t;
  };

  it('refuses every kind of write while less than the reserve is free, writes nothing, and accepts them again once space returns', async () => {
    let free = WRITE_RESERVE_BYTES - 1;
    const t = open(() => free);
    await expect(t.tenants.put('S1', { supportId: 'S1' } as never)).rejects.toSatisfy(storageUnavailable);
    await expect(t.log.transaction(() => t.trails.putSync('D1', { ranges: [], batches: 0, events: 0, lastLsn: 0, lastBatchAt: 0 }))).rejects.toSatisfy(storageUnavailable);
    expect(() => t.tenants.putSync('S1', { supportId: 'S1' } as never)).toThrow(expect.objectContaining({ code: 'ERR_STORAGE_UNAVAILABLE' }));
    expect(() => t.root.transactionSync(() => t.tenants.putSync('S1', { supportId: 'S1' } as never))).toThrow(expect.objectContaining({ code: 'ERR_STORAGE_UNAVAILABLE' }));
    await expect(t.enrollKeys.remove('k')).rejects.toSatisfy(storageUnavailable);
    // Writers that lmdb-js routes through the wrapped ones (transactionSync, ifVersion) are refused too.
    expect(() => t.enrollKeys.removeSync('k')).toThrow(expect.objectContaining({ code: 'ERR_STORAGE_UNAVAILABLE' }));
    expect(() => t.enrollKeys.clearSync()).toThrow(expect.objectContaining({ code: 'ERR_STORAGE_UNAVAILABLE' }));
    await expect(t.tenants.batch(() => t.tenants.putSync('S1', { supportId: 'S1' } as never))).rejects.toSatisfy(storageUnavailable);
    expect(t.tenants.get('S1')).toBeUndefined();
    expect(t.trails.get('D1')).toBeUndefined();

    free = WRITE_RESERVE_BYTES;
    await t.tenants.put('S1', { supportId: 'S1' } as never);
    await t.log.transaction(() => t.trails.putSync('D1', { ranges: [], batches: 1, events: 1, lastLsn: 1, lastBatchAt: 1 }));
    expect(t.tenants.get('S1')).toEqual({ supportId: 'S1' });
    expect(t.trails.get('D1')?.batches).toBe(1);
  });

  it('checks once per transaction, not for the writes inside it', async () => {
    let calls = 0;
    const t = open(() => {
      calls++;
      // Each answer takes over a millisecond, so a check after it would ask again: only skipped checks are not counted.
      const until = Date.now() + 2;
      while (Date.now() < until);
      return 10 * WRITE_RESERVE_BYTES;
    });
    const before = calls;
    await t.root.transaction(() => {
      for (let i = 0; i < 50; i++) t.enrollKeys.putSync(`k${i}`, 'S1');
    });
    t.root.transactionSync(() => {
      for (let i = 0; i < 50; i++) t.enrollKeys.removeSync(`k${i}`);
    });
    expect(calls - before).toBeLessThanOrEqual(2);
    expect(t.enrollKeys.get('k0')).toBeUndefined();
  });

  it('answers from one statfs for a millisecond while there is room, and asks again at every write once short', () => {
    let clock = 0;
    let calls = 0;
    let free = 2 * WRITE_RESERVE_BYTES;
    const guard = createDiskGuard({ dataDir: '/nonexistent', now: () => clock, freeBytes: () => (calls++, free) });
    guard.check();
    guard.check();
    expect(calls).toBe(1);
    clock = 1;
    free = 0;
    expect(() => guard.check()).toThrow(expect.objectContaining({ code: 'ERR_STORAGE_UNAVAILABLE' }));
    expect(calls).toBe(2);
    // Short of space: the next write asks again at once, so recovery is seen without waiting.
    free = WRITE_RESERVE_BYTES;
    guard.check();
    expect(calls).toBe(3);
  });

  it('guards the hot store: a group commit is refused as storage unavailable and leaves nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-disk-guard-'));
    dirs.push(dir);
    let free = 0;
    const store = openHotStore({ dataDir: dir, mapSizeBytes: 16 * MiB, freeBytes: () => free });
    try {
      const record = { tmid: 'D1', id: 'a'.repeat(32), sentAt: 1, recvAt: 2, first: 1, last: 1, n: 1, z: new Uint8Array([1]) };
      await expect(store.log.commitBatches([{ lsn: 1, record }])).rejects.toSatisfy(storageUnavailable);
      expect(store.log.lastLsn()).toBe(0);
      free = WRITE_RESERVE_BYTES;
      await store.log.commitBatches([{ lsn: 1, record }]);
      expect(store.log.lastLsn()).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('leaves a read-only opening unguarded (it never writes)', async () => {
    const t = open(() => 10 * WRITE_RESERVE_BYTES);
    await t.tenants.put('S1', { supportId: 'S1' } as never);
    const reader = openTables({ dataDir: dirs[0]!, readOnly: true, freeBytes: () => 0 });
    try {
      expect(reader.tenants.get('S1')).toEqual({ supportId: 'S1' });
    } finally {
      await reader.root.close();
      await reader.log.close();
    }
  });
});
