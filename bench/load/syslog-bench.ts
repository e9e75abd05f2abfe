/**
 * `kiseki bench --syslog`: network-log ingest throughput (issue 17). The same
 * syslog lines (ingest/syslog/fixtures, bad ones included: ~30 % of the mix
 * fail to parse and are counted) are sent over loopback TCP, three runs each,
 *
 *   - to kiseki's syslog receiver (parse + route + store in LMDB batches),
 *     its own process (syslog-bench-server.ts);
 *   - to a private rsyslogd, imtcp → omfile, no parsing (the rsyslog baseline),
 *
 * and reports lines/s and lines/s per core (lines ÷ CPU seconds of the
 * receiving process, all threads), median of 3 with min and max. Intel
 * matching (net-b) is not in the figure: it plugs into onRecords.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KisekiError } from '../../core/errors.js';
import { runRsyslogBaseline } from './baselines/rsyslog-baseline.js';
import type { BenchPaths } from './bench-paths.js';
import { createProcessTracker, waitExit } from './kiseki-server.js';
import { machineNote } from './runner.js';
import { spread } from '../spread.js';

/** One kiseki run. */
interface KisekiRun {
  lines: number;
  stored: number;
  failed: number;
  /** Network-intel alerts the matcher created (lines whose destination is listed). */
  intelAlerts: number;
  wallSec: number;
  cpuSec: number;
  linesPerSec: number;
  linesPerCoreSec: number;
}


function readJsonLine<T>(child: ReturnType<typeof spawn>, event: string, timeoutMs: number): Promise<T> {
  return new Promise((res, rej) => {
    let text = '';
    const t = setTimeout(() => rej(new KisekiError('ERR_BENCH_FAILED', { reason: `no ${event} line within ${timeoutMs} ms` })), timeoutMs);
    const onData = (d: Buffer): void => {
      text += d.toString();
      for (const line of text.split('\n')) {
        if (!line.includes(`"${event}"`)) continue;
        clearTimeout(t);
        child.stdout!.off('data', onData);
        res(JSON.parse(line) as T);
        return;
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => rej(new KisekiError('ERR_BENCH_FAILED', { reason: `process exited before its ${event} line` })));
  });
}

async function runKiseki(paths: BenchPaths, lines: number, conns: number, seed: number): Promise<KisekiRun> {
  const tracker = createProcessTracker();
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-bench-syslog-'));
  const senderJs = resolve(paths.root, 'dist/bench/load/baselines/netlog-sender.js');
  try {
    // The sender states the exact total first (whole pools per connection); the server waits for it.
    const probe = tracker.track(spawn(process.execPath, [senderJs, JSON.stringify({ port: 1, lines, conns, seed })], { stdio: ['ignore', 'pipe', 'ignore'] }));
    const { totalLines } = await readJsonLine<{ totalLines: number }>(probe, 'start', 30_000);
    probe.kill('SIGKILL');
    const server = tracker.track(spawn(process.execPath, [resolve(paths.root, 'dist/bench/load/syslog-bench-server.js'), JSON.stringify({ expected: totalLines, dir })], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const { port } = await readJsonLine<{ port: number }>(server, 'listening', 30_000);
    const done = readJsonLine<{ stored: number; failed: number; intelAlerts: number; cpuSec: number; wallSec: number }>(server, 'done', 300_000);
    const sender = tracker.track(spawn(process.execPath, [senderJs, JSON.stringify({ port, lines, conns, seed })], { stdio: ['ignore', 'ignore', 'inherit'] }));
    const r = await done;
    await waitExit(sender, 10_000);
    await waitExit(server, 30_000);
    return {
      lines: totalLines,
      stored: r.stored,
      failed: r.failed,
      intelAlerts: r.intelAlerts,
      wallSec: Math.round(r.wallSec * 100) / 100,
      cpuSec: Math.round(r.cpuSec * 100) / 100,
      linesPerSec: Math.round(totalLines / r.wallSec),
      linesPerCoreSec: Math.round(totalLines / r.cpuSec),
    };
  } finally {
    await tracker.stopAll();
  }
}

/**
 * Runs the syslog benchmark and writes `bench/results/syslog-<time>.json`.
 * @returns the path of the result file
 */
export async function runSyslogBench(paths: BenchPaths, options: { lines?: number; conns?: number; runs?: number; out?: string } = {}): Promise<string> {
  const lines = options.lines ?? 200_000;
  const conns = options.conns ?? 2;
  const runs = options.runs ?? 3;
  const machine = machineNote();
  const kiseki: KisekiRun[] = [];
  const rsyslog: Record<string, unknown>[] = [];
  const tracker = createProcessTracker();
  try {
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`[syslog] kiseki run ${i + 1}/${runs}\n`);
      kiseki.push(await runKiseki(paths, lines, conns, i + 1));
      process.stderr.write(`[syslog] rsyslog run ${i + 1}/${runs}\n`);
      const b = await runRsyslogBaseline({ senderJs: resolve(paths.root, 'dist/bench/load/baselines/netlog-sender.js'), tracker, lines, conns, seed: i + 1 });
      rsyslog.push('skipped' in b ? b : { ...b, linesPerCoreSec: b.rsyslogCores > 0 ? Math.round(b.linesPerSec / b.rsyslogCores) : null });
    }
  } finally {
    await tracker.stopAll();
  }
  const measured = rsyslog.filter((r): r is { linesPerSec: number; linesPerCoreSec: number | null } => typeof r.linesPerSec === 'number');
  const result = {
    benchmark: 'syslog',
    at: new Date().toISOString(),
    what: 'network-log lines over loopback TCP (LF framing, RFC 3164 header): kiseki parse + route + LMDB store + intel match vs rsyslog imtcp -> omfile',
    linesPerRun: kiseki[0]?.lines ?? lines,
    conns,
    kiseki: {
      runs: kiseki,
      linesPerSec: spread(kiseki.map((r) => r.linesPerSec)),
      linesPerCoreSec: spread(kiseki.map((r) => r.linesPerCoreSec)),
      failedShare: kiseki[0] === undefined ? 0 : Math.round((kiseki[0].failed / kiseki[0].lines) * 1000) / 1000,
    },
    rsyslog: {
      runs: rsyslog,
      ...(measured.length === 0 ? {} : { linesPerSec: spread(measured.map((r) => r.linesPerSec)), linesPerCoreSec: spread(measured.flatMap((r) => (r.linesPerCoreSec === null ? [] : [r.linesPerCoreSec]))) }),
    },
    machine,
  };
  const outDir = options.out ?? paths.resultsDir;
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `syslog-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const k = result.kiseki;
  process.stdout.write(
    [
      `syslog ingest, ${result.linesPerRun} lines per run, ${conns} connections, median of ${runs} (min-max):`,
      `  kiseki  (parse+store+intel): ${k.linesPerSec.median} lines/s (${k.linesPerSec.min}-${k.linesPerSec.max}), ${k.linesPerCoreSec.median} lines/core-s (${k.linesPerCoreSec.min}-${k.linesPerCoreSec.max})`,
      'linesPerSec' in result.rsyslog && result.rsyslog.linesPerSec !== undefined
        ? `  rsyslog (imtcp->omfile): ${result.rsyslog.linesPerSec.median} lines/s (${result.rsyslog.linesPerSec.min}-${result.rsyslog.linesPerSec.max}), ${result.rsyslog.linesPerCoreSec?.median} lines/core-s`
        : `  rsyslog: skipped (${JSON.stringify(rsyslog[0])})`,
      `  result: ${file}`,
      '',
    ].join('\n'),
  );
  return file;
}
