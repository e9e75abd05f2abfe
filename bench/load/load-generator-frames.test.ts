import { decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { checkBatchEnvelope } from '../../ingest/frame-rules.js';
import { scanFrame } from '../../ingest/frame-scanner.js';
import {
  buildDetectionRuns,
  buildEventPool,
  buildFleetExtras,
  BENCH_UNLISTED_USB,
  createBatchFrameBuilder,
  createFrameReader,
  fastAckId,
  maskedFrame,
  type BatchSpec,
} from './load-generator-frames.js';

/** Undoes the client framing: returns the unmasked payload. */
function unframe(frame: Buffer): Buffer {
  expect(frame[0]).toBe(0x82);
  const b1 = frame[1] as number;
  expect(b1 & 0x80).toBe(0x80);
  let len = b1 & 0x7f;
  let p = 2;
  if (len === 126) {
    len = frame.readUInt16BE(2);
    p = 4;
  } else if (len === 127) {
    len = Number(frame.readBigUInt64BE(2));
    p = 10;
  }
  const mask = frame.subarray(p, p + 4);
  const payload = Buffer.from(frame.subarray(p + 4));
  expect(payload.length).toBe(len);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return payload;
}

const MASK = 0x5b;
const pool = buildEventPool({ seed: 3, events: 600, computers: 4, maskByte: MASK });
const runs = buildDetectionRuns(3, 2, MASK);
const builder = createBatchFrameBuilder(pool, runs, MASK);

const spec: BatchSpec = {
  id: '0123456789abcdef0123456789abcdef',
  sentAtMs: 1_710_000_000_123,
  first: 77,
  poolStart: 590, // wraps around the end of the pool
  poolCount: 25,
  run: 1,
  extra: -1,
  tsFromMs: 1_710_000_000_000,
  tsToMs: 1_710_000_001_000,
  shaTag: 'ab'.repeat(32),
};

describe('batch frames', () => {
  it('builds detection runs that end in av.detect with a patchable sha256', () => {
    expect(runs).toHaveLength(2);
    for (const r of runs) {
      expect(r.detections).toBe(1);
      expect(r.shaOffsets.length).toBeGreaterThan(0);
    }
  });

  it('is a valid kiseki batch frame with contiguous seqs, ordered timestamps and the patched sha256', () => {
    const payload = unframe(builder.build(spec));
    const scanned = scanFrame(new Uint8Array(payload));
    expect(scanned.ok).toBe(true);
    if (!scanned.ok) return;
    expect(checkBatchEnvelope(scanned.envelope)).toEqual({ ok: true });
    const frame = decode(payload) as { t: string; id: string; sentAt: number; first: number; last: number; events: Record<string, unknown>[] };
    const n = builder.eventCount(spec);
    expect(frame).toMatchObject({ t: 'batch', id: spec.id, sentAt: spec.sentAtMs, first: 77, last: 77 + n - 1 });
    expect(frame.events).toHaveLength(n);
    let lastTs = spec.tsFromMs;
    frame.events.forEach((e, i) => {
      expect(e.seq).toBe(77 + i);
      expect(e.ts as number).toBeGreaterThanOrEqual(lastTs);
      expect(e.ts as number).toBeLessThanOrEqual(spec.tsToMs);
      if (e.tsLast !== undefined) expect(e.tsLast as number).toBeGreaterThanOrEqual(e.ts as number);
      lastTs = e.ts as number;
    });
    const detect = frame.events.at(-1)!;
    expect(detect.k).toBe('av.detect');
    expect(detect.sha256).toBe(spec.shaTag);
    expect(frame.events.filter((e) => e.k === 'av.detect')).toHaveLength(1);
  });

  it('is byte-identical when rebuilt from the same spec (resends keep their content)', () => {
    expect(builder.build(spec).equals(builder.build(spec))).toBe(true);
  });

  it('appends a fleet extra after the detection run, with contiguous seqs (a failed-logon burst, a USB insertion)', () => {
    const extras = buildFleetExtras(12, MASK);
    const withExtras = createBatchFrameBuilder(pool, runs, MASK, [extras.logonBurst, extras.usbInsertion]);
    const burst = { ...spec, extra: 0 };
    const n = withExtras.eventCount(burst);
    expect(n).toBe(builder.eventCount(spec) + 12);
    const frame = decode(unframe(withExtras.build(burst))) as { first: number; last: number; events: Record<string, unknown>[] };
    expect(frame.events).toHaveLength(n);
    expect(frame.last).toBe(frame.first + n - 1);
    frame.events.forEach((e, i) => expect(e.seq).toBe(frame.first + i));
    const tail = frame.events.slice(-12);
    expect(tail.every((e) => e.k === 'logon' && e.ok === false && e.srcIp === '203.0.113.50')).toBe(true);
    expect(frame.events.at(-13)!.k).toBe('av.detect');

    const usb = decode(unframe(withExtras.build({ ...spec, run: -1, extra: 1, poolCount: 3 }))) as { events: Record<string, unknown>[] };
    expect(usb.events).toHaveLength(4);
    expect(usb.events[3]).toMatchObject({ k: 'usb.connect', vendorId: BENCH_UNLISTED_USB.vendorId, serial: BENCH_UNLISTED_USB.serial, seq: 77 + 3 });
  });

  it('handles one-event batches without a run', () => {
    const payload = unframe(builder.build({ ...spec, poolStart: 5, poolCount: 1, run: -1 }));
    const frame = decode(payload) as { events: unknown[]; first: number; last: number };
    expect(frame.events).toHaveLength(1);
    expect(frame.last).toBe(frame.first);
  });
});

describe('server frames', () => {
  it('splits a stream into frames across chunk boundaries and reads ack ids fast', () => {
    const id = 'f'.repeat(32);
    const ack = Buffer.from(encode({ t: 'ack', id }));
    const dup = Buffer.from(encode({ t: 'ack', id, dup: true }));
    const big = Buffer.alloc(70_000, 1);
    const frames = [ack, dup, big].map((p) => {
      const h = p.length < 126 ? Buffer.from([0x82, p.length]) : p.length < 65_536 ? Buffer.from([0x82, 126, p.length >> 8, p.length & 255]) : Buffer.concat([Buffer.from([0x82, 127]), Buffer.from(new BigUint64Array([BigInt(p.length)]).buffer).reverse()]);
      return Buffer.concat([h, p]);
    });
    const stream = Buffer.concat(frames);
    const seen: number[] = [];
    const ids: (string | undefined)[] = [];
    const reader = createFrameReader((_op, payload) => {
      seen.push(payload.length);
      ids.push(fastAckId(payload));
    });
    for (let i = 0; i < stream.length; i += 1000) expect(reader.push(stream.subarray(i, i + 1000))).toBe(true);
    expect(seen).toEqual([ack.length, dup.length, big.length]);
    expect(ids).toEqual([id, id, undefined]);
    expect(reader.pending()).toBe(0);
  });

  it('masks small client frames', () => {
    const f = maskedFrame(encode({ t: 'hb' }), 7);
    expect(decode(unframe(f))).toEqual({ t: 'hb' });
  });
});
