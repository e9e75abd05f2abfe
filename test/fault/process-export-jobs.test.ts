/**
 * Issue 11, item 10: an export job killed mid-run stayed `running` forever,
 * with its `.tmp` left behind. The state a kill -9 leaves (job.json
 * `running`, owned by a process that is gone, half-written `.tmp` files) is
 * laid out on disk; `kiseki start` must mark the job failed with a reason and
 * remove the temporaries, while a job whose builder is still alive (a
 * `kiseki export` command in another process) is left alone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jobDir, jobFilesDir, readJob, writeJob, type ExportJob } from '../../export/index.js';
import { startServer, useServerFixture } from '../support/cli.js';

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

function runningJob(id: string, pid: number): ExportJob {
  return { id, kind: 'spot30', supportId: 'EJ0001', params: { from: '2026-01-01', to: '2026-01-02' }, status: 'running', createdAt: 1, expiresAt: Date.now() + 86_400_000, files: [], owner: { pid, host: hostname() } };
}

describe('fault: export job killed mid-run (item 10)', () => {
  const fx = useServerFixture('kiseki-fault-jobs-', { beforeEach, afterEach });

  it('item 10: on start, a running job whose process is gone is marked failed and its .tmp files removed; a live one is left alone', async () => {
    const killed = runningJob('spot30-ej0001-20260103t000000-aaaaaa', deadPid());
    writeJob(fx.dir, killed);
    const files = jobFilesDir(fx.dir, killed);
    mkdirSync(files, { recursive: true });
    const tmp = join(files, '2026-01-01_SP.zip.0badc0de.tmp');
    writeFileSync(tmp, 'half an archive');
    writeFileSync(`${tmp}.cd`, 'half a central directory');
    const live = runningJob('spot30-ej0001-20260103t000000-bbbbbb', process.pid);
    writeJob(fx.dir, live);
    const liveTmp = join(jobFilesDir(fx.dir, live), '2026-01-01_SP.zip.0badc0df.tmp');
    mkdirSync(jobFilesDir(fx.dir, live), { recursive: true });
    writeFileSync(liveTmp, 'being written');

    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--shards', '1']);
    const after = readJob(fx.dir, killed.id);
    expect(after).toMatchObject({ status: 'failed', error: expect.stringContaining('request the export again') });
    expect(after?.finishedAt).toBeGreaterThan(0);
    expect(existsSync(tmp)).toBe(false);
    expect(existsSync(`${tmp}.cd`)).toBe(false);
    expect(existsSync(jobDir(fx.dir, killed.id))).toBe(true);
    expect(readJob(fx.dir, live.id)?.status).toBe('running');
    expect(existsSync(liveTmp)).toBe(true);
  });
});
