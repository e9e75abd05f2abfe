/**
 * Bounds on untrusted structured data (issue 11): how deeply a MessagePack
 * value or a JavaScript value nests, measured without recursion, so that a
 * hostile value can be refused or set aside before a recursive decoder,
 * encoder or JSON.stringify meets it. The recursive libraries in use
 * (msgpackr's unpack and pack, @msgpack/msgpack's encode, JSON.stringify)
 * overflow the JS stack at a few thousand levels; the limits here are far
 * below that and far above what any agent sends.
 *
 * Also splits a MessagePack array into its elements' byte ranges, so a batch
 * that one poison event makes undecodable can still be read event by event.
 */

/**
 * Deepest nesting of one stored event (its own map counts as 1) that shards
 * and exports decode; deeper ones are quarantined. Ingest refuses frames
 * deeper than `ingest.maxFrameDepth` (at most this), so only batches stored
 * before that limit existed can hold such an event.
 */
export const MAX_EVENT_DEPTH = 64;

/** Deepest nesting of command args (the args map counts as 1). */
export const MAX_COMMAND_ARGS_DEPTH = 16;

/** Largest command args, as JSON text (bytes, UTF-16 units for non-ASCII: an upper bound is enough). */
export const MAX_COMMAND_ARGS_BYTES = 16 * 1024;

/** Why a value was refused or set aside. */
export type BoundsReason = 'depth_exceeded' | 'malformed';

/** One element of a MessagePack array: its byte range and how deeply it nests (a scalar is 0, `{}` is 1). */
export interface ElementSpan {
  start: number;
  end: number;
  depth: number;
}

class Malformed {}
const MALFORMED = new Malformed();

/**
 * Measures the MessagePack value at `pos` without recursion and returns the
 * offset just past it and its depth. Stops early (depth: limit + 1) once the
 * value is deeper than `maxDepth`, and returns undefined when the bytes are
 * not a well-formed value.
 */
