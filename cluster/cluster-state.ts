/**
 * A read-only look at what a cluster holds in NATS: every message of the
 * batch stream (the store of record of raw batches), every alert of the
 * `kiseki-alerts` bucket and who holds the virtual-shard leases. For tests
 * and operators checking exactly-once from outside the nodes; it creates
 * nothing (the nodes own the layout, nats.ts).
 */
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { KisekiError } from '../core/errors.js';
import { decodeAlertEntry, type AlertBucketEntry } from './alert-publisher.js';
import { decodeBatchMessage } from './batch-message.js';
import { ALERT_BUCKET, BATCH_STREAM, boundedNatsCall, LEASE_BUCKET, natsServers } from './nats.js';

/** One message of the batch stream, without its events. */
export interface StreamBatch {
  /** Stream sequence. */
  seq: number;
  /** Batch id (the message's `Nats-Msg-Id`). */
  id: string;
  tmid: string;
  first: number;
  last: number;
  eventCount: number;
}

export interface ClusterState {
  /** Messages the stream reports holding. */
  streamMessages: number;
  /** Bytes the stream reports holding (per replica). */
  streamBytes: number;
  /** Every message of the stream, in sequence order. */
  batches: StreamBatch[];
  /** Every value of `kiseki-alerts`, by key. */
  alerts: Map<string, AlertBucketEntry>;
  /** Node id → virtual shards it holds a lease on. */
  leases: Record<string, number>;
}

export interface ClusterStateOptions {
  /** Comma-separated NATS URLs. */
  servers: string;
  /** Longest wait for the whole read, ms (default 60,000). */
  timeoutMs?: number;
  /** What to read (default all); a part left out reads as empty (the stream's message count is always read). */
  parts?: readonly ('stream' | 'alerts' | 'leases')[];
}

/** The live (PUT) entries of a bucket under `filter`: keys listed first, then each read. */
async function putEntries(kv: KV, filter: string): Promise<KvEntry[]> {
  const keys: string[] = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  const out: KvEntry[] = [];
  for (const k of keys) {
    const e = await kv.get(k);
    if (e !== null && e.operation === 'PUT') out.push(e);
  }
  return out;
}

/**
 * Reads the stream, the alert bucket and the leases.
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when NATS does not answer, the layout is missing, or the read takes longer than `timeoutMs`.
 */
export async function readClusterState(options: ClusterStateOptions): Promise<ClusterState> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const parts = new Set(options.parts ?? ['stream', 'alerts', 'leases']);
  const nc = await connect({ servers: natsServers(options.servers), name: 'kiseki-cluster-state', timeout: 10_000 }).catch((err: unknown) => {
    throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `no NATS server answers: ${err instanceof Error ? err.message : String(err)}` }, { cause: err });
  });
  try {
    const read = (async (): Promise<ClusterState> => {
      const jsm = await jetstreamManager(nc, { timeout: 10_000 });
      const js = jetstream(nc, { timeout: 10_000 });
      const info = await jsm.streams.info(BATCH_STREAM);
      const batches: StreamBatch[] = [];
      if (parts.has('stream') && info.state.messages > 0) {
        const consumer = await js.consumers.get(BATCH_STREAM);
        const messages = await consumer.consume({ max_messages: 256 });
        for await (const m of messages) {
          const b = decodeBatchMessage(m.data);
          batches.push({ seq: m.seq, id: b.id, tmid: b.tmid, first: b.first, last: b.last, eventCount: b.eventCount });
          if (m.seq >= info.state.last_seq || m.info.pending === 0) break;
        }
        messages.stop();
      }
      const kvm = new Kvm(js);
      const alerts = new Map<string, AlertBucketEntry>();
      if (parts.has('alerts')) {
        for (const e of await putEntries(await kvm.open(ALERT_BUCKET), 'alert.>')) alerts.set(e.key, decodeAlertEntry(e.value));
      }
      const leases: Record<string, number> = {};
      if (parts.has('leases')) {
        for (const e of await putEntries(await kvm.open(LEASE_BUCKET), 'vshard.*')) leases[e.string()] = (leases[e.string()] ?? 0) + 1;
      }
      return { streamMessages: info.state.messages, streamBytes: info.state.bytes, batches, alerts, leases };
    })();
    return await boundedNatsCall(read, timeoutMs, 'cluster state').catch((err: unknown) => {
      throw err instanceof KisekiError ? err : new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `cluster state: ${err instanceof Error ? err.message : String(err)}` }, { cause: err });
    });
  } finally {
    await nc.close().catch(() => undefined);
  }
}
