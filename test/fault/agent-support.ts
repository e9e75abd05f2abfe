/**
 * Helpers of the agent-path fault tests (issue 11): enrolling a device over a
 * real WebSocket, a bystander agent whose batches must keep being acked while
 * another agent misbehaves, and hostile MessagePack built byte by byte (the
 * encoders refuse to produce it).
 */
import { encode } from '@msgpack/msgpack';
import { expect } from 'vitest';
import { inspectStore } from '../../storage/index.js';
import { connectAgent, helloFacts, makeBatch, type TestAgent } from '../support/agent-client.js';
import type { AgentHarness } from '../support/agent-harness.js';

export interface EnrolledAgent {
  agent: TestAgent;
  tmid: string;
  token: string;
}

/** Enrolls a new device with the harness tenant's key. */
export async function enroll(h: AgentHarness, computer = helloFacts.computer): Promise<EnrolledAgent> {
  const agent = await connectAgent(h.url);
  agent.send({ t: 'hello', enrollKey: h.enrollKey, ...helloFacts, computer });
  const welcome = await agent.next();
  expect(welcome.t).toBe('welcome');
  return { agent, tmid: welcome.tmid as string, token: welcome.token as string };
}

/** Connects an already enrolled device again with its TMID and token; resolves with the welcome. */
export async function reconnect(h: AgentHarness, tmid: string, token: string): Promise<{ agent: TestAgent; nextSeq: number }> {
  const agent = await connectAgent(h.url);
  agent.send({ t: 'hello', tmid, token, ...helloFacts });
  const welcome = await agent.next();
  expect(welcome.t).toBe('welcome');
  return { agent, nextSeq: welcome.nextSeq as number };
}

/** Sends one small batch from `first` and expects its (non-duplicate) ack: the server is up and acking. */
export async function expectAcked(agent: TestAgent, first: number, count = 3): Promise<void> {
  const batch = makeBatch(first, count);
  agent.send(batch);
  expect(await agent.next()).toEqual({ t: 'ack', id: batch.id });
}

/** `depth` nested one-element arrays around 1: MessagePack nested exactly `depth` levels. */
export function deepArrayBytes(depth: number): Uint8Array {
  const out = new Uint8Array(depth + 1).fill(0x91);
  out[depth] = 0x01;
  return out;
}

/**
 * `value` encoded, with its last field's value (which must encode to the
 * single byte 0x00, e.g. `0`) replaced by `depth` nested arrays.
 */
export function withDeepTail(value: Record<string, unknown>, depth: number): Uint8Array {
  const head = encode(value);
  if (head[head.length - 1] !== 0x00) throw new Error('the last field must be 0');
  const deep = deepArrayBytes(depth);
  const out = new Uint8Array(head.length - 1 + deep.length);
  out.set(head.subarray(0, head.length - 1));
  out.set(deep, head.length - 1);
  return out;
}

/** A MessagePack array of already encoded elements. */
export function arrayOf(elements: Uint8Array[]): Uint8Array {
  const header = elements.length < 16 ? Uint8Array.of(0x90 | elements.length) : Uint8Array.of(0xdc, elements.length >> 8, elements.length & 0xff);
  const total = header.length + elements.reduce((n, e) => n + e.length, 0);
  const out = new Uint8Array(total);
  out.set(header);
  let p = header.length;
  for (const e of elements) {
    out.set(e, p);
    p += e.length;
  }
  return out;
}

/**
 * A batch frame whose event at `poisonIndex` carries a field nested `depth`
 * levels, built by hand (encoders refuse such depth).
 */
export function poisonBatchFrame(id: string, first: number, count: number, poisonIndex: number, depth: number): Uint8Array {
  const events: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const ev = { ts: 1_700_000_000_000 + i, k: 'proc.start', seq: first + i, data: 0 };
    events.push(i === poisonIndex ? withDeepTail(ev, depth) : encode(ev));
  }
  const head = encode({ t: 'batch', id, sentAt: 1_700_000_000_000, first, last: first + count - 1 });
  // Add an `events` field to the map: bump the fixmap count and append key + array.
  head[0] = head[0]! + 1;
  const key = encode('events');
  const arr = arrayOf(events);
  const out = new Uint8Array(head.length + key.length + arr.length);
  out.set(head);
  out.set(key, head.length);
  out.set(arr, head.length + key.length);
  return out;
}

/** What `kiseki inspect` reports, once every acked batch is in LMDB: every acked batch stored exactly once and no seq stored twice. */
export async function expectStoredOnce(h: AgentHarness, batches: number, events: number): Promise<void> {
  await h.settled();
  const r = inspectStore(h.store);
  expect({ batches: r.batches, batchIds: r.batchIds, events: r.events }).toEqual({ batches, batchIds: batches, events });
}
