/**
 * Sender of the syslog benchmark (bench/load/syslog-bench.ts): the sample
 * network logs of ingest/syslog/fixtures (Squid, Suricata EVE, CEF,
 * FortiGate, bad lines included) as RFC 3164 lines, LF-framed over `conns`
 * TCP connections to 127.0.0.1:`port`, as fast as the sockets drain. Speaks
 * the protocol of syslog-sender.ts (the rsyslog baseline runs it too): one
 * JSON line with the exact totals before sending, one when done.
 *
 * Run as a child process with one JSON argument: `{ port, lines, conns, seed }`.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

interface SenderOptions {
  port: number;
  lines: number;
  conns: number;
  seed: number;
}

const FILES: [string, string][] = [
  ['squid-access.txt', 'squid'],
  ['suricata-eve.jsonl', 'suricata'],
  ['cef.txt', 'cef'],
  ['fortigate.txt', 'fortigate'],
];

/** The pool of syslog lines: every sample line with its tag, the client address varied by `seed`. */
export function netlogLinePool(seed: number, size = 4096): string[] {
  // dist/bench/load/baselines or bench/load/baselines: the fixtures are in the source tree either way.
  const here = fileURLToPath(new URL('.', import.meta.url));
  const root = here.includes('/dist/') ? new URL('../../../../', import.meta.url) : new URL('../../../', import.meta.url);
  const samples: string[] = [];
  for (const [file, tag] of FILES) {
    for (const l of readFileSync(new URL(`ingest/syslog/fixtures/${file}`, root), 'utf8').split('\n')) if (l !== '') samples.push(`<134>Mar 12 09:00:00 sensor01 ${tag}: ${l}`);
  }
  const pool: string[] = [];
  for (let i = 0; pool.length < size; i++) pool.push(`${samples[(i + seed) % samples.length]!.replace('10.0.0.', `10.${(i >> 8) & 255}.${i & 255}.`)}\n`);
  return pool;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const opts = JSON.parse(process.argv[2] ?? '{}') as SenderOptions;
  const POOL_LINES = 4096;
  const chunk = Buffer.from(netlogLinePool(opts.seed, POOL_LINES).join(''));
  const chunks = Math.max(opts.conns, Math.ceil(opts.lines / POOL_LINES / opts.conns) * opts.conns);
  const totalLines = chunks * POOL_LINES;
  const totalBytes = chunks * chunk.length;
  process.stdout.write(`${JSON.stringify({ event: 'start', totalLines, totalBytes, avgLineBytes: Math.round(chunk.length / POOL_LINES) })}\n`);
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: opts.conns },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect(opts.port, '127.0.0.1');
          let left = chunks / opts.conns;
          const pump = (): void => {
            while (left > 0) {
              left--;
              if (!s.write(chunk)) {
                s.once('drain', pump);
                return;
              }
            }
            s.end();
          };
          s.on('connect', pump);
          s.on('close', () => resolve());
          s.on('error', () => resolve());
        }),
    ),
  );
  process.stdout.write(`${JSON.stringify({ event: 'sent', sendSec: (performance.now() - t0) / 1000 })}\n`);
}
