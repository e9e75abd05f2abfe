/**
 * The wire side of the load generator, built so that sending a batch costs
 * one buffer copy and a few integer writes: trail events are MessagePack-
 * encoded once at start-up into an event pool (fixed-width `ts`, `seq` and
 * `tsLast` slots, standard MessagePack: `uint 64` / `uint 32`), already XOR-
 * masked for the WebSocket client-to-server direction, and a batch frame is
 * the WebSocket header, a pre-masked envelope, a slice of the pool and
 * (at the scenario's detection rate) one detection run, with only the batch
 * id, `sentAt`, `first`, `last`, the events' `seq` / `ts` / `tsLast` and the
 * detected file's SHA-256 patched in place.
 *
 * Masking: every client frame carries a mask key whose four bytes are equal
 * (one random non-zero byte per client process). The wire format allows any
 * key; RFC 6455 asks browsers for unpredictable keys to protect proxies, which
 * does not apply on loopback. With equal bytes the masked pool is valid at any
 * offset, so slices never need re-masking.
 *
 * The SHA-256 of a detection is patched per batch because the engine
 * deduplicates alerts per device and file for 72 h: without it, replaying a
 * template would produce one report and then only repeats.
 */
import { createHash, randomBytes } from 'node:crypto';
import { encode } from '@msgpack/msgpack';
import type { TrailEvent } from '../../core/contracts.js';
import { createTrailGenerator, failedLogonBurst, usbInsertEvent } from '../../agent/index.js';
import { KisekiError } from '../../core/errors.js';

/** Events encoded back to back, pre-masked, with the offsets to patch. */
export interface EncodedEvents {
  /** Masked bytes of all events. */
  readonly bytes: Buffer;
  /** Byte offset of event i; `starts[count]` is the total length. */
  readonly starts: Int32Array;
  /** Offset of the 8-byte `ts` value relative to the event's start. */
  readonly tsOff: Int32Array;
  /** Offset of the 4-byte `seq` value relative to the event's start. */
  readonly seqOff: Int32Array;
  /** Offset of the 8-byte `tsLast` value relative to the event's start, or -1. */
  readonly tsLastOff: Int32Array;
  /** `tsLast - ts` of the original event, ms. */
  readonly tsLastDeltaMs: Int32Array;
  /** Absolute offsets (into `bytes`) of 64-byte SHA-256 strings to replace per batch. */
  readonly shaOffsets: Int32Array;
  /** `av.detect` events among them. */
  readonly detections: number;
  readonly count: number;
  /** Events per kind family (the part of `k` before the first dot). */
  readonly mix: Record<string, number>;
}

const HEX = Buffer.from('0123456789abcdef');

function writeMapHeader(parts: Buffer[], n: number): void {
  if (n < 16) parts.push(Buffer.from([0x80 | n]));
  else {
    const b = Buffer.alloc(3);
    b[0] = 0xde;
    b.writeUInt16BE(n, 1);
    parts.push(b);
  }
}

function u64Slot(): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0xcf;
  return b;
}

function u32Slot(): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 0xce;
  return b;
}

function family(kind: unknown): string {
  if (typeof kind !== 'string') return '?';
  const dot = kind.indexOf('.');
  return dot < 0 ? kind : kind.slice(0, dot);
}

/**
 * Encodes events as standard MessagePack maps with fixed-width `ts`, `seq`
 * and `tsLast`, and masks the result with `maskByte`.
 * @param shaToPatch SHA-256 strings whose occurrences (field `sha256`) are recorded in `shaOffsets`.
 */
