/**
 * Sender of the syslog benchmark (bench/load/syslog-bench.ts): the sample
 * network logs of ingest/syslog/fixtures (Squid, Suricata EVE, CEF,
 * FortiGate, bad lines included) as RFC 3164 lines, LF-framed over `conns`
 * TCP connections to 127.0.0.1:`port`, as fast as the sockets drain. Speaks
 * the protocol of syslog-sender.ts (bench/load/baselines/line-pump.ts), so the
 * rsyslog baseline runs it too.
 *
 * Run as a child process with one JSON argument: `{ port, lines, conns, seed }`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pumpLines, type SenderOptions } from './line-pump.js';

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
  await pumpLines(netlogLinePool(opts.seed), opts);
}
