/**
 * Sends an imported trail to a running kiseki server exactly as an agent
 * would (docs/PROTOCOL.md): `hello` with the device's TMID and token, then
 * numbered `batch` frames from the `nextSeq` of the `welcome`, at most the
 * policy's window unacked, each acked only once the server has committed it.
 * So imported events take the same path as live ones: exactly-once storage,
 * seq ranges, shards, correlation, exports.
 *
 * Batch ids derive from the device, the seq range and the records' `rid`s, so
 * a batch resent after a lost connection is recognised by the server
 * (`ack` with `dup`) and never stored twice. A lost connection, a
 * `server_shutting_down` or `internal_error`, or an ack that does not come
 * within the bound is retried on a new connection (a bounded number of
 * times); any other protocol error is final.
 */
import { createHash } from 'node:crypto';
import { decode, encode } from '@msgpack/msgpack';
import WebSocket from 'ws';
import type { TrailEvent } from '../../core/contracts.js';
import type { ImportedEvent } from './sysmon-mapper.js';

export const DEFAULT_AGENT_URL = 'ws://127.0.0.1:9100/agent/v1';

/** Events per batch at most (docs/PROTOCOL.md; the server's policy may lower it). */
export const MAX_BATCH_EVENTS = 5000;
/** Encoded events per batch at most: well under the server's 4 MiB frame limit. */
export const MAX_BATCH_BYTES = 1024 * 1024;

export interface DeviceCredentials {
  tmid: string;
  token: string;
}

export interface HelloFacts {
  computer: string;
  agentVersion: string;
  os: string;
  ips: string[];
  macs: string[];
}

/** The server could not be reached at all. */
export class ServerUnreachableError extends Error {
  readonly url: string;
  constructor(url: string, message: string) {
    super(message);
    this.name = 'ServerUnreachableError';
    this.url = url;
  }
}

/** The server answered with a protocol `error` frame, or kept failing. */
export class ServerRejectedError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ServerRejectedError';
    this.code = code;
  }
}

/** Protocol errors worth a new connection: the server was stopping or could not commit. */
const TRANSIENT_CODES = new Set(['server_shutting_down', 'internal_error', 'hello_timeout']);

interface Frame {
  t: string;
  [k: string]: unknown;
}

interface Welcome {
  tmid: string;
  nextSeq: number;
  policy: { maxBatchEvents?: number; maxUnackedBatches?: number };
}

class Transient extends Error {}

function unreachableMessage(url: string, err: Error & { code?: string }): string {
  if (err.code === 'ECONNREFUSED') return `nothing listens at ${url}: start the server with \`kiseki start\` first`;
  return `cannot reach the kiseki agent endpoint at ${url} (${err.code ?? err.message}); is the server running (\`kiseki start\`) and the URL right?`;
}

/** One agent connection: frames are queued as they arrive and taken in order. */
class Session {
  readonly ws: WebSocket;
  private readonly frames: Frame[] = [];
  private closed: { code: number; reason: string } | undefined;
  private wake: (() => void) | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let frame: unknown;
      try {
        frame = isBinary ? decode(data) : undefined;
      } catch {
        frame = undefined;
      }
      this.frames.push(typeof frame === 'object' && frame !== null && typeof (frame as Frame).t === 'string' ? (frame as Frame) : { t: '?' });
      this.wake?.();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake?.();
    });
  }

  static open(url: string, timeoutMs: number): Promise<Session> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload: 16 * 1024 * 1024 });
      } catch (err) {
        reject(new ServerUnreachableError(url, `${url} is not a WebSocket URL (${(err as Error).message})`));
        return;
      }
      ws.once('open', () => {
        ws.removeAllListeners('error');
        ws.on('error', () => undefined);
        resolve(new Session(ws));
      });
      ws.once('error', (err) => reject(new ServerUnreachableError(url, unreachableMessage(url, err))));
    });
  }

  send(frame: unknown): void {
    this.ws.send(encode(frame), { binary: true });
  }

  sendBytes(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** The next frame; a closed connection or the bound passing is Transient. */
  async next(timeoutMs: number): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed !== undefined) throw new Transient(`the connection closed (${this.closed.code} ${this.closed.reason})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Transient(`no answer from the server within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.frames.shift()!;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }
}

function protocolError(frame: Frame): Error {
  const code = typeof frame.code === 'string' ? frame.code : 'unknown';
  const message = `the server refused: ${code}${typeof frame.message === 'string' ? ` (${frame.message})` : ''}`;
  return TRANSIENT_CODES.has(code) ? new Transient(message) : new ServerRejectedError(code, message);
}

/**
 * Checks that something speaking WebSocket listens at `url`.
 * @throws ServerUnreachableError with a message saying to start the server.
 */
export async function probeServer(url: string, timeoutMs = 5000): Promise<void> {
  const session = await Session.open(url, timeoutMs);
  session.close();
}

async function helloOn(session: Session, credentials: DeviceCredentials, facts: HelloFacts, timeoutMs: number): Promise<Welcome> {
  session.send({ t: 'hello', tmid: credentials.tmid, token: credentials.token, ...facts });
  for (;;) {
    const frame = await session.next(timeoutMs);
    if (frame.t === 'welcome') {
      const nextSeq = typeof frame.nextSeq === 'number' && Number.isSafeInteger(frame.nextSeq) && frame.nextSeq >= 1 ? frame.nextSeq : 1;
      const policy = typeof frame.policy === 'object' && frame.policy !== null ? (frame.policy as Welcome['policy']) : {};
      return { tmid: String(frame.tmid), nextSeq, policy };
    }
    if (frame.t === 'error') throw protocolError(frame);
    // hb or cmd before the welcome: not expected, ignored.
  }
}

