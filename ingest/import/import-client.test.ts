import { decode, encode } from '@msgpack/msgpack';
import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { HotStore, TenantRecord } from '../../storage/index.js';
import { isKisekiError } from '../../core/errors.js';
import { batchIdFor, planBatches, sendTrail } from './import-client.js';
import type { ImportedEvent } from './sysmon-mapper.js';
import { storedEvents } from './stored-trail.js';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../../test/support/agent-harness.js';

const T0 = Date.UTC(2024, 0, 2, 3, 0, 0);
const FACTS = { computer: 'PC-IMP-1', agentVersion: 'kiseki-import/1', os: 'Windows (imported event logs)', ips: [], macs: [] };

function events(n: number, from = 0): ImportedEvent[] {
  return Array.from({ length: n }, (_, i) => ({ ts: T0 + from + i, k: 'proc.end', pg: `{00000000-0000-0000-0000-${String(from + i).padStart(12, '0')}}`, src: 'sysmon:5', rid: `r${from + i}` }));
}

describe('planBatches', () => {
  it('numbers events from nextSeq with seq right after the kind, and cuts batches by count and size', () => {
    const plan = planBatches('TMID', events(7), 41, 3);
    expect(plan.map((b) => [b.first, b.last, b.events.length])).toEqual([
      [41, 43, 3],
      [44, 46, 3],
      [47, 47, 1],
    ]);
    expect(Object.keys(plan[0]!.events[0]!).slice(0, 3)).toEqual(['ts', 'k', 'seq']);
    expect(plan.flatMap((b) => b.events.map((e) => e.seq))).toEqual([41, 42, 43, 44, 45, 46, 47]);
    const big = events(4).map((e) => ({ ...e, cmd: 'x'.repeat(400) }));
    expect(planBatches('TMID', big, 1, 100, 1000).map((b) => b.events.length)).toEqual([2, 2]);
  });

  it('derives batch ids from the device, the seq range and the records', () => {
    const a = planBatches('TMID', events(3), 1);
    expect(planBatches('TMID', events(3), 1)[0]!.id).toBe(a[0]!.id);
    expect(a[0]!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(planBatches('TMID', events(3), 2)[0]!.id).not.toBe(a[0]!.id);
    expect(planBatches('OTHER', events(3), 1)[0]!.id).not.toBe(a[0]!.id);
    expect(batchIdFor('TMID', 1, 3, ['r0', 'r1', 'r2'])).toBe(a[0]!.id);
  });
});

describe('sendTrail against the agent server', () => {
  let store: HotStore;
  let url: string;
  let tenant: TenantRecord;

  let harness: AgentHarness;
  beforeEach(async () => {
    harness = await startAgentHarness();
    ({ store, url, tenant } = harness);
  });
  afterEach(() => stopAgentHarness(harness));

  it('stores every event once, numbered on from the device’s next seq', async () => {
    const { device, token } = await store.devices.enroll(tenant, FACTS, Date.now());
    const credentials = { tmid: device.tmid, token };
    const first = await sendTrail({ url, credentials, facts: FACTS, events: events(12), maxBatchEvents: 5 });
    expect(first).toMatchObject({ nextSeq: 1, firstSeq: 1, lastSeq: 12, batches: 3, batchesAcked: 3, duplicateAcks: 0, reconnects: 0 });
    const second = await sendTrail({ url, credentials, facts: FACTS, events: events(3, 100) });
    expect(second).toMatchObject({ nextSeq: 13, firstSeq: 13, lastSeq: 15, batches: 1, batchesAcked: 1 });
    await harness.settled();
    expect(store.log.trail(device.tmid)?.ranges).toEqual([[1, 15]]);
    const stored = [...storedEvents(store, device.tmid)];
    expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(stored[12]).toMatchObject({ k: 'proc.end', rid: 'r100', src: 'sysmon:5' });
  });

  it('fails with the server’s code on a wrong token', async () => {
    const { device } = await store.devices.enroll(tenant, FACTS, Date.now());
    const err = await sendTrail({ url, credentials: { tmid: device.tmid, token: 'kdt_wrong' }, facts: FACTS, events: events(1) }).catch((e: unknown) => e);
    expect(isKisekiError(err, 'ERR_AGENT_REJECTED')).toBe(true);
    expect((err as { details: { code: string } }).details.code).toBe('auth_failed');
  });
});

describe('sendTrail: connection problems', () => {
  it('says to start the server when nothing listens', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const err = await sendTrail({ url: `ws://127.0.0.1:${port}/agent/v1`, credentials: { tmid: 'T', token: 'k' }, facts: FACTS, events: events(1) }).catch((e: unknown) => e);
    expect(isKisekiError(err, 'ERR_AGENT_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toContain('start the server with `kiseki start` first');
    expect((err as { details: { problem: string } }).details.problem).toBe('ECONNREFUSED');
  });

  it('resends an unacked batch with the same id on a new connection after the connection drops', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const seen: { conn: number; id: string; first: number }[] = [];
    let conns = 0;
    wss.on('connection', (ws: WebSocket) => {
      const conn = ++conns;
      ws.on('message', (data: Buffer) => {
        const frame = decode(data) as Record<string, unknown>;
        if (frame.t === 'hello') {
          ws.send(encode({ t: 'welcome', tmid: frame.tmid, policy: { maxBatchEvents: 5000, maxUnackedBatches: 4 }, serverTime: Date.now(), nextSeq: 7 }));
        } else if (frame.t === 'batch') {
          seen.push({ conn, id: frame.id as string, first: frame.first as number });
          // The first connection dies before acking; the second acks, as a duplicate (it was committed).
          if (conn === 1) ws.terminate();
          else ws.send(encode({ t: 'ack', id: frame.id, dup: true }));
        }
      });
    });
    try {
      const port = (wss.address() as { port: number }).port;
      const r = await sendTrail({ url: `ws://127.0.0.1:${port}/agent/v1`, credentials: { tmid: 'T', token: 'k' }, facts: FACTS, events: events(2), retryDelayMs: 10 });
      expect(r).toMatchObject({ firstSeq: 7, lastSeq: 8, batches: 1, batchesAcked: 1, duplicateAcks: 1, reconnects: 1 });
      expect(seen).toHaveLength(2);
      expect(seen[1]!.id).toBe(seen[0]!.id);
      expect(seen.map((s) => [s.conn, s.first])).toEqual([
        [1, 7],
        [2, 7],
      ]);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });

  it('gives up after a bounded number of connections', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    let conns = 0;
    wss.on('connection', (ws: WebSocket) => {
      conns++;
      ws.on('message', () => ws.send(encode({ t: 'error', code: 'server_shutting_down', message: 'The server is stopping.' })));
    });
    try {
      const port = (wss.address() as { port: number }).port;
      const err = await sendTrail({ url: `ws://127.0.0.1:${port}/agent/v1`, credentials: { tmid: 'T', token: 'k' }, facts: FACTS, events: events(1), retryDelayMs: 5, maxAttempts: 3 }).catch((e: unknown) => e);
      expect(isKisekiError(err, 'ERR_AGENT_GAVE_UP')).toBe(true);
      expect((err as { details: { lastProblem: string } }).details.lastProblem).toContain('server_shutting_down');
      expect(conns).toBe(3);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});
