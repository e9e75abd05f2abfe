/**
 * Delivery of formatted SIEM lines to one destination, by the scheme of its
 * address:
 *   tcp://host:port   syslog over TCP, RFC 6587 octet counting (or newline framing)
 *   tls://host:port   the same over TLS (RFC 5425), certificate verified
 *   udp://host:port   one datagram per message (RFC 5426): no delivery guarantee
 *   http(s)://…       one POST of NDJSON (or Elastic `_bulk` lines); 2xx accepts
 *   file:///path      appended lines (operators' global destinations only)
 * A stream delivery resolves once every byte was handed to the kernel and the
 * peer closed after our FIN (or 2 s passed without an error); a failure rejects
 * with ERR_SIEM_DELIVERY and the notifier retries the whole entry, so a
 * receiver can see an entry twice, never lose one that was marked sent
 * without at least that much (docs/SIEM.md).
 */
import { createSocket } from 'node:dgram';
import { appendFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { KisekiError } from '../../core/errors.js';
import type { SiemTarget } from '../../storage/index.js';

/** How a destination address is reached: syslog schemes frame RFC 5424 messages. */
export function isSyslogAddress(to: string): boolean {
  return /^(tcp|tls|udp):\/\//.test(to);
}

/** Schemes a tenant may use (files are the operator's). */
export function tenantAllowedAddress(to: string): boolean {
  return /^(tcp|tls|udp|https?):\/\/[^/]/.test(to);
}

function hostPort(u: URL, fallback: number): { host: string; port: number } {
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? fallback : Number(u.port) };
}

function fail(reason: string, cause?: unknown): KisekiError {
  return new KisekiError('ERR_SIEM_DELIVERY', { reason }, cause === undefined ? undefined : { cause });
}

async function streamSend(socket: Socket, payload: Buffer, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let done = false;
    let grace: NodeJS.Timeout | undefined;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(grace);
      if (err === undefined) resolve();
      else reject(err instanceof KisekiError ? err : fail(err.message, err));
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish(fail('timed out'));
    }, timeoutMs);
    socket.once('error', (err) => finish(err));
    socket.once('close', (hadError) => {
      if (!hadError) finish();
    });
    // Everything is with the kernel: a peer that keeps its side open gets 2 s to close before we do.
    socket.once('finish', () => {
      grace = setTimeout(() => {
        socket.destroy();
        finish();
      }, 2000);
    });
    // The peer's data (none expected) is read and dropped so its FIN arrives.
    socket.on('data', () => undefined);
    socket.end(payload);
  });
}

/**
 * Sends `lines` (already formatted) to `to`.
 * @throws KisekiError ERR_SIEM_DELIVERY on any failure (connection, TLS, HTTP status, unsupported address).
 */
export async function sendSiemLines(to: string, target: SiemTarget, lines: readonly string[], options: { timeoutMs?: number; fetch?: typeof fetch } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  let u: URL;
  try {
    u = new URL(to);
  } catch {
    throw fail('the destination is not a URL');
  }
  const scheme = u.protocol.slice(0, -1);
  if (scheme === 'tcp' || scheme === 'tls') {
    const frames = lines.map((l) => {
      const b = Buffer.from(l, 'utf8');
      return target.framing === 'newline' ? Buffer.concat([b, Buffer.from('\n')]) : Buffer.concat([Buffer.from(`${b.length} `), b]);
    });
    const { host, port } = hostPort(u, scheme === 'tls' ? 6514 : 514);
    const socket =
      scheme === 'tcp'
        ? netConnect({ host, port })
        : tlsConnect({ host, port, servername: host, rejectUnauthorized: target.insecure !== true, ...(target.caFile === undefined ? {} : { ca: readFileSync(target.caFile) }) });
    await streamSend(socket, Buffer.concat(frames), timeoutMs);
    return;
  }
  if (scheme === 'udp') {
    const { host, port } = hostPort(u, 514);
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    try {
      for (const l of lines) {
        await new Promise<void>((resolve, reject) => sock.send(Buffer.from(l, 'utf8'), port, host, (err) => (err ? reject(fail(err.message, err)) : resolve())));
      }
    } finally {
      sock.close();
    }
    return;
  }
  if (scheme === 'http' || scheme === 'https') {
    const body = target.http === 'elastic-bulk' ? lines.map((l) => `{"create":{}}\n${l}\n`).join('') : `${lines.join('\n')}\n`;
    let res: Response;
    try {
      res = await (options.fetch ?? fetch)(to, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', ...target.headers },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw fail(err instanceof Error ? err.message : 'request failed', err);
    }
    const text = await res.text();
    if (res.status < 200 || res.status >= 300) throw fail(`HTTP ${res.status}`);
    // Elastic answers 200 with per-item errors: a bulk with errors is a failed attempt.
    if (target.http === 'elastic-bulk' && /"errors"\s*:\s*true/.test(text)) throw fail('the bulk answer reports errors');
    return;
  }
  if (scheme === 'file') {
    try {
      await appendFile(fileURLToPath(u), lines.map((l) => `${l}\n`).join(''));
    } catch (err) {
      throw fail(err instanceof Error ? err.message : 'append failed', err);
    }
    return;
  }
  throw fail(`unsupported scheme ${scheme}`);
}
