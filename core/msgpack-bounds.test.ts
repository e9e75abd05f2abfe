import { encode } from '@msgpack/msgpack';
import { Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeArrayBounded, measureValue, splitArray, valueDepth } from './msgpack-bounds.js';

const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
const unpack = (b: Uint8Array): unknown => unpackr.unpack(b);

function deep(depth: number): Uint8Array {
  const out = new Uint8Array(depth + 1).fill(0x91);
  out[depth] = 0x01;
  return out;
}

function arrayOf(elements: Uint8Array[]): Uint8Array {
  const parts = [Uint8Array.of(0x90 | elements.length), ...elements];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

describe('msgpack bounds', () => {
  it.each([
    [encode(1), 0],
    [encode('s'), 0],
    [encode({}), 1],
    [encode([]), 1],
    [encode({ a: [1, { b: 2 }] }), 3],
    [deep(40), 40],
  ])('measures depth without recursion (%#)', (bytes, depth) => {
    expect(measureValue(bytes, 0, 100)).toEqual({ end: bytes.length, depth });
  });

  it('measures 1,000,000 levels without overflowing the stack, and stops early past a limit', () => {
    expect(measureValue(deep(1_000_000), 0, Number.POSITIVE_INFINITY)?.depth).toBe(1_000_000);
    expect(measureValue(deep(1_000_000), 0, 64)?.depth).toBe(65);
  });

  it('refuses malformed values', () => {
    expect(measureValue(Uint8Array.of(0xc1), 0, 10)).toBeUndefined();
    expect(measureValue(Uint8Array.of(0x92, 0x01), 0, 10)).toBeUndefined();
    expect(measureValue(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff), 0, 10)).toBeUndefined();
  });

  it('splits an array into element spans, deep ones included', () => {
    const a = encode({ k: 'x' });
    const bytes = arrayOf([a, deep(500), encode(7)]);
    const spans = splitArray(bytes, 64)!;
    expect(spans.map((s) => s.depth)).toEqual([1, 500, 0]);
    expect(spans[2]!.end).toBe(bytes.length);
    expect(splitArray(encode({ a: 1 }), 64)).toBeUndefined();
    expect(splitArray(Uint8Array.of(0x92, 0x01), 64)).toBeUndefined();
  });

  it('decodes an array whose element is 100,000 deep: the others decoded, the deep one reported', () => {
    const bytes = arrayOf([encode({ seq: 1 }), deep(100_000), encode({ seq: 3 })]);
    for (const verify of [false, true]) {
      const r = decodeArrayBounded(bytes, unpack, 64, verify)!;
      expect(r.values[0]).toEqual({ seq: 1 });
      expect(r.values[1]).toBeUndefined();
      expect(r.values[2]).toEqual({ seq: 3 });
      expect(r.poison).toEqual([{ index: 1, reason: 'depth_exceeded', bytes: 100_001 }]);
    }
  });

  it('with verify, sets aside an element deeper than the bound even when the decoder would cope', () => {
    const bytes = arrayOf([deep(100), encode(1)]);
    expect(decodeArrayBounded(bytes, unpack, 64, false)!.poison).toEqual([]);
    expect(decodeArrayBounded(bytes, unpack, 64, true)!.poison).toEqual([{ index: 0, reason: 'depth_exceeded', bytes: 101 }]);
    expect(decodeArrayBounded(encode({ a: 1 }), unpack, 64, true)).toBeUndefined();
  });

  it('measures the depth of JavaScript values iteratively', () => {
    let v: unknown = 1;
    for (let i = 0; i < 200_000; i++) v = { v };
    expect(valueDepth(v, 16)).toBe(17);
    expect(valueDepth({ a: [1, { b: {} }] }, 16)).toBe(4);
    expect(valueDepth('s', 16)).toBe(0);
  });
});
