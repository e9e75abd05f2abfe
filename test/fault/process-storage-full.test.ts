/**
 * Issue 11, item 2: a full disk must not stop the server. The data directory
 * sits on a small tmpfs (needs root to mount; skipped with a message
 * otherwise). The disk is filled while the server runs: the batch that cannot
 * be committed is refused with `storage_unavailable` (not acked), /healthz and
 * /metrics say so, the process stays up (storage/disk-guard.ts refuses writes
 * before LMDB meets ENOSPC, whose error path can abort the process; lmdb-js
 * leaves unhandled rejections behind on a failed commit: the last resort keeps
 * serving), and once space is freed the same batches are acked on resend, each
 * stored exactly once.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InspectReport } from '../../storage/index.js';
import { batchId, connectAgent, helloFacts, type ReceivedFrame } from '../support/agent-client.js';
import { eventually, runCli, startServer, type RunningServer } from '../support/cli.js';

function canMountTmpfs(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'kiseki-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const TMPFS = canMountTmpfs();
if (!TMPFS) console.warn('skipping the disk-full fault test: it needs root and `mount -t tmpfs` (run the suite as root, as CI does)');

/** A batch of `count` events carrying incompressible padding, so that it takes real disk space. */
function bigBatch(first: number, count: number, padBytes: number): { t: 'batch'; id: string; sentAt: number; first: number; last: number; events: Record<string, unknown>[] } {
  const events = [];
  for (let i = 0; i < count; i++) events.push({ ts: 1_700_000_000_000 + i, k: 'file.write', seq: first + i, pg: '{p}', path: 'C:\\x.bin', pad: randomBytes(padBytes).toString('base64') });
  return { t: 'batch', id: batchId(), sentAt: 1_700_000_000_000, first, last: first + count - 1, events };
}

describe.skipIf(!TMPFS)('fault: disk full (item 2)', () => {
  let mnt: string;
  let dataDir: string;
  let server: RunningServer | undefined;
  beforeAll(() => {
    mnt = mkdtempSync(join(tmpdir(), 'kiseki-fault-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m', 'tmpfs', mnt]);
    dataDir = join(mnt, 'data');
    mkdirSync(dataDir);
  });
  afterAll(async () => {
    if (server !== undefined && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    execFileSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it('item 2: a full disk refuses the batch with storage_unavailable, the server stays up, and recovers by itself when space returns', async () => {
    const tenant = await runCli(['tenant', 'create', '--name', 'Disk Corp', '--support-id', 'DK0001', '--json', '--data', dataDir]);
    expect(tenant.code, tenant.stderr).toBe(0);
    const enrollKey = (JSON.parse(tenant.stdout) as { enrollKey: string }).enrollKey;
    server = await startServer(['--data', dataDir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--shards', '1']);
    const url = `ws://127.0.0.1:${server.ingestPort}/agent/v1`;
    const http = `http://127.0.0.1:${server.httpPort}`;

    // Two devices enrolled while there is space; each stores one batch.
    const devices: { tmid: string; token: string }[] = [];
    for (const computer of ['PC-DISK-01', 'PC-DISK-02']) {
      const a = await connectAgent(url);
      a.send({ t: 'hello', enrollKey, ...helloFacts, computer });
      const w = await a.next();
      expect(w.t).toBe('welcome');
      devices.push({ tmid: w.tmid as string, token: w.token as string });
      a.send(bigBatch(1, 2, 1000));
      expect((await a.next()).t).toBe('ack');
      a.close();
    }

    /** One connection: hello, the batch, the answer (ack or error), close. */
    const sendOnce = async (device: { tmid: string; token: string }, batch: ReturnType<typeof bigBatch>): Promise<ReceivedFrame> => {
      const a = await connectAgent(url);
      try {
        a.send({ t: 'hello', tmid: device.tmid, token: device.token, ...helloFacts });
        const w = await a.next();
        if (w.t !== 'welcome') return w;
        a.send(batch);
        return await a.next();
      } finally {
        a.close();
      }
    };

    // Fill the file system to the last byte.
    const filler = join(mnt, 'filler');
    const fd = openSync(filler, 'w');
    const chunk = Buffer.alloc(256 * 1024, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    try {
      for (;;) writeSync(fd, chunk.subarray(0, 4096));
    } catch {
      // Every last page taken.
    }
    closeSync(fd);

    const pending = [bigBatch(3, 8, 200_000), bigBatch(3, 8, 200_000)];
    const refused = await sendOnce(devices[0]!, pending[0]!);
    expect(refused).toMatchObject({ t: 'error', code: 'storage_unavailable' });
    expect(server.child.exitCode).toBeNull();

    const health = await fetch(`${http}/healthz`);
    expect(health.status).toBe(503);
    const body = (await health.json()) as { problems: { code: string; details: Record<string, unknown> }[] };
    expect(body.problems.map((p) => p.code)).toContain('storage_unavailable');
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/kiseki_storage_writable 0\b/);
    expect(metrics).toMatch(/kiseki_storage_write_failures_total [1-9]/);
    expect(metrics).toMatch(/kiseki_process_unhandled_rejections_total \d/);

    // The other device is refused too (nothing can be stored), with the same code, and the server still serves.
    const other = await sendOnce(devices[1]!, pending[1]!);
    expect(other).toMatchObject({ t: 'error', code: 'storage_unavailable' });

    // Space returns: the resent batches are acked without a restart.
    rmSync(filler);
    for (const [i, device] of devices.entries()) {
      await eventually(async () => {
        const answer = await sendOnce(device, pending[i]!);
        return answer.t === 'ack' ? answer : undefined;
      });
    }
    // (The 128 MiB tmpfs is always below the low_disk_space threshold: only storage_unavailable must clear.)
    const problems = async (): Promise<string[]> => ((await (await fetch(`${http}/healthz`)).json()) as { problems?: { code: string }[] }).problems?.map((p) => p.code) ?? [];
    await eventually(async () => (!(await problems()).includes('storage_unavailable') ? true : undefined));
    expect(await (await fetch(`${http}/metrics`)).text()).toMatch(/kiseki_storage_writable 1\b/);
    expect(server.child.exitCode).toBeNull();

    // The census is read beside the running server (LMDB readers never block its writer).
    const census = await runCli(['inspect', '--json', '--data', dataDir]);
    const report = JSON.parse(census.stdout) as InspectReport;
    // Every acked batch (2 before, 2 after) stored exactly once; the refused attempts left nothing behind.
    expect(report).toMatchObject({ batches: 4, batchIds: 4, events: 2 * 2 + 2 * 8, seqGaps: 0 });
  });
});
