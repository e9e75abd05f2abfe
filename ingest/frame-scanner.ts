/**
 * Envelope scanner for agent frames. It reads the top-level MessagePack map of
 * a frame and validates the whole structure, but it does not build objects for
 * the events of a batch: it only notes where the `events` array lies in the
 * frame. Ingest stores those bytes as they are and the owning shard decodes
 * them on its own thread, which keeps per-event decoding off the thread that
 * serves every socket (bench/micro/decode.bench.ts compares this with full
 * decoding).
 *
 * Only standard MessagePack is accepted (no `0xc1`, extension types skipped
 * as opaque values), and maps must use string keys at the top level.
 */
import { isKisekiError, KisekiError } from '../core/errors.js';

/** Result of scanning one frame; `ok: false` carries a stable reason. */
export type ScanResult =
  | { ok: true; envelope: FrameEnvelope }
  | { ok: false; reason: 'malformed_frame' | 'unknown_frame_type' | 'nesting_too_deep'; detail: string };

/** Default deepest nesting of a frame (the frame's own map is 1); config `ingest.maxFrameDepth`. */
export const DEFAULT_MAX_FRAME_DEPTH = 32;

/**
 * Top-level scalars of a frame. For a batch, `eventsStart`/`eventsEnd` are the
 * byte offsets of the encoded `events` array and `eventCount` its length.
 * Other top-level fields are kept only for non-batch frames (small maps).
 */
export interface FrameEnvelope {
  t: string;
  id: unknown;
  sentAt: unknown;
  first: unknown;
  last: unknown;
  hasEvents: boolean;
  eventsIsArray: boolean;
  eventsStart: number;
  eventsEnd: number;
  eventCount: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/*
 * Thrown internally when the bytes are not valid MessagePack; never escapes
 * scanFrame. The common two are made once: a thrown preallocated error costs
 * no stack capture, so a flood of truncated frames stays cheap.
 */
const TRUNCATED = new KisekiError('ERR_MALFORMED_FRAME', { reason: 'truncated' });
const INVALID_UTF8 = new KisekiError('ERR_MALFORMED_FRAME', { reason: 'invalid utf-8' });
/* Deeper than allowed: refused before any recursive decoder (hello, cmdr, inv, the shards' events) meets it. */
const TOO_DEEP = new KisekiError('ERR_MALFORMED_FRAME', { reason: 'too deep' });

function malformedDetail(err: unknown): string | undefined {
  return isKisekiError(err, 'ERR_MALFORMED_FRAME') ? String(err.details?.reason) : undefined;
}

/**
 * A cursor over one frame. One instance is reused for every frame on the
 * ingest thread, so scanning allocates only the envelope and its strings.
 */
class Cursor {
  buf: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(new ArrayBuffer(0));
  pos = 0;
  /** Deepest container allowed inside a skipped value (the value itself at depth 1). */
  maxDepth = Number.POSITIVE_INFINITY;

  reset(buf: Uint8Array, maxDepth = Number.POSITIVE_INFINITY): void {
    this.maxDepth = maxDepth;
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw TRUNCATED;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  skipBytes(n: number): void {
    this.need(n);
    this.pos += n;
  }

  str(len: number): string {
    this.need(len);
    const start = this.pos;
    this.pos += len;
    try {
      return utf8.decode(this.buf.subarray(start, start + len));
    } catch {
      throw INVALID_UTF8;
    }
  }

  /** Reads a map header and returns its entry count, or -1 when the next value is not a map. */
  mapHeader(): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw TRUNCATED;
    if (b >= 0x80 && b <= 0x8f) {
      this.pos++;
      return b & 0x0f;
    }
    if (b === 0xde) {
      this.pos++;
      return this.u16();
    }
    if (b === 0xdf) {
      this.pos++;
      return this.u32();
    }
    return -1;
  }

  /** Reads an array header and returns its length, or -1 when the next value is not an array. */
  arrayHeader(): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw TRUNCATED;
    if (b >= 0x90 && b <= 0x9f) {
      this.pos++;
      return b & 0x0f;
    }
    if (b === 0xdc) {
      this.pos++;
      return this.u16();
    }
    if (b === 0xdd) {
      this.pos++;
      return this.u32();
    }
    return -1;
  }

