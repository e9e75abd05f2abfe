/**
 * Issue 11, item 9: damaged storage was silent or a bare crash (a truncated
 * log.lmdb: SIGBUS on the first write; random bytes inside it: unnoticed
 * until an export failed; zeroed meta pages of kiseki.lmdb: a segfault with
 * no message). Now `kiseki start` checks the data directory first and exits
 * 74 with ERR_STORAGE_DAMAGED, naming the file, what is wrong and what to do,
 * and never dies of a signal.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { batchChecksum, openHotStore, type BatchToCommit } from '../../storage/index.js';
import { runCli, startServer } from '../support/cli.js';

const START = ['--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--shards', '1'];

describe('fault: damaged LMDB files (item 9)', () => {
  let base: string;
  let pristine: string;
  /** The z bytes of one stored batch, to find it in the file. */
  let marker: Buffer;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'kiseki-fault-damage-'));
    pristine = join(base, 'pristine');
    const store = openHotStore({ dataDir: pristine, mapSizeBytes: 64 * 1024 * 1024 });
    await store.tenants.create({ supportId: 'DM0001', name: 'Damage Corp', now: Date.now() });
    const batches: BatchToCommit[] = [];
    for (let lsn = 1; lsn <= 40; lsn++) {
      const z = compress(pack([{ ts: 1_700_000_000_000, k: 'file.write', seq: lsn, pg: '{p}', path: 'C:\\x.bin', pad: randomBytes(6000) }]));
      if (lsn === 20) marker = z;
      batches.push({ lsn, record: { tmid: 'T-1', id: randomBytes(16).toString('hex'), sentAt: 1, recvAt: 1, first: lsn, last: lsn, n: 1, z, c: batchChecksum(z) } });
    }
    await store.log.commitBatches(batches);
    await store.close();
  });
  afterAll(() => {
    rmSync(base, { recursive: true, force: true });
  });

  function copy(name: string): string {
    const dir = join(base, name);
    cpSync(pristine, dir, { recursive: true });
    return dir;
  }

  function overwrite(path: string, offset: number, bytes: Buffer): void {
    const fd = openSync(path, 'r+');
    writeSync(fd, bytes, 0, bytes.length, offset);
    closeSync(fd);
  }

  it('starts on the undamaged copy (the check passes)', async () => {
    const dir = copy('ok');
    const r = await runCli(['inspect', '--json', '--data', dir]);
    expect(JSON.parse(r.stdout)).toMatchObject({ batches: 40 });
    const server = await startServer(['--data', dir, ...START]);
    server.child.kill('SIGKILL');
    await server.exited;
  });

  it.each([
    [
      'a truncated log.lmdb',
      (dir: string) => truncateSync(join(dir, 'log.lmdb'), Math.floor(statSync(join(dir, 'log.lmdb')).size / 2)),
      /log\.lmdb is damaged: .*truncated/,
    ],
    ['zeroed meta pages of kiseki.lmdb', (dir: string) => overwrite(join(dir, 'kiseki.lmdb'), 0, Buffer.alloc(8192)), /kiseki\.lmdb is damaged: meta page 0 is not a valid LMDB meta page/],
    [
      'random bytes inside a stored batch of log.lmdb',
      (dir: string) => {
        const file = join(dir, 'log.lmdb');
        const at = readFileSync(file).indexOf(marker.subarray(0, 64));
        expect(at).toBeGreaterThan(0);
        overwrite(file, at + 1000, randomBytes(64));
      },
      /log\.lmdb is damaged: the batch record at lsn 20 fails its checksum/,
    ],
  ])('item 9: %s stops kiseki start with exit 74 and a message saying what to do, never a signal', async (name, damage, message) => {
    const dir = copy(name.replace(/\W+/g, '-'));
    damage(dir);
    const r = await runCli(['start', '--data', dir, ...START]);
    expect(r.code, r.stderr).toBe(74);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('restore the file from the latest backup');
    expect(r.stdout).not.toContain('listening');
  });

  it('item 9: other commands refuse a damaged file the same way (kiseki inspect on zeroed meta pages: exit 74, not a segfault)', async () => {
    const dir = copy('inspect-zeroed');
    overwrite(join(dir, 'kiseki.lmdb'), 0, Buffer.alloc(8192));
    const r = await runCli(['inspect', '--json', '--data', dir]);
    expect(r.code, r.stderr).toBe(74);
    expect(r.stderr).toContain('kiseki.lmdb is damaged: meta page 0');
  });
});
