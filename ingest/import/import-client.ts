/**
 * Sends an imported trail to a running kiseki server exactly as an agent
 * would, through the one agent protocol client (agent/, docs/PROTOCOL.md):
 * `hello` with the device's TMID and token, then numbered `batch` frames from
 * the `nextSeq` of the first `welcome`, at most the policy's window unacked,
 * each acked only once the server has committed it. So imported events take
 * the same path as live ones: exactly-once storage, seq ranges, shards,
 * correlation, exports.
 *
 * Batch ids derive from the device, the seq range and the records' `rid`s, so
 * a batch resent after a lost connection is recognised by the server
 * (`ack` with `dup`) and never stored twice. A lost connection, a
 * `server_shutting_down` or `internal_error`, or an ack that does not come
 * within the bound is retried on a new connection (a bounded number of
 * times); any other protocol error is final.
 */
import { createHash } from 'node:crypto';
import { encode } from '@msgpack/msgpack';
import { createProtocolClient, probeAgentEndpoint, type HelloFacts } from '../../agent/index.js';
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

export type { HelloFacts };

/**
 * Checks that something speaking WebSocket listens at `url`.
 * @throws KisekiError ERR_AGENT_UNREACHABLE, whose message says to start the server.
 */
export function probeServer(url: string, timeoutMs = 5000): Promise<void> {
  return probeAgentEndpoint(url, timeoutMs);
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
  /** Bound on each wait for a frame (welcome, next ack), ms; default 30 000. */
  frameTimeoutMs?: number;
  /** Connections in a row that deliver nothing before giving up; default 4. */
  maxAttempts?: number;
  /** Pause before the first reconnect (jittered), doubled each time, ms; default 250. */
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
 * Commands the server queued for the device are left unanswered: an imported
 * device runs no agent.
 * @throws KisekiError ERR_AGENT_UNREACHABLE (nothing listens on the first
 *   try), ERR_AGENT_REJECTED (a final protocol error, `details.code`),
 *   ERR_AGENT_GAVE_UP (`maxAttempts` connections in a row delivered nothing).
 */
export async function sendTrail(options: SendOptions): Promise<SendResult> {
  let plan: PlannedBatch[] | undefined;
  let nextSeq = 1;
  const client = createProtocolClient({
    url: options.url,
    credentials: options.credentials,
    facts: options.facts,
    maxUnacked: 64,
    helloTimeoutMs: options.frameTimeoutMs ?? 30_000,
    ackTimeoutMs: options.frameTimeoutMs ?? 30_000,
    reconnectDelayMs: 2 * (options.retryDelayMs ?? 250),
    maxAttempts: Math.max(1, options.maxAttempts ?? 4),
    failFastWhenUnreachable: true,
    // The trail is already in memory as objects: encode each batch only when it goes out.
    encodeAt: 'send',
    handlers: {
      onWelcome(welcome) {
        // The trail is numbered once, from the first welcome; later welcomes resend what is unacked.
        if (plan !== undefined) return;
        nextSeq = welcome.nextSeq;
        const maxEvents = Math.min(options.maxBatchEvents ?? MAX_BATCH_EVENTS, welcome.policy.maxBatchEvents || MAX_BATCH_EVENTS);
        plan = planBatches(options.credentials.tmid, options.events, nextSeq, Math.max(1, maxEvents), options.maxBatchBytes ?? MAX_BATCH_BYTES);
        for (const b of plan) client.enqueue(b);
      },
    },
  });
  client.start();
  try {
    await client.drained();
  } finally {
    await client.close();
  }
  const stats = client.stats();
  const batches = plan ?? [];
  return {
    nextSeq,
    firstSeq: batches[0]?.first,
    lastSeq: batches.at(-1)?.last,
    batches: batches.length,
    batchesAcked: stats.batchesAcked,
    duplicateAcks: stats.duplicateAcks,
    reconnects: stats.reconnects,
    batchIds: batches.map((b) => b.id),
  };
}