export function encodeEvents(events: readonly TrailEvent[], maskByte: number, shaToPatch: ReadonlySet<string> = new Set()): EncodedEvents {
  const parts: Buffer[] = [];
  const n = events.length;
  const starts = new Int32Array(n + 1);
  const tsOff = new Int32Array(n);
  const seqOff = new Int32Array(n);
  const tsLastOff = new Int32Array(n).fill(-1);
  const tsLastDeltaMs = new Int32Array(n);
  const shaOffsets: number[] = [];
  const mix: Record<string, number> = {};
  let detections = 0;
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const ev = events[i] as TrailEvent;
    starts[i] = pos;
    const fam = family(ev.k);
    mix[fam] = (mix[fam] ?? 0) + 1;
    if (ev.k === 'av.detect') detections++;
    const entries = Object.entries(ev).filter(([, v]) => v !== undefined);
    const before = parts.length;
    writeMapHeader(parts, entries.length);
    let local = (parts[before] as Buffer).length;
    for (const [key, value] of entries) {
      const k = Buffer.from(encode(key));
      parts.push(k);
      local += k.length;
      if (key === 'ts' || key === 'tsLast') {
        if (key === 'ts') tsOff[i] = local + 1;
        else {
          tsLastOff[i] = local + 1;
          tsLastDeltaMs[i] = Math.max(0, Math.min(3_600_000, (value as number) - ev.ts));
        }
        parts.push(u64Slot());
        local += 9;
      } else if (key === 'seq') {
        seqOff[i] = local + 1;
        parts.push(u32Slot());
        local += 5;
      } else {
        const v = Buffer.from(encode(value));
        if (key === 'sha256' && typeof value === 'string' && value.length === 64 && shaToPatch.has(value)) {
          // A 64-byte string is `d9 40` + bytes.
          shaOffsets.push(pos + local + 2);
        }
        parts.push(v);
        local += v.length;
      }
    }
    pos += local;
  }
  starts[n] = pos;
  const bytes = Buffer.concat(parts, pos);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] as number) ^ maskByte;
  return { bytes, starts, tsOff, seqOff, tsLastOff, tsLastDeltaMs, shaOffsets: Int32Array.from(shaOffsets), detections, count: n, mix };
}

/** Options of {@link buildEventPool}. */
export interface EventPoolOptions {
  seed: number;
  /** Events in the pool. Default 16,384 (~5 MB). */
  events?: number;
  /** Computers (trail generators) the pool is drawn from. Default 32. */
  computers?: number;
  /** Share per kind family; absent: the generator's natural mix. */
  mix?: Record<string, number>;
  maskByte: number;
}

/**
 * Builds the pool of ordinary (non-detection) events. With `mix`, events are
 * drawn per family in the requested proportions, keeping each family's order.
 */
export function buildEventPool(options: EventPoolOptions): EncodedEvents {
  const total = Math.max(16, options.events ?? 16_384);
  const computers = Math.max(1, options.computers ?? 32);
  const perComputer = Math.ceil(total / computers);
  const drawn: TrailEvent[] = [];
  const t0 = Date.UTC(2024, 2, 12, 0, 0, 0);
  for (let c = 0; c < computers; c++) {
    const gen = createTrailGenerator({ seed: (options.seed * 7919 + c) >>> 0, computer: `POOL-${c}`, detectRate: 0 });
    // A mix asks for more raw events so rare families can be filled.
    const want = options.mix ? perComputer * 3 : perComputer;
    for (let done = 0; done < want; done += 500) drawn.push(...gen.next(Math.min(500, want - done), 1 + done, t0 + done * 20));
  }
  let events = drawn;
  if (options.mix) {
    const byFamily = new Map<string, TrailEvent[]>();
    for (const e of drawn) {
      const f = family(e.k);
      let list = byFamily.get(f);
      if (!list) byFamily.set(f, (list = []));
      list.push(e);
    }
    const weights = Object.entries(options.mix).filter(([f]) => (byFamily.get(f)?.length ?? 0) > 0);
    if (weights.length === 0) throw new KisekiError('ERR_INVALID_INPUT', { reason: 'eventMix names no family the generator produces', families: [...byFamily.keys()] });
    const sum = weights.reduce((s, [, w]) => s + w, 0);
    const taken = new Map<string, number>();
    events = [];
    // Deterministic interleave: each position goes to the family furthest behind its share.
    for (let i = 0; i < total; i++) {
      let best = (weights[0] as [string, number])[0];
      let bestDeficit = Number.NEGATIVE_INFINITY;
      for (const [f, w] of weights) {
        const deficit = (w / sum) * (i + 1) - (taken.get(f) ?? 0);
        if (deficit > bestDeficit) {
          best = f;
          bestDeficit = deficit;
        }
      }
      const list = byFamily.get(best) as TrailEvent[];
      const k = taken.get(best) ?? 0;
      events.push(list[k % list.length] as TrailEvent);
      taken.set(best, k + 1);
    }
  }
  return encodeEvents(events.slice(0, total), options.maskByte);
}

