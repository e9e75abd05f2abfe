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
import net from 'node:net';
import { createTrailGenerator } from '../../../agent/index.js';

interface SenderOptions {
  port: number;
  lines: number;
  conns: number;
  seed: number;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as SenderOptions;
const POOL_LINES = 4096;
const pool: string[] = [];
for (let c = 0; pool.length < POOL_LINES; c++) {
  const computer = `PC-${opts.seed}-${String(c).padStart(5, '0')}`;
  const gen = createTrailGenerator({ seed: (opts.seed * 7919 + c) >>> 0, computer, detectRate: 0 });
  for (const e of gen.next(256, 1, Date.UTC(2024, 2, 12, 9, 0, 0))) pool.push(`<13>Mar 12 09:00:00 ${computer} kiseki-agent[1]: ${JSON.stringify(e)}\n`);
}
const chunk = Buffer.from(pool.slice(0, POOL_LINES).join(''));
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