export interface PlannedBatch {
  id: string;
  first: number;
  last: number;
  events: TrailEvent[];
}

/** A batch id that is the same whenever the same records get the same seq range on the same device. */
export function batchIdFor(tmid: string, first: number, last: number, rids: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`${tmid}\n${first}\n${last}\n`);
  for (const rid of rids) h.update(`${rid}\n`);
  return h.digest('hex').slice(0, 32);
}

/**
 * Numbers events from `nextSeq` and cuts them into batches of at most
 * `maxEvents` events and about `maxBytes` encoded bytes (an event larger
 * than that gets a batch of its own).
 */
export function planBatches(tmid: string, events: readonly ImportedEvent[], nextSeq: number, maxEvents = MAX_BATCH_EVENTS, maxBytes = MAX_BATCH_BYTES): PlannedBatch[] {
  const batches: PlannedBatch[] = [];
  let current: TrailEvent[] = [];
  let bytes = 0;
  const flush = () => {
    if (current.length === 0) return;
    const first = current[0]!.seq;
    const last = current[current.length - 1]!.seq;
    batches.push({ id: batchIdFor(tmid, first, last, current.map((e) => String(e.rid ?? ''))), first, last, events: current });
    current = [];
    bytes = 0;
  };
  let seq = nextSeq;
  for (const e of events) {
    const { ts, k, ...rest } = e;
    const numbered = { ts, k, seq: seq++, ...rest } as TrailEvent;
    const size = encode(numbered).byteLength;
    if (current.length > 0 && (current.length >= maxEvents || bytes + size > maxBytes)) flush();
    current.push(numbered);
    bytes += size;
  }
  flush();
  return batches;
}

export interface SendOptions {
  url: string;
  credentials: DeviceCredentials;
  facts: HelloFacts;
  /** In the order seq is to be assigned. */
  events: readonly ImportedEvent[];
  maxBatchEvents?: number;
  maxBatchBytes?: number;
  /** Bound on each wait for a frame (welcome, ack), ms; default 30 000. */
  frameTimeoutMs?: number;
  /** Connections tried before giving up; default 4. */
  maxAttempts?: number;
  /** Pause before the first reconnect, doubled each time, ms; default 250. */
  retryDelayMs?: number;
}

export interface SendResult {
  /** The server's `nextSeq` when the trail was numbered. */
  nextSeq: number;
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  batches: number;
  batchesAcked: number;
  /** Acks with `dup`: batches the server already held (a resend after a lost connection). */
  duplicateAcks: number;
  reconnects: number;
  batchIds: string[];
}

/**
 * Sends `events` as the device `credentials` names and resolves once every
 * batch is acked. An empty trail still says hello (and gets the nextSeq).
 * @throws ServerUnreachableError, ServerRejectedError.
 */
export async function sendTrail(options: SendOptions): Promise<SendResult> {
  const frameTimeoutMs = options.frameTimeoutMs ?? 30_000;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const retryDelayMs = options.retryDelayMs ?? 250;
  let plan: PlannedBatch[] | undefined;
  let nextSeq = 1;
  const acked = new Set<string>();
  const encoded = new Map<string, Uint8Array>();
  let duplicateAcks = 0;
  let lastProblem = '';

  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, retryDelayMs * 2 ** (attempt - 1)));
    let session: Session;
    try {
      session = await Session.open(options.url, frameTimeoutMs);
    } catch (err) {
      // Nothing listening on the first try: the server is not running. Later: it may be restarting.
      if (attempt === 0) throw err;
      lastProblem = (err as Error).message;
      continue;
    }
    try {
      const welcome = await helloOn(session, options.credentials, options.facts, frameTimeoutMs);
      if (plan === undefined) {
        nextSeq = welcome.nextSeq;
        const maxEvents = Math.min(options.maxBatchEvents ?? MAX_BATCH_EVENTS, welcome.policy.maxBatchEvents ?? MAX_BATCH_EVENTS);
        plan = planBatches(options.credentials.tmid, options.events, nextSeq, Math.max(1, maxEvents), options.maxBatchBytes ?? MAX_BATCH_BYTES);
      }
      const window = Math.max(1, Math.min(64, welcome.policy.maxUnackedBatches ?? 8));
      const pending = plan.filter((b) => !acked.has(b.id));
      const inflight = new Set<string>();
      let i = 0;
      while (i < pending.length || inflight.size > 0) {
        while (i < pending.length && inflight.size < window) {
          const b = pending[i++]!;
          let bytes = encoded.get(b.id);
          if (bytes === undefined) {
            bytes = encode({ t: 'batch', id: b.id, sentAt: Date.now(), first: b.first, last: b.last, events: b.events });
            encoded.set(b.id, bytes);
          }
          session.sendBytes(bytes);
          inflight.add(b.id);
        }
        const frame = await session.next(frameTimeoutMs);
        if (frame.t === 'ack' && typeof frame.id === 'string' && inflight.delete(frame.id)) {
          acked.add(frame.id);
          encoded.delete(frame.id);
          if (frame.dup === true) duplicateAcks++;
        } else if (frame.t === 'error') {
          throw protocolError(frame);
        }
        // hb, cmd (an imported device runs no agent: commands stay queued), stray acks: ignored.
      }
      session.close();
      return {
        nextSeq,
        firstSeq: plan[0]?.first,
        lastSeq: plan.at(-1)?.last,
        batches: plan.length,
        batchesAcked: acked.size,
        duplicateAcks,
        reconnects: attempt,
        batchIds: plan.map((b) => b.id),
      };
    } catch (err) {
      session.close();
      if (!(err instanceof Transient)) throw err;
      lastProblem = err.message;
    }
  }
  throw new ServerRejectedError('gave_up', `gave up after ${maxAttempts} connections: ${lastProblem}`);
}