export function measureValue(buf: Uint8Array, pos: number, maxDepth: number): { end: number; depth: number } | undefined {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = pos;
  const need = (n: number): void => {
    if (p + n > buf.length) throw MALFORMED;
  };
  const u8 = (): number => {
    need(1);
    return buf[p++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(p);
    p += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(p);
    p += 4;
    return v;
  };
  const skip = (n: number): void => {
    need(n);
    p += n;
  };
  // Remaining children per open container: an explicit stack instead of recursion.
  const stack: number[] = [];
  let pending = 1;
  let depth = 0;
  try {
    for (;;) {
      while (pending === 0) {
        const outer = stack.pop();
        if (outer === undefined) return { end: p, depth };
        pending = outer;
      }
      pending--;
      const b = u8();
      if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue;
      if (b >= 0xa0 && b <= 0xbf) {
        skip(b & 0x1f);
        continue;
      }
      let children = -1;
      if (b >= 0x80 && b <= 0x8f) children = (b & 0x0f) * 2;
      else if (b >= 0x90 && b <= 0x9f) children = b & 0x0f;
      else if (b === 0xdc) children = u16();
      else if (b === 0xdd) children = u32();
      else if (b === 0xde) children = u16() * 2;
      else if (b === 0xdf) children = u32() * 2;
      else if (b === 0xc4 || b === 0xd9) skip(u8());
      else if (b === 0xc5 || b === 0xda) skip(u16());
      else if (b === 0xc6 || b === 0xdb) skip(u32());
      else if (b === 0xc7) skip(u8() + 1);
      else if (b === 0xc8) skip(u16() + 1);
      else if (b === 0xc9) skip(u32() + 1);
      else if (b === 0xcc || b === 0xd0) skip(1);
      else if (b === 0xcd || b === 0xd1) skip(2);
      else if (b === 0xca || b === 0xce || b === 0xd2) skip(4);
      else if (b === 0xcb || b === 0xcf || b === 0xd3) skip(8);
      else if (b === 0xd4) skip(2);
      else if (b === 0xd5) skip(3);
      else if (b === 0xd6) skip(5);
      else if (b === 0xd7) skip(9);
      else if (b === 0xd8) skip(17);
      else return undefined; // 0xc1, never used
      if (children < 0) continue;
      // The container itself is one level, even when empty.
      const level = stack.length + 1;
      if (level > depth) depth = level;
      if (depth > maxDepth) return { end: p, depth };
      if (children > buf.length - p) return undefined;
      if (children > 0) {
        stack.push(pending);
        pending = children;
      }
    }
  } catch (err) {
    if (err === MALFORMED) return undefined;
    throw err;
  }
}

/**
 * The elements of the MessagePack array in `buf`, each with its byte range and
 * depth. A deep element does not stop the walk: its depth is reported as it
 * is (measured without recursion), so the caller can set it aside and decode
 * the others. Returns undefined when `buf` is not exactly one well-formed array.
 */
export function splitArray(buf: Uint8Array, maxDepth: number): ElementSpan[] | undefined {
  if (buf.length === 0) return undefined;
  const b = buf[0]!;
  let count: number;
  let p: number;
  if (b >= 0x90 && b <= 0x9f) {
    count = b & 0x0f;
    p = 1;
  } else if (b === 0xdc && buf.length >= 3) {
    count = (buf[1]! << 8) | buf[2]!;
    p = 3;
  } else if (b === 0xdd && buf.length >= 5) {
    count = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(1);
    p = 5;
  } else return undefined;
  if (count > buf.length - p) return undefined;
  const spans: ElementSpan[] = [];
  for (let i = 0; i < count; i++) {
    const m = measureValue(buf, p, maxDepth);
    if (m === undefined) return undefined;
    if (m.depth > maxDepth) {
      // Find where the deep element ends: measured again without a depth limit, still iteratively.
      const whole = measureValue(buf, p, Number.POSITIVE_INFINITY);
      if (whole === undefined) return undefined;
      spans.push({ start: p, end: whole.end, depth: whole.depth });
      p = whole.end;
      continue;
    }
    spans.push({ start: p, end: m.end, depth: m.depth });
    p = m.end;
  }
  return p === buf.length ? spans : undefined;
}

/**
 * How deeply a JavaScript value nests (a scalar is 0, `{}` or `[]` is 1),
 * measured iteratively and given up past `maxDepth` (then `maxDepth + 1`).
 * Only plain objects and arrays count as containers.
 */
export function valueDepth(value: unknown, maxDepth: number): number {
  let deepest = 0;
  const stack: { v: unknown; d: number }[] = [{ v: value, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const level = d + 1;
    if (level > deepest) deepest = level;
    if (deepest > maxDepth) return deepest;
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const c of children) if (typeof c === 'object' && c !== null) stack.push({ v: c, d: level });
  }
  return deepest;
}

/** Kind of the placeholder an export writes for a quarantined event (its seq kept, its content withheld). */
export const QUARANTINED_KIND = '_quarantined';

/** An element of an array that was set aside, with why. */
export interface PoisonElement {
  index: number;
  reason: 'depth_exceeded' | 'undecodable';
  bytes: number;
}

/** A decoded array whose poison elements are `undefined` in `values` and listed in `poison`. */
export interface BoundedArray {
  values: unknown[];
  poison: PoisonElement[];
}

/**
 * Decodes a MessagePack array of events with a recursive decoder (`decodeOne`,
 * e.g. msgpackr's unpack) without letting one element stop the rest: when the
 * whole array cannot be decoded (the decoder threw, e.g. a stack overflow),
 * it is split into elements and each is decoded on its own; an element
 * deeper than `maxDepth` is never handed to the decoder.
 *
 * `verify: false` tries the whole array first and only splits on failure
 * (the shards: ingest already bounds depth, so the split never runs for new
 * data); `verify: true` measures depth first, so that nothing deeper than
 * `maxDepth` reaches the caller even when the decoder would cope (the export,
 * whose JSON.stringify is recursive too). Returns undefined when the bytes are
 * not a well-formed array.
 */
export function decodeArrayBounded(bytes: Uint8Array, decodeOne: (b: Uint8Array) => unknown, maxDepth: number, verify: boolean): BoundedArray | undefined {
  // The array itself is one level above its elements.
  const shallow = !verify || (measureValue(bytes, 0, maxDepth + 1)?.depth ?? Number.POSITIVE_INFINITY) <= maxDepth + 1;
  if (shallow) {
    try {
      const whole = decodeOne(bytes);
      return Array.isArray(whole) ? { values: whole, poison: [] } : undefined;
    } catch {
      // Fall through to element by element.
    }
  }
  const spans = splitArray(bytes, maxDepth);
  if (spans === undefined) return undefined;
  const values: unknown[] = new Array(spans.length);
  const poison: PoisonElement[] = [];
  for (let i = 0; i < spans.length; i++) {
    const span = spans[i]!;
    const size = span.end - span.start;
    if (span.depth > maxDepth) {
      poison.push({ index: i, reason: 'depth_exceeded', bytes: size });
      continue;
    }
    try {
      values[i] = decodeOne(bytes.subarray(span.start, span.end));
    } catch {
      poison.push({ index: i, reason: 'undecodable', bytes: size });
    }
  }
  return { values, poison };
}
