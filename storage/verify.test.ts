/**
 * The layer-1 check (`checkLmdbFile`) runs on every open, also while a server
 * is writing to the same directory (`kiseki import`, `kiseki inspect`). It
 * must then never call a growing file truncated: CI once failed on
 * "90112 bytes long but its pages reach byte 139264" when the length was taken
 * before a commit and the meta page after it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openHotStore } from './index.js';
import { checkLmdbFile } from './verify.js';

const STORAGE = new URL('../dist/storage/index.js', import.meta.url).href;

describe('checkLmdbFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-verify-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('never reports a file that another process is growing as truncated', async () => {
    // Create the environment first, so the checks below always find it.
    const store = openHotStore({ dataDir: dir });
    await store.log.commitBatches([]);
    await store.close();

    // A writer process: 600 commits of one 12 KB batch each, every one growing log.lmdb.
    const script = `
      import { randomBytes } from 'node:crypto';
      const { openHotStore, batchChecksum } = await import(${JSON.stringify(STORAGE)});
      const store = openHotStore({ dataDir: ${JSON.stringify(dir)} });
      for (let lsn = 1; lsn <= 600; lsn++) {
        const z = randomBytes(12000);
        await store.log.commitBatches([{ lsn, record: { tmid: 'T-1', id: randomBytes(16).toString('hex'), sentAt: 1, recvAt: 1, first: lsn, last: lsn, n: 1, z, c: batchChecksum(z) } }]);
      }
      await store.close();
    `;
    const writer = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    writer.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    let running = true;
    void exited.then(() => (running = false));

    const path = join(dir, 'log.lmdb');
    let checks = 0;
    const failures: string[] = [];
    while (running) {
      try {
        checkLmdbFile(path, 'log.lmdb');
      } catch (err) {
        failures.push(String((err as Error).message));
      }
      checks++;
      // Yield so the exit event can arrive; the checks themselves are synchronous.
      if (checks % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(await exited, stderr).toBe(0);
    expect(checks).toBeGreaterThan(0);
    expect(failures).toEqual([]);
    const final = checkLmdbFile(path, 'log.lmdb');
    expect(final.bytes).toBeGreaterThanOrEqual((final.lastPage + 1) * final.pageSize);
  }, 60_000);
});
