import { decode, encode } from '@msgpack/msgpack';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { inspectStore } from '../storage/index.js';
import { batchId, connectAgent, helloFacts, makeBatch, type TestAgent } from '../test/support/agent-client.js';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../test/support/agent-harness.js';
import { encodeAck } from './agent-server.js';

type Harness = AgentHarness;
const startHarness = startAgentHarness;
const stopHarness = stopAgentHarness;

async function enroll(h: Harness, options: WebSocket.ClientOptions = {}): Promise<{ agent: TestAgent; tmid: string; token: string }> {
  const agent = await connectAgent(h.url, options);
  agent.send({ t: 'hello', enrollKey: h.enrollKey, ...helloFacts });
  const welcome = await agent.next();
  expect(welcome.t).toBe('welcome');
  return { agent, tmid: welcome.tmid as string, token: welcome.token as string };
}

describe('agent server', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ helloTimeoutMs: 300 });
  });
  afterEach(async () => {
    await stopHarness(h);
  });

  it('enrolls a device with the tenant key, storing only a hash of its token', async () => {
    const { agent, tmid, token } = await enroll(h);
    expect(tmid).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
    expect(token.length).toBeGreaterThan(40);
    const device = h.store.devices.get(tmid)!;
    expect(device.supportId).toBe('T001');
    expect(device.computer).toBe(helloFacts.computer);
    expect(JSON.stringify(device)).not.toContain(token);
    expect(device.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    agent.close();
  });

  it('authenticates a known device with TMID and token and tells it where its seq stands', async () => {
    const first = await enroll(h);
    first.agent.send(makeBatch(1, 5));
    expect((await first.agent.next()).t).toBe('ack');
    first.agent.close();
    await first.agent.closed;

    const again = await connectAgent(h.url);
    again.send({ t: 'hello', tmid: first.tmid, token: first.token, ...helloFacts, agentVersion: '3.2.0' });
    const welcome = await again.next();
    expect(welcome).toMatchObject({ t: 'welcome', tmid: first.tmid, nextSeq: 6 });
    expect(welcome.token).toBeUndefined();
    expect(welcome.policy).toMatchObject({ maxUnackedBatches: expect.any(Number) });
    again.close();
  });

  it('acks a batch only once it is stored, and stores a resent batch once while acking it twice', async () => {
    const { agent, tmid } = await enroll(h);
    const batch = makeBatch(1, 10);
    agent.send(batch);
    expect(await agent.next()).toEqual({ t: 'ack', id: batch.id });
    agent.send(batch);
    expect(await agent.next()).toEqual({ t: 'ack', id: batch.id, dup: true });
    // The same id twice in one event turn: one commit, two acks.
    const twin = makeBatch(11, 3);
    agent.send(twin);
    agent.send(twin);
    const acks = [await agent.next(), await agent.next()];
    expect(acks.filter((a) => a.dup === true)).toHaveLength(1);

    await h.settled();
    const report = inspectStore(h.store);
    expect(report.batches).toBe(2);
    expect(report.batchIds).toBe(2);
    expect(report.events).toBe(13);
    expect(report.seqGaps).toBe(0);
    expect(h.store.log.trail(tmid)!.ranges).toEqual([[1, 13]]);
    expect(h.dispatched.map((d) => d.tmid)).toEqual([tmid, tmid]);
    agent.close();
  });

  it('keeps the seq ranges so gaps are visible', async () => {
    const { agent, tmid } = await enroll(h);
    agent.send(makeBatch(1, 5));
    agent.send(makeBatch(11, 5));
    await agent.next();
    await agent.next();
    await h.settled();
    expect(h.store.log.trail(tmid)!.ranges).toEqual([
      [1, 5],
      [11, 15],
    ]);
    expect(inspectStore(h.store).seqGaps).toBe(5);
    agent.close();
  });

  it('answers heartbeats and stores inventory', async () => {
    const { agent, tmid } = await enroll(h);
    agent.send({ t: 'hb', ts: 1 });
    expect((await agent.next()).t).toBe('hb');
    agent.send({ t: 'inv', model: 'ThinkPad X1', apps: [{ name: 'Office', version: '16.0' }] });
    agent.send({ t: 'hb' });
    await agent.next();
    await h.store.flushed();
    expect(h.store.devices.inventory(tmid)).toMatchObject({ model: 'ThinkPad X1' });
    agent.close();
  });

  it('refuses a batch id that another device already used', async () => {
    const a = await enroll(h);
    const b = await enroll(h);
    const id = batchId();
    a.agent.send(makeBatch(1, 2, id));
    await a.agent.next();
    b.agent.send(makeBatch(1, 2, id));
    expect(await b.agent.next()).toMatchObject({ t: 'error', code: 'batch_id_conflict' });
    a.agent.close();
  });

  type BadCase = [name: string, setup: 'fresh' | 'ready', send: (agent: TestAgent, h: Harness) => void, code: string, field?: string];
  const bad: BadCase[] = [
    ['malformed MessagePack', 'fresh', (a) => a.sendRaw(Uint8Array.from([0x82, 0xa1, 0x74, 0xc1])), 'malformed_frame'],
    ['truncated MessagePack', 'ready', (a) => a.sendRaw(encode(makeBatch(1, 3)).subarray(0, 40)), 'malformed_frame'],
    ['trailing bytes', 'fresh', (a) => a.sendRaw(Uint8Array.from([...encode({ t: 'hb' }), 0x01])), 'malformed_frame'],
    ['a frame that is not a map', 'fresh', (a) => a.sendRaw(encode([1, 2, 3])), 'malformed_frame'],
    ['a text frame', 'fresh', (a) => a.sendRaw('{"t":"hello"}', false), 'malformed_frame'],
    ['an unknown frame type', 'ready', (a) => a.send({ t: 'launch' }), 'unknown_frame_type', 't'],
    ['a frame without a type', 'fresh', (a) => a.send({ x: 1 }), 'unknown_frame_type'],
    ['a batch before hello', 'fresh', (a) => a.send(makeBatch(1, 1)), 'hello_required'],
    ['a heartbeat before hello', 'fresh', (a) => a.send({ t: 'hb' }), 'hello_required'],
    ['a wrong token', 'fresh', (a) => a.send({ t: 'hello', tmid: '00000000-0000-0000-0000-000000000000', token: 'nope', ...helloFacts }), 'auth_failed'],
    ['a wrong enrollment key', 'fresh', (a) => a.send({ t: 'hello', enrollKey: 'kek_wrong', ...helloFacts }), 'enroll_key_invalid'],
    ['a hello without computer', 'fresh', (a, hh) => a.send({ t: 'hello', enrollKey: hh.enrollKey, ...helloFacts, computer: undefined }), 'missing_field', 'computer'],
    ['a hello with ips not a list', 'fresh', (a, hh) => a.send({ t: 'hello', enrollKey: hh.enrollKey, ...helloFacts, ips: 'x' }), 'invalid_field', 'ips'],
    ['a hello without credentials', 'fresh', (a) => a.send({ t: 'hello', ...helloFacts }), 'missing_field', 'enrollKey'],
    ['a second hello', 'ready', (a, hh) => a.send({ t: 'hello', enrollKey: hh.enrollKey, ...helloFacts }), 'duplicate_hello'],
    ['a batch without id', 'ready', (a) => a.send({ ...makeBatch(1, 1), id: undefined }), 'missing_field', 'id'],
    ['a batch without events', 'ready', (a) => a.send({ ...makeBatch(1, 1), events: undefined }), 'missing_field', 'events'],
    ['a batch with a bad id', 'ready', (a) => a.send({ ...makeBatch(1, 1), id: 'XYZ' }), 'invalid_field', 'id'],
    ['a batch whose events do not match first..last', 'ready', (a) => a.send({ ...makeBatch(1, 3), last: 10 }), 'invalid_field', 'events'],
    ['a batch with last before first', 'ready', (a) => a.send({ ...makeBatch(5, 1), last: 4 }), 'invalid_field', 'last'],
    ['a batch with seq 0', 'ready', (a) => a.send({ ...makeBatch(1, 1), first: 0, last: 0 }), 'invalid_field', 'first'],
    ['a batch whose events is a map', 'ready', (a) => a.send({ ...makeBatch(1, 1), events: { a: 1 } }), 'invalid_field', 'events'],
  ];

  it.each(bad)('answers %s with an error frame and closes', async (_name, setup, sendBad, code, field) => {
    const agent = setup === 'fresh' ? await connectAgent(h.url) : (await enroll(h)).agent;
    sendBad(agent, h);
    const frame = await agent.next();
    expect(frame).toMatchObject({ t: 'error', code });
    expect(typeof frame.message).toBe('string');
    if (field !== undefined) expect(frame.field).toBe(field);
    const closed = await agent.closed;
    expect(closed.code).toBeGreaterThanOrEqual(1000);
    // The server keeps serving everyone else.
    const other = await enroll(h);
    other.agent.send(makeBatch(1, 1));
    expect((await other.agent.next()).t).toBe('ack');
    other.agent.close();
  });

  it('closes a connection whose hello never comes', async () => {
    const agent = await connectAgent(h.url);
    expect(await agent.next()).toMatchObject({ t: 'error', code: 'hello_timeout' });
    expect((await agent.closed).code).toBe(1008);
  });
});