/**
 * Builds `count` detection runs: the trail generator's detection chain (a
 * download with Mark of the Web, its execution, persistence, a call home) and
 * the `av.detect` that ends it, each run at most `maxEvents` events long.
 */
export function buildDetectionRuns(seed: number, count: number, maskByte: number, maxEvents = 10): EncodedEvents[] {
  const runs: EncodedEvents[] = [];
  const gen = createTrailGenerator({ seed: (seed * 104_729 + 17) >>> 0, computer: 'POOL-DETECT', detectRate: 0.02 });
  let seq = 1;
  let now = Date.UTC(2024, 2, 12, 9, 0, 0);
  const window: TrailEvent[] = [];
  for (let guard = 0; runs.length < count && guard < 10_000; guard++) {
    const chunk = gen.next(200, seq, (now += 10_000));
    seq += chunk.length;
    for (const e of chunk) {
      window.push(e);
      if (window.length > maxEvents) window.shift();
      if (e.k === 'av.detect' && typeof e.sha256 === 'string') {
        const sha = e.sha256;
        // Start the run after any earlier detection in the window.
        let from = 0;
        for (let j = window.length - 2; j >= 0; j--) if ((window[j] as TrailEvent).k === 'av.detect') from = j + 1;
        runs.push(encodeEvents(window.slice(from), maskByte, new Set([sha])));
        window.length = 0;
        if (runs.length >= count) break;
      }
    }
  }
  return runs;
}

/** A USB storage device no allow-list of the benchmark names: its insertion is blocked in block mode. */
export const BENCH_UNLISTED_USB = { vendorId: 'feed', productId: 'beef', serial: 'KISEKI-BENCH-0001', vendor: 'Unlisted', model: 'Bench stick', type: 'storage' } as const;

/**
 * The extra runs of fleet activity (scenario `fleet`): a burst of `logonBurstSize`
 * failed network logons from one address (the default `failed-logons` threshold
 * rule counts them), and the insertion of {@link BENCH_UNLISTED_USB}.
 */
export function buildFleetExtras(logonBurstSize: number, maskByte: number): { logonBurst: EncodedEvents; usbInsertion: EncodedEvents } {
  const t0 = Date.UTC(2024, 2, 12, 9, 0, 0);
  const usb = { ...usbInsertEvent(BENCH_UNLISTED_USB, 'S-1-5-21-1004336348-1177238915-682003330-1103'), ts: t0, seq: 1 };
  return {
    logonBurst: encodeEvents(failedLogonBurst(Math.max(1, logonBurstSize), 1, t0, '203.0.113.50'), maskByte),
    usbInsertion: encodeEvents([usb], maskByte),
  };
}

/** What one batch is made of; everything in the frame follows from it, so a resend is byte-identical. */
export interface BatchSpec {
  /** 32 lowercase hex characters. */
  id: string;
  sentAtMs: number;
  first: number;
  /** Pool index of the first ordinary event. */
  poolStart: number;
  /** Ordinary events from the pool. */
  poolCount: number;
  /** Detection run appended after the ordinary events, or -1. */
  run: number;
  /** Extra run (fleet activity: a failed-logon burst, a USB insertion) appended after the detection run, or -1. */
  extra: number;
  /** Timestamps spread evenly over (tsFromMs, tsToMs]. */
  tsFromMs: number;
  tsToMs: number;
  /** 64 hex characters written over the detection's SHA-256 (ignored without a run). */
  shaTag: string;
}

