/** The stream's batch message: compressed and uncompressed events, and refusals. */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { decodeBatchMessage, encodeBatchMessage, type BatchMessage } from './batch-message.js';

const events = encode(Array.from({ length: 50 }, (_, i) => ({ ts: 1_700_000_000_000 + i, k: 'proc.start', seq: i + 1, image: 'C:\\Windows\\System32\\cmd.exe' })));
const batch: BatchMessage = { tmid: 'TMID-1', id: 'b-1', sentAt: 1, recvAt: 2, first: 1, last: 50, eventCount: 50, events };

describe('batch messages', () => {
  it('round-trips a batch with zstd-compressed events, smaller than the events themselves', () => {
    const body = encodeBatchMessage(batch, 1);
    expect(body.byteLength).toBeLessThan(events.byteLength / 3);
    const back = decodeBatchMessage(body);
    expect(back).toEqual({ ...batch, events: expect.any(Uint8Array) });
    expect(Buffer.from(back.events).equals(Buffer.from(events))).toBe(true);
    // Its own ArrayBuffer: the shard pool transfers it to a worker.
    expect(back.events.byteOffset).toBe(0);
    expect(back.events.byteLength).toBe(back.events.buffer.byteLength);
  });

  it('still reads a message of eight elements (events as received)', () => {
    const back = decodeBatchMessage(encodeBatchMessage(batch));
    expect(Buffer.from(back.events).equals(Buffer.from(events))).toBe(true);
    expect(back.events.byteLength).toBe(back.events.buffer.byteLength);
  });

  it('refuses what is not a kiseki batch, and events that are not zstd', () => {
    expect(() => decodeBatchMessage(encode(['x']))).toThrow(expect.objectContaining({ code: 'ERR_CLUSTER_UNAVAILABLE' }));
    expect(() => decodeBatchMessage(encode(['T', 'b', 1, 2, 1, 1, 1, new Uint8Array([1, 2, 3]), 2]))).toThrow(expect.objectContaining({ code: 'ERR_CLUSTER_UNAVAILABLE' }));
    expect(() => decodeBatchMessage(encode(['T', 'b', 1, 2, 1, 1, 1, new Uint8Array([1, 2, 3]), 1]))).toThrow(expect.objectContaining({ code: 'ERR_CLUSTER_UNAVAILABLE' }));
  });
});
