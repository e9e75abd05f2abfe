/**
 * The sending half shared by the syslog senders of the benchmarks
 * (syslog-sender.ts, netlog-sender.ts): repeats one chunk of LF-terminated
 * lines over `conns` TCP connections to 127.0.0.1:`port` as fast as the
 * sockets drain. Prints one JSON line with the exact totals before sending
 * (the receiver must reach them) and one when done.
 */
import net from 'node:net';

/** Options of a sender process (its one JSON argument). */
export interface SenderOptions {
  port: number;
  lines: number;
  conns: number;
  seed: number;
}

/** Sends whole copies of `pool` (lines ending in LF) until at least `opts.lines` went out, split evenly over the connections. */
export async function pumpLines(pool: readonly string[], opts: SenderOptions): Promise<void> {
  const chunk = Buffer.from(pool.join(''));
  const chunks = Math.max(opts.conns, Math.ceil(opts.lines / pool.length / opts.conns) * opts.conns);
  const totalLines = chunks * pool.length;
  const totalBytes = chunks * chunk.length;
  process.stdout.write(`${JSON.stringify({ event: 'start', totalLines, totalBytes, avgLineBytes: Math.round(chunk.length / pool.length) })}\n`);
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
