/**
 * The "eight 50 MB bodies in parallel" probe of issue 11 against a running
 * `kiseki start`: posts them to the public login route (half with a
 * Content-Length, half chunked) and samples the server's RSS from /proc while
 * they run. Prints one JSON line: the statuses and RSS before, at peak and
 * after, in MB. Linux only (reads /proc/PID/status).
 *
 *   node dist/bench/load/http-body-flood.js --port HTTP_PORT --pid SERVER_PID [--bodies 8] [--mb 50]
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parseFlags } from '../../core/cli-flags.js';

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

function post(port: number, mb: number, chunked: boolean): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/v1/auth/login',
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(mb * 1024 * 1024 + 23) }) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < mb) {
        sent++;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    req.write('{"id":"x","password":"');
    pump();
  });
}

const { values } = parseFlags(process.argv.slice(2), { port: { type: 'number' }, pid: { type: 'number' }, bodies: { type: 'number' }, mb: { type: 'number' } });
const port = Number(values.port);
const pid = Number(values.pid);
const bodies = Number(values.bodies ?? 8);
const mb = Number(values.mb ?? 50);
const before = rssMb(pid);
let peak = before;
const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 20);
const statuses = await Promise.all(Array.from({ length: bodies }, (_, i) => post(port, mb, i % 2 === 1)));
clearInterval(sampler);
process.stdout.write(`${JSON.stringify({ bodies, mb, statuses, rssBeforeMB: Math.round(before), rssPeakMB: Math.round(peak), rssAfterMB: Math.round(rssMb(pid)) })}\n`);
