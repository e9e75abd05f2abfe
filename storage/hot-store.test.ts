import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openHotStore } from './hot-store.js';
import { addSeqRange, seqGaps } from './log.js';

describe('seq ranges', () => {
  type Case = [ranges: [number, number][], first: number, last: number, expected: [number, number][]];
  const cases: Case[] = [
    [[], 1, 5, [[1, 5]]],
    [[[1, 5]], 6, 9, [[1, 9]]],
    [[[1, 5]], 8, 9, [[1, 5], [8, 9]]],
    [[[8, 9]], 1, 5, [[1, 5], [8, 9]]],
    [[[1, 5], [8, 9]], 6, 7, [[1, 9]]],
    [[[1, 5], [8, 9], [20, 30]], 3, 21, [[1, 30]]],
    [[[1, 5]], 2, 3, [[1, 5]]],
    [[[1, 5], [10, 12]], 7, 7, [[1, 5], [7, 7], [10, 12]]],
  ];
  it.each(cases)('adds to %j the range %i..%i', (ranges, first, last, expected) => {
    expect(addSeqRange(ranges, first, last)).toEqual(expected);
  });

  it('lists gaps, counting a trail that does not start at 1', () => {
    expect(seqGaps([[1, 5], [8, 9]])).toEqual([[6, 7]]);
    expect(seqGaps([[3, 5]])).toEqual([[1, 2]]);
    expect(seqGaps([])).toEqual([]);
  });
});

describe('hot store', () => {
  it('commits batches with their index and reads a device back in receive order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-store-'));
    try {
      const store = openHotStore({ dataDir: dir });
      const rec = (id: string, first: number) => ({ tmid: 'D1', id, sentAt: 1, recvAt: 2, first, last: first, n: 1, z: new Uint8Array([1, 2, 3]) });
      await store.log.commitBatches([
        { lsn: 1, record: rec('a'.repeat(32), 1) },
        { lsn: 2, record: rec('b'.repeat(32), 2) },
      ]);
      // The ack stages' hook runs inside the write transaction: the batch is not readable yet.
      let seenWhileWriting: unknown = 'not called';
      await store.log.commitBatches([{ lsn: 10, record: rec('c'.repeat(32), 3) }], () => (seenWhileWriting = store.log.batch(10)));
      expect(seenWhileWriting).toBeUndefined();
      expect(store.log.lastLsn()).toBe(10);
      expect(store.log.deviceLsns('D1', 0, Number.MAX_SAFE_INTEGER)).toEqual([1, 2, 10]);
      expect(store.log.batchIdOwner('b'.repeat(32))).toEqual([2, 'D1']);
      expect(Buffer.from(store.log.batch(10)!.z)).toEqual(Buffer.from([1, 2, 3]));
      await store.close();
      // Reopened, everything is still there.
      const again = openHotStore({ dataDir: dir });
      expect(again.log.lastLsn()).toBe(10);
      // The trail is merged inside each commit from the stored one: three batches over two commits.
      expect(again.log.trail('D1')).toEqual({ ranges: [[1, 3]], batches: 3, events: 3, lastLsn: 10, lastBatchAt: 2 });
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates tenants once, and enrolls and authenticates devices by token hash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-store-'));
    try {
      const store = openHotStore({ dataDir: dir });
      const { tenant, enrollKey } = await store.tenants.create({ supportId: 'S-1', name: 'Acme', now: 1 });
      await expect(store.tenants.create({ supportId: 'S-1', name: 'Other', now: 2 })).rejects.toMatchObject({ code: 'ERR_TENANT_EXISTS' });
      await expect(store.tenants.create({ supportId: '../x', name: 'Bad', now: 2 })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
      expect(store.tenants.forEnrollKey(enrollKey)?.supportId).toBe('S-1');
      expect(store.tenants.forEnrollKey('kek_other')).toBeUndefined();
      expect(JSON.stringify(store.tenants.get('S-1'))).not.toContain(enrollKey);
      const { device, token } = await store.devices.enroll(tenant, { computer: 'PC', agentVersion: '1', os: 'Win', ips: [], macs: [] }, 5);
      expect(store.devices.authenticate(device.tmid, token)?.tmid).toBe(device.tmid);
      expect(store.devices.authenticate(device.tmid, token + 'x')).toBeUndefined();
      expect(store.devices.authenticate('nope', token)).toBeUndefined();
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
