/**
 * Tests of the agent-fleet simulator against a small fake kiseki agent endpoint
 * built here with `ws`: enrollment and token auth, acks (optionally delayed or
 * withheld), one dropped connection mid-run, and the state file reused by a
 * second run. Assertions are on frames the fake server received and on the
 * summary; none on timing.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, encode } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { AgentPolicy } from '../core/contracts.js';
import { isKisekiError } from '../core/errors.js';
import { runSimulation, type SimulationOptions, type SimulatorAgentState } from './simulator.js';

const ENROLL_KEY = 'test-enroll-key';

interface ReceivedBatch {
  conn: number;
  tmid: string;
  id: string;
  first: number;
  last: number;
  count: number;
}

interface FakeServerOptions {
  policy?: Partial<AgentPolicy>;
  /** Drop one connection after this many batches were received in total (once). */
  dropAfterBatches?: number;
  /** Delay before each ack, ms. */
  ackDelayMs?: number;
  /** Never ack anything. */
  neverAck?: boolean;
}

interface FakeServer {
  url: string;
  enrollments: number;
  hellos: Array<{ conn: number; enrollKey?: string; tmid?: string; token?: string; computer: string }>;
  received: ReceivedBatch[];
  /** Distinct acked batch ids → event count. */
  acked: Map<string, number>;
  /** Ids received on the dropped connection and never acked there. */
  droppedIds: string[];
  /** Seqs held per TMID. */
  seqs: Map<string, Set<number>>;
  invs: number;
  maxInflight: number;
  problems: string[];
  close(): Promise<void>;
}

/** Starts a fake agent endpoint on 127.0.0.1, port 0. */
async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const policy: AgentPolicy = { batchIntervalMs: 100, maxBatchEvents: 5000, maxUnackedBatches: 8, hbIntervalMs: 30_000, ...options.policy };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  const devices = new Map<string, { token: string; highest: number }>();
  const stored = new Set<string>();
  let conns = 0;
  let dropped = false;
  const server: FakeServer = {
    url: `ws://127.0.0.1:${address.port}/agent/v1`,
    enrollments: 0,
    hellos: [],
    received: [],
    acked: new Map(),
    droppedIds: [],
    seqs: new Map(),
    invs: 0,
    maxInflight: 0,
    problems: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };

  wss.on('connection', (ws: WebSocket) => {
    const conn = ++conns;
    let tmid: string | undefined;
    let inflight = 0;
    let doomed = false;
    const send = (frame: unknown): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(encode(frame));
    };
    const fail = (code: string): void => {
      send({ t: 'error', code, message: code });
      ws.close(1008);
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) server.problems.push('text frame');
      const f = decode(data as Buffer) as Record<string, unknown>;
      switch (f.t) {
        case 'hello': {
          const hello = { conn, computer: String(f.computer) } as FakeServer['hellos'][number];
          if (typeof f.enrollKey === 'string') hello.enrollKey = f.enrollKey;
          if (typeof f.tmid === 'string') hello.tmid = f.tmid;
          if (typeof f.token === 'string') hello.token = f.token;
          server.hellos.push(hello);
          if (typeof f.tmid === 'string') {
            const d = devices.get(f.tmid);
            if (!d || d.token !== f.token) return fail('auth_failed');
            tmid = f.tmid;
            send({ t: 'welcome', tmid, policy, serverTime: Date.now(), nextSeq: d.highest + 1 });
          } else {
            if (f.enrollKey !== ENROLL_KEY) return fail('enroll_key_invalid');
            tmid = randomUUID();
            const token = randomBytes(24).toString('hex');
            devices.set(tmid, { token, highest: 0 });
            server.enrollments++;
            send({ t: 'welcome', tmid, token, policy, serverTime: Date.now(), nextSeq: 1 });
          }
          return;
        }
        case 'batch': {
          if (!tmid) return fail('hello_required');
          const events = f.events as Array<{ seq: number }>;
          const b: ReceivedBatch = { conn, tmid, id: String(f.id), first: Number(f.first), last: Number(f.last), count: events.length };
          server.received.push(b);
          if (!/^[0-9a-f]{32}$/.test(b.id)) server.problems.push(`bad id ${b.id}`);
          if (b.count !== b.last - b.first + 1 || events.some((e, i) => e.seq !== b.first + i)) server.problems.push(`bad seqs in ${b.id}`);
          inflight++;
          server.maxInflight = Math.max(server.maxInflight, inflight);
          if (!stored.has(b.id)) {
            stored.add(b.id);
            const seqs = server.seqs.get(tmid) ?? new Set<number>();
            for (let s = b.first; s <= b.last; s++) seqs.add(s);
            server.seqs.set(tmid, seqs);
            const d = devices.get(tmid);
            if (d) d.highest = Math.max(d.highest, b.last);
          }
          if (options.dropAfterBatches !== undefined && !dropped && server.received.length >= options.dropAfterBatches) {
            // Stop acking on this connection, collect what arrives, then cut it.
            dropped = true;
            doomed = true;
            setTimeout(() => ws.terminate(), 100);
          }
          if (doomed) {
            server.droppedIds.push(b.id);
            return;
          }
          if (options.neverAck) return;
          const ack = (): void => {
            if (doomed || ws.readyState !== WebSocket.OPEN) return;
            inflight--;
            server.acked.set(b.id, b.count);
            send({ t: 'ack', id: b.id });
          };
          if (options.ackDelayMs) setTimeout(ack, options.ackDelayMs);
          else ack();
          return;
        }
        case 'hb':
          send({ t: 'hb', ts: Date.now() });
          return;
        case 'inv':
          server.invs++;
          return;
        default:
          fail('unknown_frame_type');
      }
    });
  });
  return server;
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiseki-sim-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function baseOptions(server: FakeServer, statePath: string): SimulationOptions {
  return { url: server.url, enrollKey: ENROLL_KEY, agents: 3, eps: 200, durationSec: 1.5, batchMs: 100, seed: 7, statePath, drainTimeoutSec: 10 };
}

