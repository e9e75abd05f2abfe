/**
 * BinXML, the token stream inside every .evtx record (MS-EVEN6 2.2.12): a
 * record's document is a template instance (a template definition, cached
 * per chunk by its offset, plus the record's substitution values) or, rarely,
 * plain elements. Templates are compiled once per chunk into a tree with
 * substitution slots; each record instantiates that tree with its values, so
 * subtrees without slots are shared between records and never copied.
 *
 * All offsets are relative to the chunk, as in the format: names, templates
 * and record data live in the same 64 KiB chunk buffer. Every read is bounds
 * checked; a malformed stream raises {@link binXmlError} (ERR_EVTX_MALFORMED), which the reader
 * turns into a reported issue for that one record.
 */
import { KisekiError } from '../../../core/errors.js';
import { EVTX_ARRAY, VT, type EvtxAttribute, type EvtxElement, type EvtxNode, type EvtxScalar, type EvtxValue, type SystemTime } from './evtx-types.js';

/** A malformed BinXML stream: `details.reason` says what, `details.at` the chunk-relative offset where it was noticed. */
export function binXmlError(reason: string, at: number): KisekiError {
  return new KisekiError('ERR_EVTX_MALFORMED', { reason, at });
}

/** Substitution slot of a compiled template. */
interface SubSlot {
  kind: 'sub';
  index: number;
  type: number;
  optional: boolean;
}

interface RawAttribute {
  name: string;
  value: RawNode[];
}

interface RawElement {
  kind: 'element';
  name: string;
  attributes: RawAttribute[];
  children: RawNode[];
  /** False when no slot is anywhere below: the element is shared as is. */
  hasSlots: boolean;
}

type RawNode = RawElement | SubSlot | Exclude<EvtxNode, EvtxElement>;

/** Per-chunk state: the chunk bytes and what was already decoded from them. */
export interface ChunkContext {
  buf: Buffer;
  names: Map<number, string>;
  templates: Map<number, RawNode[]>;
}

/** A fresh context for one chunk's bytes (a short buffer for a truncated chunk). */
export function createChunkContext(buf: Buffer): ChunkContext {
  return { buf, names: new Map(), templates: new Map() };
}

/** Embedded fragments (BinXML values inside values) and element nesting are bounded. */
const MAX_DEPTH = 16;
const MAX_ELEMENT_NESTING = 256;

const TOKEN = {
  EOF: 0x00,
  OPEN_START: 0x01,
  CLOSE_START: 0x02,
  CLOSE_EMPTY: 0x03,
  END_ELEMENT: 0x04,
  VALUE: 0x05,
  ATTRIBUTE: 0x06,
  CDATA: 0x07,
  CHARREF: 0x08,
  ENTITYREF: 0x09,
  PI_TARGET: 0x0a,
  PI_DATA: 0x0b,
  TEMPLATE_INSTANCE: 0x0c,
  NORMAL_SUB: 0x0d,
  OPTIONAL_SUB: 0x0e,
  FRAGMENT_HEADER: 0x0f,
} as const;

/** Sizes of the fixed-size value types (for arrays and value tokens). */
const FIXED_SIZE: Record<number, number> = {
  [VT.INT8]: 1,
  [VT.UINT8]: 1,
  [VT.INT16]: 2,
  [VT.UINT16]: 2,
  [VT.INT32]: 4,
  [VT.UINT32]: 4,
  [VT.INT64]: 8,
  [VT.UINT64]: 8,
  [VT.FLOAT]: 4,
  [VT.DOUBLE]: 8,
  [VT.BOOL]: 4,
  [VT.GUID]: 16,
  [VT.FILETIME]: 8,
  [VT.SYSTEMTIME]: 16,
  [VT.HEX32]: 4,
  [VT.HEX64]: 8,
};

function need(ctx: ChunkContext, pos: number, n: number, end: number): void {
  if (pos < 0 || pos + n > end || pos + n > ctx.buf.length) throw binXmlError(`read of ${n} bytes past the end of the data`, pos);
}

