/**
 * Test helpers of ingest/syslog: a throw-away CA and a server certificate
 * for 127.0.0.1 made with the `openssl` command (as an operator would), and
 * plain socket senders. Not part of the public surface.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

/** PEM paths of a test CA and a server key + certificate it signed (CN and SAN 127.0.0.1). */
export interface TestPki {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Finds openssl; undefined when it is not installed. */
export function findOpenssl(): string | undefined {
  for (const p of ['/usr/bin/openssl', '/usr/local/bin/openssl', '/bin/openssl']) if (existsSync(p)) return p;
  return undefined;
}

/** Generates a CA and a server certificate for 127.0.0.1 in `dir` (EC P-256, valid 2 days). */
export function makeTestPki(dir: string, openssl = findOpenssl() ?? 'openssl'): TestPki {
  const run = (...args: string[]): void => void execFileSync(openssl, args, { stdio: 'pipe' });
  const caKey = join(dir, 'ca-key.pem');
  const caFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'server-key.pem');
  const csr = join(dir, 'server.csr');
  const certFile = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey);
  run('req', '-x509', '-new', '-key', caKey, '-sha256', '-days', '2', '-subj', '/CN=kiseki test CA', '-out', caFile);
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile);
  run('req', '-new', '-key', keyFile, '-subj', '/CN=127.0.0.1', '-out', csr);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', ext, '-out', certFile);
  return { caFile, certFile, keyFile };
}

/** Sends `data` over one TCP (or TLS, with `ca`) connection and resolves when the socket is closed. */
export function sendStream(port: number, data: string | Buffer, tls?: { ca: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls === undefined ? netConnect(port, '127.0.0.1') : tlsConnect({ port, host: '127.0.0.1', ca: tls.ca, servername: 'localhost' });
    s.once(tls === undefined ? 'connect' : 'secureConnect', () => s.end(data));
    s.once('error', reject);
    s.once('close', () => resolve());
  });
}

/** Polls `check` every 50 ms until it is true or `timeoutMs` passed; returns the last result. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Finds rsyslogd on PATH or in /usr/sbin, /sbin; undefined when missing. */
export function findRsyslogd(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) if (d !== '' && existsSync(join(d, 'rsyslogd'))) return join(d, 'rsyslogd');
  return undefined;
}

/** True when rsyslog's GnuTLS network stream driver (package rsyslog-gnutls) is installed. */
export function hasRsyslogGtls(): boolean {
  for (const d of ['/usr/lib/x86_64-linux-gnu/rsyslog', '/usr/lib/aarch64-linux-gnu/rsyslog', '/usr/lib/rsyslog', '/usr/lib64/rsyslog']) if (existsSync(join(d, 'lmnsd_gtls.so'))) return true;
  return false;
}
