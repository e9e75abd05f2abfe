/**
 * The body of one stream message: a batch as ingest admitted it, with the
 * receipt time, so a shard node stores exactly what the embedded committer
 * would have stored. MessagePack: `[tmid, id, sentAt, recvAt, first, last,
 * eventCount, events]`, and with a ninth element `1` the events are the
 * agent's bytes compressed with zstd (what ingest nodes publish: the stream
 * is the largest disk of a cluster, docs/CLUSTER.md "Capacity model").
 * Messages of eight elements (the agent's bytes as received, written before
 * compression) are still read.
 */
import { decode, encode } from '@msgpack/msgpack';
import { compress, decompress } from 'zstd-napi';
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

/** The ninth element of a message whose events are zstd-compressed. */
const ZSTD_EVENTS = 1;

/** Encodes a batch for the stream, its events compressed at `zstdLevel` (absent: as received). */
export function encodeBatchMessage(b: BatchMessage, zstdLevel?: number): Uint8Array {
  if (zstdLevel === undefined) return encode([b.tmid, b.id, b.sentAt, b.recvAt, b.first, b.last, b.eventCount, b.events]);
  const events = compress(b.events, { compressionLevel: zstdLevel });
  return encode([b.tmid, b.id, b.sentAt, b.recvAt, b.first, b.last, b.eventCount, events, ZSTD_EVENTS]);
}

/**
 * Decodes a stream message; the events, decompressed when they were, get a buffer of their own (the shard pool
 * transfers it to a worker).
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when the body is not a batch message (a foreign publisher on the subject).
 */
export function decodeBatchMessage(bytes: Uint8Array): BatchMessage {
  const v = decode(bytes) as unknown;
  const valid =
    Array.isArray(v) &&
    (v.length === 8 || (v.length === 9 && v[8] === ZSTD_EVENTS)) &&
    typeof v[0] === 'string' &&
    typeof v[1] === 'string' &&
    v[7] instanceof Uint8Array;
  if (!valid) throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: 'a message on the batch stream is not a kiseki batch' });
  let raw = v[7] as Uint8Array;
  if (v.length === 9) {
    try {
      raw = decompress(raw);
    } catch (err) {
      throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: 'the events of a message on the batch stream are not valid zstd' }, { cause: err });
    }
  }
  // Transferred to a worker by the shard pool: the events need an ArrayBuffer no other view shares.
  let events = raw;
  if (raw.byteOffset !== 0 || raw.byteLength !== raw.buffer.byteLength) {
    events = new Uint8Array(new ArrayBuffer(raw.byteLength));
    events.set(raw);
  }
  return { tmid: v[0] as string, id: v[1] as string, sentAt: Number(v[2]), recvAt: Number(v[3]), first: Number(v[4]), last: Number(v[5]), eventCount: Number(v[6]), events };
}