// Envelope: {t:'batch', id, sentAt, first, last, events} with fixed-width slots.
const ENVELOPE_PLAIN = Buffer.concat([
  Buffer.from([0x86, 0xa1, 0x74, 0xa5]),
  Buffer.from('batch'),
  Buffer.from([0xa2]),
  Buffer.from('id'),
  Buffer.from([0xd9, 0x20]),
  Buffer.alloc(32, 0x30),
  Buffer.from([0xa6]),
  Buffer.from('sentAt'),
  Buffer.from([0xcf]),
  Buffer.alloc(8),
  Buffer.from([0xa5]),
  Buffer.from('first'),
  Buffer.from([0xce]),
  Buffer.alloc(4),
  Buffer.from([0xa4]),
  Buffer.from('last'),
  Buffer.from([0xce]),
  Buffer.alloc(4),
  Buffer.from([0xa6]),
  Buffer.from('events'),
  Buffer.from([0xdd]),
  Buffer.alloc(4),
]);
const ENV_ID = 4 + 5 + 1 + 2 + 2;
const ENV_SENT_AT = ENV_ID + 32 + 1 + 6 + 1;
const ENV_FIRST = ENV_SENT_AT + 8 + 1 + 5 + 1;
const ENV_LAST = ENV_FIRST + 4 + 1 + 4 + 1;
const ENV_COUNT = ENV_LAST + 4 + 1 + 6 + 1;

/** Length of the client frame header for a payload of `len` bytes (mask key included). */
export function clientHeaderLength(len: number): number {
  return (len < 126 ? 2 : len < 65_536 ? 4 : 10) + 4;
}

/** Writes a masked binary client frame header at `out[0..]`; returns its length. */
export function writeClientHeader(out: Buffer, len: number, maskByte: number, opcode = 0x2): number {
  out[0] = 0x80 | opcode;
  let p: number;
  if (len < 126) {
    out[1] = 0x80 | len;
    p = 2;
  } else if (len < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
    p = 4;
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 4_294_967_296), 2);
    out.writeUInt32BE(len >>> 0, 6);
    p = 10;
  }
  out[p] = maskByte;
  out[p + 1] = maskByte;
  out[p + 2] = maskByte;
  out[p + 3] = maskByte;
  return p + 4;
}

/** A whole masked client frame around `payload` (for small, rare frames: hello, hb, inventory, pong). */
export function maskedFrame(payload: Uint8Array, maskByte: number, opcode = 0x2): Buffer {
  const out = Buffer.allocUnsafe(clientHeaderLength(payload.length) + payload.length);
  const h = writeClientHeader(out, payload.length, maskByte, opcode);
  for (let i = 0; i < payload.length; i++) out[h + i] = (payload[i] as number) ^ maskByte;
  return out;
}

/** Builds batch frames from a pool, detection runs and extra runs. */
export interface BatchFrameBuilder {
  readonly maskByte: number;
  readonly pool: EncodedEvents;
  readonly runs: readonly EncodedEvents[];
  readonly extras: readonly EncodedEvents[];
  /** The complete masked WebSocket frame for `spec`. */
  build(spec: BatchSpec): Buffer;
  /** Events in the batch `spec` describes. */
  eventCount(spec: BatchSpec): number;
}

