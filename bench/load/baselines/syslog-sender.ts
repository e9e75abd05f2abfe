/**
 * Sender of the rsyslog baseline: the same trail events the load generator
 * sends to kiseki, as RFC 3164-style syslog lines with the event as JSON
 * (`<13>Mar 12 09:00:00 PC-… kiseki-agent[1]: {"ts":…,"k":"proc.start",…}`),
 * LF-framed over `conns` TCP connections to 127.0.0.1:`port`, as fast as the
 * sockets drain. Prints one JSON line with the exact byte and line totals
 * before sending (the output file must reach that size) and one when done.
 *
 * Run as a child process with one JSON argument: `{ port, lines, conns, seed }`.
 */
import { createTrailGenerator } from '../../../agent/index.js';
import { pumpLines, type SenderOptions } from './line-pump.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as SenderOptions;
const POOL_LINES = 4096;
const pool: string[] = [];
for (let c = 0; pool.length < POOL_LINES; c++) {
  const computer = `PC-${opts.seed}-${String(c).padStart(5, '0')}`;
  const gen = createTrailGenerator({ seed: (opts.seed * 7919 + c) >>> 0, computer, detectRate: 0 });
  for (const e of gen.next(256, 1, Date.UTC(2024, 2, 12, 9, 0, 0))) pool.push(`<13>Mar 12 09:00:00 ${computer} kiseki-agent[1]: ${JSON.stringify(e)}\n`);
}
await pumpLines(pool.slice(0, POOL_LINES), opts);
