/**
 * Test helpers of notify/ (not exported from index.ts): a real SMTP server
 * in-process (smtp-server, STARTTLS with its built-in certificate, AUTH
 * PLAIN) and a real HTTP receiver, both on 127.0.0.1 port 0, recording what
 * they accept.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { AlertRecord } from '../core/contracts.js';

export interface ReceivedMail {
  messageId: string;
  to: string[];
  raw: string;
  secured: boolean;
  user: string | undefined;
}

/** Starts an SMTP server that requires STARTTLS and the login `kiseki` / `secret`. */
export async function startTestSmtp(): Promise<{ port: number; mails: ReceivedMail[]; close(): Promise<void> }> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    disabledCommands: [],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'kiseki' && auth.password === 'secret') cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const messageId = /^Message-ID:\s*(\S+)/im.exec(raw)?.[1] ?? '';
        mails.push({ messageId, to: session.envelope.rcptTo.map((r) => r.address), raw, secured: session.secure, user: session.user as string | undefined });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export interface ReceivedHook {
  headers: IncomingHttpHeaders;
  body: string;
}

/** Starts an HTTP receiver answering `status()` to each POST (200 by default). */
export async function startTestReceiver(status: () => number = () => 200): Promise<{ url: string; hooks: ReceivedHook[]; close(): Promise<void> }> {
  const hooks: ReceivedHook[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hooks,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An alert record for tests. */
export function testAlert(id: string, supportId: string, createdAt: number, verdict: AlertRecord['verdict'] = 'black'): AlertRecord {
  return {
    id, tmid: 'D1', supportId, computer: 'PC-01', sha256: 'a'.repeat(64), path: 'C:\\Users\\u\\x.exe', threat: 'Trojan:Win32/Test', engine: 'Defender',
    action: 'blocked', detectedAt: createdAt - 5, createdAt, state: 'reported', verdict, score: 90, revision: 1, repeats: 0, openUntil: createdAt, isolationRequested: false,
  };
}
