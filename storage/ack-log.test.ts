import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { encode } from '@msgpack/msgpack';
import { ackLogDir, openAckLog, readAckLog } from './ack-log.js';
import { openHotStore } from './hot-store.js';
import type { BatchToCommit } from './records.js';
import { batchChecksum } from './verify.js';

const T0 = Date.UTC(2026, 11, 2, 5, 0, 0);

function batch(lsn: number, tmid: string, id: string, first: number, n = 1): BatchToCommit {
  const events = Array.from({ length: n }, (_, i) => ({ ts: T0 + first + i, k: 'proc.start', seq: first + i }));
  const z = compress(Buffer.from(encode(events)));
  return { lsn, record: { tmid, id: id.padEnd(32, '0'), sentAt: T0, recvAt: T0 + lsn, first, last: first + n - 1, n, z, c: batchChecksum(z) } };
}

const segments = (dir: string) => (existsSync(ackLogDir(dir)) ? readdirSync(ackLogDir(dir)).sort() : []);

describe('ack log (storage/ack-log.ts)', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'kiseki-acklog-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('reads back every appended group in order, starts new segments past their size, and removes a segment once all of it is released', async () => {
    const dir = tempDir();
    const log = openAckLog(dir, 600);
    const groups = [[batch(1, 'A', 'a', 1), batch(2, 'B', 'b', 1)], [batch(3, 'A', 'c', 2)], [batch(4, 'A', 'd', 3)], [batch(5, 'B', 'e', 2)]];
    for (const g of groups) await log.append(g);
    expect(segments(dir).length).toBeGreaterThan(1);
    const back = readAckLog(dir);
    expect(back.tornFrames).toBe(0);
    expect(back.records.map((r) => r.lsn)).toEqual([1, 2, 3, 4, 5]);
    expect(back.records[2]!.record).toMatchObject({ tmid: 'A', first: 2, last: 2, n: 1 });
    expect(Buffer.from(back.records[2]!.record.z).equals(Buffer.from(groups[1]![0]!.record.z))).toBe(true);

    const before = segments(dir).length;
    log.release(2);
    log.release(5);
    // The open segment stays until the log closes.
    expect(segments(dir).length).toBeLessThan(before);
    expect(segments(dir).length).toBeGreaterThanOrEqual(1);
    await log.close();
    expect(segments(dir)).toEqual([]);
  });

  it('keeps the segments a close leaves unreleased, and reads up to a torn frame at their end', async () => {
    const dir = tempDir();
    const log = openAckLog(dir);
    await log.append([batch(1, 'A', 'a', 1)]);
    await log.append([batch(2, 'A', 'b', 2)]);
    log.release(1);
    await log.close();
    const [seg] = segments(dir);
    expect(seg).toBeDefined();
    const path = join(ackLogDir(dir), seg!);
    // An append that never completed: half a frame.
    const size = statSync(path).size;
    appendFileSync(path, Buffer.alloc(40, 7));
    expect(readAckLog(dir)).toMatchObject({ tornFrames: 1 });
    expect(readAckLog(dir).records.map((r) => r.lsn)).toEqual([1, 2]);
    // Cut inside the last frame: it is torn, the first one stands.
    truncateSync(path, size - 3);
    expect(readAckLog(dir).records.map((r) => r.lsn)).toEqual([1]);
    expect(readAckLog(dir).tornFrames).toBe(1);
  });

  it('refuses an append while the disk is nearly full, as LMDB writes are (storage/disk-guard.ts)', async () => {
    const dir = tempDir();
    let free = 1e12;
    const store = openHotStore({ dataDir: dir, freeBytes: () => free });
    await store.log.appendAcked([batch(1, 'A', 'a', 1)]);
    free = 1024 * 1024;
    // The guard trusts one answer for a millisecond.
    await new Promise((resolve) => setTimeout(resolve, 5));
    await expect(store.log.appendAcked([batch(2, 'A', 'b', 2)])).rejects.toMatchObject({ code: 'ERR_STORAGE_UNAVAILABLE' });
    expect(readAckLog(dir).records.map((r) => r.lsn)).toEqual([1]);
    await store.close();
  });
});
