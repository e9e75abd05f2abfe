import { decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { isWellFormed, scanFrame } from './frame-scanner.js';

describe('scanFrame', () => {
  it('reads the envelope of a batch and locates its events without decoding them', () => {
    const events = [
      { ts: 1, k: 'proc.start', seq: 7, image: 'C:\\a.exe', nested: { x: [1, 2, { y: 'z' }] } },
      { ts: 2, k: 'net.conn', seq: 8, rip: '8.8.8.8', big: 2 ** 40, neg: -5, f: 1.5, bin: new Uint8Array([1, 2]) },
    ];
    const frame = encode({ t: 'batch', id: 'ab'.repeat(16), sentAt: 1_700_000_000_123, first: 7, last: 8, extra: [1, 2], events });
    const r = scanFrame(frame);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.envelope).toMatchObject({ t: 'batch', id: 'ab'.repeat(16), sentAt: 1_700_000_000_123, first: 7, last: 8, eventCount: 2, eventsIsArray: true });
    expect(decode(frame.subarray(r.envelope.eventsStart, r.envelope.eventsEnd))).toEqual(events);
  });

  it('accepts fields in any order and large arrays (array16 / array32 headers)', () => {
    const events = Array.from({ length: 70_000 }, (_, i) => i);
    const frame = encode({ events, last: 70_000, first: 1, t: 'batch' });
    const r = scanFrame(frame);
    expect(r.ok && r.envelope.eventCount).toBe(70_000);
  });

  it.each([
    [4, 4, true],
    [4, 5, false],
    [32, 32, true],
    [32, 33, false],
  ])('with maxDepth %i, a frame %i levels deep is %s (nesting_too_deep otherwise)', (maxDepth, depth, ok) => {
    // The frame map (1) holding `x`: depth - 1 nested arrays around 1.
    const inner = new Uint8Array(depth - 1 + 1).fill(0x91);
    inner[depth - 1] = 0x01;
    const head = encode({ t: 'inv', x: 0 });
    const frame = new Uint8Array(head.length - 1 + inner.length);
    frame.set(head.subarray(0, head.length - 1));
    frame.set(inner, head.length - 1);
    const r = scanFrame(frame, maxDepth);
    expect(r.ok ? 'ok' : r.reason).toBe(ok ? 'ok' : 'nesting_too_deep');
  });

  it('refuses 1,000,000 levels with nesting_too_deep, without overflowing the stack', () => {
    const frame = new Uint8Array(1_000_010).fill(0x91);
    frame.set(encode({ t: 'batch', events: 0 }).subarray(0, -1), 0);
    const r = scanFrame(frame);
    expect(r.ok ? 'ok' : r.reason).toBe('nesting_too_deep');
  });

  type Case = [name: string, bytes: number[] | Uint8Array, reason: string];
  const cases: Case[] = [
    ['empty input', [], 'malformed_frame'],
    ['not a map', [...encode([1, 2])], 'malformed_frame'],
    ['non-string key', [0x81, 0x01, 0x02], 'malformed_frame'],
    ['reserved byte 0xc1', [0x81, 0xa1, 0x74, 0xc1], 'malformed_frame'],
    ['truncated string', [0x81, 0xa1, 0x74, 0xa5, 0x61], 'malformed_frame'],
    ['array length beyond the input', [0x81, 0xa6, ...Buffer.from('events'), 0xdd, 0xff, 0xff, 0xff, 0xff], 'malformed_frame'],
    ['trailing bytes', [...encode({ t: 'hb' }), 0], 'malformed_frame'],
    ['invalid utf-8 in a key', [0x81, 0xa2, 0xff, 0xfe, 0x01], 'malformed_frame'],
    ['missing type', [...encode({ a: 1 })], 'unknown_frame_type'],
    ['non-string type', [...encode({ t: 5 })], 'unknown_frame_type'],
  ];
  it.each(cases)('rejects %s', (_name, bytes, reason) => {
    const r = scanFrame(Uint8Array.from(bytes));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe(reason);
  });

  it('survives deeply nested input without a stack overflow', () => {
    const depth = 100_000;
    const bytes = new Uint8Array(depth + 1);
    bytes.fill(0x91, 0, depth);
    bytes[depth] = 0x01;
    expect(isWellFormed(bytes)).toBe(true);
    expect(isWellFormed(bytes.subarray(0, depth))).toBe(false);
  });

  it('agrees with @msgpack/msgpack on random frames and every truncation of one', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const value = (d: number): unknown => {
      const r = rnd();
      if (d > 3 || r < 0.3) return Math.floor(rnd() * 1e6) - 5e5;
      if (r < 0.45) return 'str'.repeat(Math.floor(rnd() * 20));
      if (r < 0.55) return rnd() * 1000;
      if (r < 0.65) return null;
      if (r < 0.8) return Array.from({ length: Math.floor(rnd() * 5) }, () => value(d + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 5) }, (_, i) => [`k${i}`, value(d + 1)]));
    };
    const frame = encode({ t: 'batch', events: Array.from({ length: 20 }, () => value(0)) });
    expect(scanFrame(frame).ok).toBe(true);
    for (let cut = 0; cut < frame.length; cut++) {
      const part = frame.subarray(0, cut);
      let libOk = true;
      try {
        decode(part);
      } catch {
        libOk = false;
      }
      expect(isWellFormed(part)).toBe(libOk);
    }
  });
});
