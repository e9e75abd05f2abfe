/**
 * The body of one stream message: a batch as ingest admitted it, with the
 * receipt time, so a shard node stores exactly what the embedded committer
 * would have stored. MessagePack, the events kept as the agent's bytes.
 */
import { decode, encode } from '@msgpack/msgpack';
import { KisekiError } from '../core/errors.js';

export interface BatchMessage {
  tmid: string;
  id: string;
  sentAt: number;
  recvAt: number;
  first: number;
  last: number;
  eventCount: number;
  /** The MessagePack events array, as received. */
  events: Uint8Array;
}

/** Encodes a batch for the stream. */
export function encodeBatchMessage(b: BatchMessage): Uint8Array {
  return encode([b.tmid, b.id, b.sentAt, b.recvAt, b.first, b.last, b.eventCount, b.events]);
}

/**
 * Decodes a stream message; the events get a buffer of their own (the shard pool transfers it to a worker).
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when the body is not a batch message (a foreign publisher on the subject).
 */
export function decodeBatchMessage(bytes: Uint8Array): BatchMessage {
  const v = decode(bytes) as unknown;
  if (!Array.isArray(v) || v.length !== 8 || typeof v[0] !== 'string' || typeof v[1] !== 'string' || !(v[7] instanceof Uint8Array)) {
    throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: 'a message on the batch stream is not a kiseki batch' });
  }
  const raw = v[7];
  const events = new Uint8Array(new ArrayBuffer(raw.byteLength));
  events.set(raw);
  return { tmid: v[0], id: v[1], sentAt: Number(v[2]), recvAt: Number(v[3]), first: Number(v[4]), last: Number(v[5]), eventCount: Number(v[6]), events };
}