describe('agent server frame size limit', () => {
  it('answers a frame over the limit with frame_too_large and close code 1009', async () => {
    const h = await startHarness({ maxFrameBytes: 64 * 1024 });
    try {
      const { agent } = await enroll(h);
      const big = makeBatch(1, 1);
      (big.events[0] as Record<string, unknown>).pad = 'x'.repeat(70 * 1024);
      agent.send(big);
      expect(await agent.next()).toMatchObject({ t: 'error', code: 'frame_too_large' });
      expect((await agent.closed).code).toBe(1009);
      expect(inspectStore(h.store).batches).toBe(0);
    } finally {
      await stopHarness(h);
    }
  });
});

describe('agent server over TLS', () => {
  it('serves wss:// when given a certificate and key', async () => {
    const certDir = mkdtempSync(join(tmpdir(), 'kiseki-tls-'));
    const cert = join(certDir, 'cert.pem');
    const key = join(certDir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    const h = await startHarness({ tlsCertFile: cert, tlsKeyFile: key });
    try {
      expect(h.url.startsWith('wss://')).toBe(true);
      const { agent } = await enroll(h, { ca: readFileSync(cert), rejectUnauthorized: false });
      const batch = makeBatch(1, 4);
      agent.send(batch);
      expect(await agent.next()).toEqual({ t: 'ack', id: batch.id });
      agent.close();
    } finally {
      await stopHarness(h);
      rmSync(certDir, { recursive: true, force: true });
    }
  });
});

describe('agent server shutdown', () => {
  it('acks every admitted batch, then says server_shutting_down, and everything acked is stored', async () => {
    const h = await startHarness();
    const { agent } = await enroll(h);
    for (let i = 0; i < 50; i++) agent.send(makeBatch(1 + i * 10, 10));
    await agent.next(); // at least one batch is in
    await h.server.close();
    const rest: string[] = [];
    for (;;) {
      const frame = await agent.next().catch(() => undefined);
      if (frame === undefined) break;
      rest.push(frame.t === 'error' ? (frame.code as string) : frame.t);
    }
    expect(rest[rest.length - 1]).toBe('server_shutting_down');
    const acked = 1 + rest.filter((t) => t === 'ack').length;
    expect((await agent.closed).code).toBe(1001);
    expect(inspectStore(h.store).batches).toBe(acked);
    await h.store.close();
    rmSync(h.dir, { recursive: true, force: true });
  });
});

describe('encodeAck', () => {
  it.each([
    ['ab'.repeat(16), false],
    ['ab'.repeat(16), true],
    ['short', false],
  ])('encodes {t:"ack", id:%s, dup:%s} exactly as a general MessagePack encoder would decode it', (id, dup) => {
    expect(decode(encodeAck(id, dup))).toEqual(dup ? { t: 'ack', id, dup: true } : { t: 'ack', id });
  });
});
