/**
 * Tests of the one agent protocol client against scripted endpoints built
 * here with `ws` on 127.0.0.1 port 0: enrollment then token auth, the
 * window, resends after a drop, acks that stall, commands, error frames and
 * an endpoint nobody listens on. Assertions are on frames the endpoint
 * received and on what the client reports; waits are bounds, not timings.
 */
import { createServer } from 'node:net';
import { decode, encode } from '@msgpack/msgpack';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TrailEvent } from '../core/contracts.js';
import { isKisekiError } from '../core/errors.js';
import { createProtocolClient, type OutgoingBatch, type ProtocolClient } from './protocol-client.js';

type Frame = Record<string, unknown> & { t: string };

interface Endpoint {
  url: string;
  /** Every frame received, with the connection number (1, 2, ...). */
  frames: { conn: number; frame: Frame; bytes: Buffer }[];
  /** The scripted reaction to each frame. */
  onFrame: (frame: Frame, reply: (f: unknown) => void, ws: WebSocket, conn: number) => void;
  close(): Promise<void>;
}

const endpoints: Endpoint[] = [];
const clients: ProtocolClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
});

async function startEndpoint(onFrame: Endpoint['onFrame']): Promise<Endpoint> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as { port: number }).port;
  let conns = 0;
  const ep: Endpoint = {
    url: `ws://127.0.0.1:${port}/agent/v1`,
    frames: [],
    onFrame,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on('connection', (ws: WebSocket) => {
    const conn = ++conns;
    ws.on('message', (data: Buffer) => {
      const frame = decode(data) as Frame;
      ep.frames.push({ conn, frame, bytes: Buffer.from(data) });
      ep.onFrame(frame, (f) => ws.send(encode(f)), ws, conn);
    });
  });
  endpoints.push(ep);
  return ep;
}

const FACTS = { computer: 'PC-CLIENT-01', agentVersion: '3.2.1', os: 'Windows 11 Pro', ips: ['10.0.0.9'], macs: ['00-15-5D-00-00-01'] };
const POLICY = { batchIntervalMs: 100, maxBatchEvents: 5000, maxUnackedBatches: 2, hbIntervalMs: 30_000 };

function batch(n: number, first: number): OutgoingBatch {
  const events: TrailEvent[] = [];
  for (let i = 0; i < n; i++) events.push({ ts: 1_700_000_000_000 + first + i, k: 'proc.end', seq: first + i, exit: 0 });
  return { id: (first.toString(16) + 'a'.repeat(32)).slice(0, 32), first, last: first + n - 1, events };
}