/** Creates a frame builder over a pool, detection runs and extra runs, all masked with `maskByte`. */
export function createBatchFrameBuilder(pool: EncodedEvents, runs: readonly EncodedEvents[], maskByte: number, extras: readonly EncodedEvents[] = []): BatchFrameBuilder {
  const envelope = Buffer.from(ENVELOPE_PLAIN);
  for (let i = 0; i < envelope.length; i++) envelope[i] = (envelope[i] as number) ^ maskByte;
  const m32 = (maskByte * 0x01010101) >>> 0;
  const size = pool.count;

  const putU32 = (out: Buffer, at: number, v: number): void => {
    out.writeUInt32BE((v ^ m32) >>> 0, at);
  };
  const putU64 = (out: Buffer, at: number, v: number): void => {
    out.writeUInt32BE((Math.floor(v / 4_294_967_296) ^ m32) >>> 0, at);
    out.writeUInt32BE(((v >>> 0) ^ m32) >>> 0, at + 4);
  };
  const putAscii = (out: Buffer, at: number, text: string): void => {
    for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i) ^ maskByte;
  };

  /** Patches the events of `src` copied to `out` at `base`, from source event `from` for `n` events. */
  const patchEvents = (out: Buffer, base: number, src: EncodedEvents, from: number, n: number, seq0: number, idx0: number, total: number, spec: BatchSpec): void => {
    const span = spec.tsToMs - spec.tsFromMs;
    const startByte = src.starts[from] as number;
    for (let k = 0; k < n; k++) {
      const j = from + k;
      const at = base + (src.starts[j] as number) - startByte;
      const i = idx0 + k;
      const ts = spec.tsFromMs + Math.floor(((i + 1) * span) / total);
      putU64(out, at + (src.tsOff[j] as number), ts);
      putU32(out, at + (src.seqOff[j] as number), seq0 + k);
      const tl = src.tsLastOff[j] as number;
      if (tl >= 0) putU64(out, at + tl, ts + (src.tsLastDeltaMs[j] as number));
    }
  };

  const runOf = (spec: BatchSpec): EncodedEvents | undefined => (spec.run >= 0 ? runs[spec.run % runs.length] : undefined);
  const extraOf = (spec: BatchSpec): EncodedEvents | undefined => (spec.extra >= 0 ? extras[spec.extra % extras.length] : undefined);

  return {
    maskByte,
    pool,
    runs,
    extras,
    eventCount: (spec) => spec.poolCount + (runOf(spec)?.count ?? 0) + (extraOf(spec)?.count ?? 0),
    build(spec) {
      const run = runOf(spec);
      const extra = extraOf(spec);
      const runCount = run?.count ?? 0;
      const n = spec.poolCount + runCount + (extra?.count ?? 0);
      const start = spec.poolStart % size;
      const firstPart = Math.min(spec.poolCount, size - start);
      const secondPart = spec.poolCount - firstPart;
      const bytesA = (pool.starts[start + firstPart] as number) - (pool.starts[start] as number);
      const bytesB = secondPart > 0 ? (pool.starts[secondPart] as number) : 0;
      const runBytes = run ? run.bytes.length : 0;
      const extraBytes = extra ? extra.bytes.length : 0;
      const payloadLen = envelope.length + bytesA + bytesB + runBytes + extraBytes;
      const out = Buffer.allocUnsafe(clientHeaderLength(payloadLen) + payloadLen);
      const h = writeClientHeader(out, payloadLen, maskByte);
      envelope.copy(out, h);
      putAscii(out, h + ENV_ID, spec.id);
      putU64(out, h + ENV_SENT_AT, spec.sentAtMs);
      putU32(out, h + ENV_FIRST, spec.first);
      putU32(out, h + ENV_LAST, spec.first + n - 1);
      putU32(out, h + ENV_COUNT, n);
      let p = h + envelope.length;
      pool.bytes.copy(out, p, pool.starts[start] as number, (pool.starts[start] as number) + bytesA);
      patchEvents(out, p, pool, start, firstPart, spec.first, 0, n, spec);
      p += bytesA;
      if (secondPart > 0) {
        pool.bytes.copy(out, p, 0, bytesB);
        patchEvents(out, p, pool, 0, secondPart, spec.first + firstPart, firstPart, n, spec);
        p += bytesB;
      }
      if (run) {
        run.bytes.copy(out, p);
        patchEvents(out, p, run, 0, run.count, spec.first + spec.poolCount, spec.poolCount, n, spec);
        for (let s = 0; s < run.shaOffsets.length; s++) putAscii(out, p + (run.shaOffsets[s] as number), spec.shaTag);
        p += runBytes;
      }
      if (extra) {
        extra.bytes.copy(out, p);
        patchEvents(out, p, extra, 0, extra.count, spec.first + spec.poolCount + runCount, spec.poolCount + runCount, n, spec);
      }
      return out;
    },
  };
}