function readName(ctx: ChunkContext, off: number): { name: string; bytes: number } {
  const buf = ctx.buf;
  if (off < 0 || off + 8 > buf.length) throw binXmlError(`name offset 0x${off.toString(16)} outside the chunk`, off);
  const chars = buf.readUInt16LE(off + 6);
  // next-offset (4), hash (2), length (2), UTF-16 text, NUL terminator.
  const bytes = 8 + chars * 2 + 2;
  let name = ctx.names.get(off);
  if (name === undefined) {
    if (off + 8 + chars * 2 > buf.length) throw binXmlError('name runs past the chunk', off);
    name = buf.toString('utf16le', off + 8, off + 8 + chars * 2);
    ctx.names.set(off, name);
  }
  return { name, bytes };
}

function stripNuls(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0) end--;
  return end === s.length ? s : s.slice(0, end);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A GUID as `aabbccdd-eeff-…`: the first three groups are little-endian. */
function guidAt(buf: Buffer, p: number): string {
  const h = (i: number): string => HEX[buf[p + i]!]!;
  return `${h(3)}${h(2)}${h(1)}${h(0)}-${h(5)}${h(4)}-${h(7)}${h(6)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}

function sidAt(buf: Buffer, p: number, size: number, at: number): string {
  if (size < 8) throw binXmlError('SID shorter than 8 bytes', at);
  const rev = buf[p]!;
  const n = buf[p + 1]!;
  if (8 + 4 * n > size) throw binXmlError('SID sub-authorities run past the value', at);
  // The 48-bit identifier authority is big-endian.
  let sid = `S-${rev}-${buf.readUInt16BE(p + 2) * 2 ** 32 + buf.readUInt32BE(p + 4)}`;
  for (let i = 0; i < n; i++) sid += `-${buf.readUInt32LE(p + 8 + 4 * i)}`;
  return sid;
}

function systemTimeAt(buf: Buffer, p: number): SystemTime {
  return {
    year: buf.readUInt16LE(p),
    month: buf.readUInt16LE(p + 2),
    dayOfWeek: buf.readUInt16LE(p + 4),
    day: buf.readUInt16LE(p + 6),
    hour: buf.readUInt16LE(p + 8),
    minute: buf.readUInt16LE(p + 10),
    second: buf.readUInt16LE(p + 12),
    millisecond: buf.readUInt16LE(p + 14),
  };
}

/** One fixed-size scalar at `p` (the caller checked `size` bytes are there). */
function fixedScalar(buf: Buffer, p: number, type: number, size: number, at: number): EvtxScalar {
  switch (type) {
    case VT.INT8:
      return buf.readInt8(p);
    case VT.UINT8:
      return buf[p]!;
    case VT.INT16:
      return buf.readInt16LE(p);
    case VT.UINT16:
      return buf.readUInt16LE(p);
    case VT.INT32:
      return buf.readInt32LE(p);
    case VT.UINT32:
    case VT.HEX32:
      return buf.readUInt32LE(p);
    case VT.INT64:
      return buf.readBigInt64LE(p);
    case VT.UINT64:
    case VT.HEX64:
    case VT.FILETIME:
      return buf.readBigUInt64LE(p);
    case VT.FLOAT:
      return buf.readFloatLE(p);
    case VT.DOUBLE:
      return buf.readDoubleLE(p);
    case VT.BOOL:
      return buf.readInt32LE(p) !== 0;
    case VT.GUID:
      return guidAt(buf, p);
    case VT.SYSTEMTIME:
      return systemTimeAt(buf, p);
    case VT.SIZE_T:
      return size === 4 ? BigInt(buf.readUInt32LE(p)) : buf.readBigUInt64LE(p);
    default:
      throw binXmlError(`unknown value type 0x${type.toString(16)}`, at);
  }
}

/**
 * Decodes one substitution value of `size` bytes at `pos`.
 * @param depth nesting of embedded BinXML (bounded by MAX_DEPTH)
 */
function readValue(ctx: ChunkContext, pos: number, size: number, type: number, depth: number): EvtxValue {
  const buf = ctx.buf;
  need(ctx, pos, size, buf.length);
  let value: EvtxValue['value'];
  if (type === VT.NULL) value = null;
  else if (type === VT.WSTRING) value = stripNuls(buf.toString('utf16le', pos, pos + (size & ~1)));
  else if (type === VT.ANSI) value = stripNuls(buf.toString('latin1', pos, pos + size));
  else if (type === VT.BINARY) value = Uint8Array.prototype.slice.call(buf, pos, pos + size);
  else if (type === VT.SID) value = sidAt(buf, pos, size, pos);
  else if (type === VT.BINXML) {
    const nodes: EvtxNode[] = [];
    parseFragment(ctx, pos, pos + size, depth + 1, false, nodes as RawNode[]);
    value = nodes;
  } else if (type === VT.SIZE_T) {
    if (size !== 4 && size !== 8) throw binXmlError(`size_t of ${size} bytes`, pos);
    value = fixedScalar(buf, pos, type, size, pos);
  } else if ((type & EVTX_ARRAY) !== 0) {
    value = readArray(buf, pos, size, type & ~EVTX_ARRAY);
  } else {
    const fixed = FIXED_SIZE[type];
    if (fixed === undefined) throw binXmlError(`unknown value type 0x${type.toString(16)}`, pos);
    if (size < fixed) throw binXmlError(`value of type 0x${type.toString(16)} has ${size} bytes, needs ${fixed}`, pos);
    value = fixedScalar(buf, pos, type, fixed, pos);
  }
  return { kind: 'value', type, value };
}

function readArray(buf: Buffer, pos: number, size: number, base: number): EvtxScalar[] {
  if (base === VT.WSTRING || base === VT.ANSI) {
    const text = base === VT.WSTRING ? buf.toString('utf16le', pos, pos + (size & ~1)) : buf.toString('latin1', pos, pos + size);
    // NUL-terminated strings one after the other: the last terminator ends the list.
    const parts = text.split('\0');
    if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    return parts;
  }
  const width = base === VT.SIZE_T ? 8 : FIXED_SIZE[base];
  if (width === undefined) throw binXmlError(`unknown array element type 0x${base.toString(16)}`, pos);
  if (size % width !== 0) throw binXmlError(`array of ${size} bytes is not a multiple of ${width}`, pos);
  const out: EvtxScalar[] = [];
  for (let p = pos; p < pos + size; p += width) out.push(fixedScalar(buf, p, base, width, p));
  return out;
}

/** The text of a value token: a length-prefixed string, or a fixed-size scalar. */
function readValueToken(ctx: ChunkContext, pos: number, end: number, type: number): { node: EvtxValue; next: number } {
  const buf = ctx.buf;
  if (type === VT.WSTRING || type === VT.ANSI) {
    need(ctx, pos, 2, end);
    const n = buf.readUInt16LE(pos);
    const bytes = type === VT.WSTRING ? n * 2 : n;
    need(ctx, pos + 2, bytes, end);
    const text = buf.toString(type === VT.WSTRING ? 'utf16le' : 'latin1', pos + 2, pos + 2 + bytes);
    return { node: { kind: 'value', type, value: stripNuls(text) }, next: pos + 2 + bytes };
  }
  const fixed = FIXED_SIZE[type];
  if (fixed === undefined) throw binXmlError(`value token of type 0x${type.toString(16)}`, pos);
  need(ctx, pos, fixed, end);
  return { node: { kind: 'value', type, value: fixedScalar(buf, pos, type, fixed, pos) }, next: pos + fixed };
}

function template(ctx: ChunkContext, defOff: number, depth: number): RawNode[] {
  let nodes = ctx.templates.get(defOff);
  if (nodes !== undefined) return nodes;
  const buf = ctx.buf;
  if (defOff < 0 || defOff + 24 > buf.length) throw binXmlError(`template offset 0x${defOff.toString(16)} outside the chunk`, defOff);
  const size = buf.readUInt32LE(defOff + 20);
  if (defOff + 24 + size > buf.length) throw binXmlError('template runs past the chunk', defOff);
  nodes = [];
  parseFragment(ctx, defOff + 24, defOff + 24 + size, depth + 1, true, nodes);
  ctx.templates.set(defOff, nodes);
  return nodes;
}

function instantiate(nodes: RawNode[], subs: EvtxValue[], at: number): EvtxNode[] {
  const out: EvtxNode[] = new Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) out[i] = instantiateNode(nodes[i]!, subs, at);
  return out;
}

function instantiateNode(node: RawNode, subs: EvtxValue[], at: number): EvtxNode {
  if (node.kind === 'sub') {
    const v = subs[node.index];
    if (v === undefined) throw binXmlError(`substitution ${node.index} of ${subs.length}`, at);
    return node.optional ? { kind: 'value', type: v.type, value: v.value, optional: true } : v;
  }
  if (node.kind !== 'element') return node;
  // A slot-free subtree is already a valid EvtxElement (hasSlots is the only extra field).
  if (!node.hasSlots) return node as unknown as EvtxElement;
  const attributes: EvtxAttribute[] = new Array(node.attributes.length);
  for (let i = 0; i < node.attributes.length; i++) {
    const a = node.attributes[i]!;
    attributes[i] = { name: a.name, value: instantiate(a.value, subs, at) };
  }
  return { kind: 'element', name: node.name, attributes, children: instantiate(node.children, subs, at) };
}

/** Reads a template instance's substitution array; returns the values and the offset after them. */
function readSubstitutions(ctx: ChunkContext, pos: number, end: number, depth: number): { subs: EvtxValue[]; next: number } {
  const buf = ctx.buf;
  need(ctx, pos, 4, end);
  const count = buf.readUInt32LE(pos);
  pos += 4;
  if (count * 4 > end - pos) throw binXmlError(`${count} substitutions do not fit the record`, pos);
  const subs: EvtxValue[] = new Array(count);
  let valuePos = pos + count * 4;
  for (let i = 0; i < count; i++) {
    const size = buf.readUInt16LE(pos + i * 4);
    const type = buf[pos + i * 4 + 2]!;
    need(ctx, valuePos, size, end);
    subs[i] = readValue(ctx, valuePos, size, type, depth);
    valuePos += size;
  }
  return { subs, next: valuePos };
}

function push(stack: RawElement[], attr: RawAttribute | null, out: RawNode[], node: RawNode): void {
  if (attr !== null) attr.value.push(node);
  else if (stack.length > 0) stack[stack.length - 1]!.children.push(node);
  else out.push(node);
}

/**
 * Parses one BinXML fragment from `pos` to at most `end`, appending its
 * top-level nodes to `out`. In a template definition (`inTemplate`) the
 * substitution tokens become slots; elsewhere they are errors.
 * @returns the offset after the fragment
 */
function parseFragment(ctx: ChunkContext, pos: number, end: number, depth: number, inTemplate: boolean, out: RawNode[]): number {
  if (depth > MAX_DEPTH) throw binXmlError('BinXML nested too deeply', pos);
  const buf = ctx.buf;
  const stack: RawElement[] = [];
  let attr: RawAttribute | null = null;
  for (;;) {
    need(ctx, pos, 1, end);
    const start = pos;
    const token = buf[pos]!;
    // 0x40 is the only flag bit ("more data follows"); anything else is not BinXML.
    switch ((token & 0xb0) === 0 ? token & 0x0f : -1) {
      case TOKEN.EOF:
        if (stack.length > 0) throw binXmlError(`end of stream inside <${stack[stack.length - 1]!.name}>`, start);
        return pos + 1;
      case TOKEN.FRAGMENT_HEADER:
        need(ctx, pos, 4, end);
        pos += 4;
        break;
      case TOKEN.OPEN_START: {
        need(ctx, pos, 11, end);
        // token, dependency id (2), data size (4), name offset (4).
        const nameOff = buf.readUInt32LE(pos + 7);
        pos += 11;
        const { name, bytes } = readName(ctx, nameOff);
        if (nameOff === pos) pos += bytes;
        if ((token & 0x40) !== 0) {
          need(ctx, pos, 4, end);
          pos += 4; // attribute list size
        }
        if (stack.length >= MAX_ELEMENT_NESTING) throw binXmlError('elements nested too deeply', start);
        const el: RawElement = { kind: 'element', name, attributes: [], children: [], hasSlots: false };
        push(stack, null, out, el);
        stack.push(el);
        attr = null;
        break;
      }
      case TOKEN.CLOSE_START:
        if (stack.length === 0) throw binXmlError('close-start outside an element', start);
        attr = null;
        pos += 1;
        break;
      case TOKEN.CLOSE_EMPTY:
      case TOKEN.END_ELEMENT: {
        const el = stack.pop();
        if (el === undefined) throw binXmlError('end of element outside an element', start);
        if (el.hasSlots && stack.length > 0) stack[stack.length - 1]!.hasSlots = true;
        attr = null;
        pos += 1;
        break;
      }
      case TOKEN.ATTRIBUTE: {
        const el = stack[stack.length - 1];
        if (el === undefined) throw binXmlError('attribute outside an element', start);
        need(ctx, pos, 5, end);
        const nameOff = buf.readUInt32LE(pos + 1);
        pos += 5;
        const { name, bytes } = readName(ctx, nameOff);
        if (nameOff === pos) pos += bytes;
        attr = { name, value: [] };
        el.attributes.push(attr);
        break;
      }
      case TOKEN.VALUE: {
        need(ctx, pos, 2, end);
        const { node, next } = readValueToken(ctx, pos + 2, end, buf[pos + 1]!);
        push(stack, attr, out, node);
        pos = next;
        break;
      }
      case TOKEN.CDATA: {
        need(ctx, pos, 3, end);
        const n = buf.readUInt16LE(pos + 1);
        need(ctx, pos + 3, n * 2, end);
        push(stack, attr, out, { kind: 'cdata', text: buf.toString('utf16le', pos + 3, pos + 3 + n * 2) });
        pos += 3 + n * 2;
        break;
      }
      case TOKEN.CHARREF:
        need(ctx, pos, 3, end);
        push(stack, attr, out, { kind: 'charref', code: buf.readUInt16LE(pos + 1) });
        pos += 3;
        break;
      case TOKEN.ENTITYREF: {
        need(ctx, pos, 5, end);
        const nameOff = buf.readUInt32LE(pos + 1);
        pos += 5;
        const { name, bytes } = readName(ctx, nameOff);
        if (nameOff === pos) pos += bytes;
        push(stack, attr, out, { kind: 'entityref', name });
        break;
      }
      case TOKEN.PI_TARGET: {
        need(ctx, pos, 5, end);
        const nameOff = buf.readUInt32LE(pos + 1);
        pos += 5;
        const { name, bytes } = readName(ctx, nameOff);
        if (nameOff === pos) pos += bytes;
        let data = '';
        // The data token normally follows its target at once.
        if (pos < end && (buf[pos]! & 0x0f) === TOKEN.PI_DATA) {
          need(ctx, pos, 3, end);
          const n = buf.readUInt16LE(pos + 1);
          need(ctx, pos + 3, n * 2, end);
          data = buf.toString('utf16le', pos + 3, pos + 3 + n * 2);
          pos += 3 + n * 2;
        }
        push(stack, attr, out, { kind: 'pi', target: name, data });
        break;
      }
      case TOKEN.PI_DATA:
        throw binXmlError('processing-instruction data without a target', start);
      case TOKEN.NORMAL_SUB:
      case TOKEN.OPTIONAL_SUB: {
        if (!inTemplate) throw binXmlError('substitution outside a template', start);
        need(ctx, pos, 4, end);
        const slot: SubSlot = { kind: 'sub', index: buf.readUInt16LE(pos + 1), type: buf[pos + 3]!, optional: (token & 0x0f) === TOKEN.OPTIONAL_SUB };
        push(stack, attr, out, slot);
        const el = stack[stack.length - 1];
        if (el !== undefined) el.hasSlots = true;
        pos += 4;
        break;
      }
      case TOKEN.TEMPLATE_INSTANCE: {
        if (inTemplate || stack.length > 0) throw binXmlError('template instance inside an element or template', start);
        need(ctx, pos, 10, end);
        const defOff = buf.readUInt32LE(pos + 6);
        pos += 10;
        // A template seen for the first time in the chunk is written inline, right here.
        if (defOff === pos) {
          need(ctx, pos, 24, end);
          pos += 24 + buf.readUInt32LE(pos + 20);
        }
        const nodes = template(ctx, defOff, depth);
        const { subs, next } = readSubstitutions(ctx, pos, end, depth);
        const made = instantiate(nodes, subs, start);
        for (const n of made) out.push(n as RawNode);
        // A template instance is the whole fragment.
        return next;
      }
      default:
        throw binXmlError(`unknown token 0x${token.toString(16).padStart(2, '0')}`, start);
    }
  }
}

/**
 * Parses a record's BinXML document (`pos` to `end`, chunk-relative) into its
 * top-level nodes.
 * @throws KisekiError ERR_EVTX_MALFORMED when the stream is malformed
 */
export function parseRecordXml(ctx: ChunkContext, pos: number, end: number): EvtxNode[] {
  const out: RawNode[] = [];
  parseFragment(ctx, pos, end, 0, false, out);
  return out as EvtxNode[];
}
