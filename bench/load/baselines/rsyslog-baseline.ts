/**
 * Baseline (2), a C log ingester: a private rsyslogd (imtcp → omfile, no
 * parsing, the configuration of perf-scripts/rsyslog-bench.conf) receiving
 * the same trail events as syslog lines over loopback TCP, timed from the
 * first byte sent to the last byte in its output file. Where rsyslogd is not
 * installed the result says so (`skipped`) and the run goes on.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { readProcSample } from '../proc-stats.js';
import { waitExit, type ProcessTracker } from '../kiseki-server.js';
import { KisekiError } from '../../../core/errors.js';

/** Result of the rsyslog baseline. */
export type RsyslogBaselineResult =
  | { skipped: string }
  | {
      linesPerSec: number;
      lines: number;
      avgLineBytes: number;
      MBps: number;
      seconds: number;
      /** rsyslogd CPU while receiving, cores. */
      rsyslogCores: number;
      /** Connections the lines were sent over. */
      conns: number;
    };

/** Finds rsyslogd on PATH or in /usr/sbin, /sbin; undefined when missing. */
export function findRsyslogd(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) if (d && existsSync(join(d, 'rsyslogd'))) return join(d, 'rsyslogd');
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new KisekiError('ERR_BENCH_FAILED', { reason: 'rsyslog baseline: no free port' }))));
    });
    s.on('error', reject);
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return false;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

/**
 * Runs rsyslogd on a free loopback port, sends `lines` lines over `conns`
 * connections with `senderJs`, and measures lines/s into the output file.
 * Bounded: at most ~`timeoutMs` after rsyslogd starts, then it is killed.
 */
export async function runRsyslogBaseline(options: { senderJs: string; tracker: ProcessTracker; lines?: number; conns?: number; seed?: number; timeoutMs?: number }): Promise<RsyslogBaselineResult> {
  const rsyslogd = findRsyslogd();
  if (!rsyslogd) return { skipped: 'rsyslog not installed (apt-get install rsyslog)' };
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-bench-rsyslog-'));
  const port = await freePort();
  const out = join(dir, 'out.log');
  const conf = join(dir, 'rsyslog.conf');
  writeFileSync(
    conf,
    [
      '# Private rsyslogd for the kiseki benchmark: imtcp -> omfile, loopback only.',
      `global(workDirectory="${dir}" maxMessageSize="8k")`,
      'module(load="imtcp" threads="2")',
      `input(type="imtcp" port="${port}" address="127.0.0.1")`,
      'main_queue(queue.type="FixedArray" queue.size="200000" queue.dequeueBatchSize="4096" queue.workerThreads="1")',
      'template(name="raw" type="string" string="%rawmsg%\\n")',
      `action(type="omfile" file="${out}" template="raw" asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off" flushInterval="1")`,
      '',
    ].join('\n'),
  );
  const timeoutMs = options.timeoutMs ?? 90_000;
  const daemon = options.tracker.track(spawn(rsyslogd, ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let daemonLog = '';
  daemon.stderr?.on('data', (d: Buffer) => (daemonLog = (daemonLog + d.toString()).slice(-2000)));
  try {
    if (!(await waitFor(() => canConnect(port), 10_000, 100))) return { skipped: `rsyslogd did not listen: ${daemonLog.trim().slice(0, 300)}` };
    const conns = options.conns ?? 2;
    const sender = options.tracker.track(
      spawn(process.execPath, [options.senderJs, JSON.stringify({ port, lines: options.lines ?? 1_000_000, conns, seed: options.seed ?? 1 })], { stdio: ['ignore', 'pipe', 'inherit'] }),
    );
    let text = '';
    const started = await new Promise<{ totalLines: number; totalBytes: number; avgLineBytes: number } | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 60_000);
      sender.stdout?.on('data', (d: Buffer) => {
        text += d.toString();
        const line = text.split('\n').find((l) => l.includes('"start"'));
        if (line) {
          clearTimeout(t);
          resolve(JSON.parse(line) as { totalLines: number; totalBytes: number; avgLineBytes: number });
        }
      });
      sender.once('exit', () => resolve(undefined));
    });
    if (!started) return { skipped: 'the syslog sender failed to start' };
    const t0 = performance.now();
    const cpu0 = readProcSample(daemon.pid ?? 0);
    const size = (): number => {
      try {
        return statSync(out).size;
      } catch {
        return 0;
      }
    };
    const complete = await waitFor(() => size() >= started.totalBytes, timeoutMs, 20);
    const t1 = performance.now();
    const cpu1 = readProcSample(daemon.pid ?? 0);
    await waitExit(sender, 5000);
    if (!complete) return { skipped: `rsyslogd wrote ${size()} of ${started.totalBytes} bytes within ${timeoutMs} ms` };
    const seconds = (t1 - t0) / 1000;
    return {
      linesPerSec: Math.round(started.totalLines / seconds),
      lines: started.totalLines,
      avgLineBytes: started.avgLineBytes,
      MBps: Math.round((started.totalBytes / seconds / 1e6) * 10) / 10,
      seconds: Math.round(seconds * 100) / 100,
      rsyslogCores: cpu0 && cpu1 ? Math.round(((cpu1.cpuSec - cpu0.cpuSec) / seconds) * 100) / 100 : 0,
      conns,
    };
  } finally {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGTERM');
    await waitExit(daemon, 5000);
    rmSync(dir, { recursive: true, force: true });
  }
}