/** Highest seq per TMID and whether each device's seqs are 1..highest without a gap. */
function coverage(server: FakeServer): Map<string, { highest: number; complete: boolean }> {
  const out = new Map<string, { highest: number; complete: boolean }>();
  for (const [tmid, seqs] of server.seqs) {
    const highest = Math.max(...seqs);
    out.set(tmid, { highest, complete: seqs.size === highest });
  }
  return out;
}

describe('runSimulation', () => {
  describe('with a dropped connection, then a second run on the same state file', () => {
    let server: FakeServer;
    let statePath: string;
    let highestAfterRun1: Map<string, { highest: number; complete: boolean }>;

    beforeAll(async () => {
      server = await startFakeServer({ dropAfterBatches: 12 });
      statePath = join(dir, 'state-drop.json');
    });

    afterAll(async () => {
      await server.close();
    });

    it('enrolls, resends unacked batches with the same ids after a drop, and ends drained', async () => {
      const progress: number[] = [];
      const summary = await runSimulation({ ...baseOptions(server, statePath), progressIntervalMs: 200, onProgress: (p) => progress.push(p.eventsAcked) });

      expect(server.problems).toEqual([]);
      expect(server.enrollments).toBe(3);
      expect(summary.enrolled).toBe(3);
      expect(summary.drained).toBe(true);
      expect(summary.batchesUnacked).toBe(0);
      expect(summary.eventsUnacked).toBe(0);

      // Counts agree with what the server acked (distinct ids).
      const ackedEvents = [...server.acked.values()].reduce((a, b) => a + b, 0);
      expect(summary.batchesAcked).toBe(server.acked.size);
      expect(summary.eventsAcked).toBe(ackedEvents);
      expect(summary.batchesSent).toBe(summary.batchesGenerated);
      expect(summary.eventsSent).toBe(summary.eventsGenerated);
      expect(summary.eventsAcked).toBe(summary.eventsGenerated);
      expect(new Set(server.received.map((b) => b.id)).size).toBe(summary.batchesSent);
      expect(summary.eventsGenerated).toBeGreaterThan(0);
      expect(summary.ackLatencyMs.p50).toBeLessThanOrEqual(summary.ackLatencyMs.p99);
      expect(summary.ackLatencyMs.p99).toBeLessThanOrEqual(summary.ackLatencyMs.max);
      expect(summary.eventsPerSec).toBeGreaterThan(0);
      expect(progress.length).toBeGreaterThan(0);

      // The dropped connection's batches came again, same ids and seqs, on a later connection.
      expect(server.droppedIds.length).toBeGreaterThan(0);
      expect(summary.reconnects).toBeGreaterThanOrEqual(1);
      expect(summary.batchesResent).toBeGreaterThanOrEqual(server.droppedIds.length);
      for (const id of server.droppedIds) {
        const copies = server.received.filter((b) => b.id === id);
        expect(copies.length).toBeGreaterThanOrEqual(2);
        const [firstCopy, ...others] = copies;
        for (const c of others) {
          expect(c.conn).not.toBe(firstCopy?.conn);
          expect([c.first, c.last]).toEqual([firstCopy?.first, firstCopy?.last]);
        }
      }
      // On every connection, batches arrive in seq order.
      const byConn = new Map<number, number[]>();
      for (const b of server.received) byConn.set(b.conn, [...(byConn.get(b.conn) ?? []), b.first]);
      for (const firsts of byConn.values()) expect(firsts).toEqual([...firsts].sort((a, b) => a - b));

      // Every device's trail is complete; one inventory per welcome.
      highestAfterRun1 = coverage(server);
      expect(highestAfterRun1.size).toBe(3);
      for (const c of highestAfterRun1.values()) expect(c.complete).toBe(true);
      expect(server.invs).toBe(server.hellos.length);

      // The state file holds each identity and the next seq.
      const state = JSON.parse(await readFile(statePath, 'utf8')) as { agents: SimulatorAgentState[] };
      expect(state.agents.map((a) => a.index)).toEqual([0, 1, 2]);
      for (const a of state.agents) {
        expect(a.computer).toBe(`PC-7-0000${a.index}`);
        expect(a.nextSeq).toBe((highestAfterRun1.get(a.tmid as string)?.highest ?? NaN) + 1);
        expect(typeof a.token).toBe('string');
      }
    });

    it('reuses the saved identities on a second run: no new enrollment, seq continues without a gap', async () => {
      const helloCount = server.hellos.length;
      const receivedCount = server.received.length;
      const summary = await runSimulation({ ...baseOptions(server, statePath), durationSec: 1 });

      expect(server.problems).toEqual([]);
      expect(server.enrollments).toBe(3);
      expect(summary.enrolled).toBe(0);
      const newHellos = server.hellos.slice(helloCount);
      expect(newHellos.length).toBeGreaterThanOrEqual(3);
      for (const h of newHellos) {
        expect(h.enrollKey).toBeUndefined();
        expect(h.tmid).toBeDefined();
      }
      expect(summary.batchesUnacked).toBe(0);
      const run2 = server.received.slice(receivedCount);
      for (const [tmid, before] of highestAfterRun1) {
        const firsts = run2.filter((b) => b.tmid === tmid).map((b) => b.first);
        expect(firsts.length).toBeGreaterThan(0);
        expect(Math.min(...firsts)).toBe(before.highest + 1);
      }
      for (const c of coverage(server).values()) expect(c.complete).toBe(true);
    });
  });

  it('keeps no more unacked batches in flight than the server policy allows', async () => {
    const server = await startFakeServer({ policy: { maxUnackedBatches: 2 }, ackDelayMs: 120 });
    try {
      const summary = await runSimulation({ ...baseOptions(server, join(dir, 'state-window.json')), agents: 1, durationSec: 1, maxUnacked: 8 });
      expect(server.maxInflight).toBe(2);
      expect(summary.drained).toBe(true);
      expect(summary.eventsAcked).toBe(summary.eventsGenerated);
    } finally {
      await server.close();
    }
  });

  it('stops an agent whose token is refused and counts the error', async () => {
    const server = await startFakeServer();
    const statePath = join(dir, 'state-auth.json');
    const bogus: SimulatorAgentState = { index: 0, computer: 'PC-BOGUS', tmid: randomUUID(), token: 'wrong', nextSeq: 1 };
    await writeFile(statePath, JSON.stringify({ version: 1, agents: [bogus] }));
    try {
      const summary = await runSimulation({ ...baseOptions(server, statePath), agents: 2, durationSec: 0.8 });
      expect(summary.errors).toEqual({ auth_failed: 1 });
      expect(summary.fatalAgents).toBe(1);
      expect(server.hellos.filter((h) => h.tmid === bogus.tmid)).toHaveLength(1);
      // The other agent enrolled and delivered everything.
      expect(server.enrollments).toBe(1);
      expect(summary.batchesUnacked).toBe(0);
      expect(summary.eventsAcked).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });

  it('ends by itself after the drain timeout when nothing is acked, reporting what is unacked', async () => {
    const server = await startFakeServer({ neverAck: true });
    try {
      const summary = await runSimulation({ ...baseOptions(server, join(dir, 'state-noack.json')), agents: 2, durationSec: 0.6, drainTimeoutSec: 0.5 });
      expect(summary.drained).toBe(false);
      expect(summary.batchesAcked).toBe(0);
      expect(summary.batchesUnacked).toBe(summary.batchesGenerated);
      expect(summary.eventsUnacked).toBe(summary.eventsGenerated);
      // The window (8) caps what was ever sent.
      expect(summary.batchesSent).toBeLessThanOrEqual(2 * 8);
      expect(summary.batchesSent).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });

  it('ends by itself when the server is unreachable, and stops early on abort', async () => {
    const server = await startFakeServer();
    const url = server.url;
    await server.close();
    const summary = await runSimulation({ url, enrollKey: ENROLL_KEY, agents: 2, eps: 10, durationSec: 0.6, drainTimeoutSec: 0.5, statePath: join(dir, 'state-down.json') });
    expect(summary.batchesSent).toBe(0);
    expect(summary.reconnects).toBeGreaterThan(0);
    expect(summary.drained).toBe(true);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const aborted = await runSimulation({ url, enrollKey: ENROLL_KEY, agents: 2, eps: 10, durationSec: 60, statePath: join(dir, 'state-abort.json'), signal: controller.signal });
    expect(aborted.aborted).toBe(true);
  });
});

describe('runSimulation state file', () => {
  it.each([
    ['not JSON', '{ agents: '],
    ['no agents array', '{"version":1}'],
  ])('refuses a state file that is %s with ERR_INVALID_INPUT', async (_what, text) => {
    const statePath = join(dir, `state-bad-${text.length}.json`);
    await writeFile(statePath, text);
    const err = await runSimulation({ url: 'ws://127.0.0.1:1/agent/v1', enrollKey: ENROLL_KEY, agents: 1, eps: 1, durationSec: 0.1, statePath }).catch((e: unknown) => e);
    expect(isKisekiError(err, 'ERR_INVALID_INPUT')).toBe(true);
    expect((err as { details: { file: string } }).details.file).toBe(statePath);
  });
});