/** Resolves when `ready()` holds; rejects after the bound. */
async function until(ready: () => boolean, boundMs = 10_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error('condition not reached within the bound');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function track(client: ProtocolClient): ProtocolClient {
  clients.push(client);
  return client;
}

describe('createProtocolClient', () => {
  it('enrolls, keeps the window, resends unacked batches with the same bytes after a drop, then authenticates with the token', async () => {
    const held = new Set<string>();
    let dropped = false;
    const ep = await startEndpoint((f, reply, ws, conn) => {
      if (f.t === 'hello') {
        if (typeof f.enrollKey === 'string') reply({ t: 'welcome', tmid: 'TMID-1', token: 'tok-1', policy: POLICY, serverTime: Date.now(), nextSeq: 1 });
        else if (f.tmid === 'TMID-1' && f.token === 'tok-1') reply({ t: 'welcome', tmid: 'TMID-1', policy: POLICY, serverTime: Date.now(), nextSeq: 5 });
        else reply({ t: 'error', code: 'auth_failed', message: 'no' });
      } else if (f.t === 'batch') {
        // Connection 1 acks nothing and dies once the window (2) is full.
        if (conn === 1) {
          if (ep.frames.filter((x) => x.conn === 1 && x.frame.t === 'batch').length === 2 && !dropped) {
            dropped = true;
            ws.terminate();
          }
          return;
        }
        const dup = held.has(f.id as string);
        held.add(f.id as string);
        reply(dup ? { t: 'ack', id: f.id, dup: true } : { t: 'ack', id: f.id });
      }
    });
    const welcomes: { enrolled: boolean; nextSeq: number; window: number }[] = [];
    const resends: string[] = [];
    const client = track(
      createProtocolClient({
        url: ep.url,
        credentials: { enrollKey: 'kek_test' },
        facts: FACTS,
        maxUnacked: 8,
        reconnectDelayMs: 10,
        handlers: {
          onWelcome: (w) => welcomes.push({ enrolled: w.enrolled, nextSeq: w.nextSeq, window: w.window }),
          onSent: (b, resend) => {
            if (resend) resends.push(b.id);
          },
        },
      }),
    );
    const batches = [batch(2, 1), batch(1, 3), batch(3, 4)];
    for (const b of batches) client.enqueue(b);
    client.start();
    await client.drained();

    const hellos = ep.frames.filter((x) => x.frame.t === 'hello').map((x) => x.frame);
    expect(hellos[0]).toMatchObject({ t: 'hello', enrollKey: 'kek_test', ...FACTS });
    expect(hellos[0]).not.toHaveProperty('tmid');
    expect(hellos[1]).toMatchObject({ t: 'hello', tmid: 'TMID-1', token: 'tok-1' });
    expect(hellos[1]).not.toHaveProperty('enrollKey');
    expect(welcomes).toEqual([
      { enrolled: true, nextSeq: 1, window: 2 },
      { enrolled: false, nextSeq: 5, window: 2 },
    ]);

    const sent = ep.frames.filter((x) => x.frame.t === 'batch');
    // Connection 1 got exactly the window; connection 2 got everything in queue order.
    expect(sent.filter((x) => x.conn === 1).map((x) => x.frame.id)).toEqual([batches[0]!.id, batches[1]!.id]);
    expect(sent.filter((x) => x.conn === 2).map((x) => x.frame.id)).toEqual(batches.map((b) => b.id));
    // A resend is the same frame, byte for byte.
    expect(sent.find((x) => x.conn === 2)!.bytes.equals(sent.find((x) => x.conn === 1)!.bytes)).toBe(true);
    expect(sent.find((x) => x.conn === 2)!.frame).toMatchObject({ first: 1, last: 2, events: batches[0]!.events });
    expect(resends).toEqual([batches[0]!.id, batches[1]!.id]);

    expect(client.unacked()).toEqual({ batches: 0, events: 0 });
    expect(client.stats()).toMatchObject({ connections: 2, reconnects: 1, batchesSent: 3, batchesResent: 2, batchesAcked: 3, eventsAcked: 6, duplicateAcks: 0, errors: {} });
  });

  it('answers a command with acknowledged and then its outcome, and leaves commands alone without a handler', async () => {
    const ep = await startEndpoint((f, reply) => {
      if (f.t === 'hello') {
        reply({ t: 'welcome', tmid: 'TMID-2', policy: POLICY, serverTime: Date.now(), nextSeq: 1 });
        reply({ t: 'cmd', id: 'c1', kind: 'isolate', args: { allow: [{ cidr: '10.0.0.0/8' }] } });
        reply({ t: 'cmd', id: 'c2', kind: 'delete-file', args: { path: 'C:\\x.exe' } });
      }
    });
    const kinds: string[] = [];
    const client = track(
      createProtocolClient({
        url: ep.url,
        credentials: { tmid: 'TMID-2', token: 't' },
        facts: FACTS,
        handlers: {
          onCommand: (cmd) => {
            kinds.push(cmd.kind);
            if (cmd.kind === 'delete-file') throw new Error('file is locked');
            return { status: 'done', result: { isolated: true } };
          },
        },
      }),
    );
    client.start();
    await until(() => ep.frames.filter((x) => x.frame.t === 'cmdr').length === 4);
    expect(kinds).toEqual(['isolate', 'delete-file']);
    expect(ep.frames.filter((x) => x.frame.t === 'cmdr').map((x) => x.frame)).toEqual([
      { t: 'cmdr', id: 'c1', status: 'acknowledged' },
      { t: 'cmdr', id: 'c1', status: 'done', result: { isolated: true } },
      { t: 'cmdr', id: 'c2', status: 'acknowledged' },
      { t: 'cmdr', id: 'c2', status: 'failed', error: 'file is locked' },
    ]);

    // The same endpoint, a client without a command handler: no cmdr at all.
    const before = ep.frames.length;
    const quiet = track(createProtocolClient({ url: ep.url, credentials: { tmid: 'TMID-2', token: 't' }, facts: FACTS }));
    quiet.start();
    await quiet.drained();
    quiet.enqueue(batch(1, 1));
    await until(() => ep.frames.slice(before).some((x) => x.frame.t === 'batch'));
    expect(ep.frames.slice(before).filter((x) => x.frame.t === 'cmdr')).toEqual([]);
  });

  it('stops for good on a final error frame and reconnects after a retryable one', async () => {
    let conns = 0;
    const ep = await startEndpoint((f, reply, _ws, conn) => {
      if (f.t !== 'hello') return;
      conns = Math.max(conns, conn);
      if (conn === 1) reply({ t: 'error', code: 'server_shutting_down', message: 'The server is stopping.' });
      else reply({ t: 'error', code: 'auth_failed', message: 'Unknown device or wrong token.' });
    });
    const failures: string[] = [];
    const serverErrors: [string, boolean][] = [];
    const client = track(
      createProtocolClient({
        url: ep.url,
        credentials: { tmid: 'TMID-3', token: 'bad' },
        facts: FACTS,
        reconnectDelayMs: 10,
        handlers: { onFailed: (e) => failures.push(e.code), onServerError: (code, _m, retryable) => serverErrors.push([code, retryable]) },
      }),
    );
    client.enqueue(batch(1, 1));
    client.start();
    const err = await client.drained().catch((e: unknown) => e);
    expect(isKisekiError(err, 'ERR_AGENT_REJECTED')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ code: 'auth_failed', message: 'Unknown device or wrong token.' });
    expect(serverErrors).toEqual([
      ['server_shutting_down', true],
      ['auth_failed', false],
    ]);
    expect(failures).toEqual(['ERR_AGENT_REJECTED']);
    expect(client.failure?.code).toBe('ERR_AGENT_REJECTED');
    expect(client.stats().errors).toEqual({ server_shutting_down: 1, auth_failed: 1 });
    expect(conns).toBe(2);
    expect(client.unacked().batches).toBe(1);
  });

  it('drops a connection whose acks stall and delivers on the next one', async () => {
    const ep = await startEndpoint((f, reply, _ws, conn) => {
      if (f.t === 'hello') reply({ t: 'welcome', tmid: 'TMID-4', policy: POLICY, serverTime: Date.now(), nextSeq: 1 });
      else if (f.t === 'batch' && conn > 1) reply({ t: 'ack', id: f.id });
    });
    const client = track(createProtocolClient({ url: ep.url, credentials: { tmid: 'TMID-4', token: 't' }, facts: FACTS, ackTimeoutMs: 200, reconnectDelayMs: 10 }));
    client.enqueue(batch(1, 1));
    client.start();
    await client.drained();
    expect(client.stats()).toMatchObject({ connections: 2, batchesSent: 1, batchesResent: 1, batchesAcked: 1 });
  });

  it('moves to the next endpoint when its connection dies, resending its unacked batches there, and tries every endpoint before failing fast', async () => {
    // Endpoint A welcomes, takes batches without acking them, and dies with the window full (an ingest node killed).
    let a: Endpoint | undefined;
    a = await startEndpoint((f, reply, ws) => {
      if (f.t === 'hello') reply({ t: 'welcome', tmid: 'TMID-7', token: 'tok-7', policy: POLICY, serverTime: Date.now(), nextSeq: 1 });
      else if (f.t === 'batch' && a!.frames.filter((x) => x.frame.t === 'batch').length === 2) {
        ws.terminate();
        void a!.close();
      }
    });
    const held = new Set<string>();
    const b = await startEndpoint((f, reply) => {
      if (f.t === 'hello') reply({ t: 'welcome', tmid: 'TMID-7', policy: POLICY, serverTime: Date.now(), nextSeq: 1 });
      else if (f.t === 'batch') {
        const dup = held.has(f.id as string);
        held.add(f.id as string);
        reply(dup ? { t: 'ack', id: f.id, dup: true } : { t: 'ack', id: f.id });
      }
    });
    const client = track(createProtocolClient({ url: [a.url, b.url], credentials: { enrollKey: 'kek_test' }, facts: FACTS, reconnectDelayMs: 10, maxReconnectDelayMs: 50 }));
    const batches = [batch(2, 1), batch(1, 3), batch(3, 4)];
    for (const x of batches) client.enqueue(x);
    client.start();
    await client.drained();
    expect(a.frames.filter((x) => x.frame.t === 'batch').map((x) => x.frame.id)).toEqual([batches[0]!.id, batches[1]!.id]);
    // B got the device with the token A gave it, then every unacked batch in queue order.
    expect(b.frames[0]!.frame).toMatchObject({ t: 'hello', tmid: 'TMID-7', token: 'tok-7' });
    expect(b.frames.filter((x) => x.frame.t === 'batch').map((x) => x.frame.id)).toEqual(batches.map((x) => x.id));
    expect(client.unacked()).toEqual({ batches: 0, events: 0 });
    expect(client.stats()).toMatchObject({ batchesSent: 3, batchesResent: 2, batchesAcked: 3 });

    // Fail-fast with two endpoints nobody listens on: both are tried, then ERR_AGENT_UNREACHABLE.
    const dead = track(createProtocolClient({ url: [a.url, a.url.replace('/agent/v1', '/other')], credentials: { enrollKey: 'k' }, facts: FACTS, reconnectDelayMs: 5, failFastWhenUnreachable: true }));
    dead.start();
    const err = await dead.drained().catch((e: unknown) => e);
    expect(isKisekiError(err, 'ERR_AGENT_UNREACHABLE')).toBe(true);
    expect(dead.stats().connections).toBe(2);
  });

  it('gives up after maxAttempts connections that deliver nothing', async () => {
    const ep = await startEndpoint((f, _reply, ws) => {
      if (f.t === 'hello') ws.terminate();
    });
    const client = track(createProtocolClient({ url: ep.url, credentials: { tmid: 'TMID-5', token: 't' }, facts: FACTS, maxAttempts: 3, reconnectDelayMs: 5 }));
    client.start();
    const err = await client.drained().catch((e: unknown) => e);
    expect(isKisekiError(err, 'ERR_AGENT_GAVE_UP')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ attempts: 3 });
    expect(ep.frames.filter((x) => x.frame.t === 'hello')).toHaveLength(3);
  });

  it('fails at once when nothing listens and it was asked to, and sends heartbeats at the policy interval otherwise', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = track(createProtocolClient({ url: `ws://127.0.0.1:${port}/agent/v1`, credentials: { enrollKey: 'k' }, facts: FACTS, failFastWhenUnreachable: true }));
    dead.start();
    const err = await dead.drained().catch((e: unknown) => e);
    expect(isKisekiError(err, 'ERR_AGENT_UNREACHABLE')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ problem: 'ECONNREFUSED' });
    expect(dead.stats().connections).toBe(1);

    const ep = await startEndpoint((f, reply) => {
      if (f.t === 'hello') reply({ t: 'welcome', tmid: 'TMID-6', policy: { ...POLICY, hbIntervalMs: 1000 }, serverTime: Date.now(), nextSeq: 1 });
    });
    const live = track(createProtocolClient({ url: ep.url, credentials: { tmid: 'TMID-6', token: 't' }, facts: FACTS }));
    live.start();
    await until(() => ep.frames.some((x) => x.frame.t === 'hb'));
    expect(ep.frames.find((x) => x.frame.t === 'hb')!.frame).toMatchObject({ t: 'hb', ts: expect.any(Number) });
  });
});