/** A random mask byte, never 0 (so masking is never a no-op). */
export function randomMaskByte(): number {
  return 1 + (randomBytes(1)[0] as number) % 255;
}

/** Writes `value` as `digits` lowercase hex characters into `text` (for ids without allocation-heavy formatting). */
export function hexPad(value: number, digits: number): string {
  let s = '';
  let v = Math.floor(value);
  for (let i = 0; i < digits; i++) {
    s = String.fromCharCode(HEX[v % 16] as number) + s;
    v = Math.floor(v / 16);
  }
  return s;
}

// ---------------------------------------------------------------------------
// Server → client frames and the opening handshake
// ---------------------------------------------------------------------------

/** The HTTP request that opens a WebSocket, and the Sec-WebSocket-Accept value the server must answer. */
export function upgradeRequest(host: string, port: number, path: string): { request: string; accept: string } {
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  const request = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return { request, accept };
}

/** Called for each complete server frame: opcode and the (unmasked) payload view (valid during the call only). */
export type FrameHandler = (opcode: number, payload: Buffer) => void;

/**
 * Splits a server byte stream into frames. Server frames are never masked;
 * fragmented messages are not produced by the servers under test and are
 * reported with opcode 0 (continuation) as they come.
 */
export interface FrameReader {
  /** Feeds bytes; calls the handler for each complete frame. Returns false on a protocol violation. */
  push(chunk: Buffer): boolean;
  /** Bytes held for an incomplete frame. */
  pending(): number;
}

export function createFrameReader(onFrame: FrameHandler): FrameReader {
  let rest: Buffer | undefined;
  return {
    push(chunk) {
      const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
      rest = undefined;
      let off = 0;
      const end = buf.length;
      while (end - off >= 2) {
        const b1 = buf[off + 1] as number;
        if (b1 & 0x80) return false;
        let len = b1 & 0x7f;
        let hl = 2;
        if (len === 126) {
          if (end - off < 4) break;
          len = buf.readUInt16BE(off + 2);
          hl = 4;
        } else if (len === 127) {
          if (end - off < 10) break;
          len = buf.readUInt32BE(off + 2) * 4_294_967_296 + buf.readUInt32BE(off + 6);
          hl = 10;
        }
        if (end - off < hl + len) break;
        onFrame((buf[off] as number) & 0x0f, buf.subarray(off + hl, off + hl + len));
        off += hl + len;
      }
      if (off < end) rest = Buffer.from(buf.subarray(off));
      return true;
    },
    pending: () => rest?.length ?? 0,
  };
}

// {t:'ack', id: <32 chars>} as @msgpack/msgpack encodes it: fixmap, 't', 'ack', 'id', str8 32.
const ACK_PREFIX = Buffer.from([0xa1, 0x74, 0xa3, 0x61, 0x63, 0x6b, 0xa2, 0x69, 0x64, 0xd9, 0x20]);

/** The batch id of an `ack` frame in the server's usual encoding, or undefined (then decode it generically). */
export function fastAckId(payload: Buffer): string | undefined {
  if (payload.length < 44 || (payload[0] !== 0x82 && payload[0] !== 0x83)) return undefined;
  if (payload.compare(ACK_PREFIX, 0, ACK_PREFIX.length, 1, 1 + ACK_PREFIX.length) !== 0) return undefined;
  return payload.toString('latin1', 12, 44);
}