  /** Reads a string if the next value is one; returns undefined (without moving) otherwise. */
  maybeStr(): string | undefined {
    const b = this.buf[this.pos];
    if (b === undefined) throw TRUNCATED;
    if (b >= 0xa0 && b <= 0xbf) {
      this.pos++;
      return this.str(b & 0x1f);
    }
    if (b === 0xd9) {
      this.pos++;
      return this.str(this.u8());
    }
    if (b === 0xda) {
      this.pos++;
      return this.str(this.u16());
    }
    if (b === 0xdb) {
      this.pos++;
      return this.str(this.u32());
    }
    return undefined;
  }

  /**
   * Reads a scalar (nil, bool, number, string) and returns it; containers,
   * binaries and extensions are skipped and returned as the marker object
   * NON_SCALAR so callers can report a type error without decoding them.
   */
  scalar(): unknown {
    const b = this.buf[this.pos];
    if (b === undefined) throw TRUNCATED;
    if (b <= 0x7f) {
      this.pos++;
      return b;
    }
    if (b >= 0xe0) {
      this.pos++;
      return b - 0x100;
    }
    const s = this.maybeStr();
    if (s !== undefined) return s;
    switch (b) {
      case 0xc0:
        this.pos++;
        return null;
      case 0xc2:
        this.pos++;
        return false;
      case 0xc3:
        this.pos++;
        return true;
      case 0xca: {
        this.pos++;
        this.need(4);
        const v = this.view.getFloat32(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xcb: {
        this.pos++;
        this.need(8);
        const v = this.view.getFloat64(this.pos);
        this.pos += 8;
        return v;
      }
      case 0xcc:
        this.pos++;
        return this.u8();
      case 0xcd:
        this.pos++;
        return this.u16();
      case 0xce:
        this.pos++;
        return this.u32();
      case 0xcf: {
        this.pos++;
        this.need(8);
        const v = this.view.getBigUint64(this.pos);
        this.pos += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 0xd0: {
        this.pos++;
        this.need(1);
        return this.view.getInt8(this.pos++);
      }
      case 0xd1: {
        this.pos++;
        this.need(2);
        const v = this.view.getInt16(this.pos);
        this.pos += 2;
        return v;
      }
      case 0xd2: {
        this.pos++;
        this.need(4);
        const v = this.view.getInt32(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xd3: {
        this.pos++;
        this.need(8);
        const v = this.view.getBigInt64(this.pos);
        this.pos += 8;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      default:
        this.skip();
        return NON_SCALAR;
    }
  }

  /** Skips one complete value of any type, validating its structure. */
  skip(): void {
    // An explicit stack of remaining item counts keeps deep nesting from overflowing the JS stack.
    let pending = 1;
    const stack: number[] = [];
    for (;;) {
      while (pending === 0) {
        const outer = stack.pop();
        if (outer === undefined) return;
        pending = outer;
      }
      pending--;
      const b = this.u8();
      if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue;
      if (b >= 0xa0 && b <= 0xbf) {
        this.skipBytes(b & 0x1f);
        continue;
      }
      let children = -1;
      if (b >= 0x80 && b <= 0x8f) children = (b & 0x0f) * 2;
      else if (b >= 0x90 && b <= 0x9f) children = b & 0x0f;
      else {
        switch (b) {
          case 0xc4:
          case 0xd9:
            this.skipBytes(this.u8());
            continue;
          case 0xc5:
          case 0xda:
            this.skipBytes(this.u16());
            continue;
          case 0xc6:
          case 0xdb:
            this.skipBytes(this.u32());
            continue;
          case 0xc7:
            this.skipBytes(this.u8() + 1);
            continue;
          case 0xc8:
            this.skipBytes(this.u16() + 1);
            continue;
          case 0xc9:
            this.skipBytes(this.u32() + 1);
            continue;
          case 0xca:
            this.skipBytes(4);
            continue;
          case 0xcb:
            this.skipBytes(8);
            continue;
          case 0xcc:
          case 0xd0:
            this.skipBytes(1);
            continue;
          case 0xcd:
          case 0xd1:
            this.skipBytes(2);
            continue;
          case 0xce:
          case 0xd2:
            this.skipBytes(4);
            continue;
          case 0xcf:
          case 0xd3:
            this.skipBytes(8);
            continue;
          case 0xd4:
            this.skipBytes(2);
            continue;
          case 0xd5:
            this.skipBytes(3);
            continue;
          case 0xd6:
            this.skipBytes(5);
            continue;
          case 0xd7:
            this.skipBytes(9);
            continue;
          case 0xd8:
            this.skipBytes(17);
            continue;
          case 0xdc:
            children = this.u16();
            break;
          case 0xdd:
            children = this.u32();
            break;
          case 0xde:
            children = this.u16() * 2;
            break;
          case 0xdf:
            children = this.u32() * 2;
            break;
          default:
            throw new KisekiError('ERR_MALFORMED_FRAME', { reason: `invalid type byte 0x${b.toString(16)}` });
        }
      }
      // Every child takes at least one byte: a count beyond the remaining bytes is a lie.
      if (children > this.buf.length - this.pos) throw TRUNCATED;
      // One comparison per container, none per scalar: the bound costs nothing measurable on the ingest path.
      if (stack.length >= this.maxDepth) throw TOO_DEEP;
      if (children > 0) {
        stack.push(pending);
        pending = children;
      }
    }
  }
}

/** Marker for a field whose value is a container, binary or extension. */
export const NON_SCALAR: unique symbol = Symbol('non-scalar');

const cursor = new Cursor();

/**
 * Scans one frame. Never throws: malformed input yields `{ ok: false }`, a
 * frame nesting deeper than `maxDepth` (its own map is 1; default 32)
 * `nesting_too_deep`. The envelope refers to offsets in `frame`, which the
 * caller must copy from before the uWS message callback returns.
 */
export function scanFrame(frame: Uint8Array, maxDepth = DEFAULT_MAX_FRAME_DEPTH): ScanResult {
  // Values are skipped from inside the frame's map: one level is already taken.
  cursor.reset(frame, maxDepth - 1);
  const env: FrameEnvelope = {
    t: '',
    id: undefined,
    sentAt: undefined,
    first: undefined,
    last: undefined,
    hasEvents: false,
    eventsIsArray: false,
    eventsStart: 0,
    eventsEnd: 0,
    eventCount: 0,
  };
  let t: unknown;
  try {
    const entries = cursor.mapHeader();
    if (entries < 0) return { ok: false, reason: 'malformed_frame', detail: 'frame is not a map' };
    for (let i = 0; i < entries; i++) {
      const key = cursor.maybeStr();
      if (key === undefined) return { ok: false, reason: 'malformed_frame', detail: 'map key is not a string' };
      switch (key) {
        case 't':
          t = cursor.scalar();
          break;
        case 'id':
          env.id = cursor.scalar();
          break;
        case 'sentAt':
          env.sentAt = cursor.scalar();
          break;
        case 'first':
          env.first = cursor.scalar();
          break;
        case 'last':
          env.last = cursor.scalar();
          break;
        case 'events': {
          const start = cursor.pos;
          // nil counts as absent, as for every other field.
          env.hasEvents = frame[start] !== 0xc0;
          const count = cursor.arrayHeader();
          if (count >= 0) {
            cursor.pos = start;
            cursor.skip();
            env.eventsIsArray = true;
            env.eventsStart = start;
            env.eventsEnd = cursor.pos;
            env.eventCount = count;
          } else {
            cursor.skip();
          }
          break;
        }
        default:
          cursor.skip();
      }
    }
    if (cursor.pos !== frame.length) return { ok: false, reason: 'malformed_frame', detail: 'trailing bytes after the frame' };
  } catch (err) {
    if (err === TOO_DEEP) return { ok: false, reason: 'nesting_too_deep', detail: `nesting deeper than ${maxDepth} levels` };
    const detail = malformedDetail(err);
    if (detail !== undefined) return { ok: false, reason: 'malformed_frame', detail };
    throw err;
  }
  if (typeof t !== 'string') return { ok: false, reason: 'unknown_frame_type', detail: 'field t is missing or not a string' };
  env.t = t;
  return { ok: true, envelope: env };
}

/** Checks that `bytes` is exactly one well-formed MessagePack value. Never throws. */
export function isWellFormed(bytes: Uint8Array): boolean {
  cursor.reset(bytes);
  try {
    cursor.skip();
    return cursor.pos === bytes.length;
  } catch (err) {
    if (malformedDetail(err) !== undefined) return false;
    throw err;
  }
}
