/**
 * A record in the JSON layout of the evtx_dump tool (omerbenamram/evtx, the
 * layout of the `.json` twins next to the Sigma regression files), which the
 * Sysmon mapper already reads: `{"Event": {"#attributes": {...}, "System":
 * {...}, "EventData": {...}}}`. Rules: an element without attributes is its
 * text (typed: numbers stay numbers) or null or an object of its children; an
 * element with attributes is `{"#attributes": {...}, "#text": ...}` plus its
 * children; null attributes are dropped; `<Data Name="X">v</Data>` becomes
 * `"X": v`; repeated names become arrays. GUIDs are upper-case without
 * braces, HEX32/HEX64 `0x` + lower-case hex, FILETIME ISO 8601 with
 * microseconds, binary upper-case hex, 64-bit integers numbers when exact
 * (strings otherwise), strings trimmed of surrounding blanks as evtx_dump does.
 */
import { systemTimeToIso } from './evtx-values.js';
import { EVTX_ARRAY, VT, type EvtxElement, type EvtxNode, type EvtxRecord, type EvtxScalar, type EvtxValue, type SystemTime } from './evtx-types.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

const EPOCH_DELTA_TICKS = 116444736000000000n;

/** FILETIME ticks as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, truncated). */
function filetimeMicros(ticks: bigint): string {
  const unix = ticks - EPOCH_DELTA_TICKS;
  let secs = unix / 10_000_000n;
  let frac = unix % 10_000_000n;
  if (frac < 0n) {
    frac += 10_000_000n;
    secs -= 1n;
  }
  return `${new Date(Number(secs) * 1000).toISOString().slice(0, 19)}.${(frac / 10n).toString().padStart(6, '0')}Z`;
}

function bigToJson(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
}

function scalarJson(type: number, v: EvtxScalar): JsonValue {
  switch (type) {
    case VT.BINARY:
      return Buffer.from(v as Uint8Array).toString('hex').toUpperCase();
    case VT.GUID:
      return String(v).toUpperCase();
    case VT.FILETIME:
      return filetimeMicros(v as bigint);
    case VT.SYSTEMTIME:
      return systemTimeToIso(v as SystemTime);
    case VT.HEX32:
    case VT.HEX64:
      return `0x${(v as number | bigint).toString(16)}`;
    default:
      if (typeof v === 'bigint') return bigToJson(v);
      if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
      // evtx_dump trims string values (a command line's trailing blank): same here, so both imports agree.
      if (typeof v === 'string') return v.trim();
      if (typeof v === 'boolean') return v;
      return String(v);
  }
}

/** One value in the evtx-dump JSON form (an embedded document becomes an object). */
export function valueJson(v: EvtxValue): JsonValue {
  if (v.value === null) return null;
  if (v.type === VT.BINXML) return nodesJson(v.value as EvtxNode[]);
  if ((v.type & EVTX_ARRAY) !== 0) return (v.value as EvtxScalar[]).map((x) => scalarJson(v.type & ~EVTX_ARRAY, x));
  return scalarJson(v.type, v.value as EvtxScalar);
}

function textOf(part: EvtxNode): string {
  switch (part.kind) {
    case 'value': {
      const j = valueJson(part);
      return j === null ? '' : typeof j === 'object' ? JSON.stringify(j) : String(j);
    }
    case 'cdata':
      return part.text;
    case 'charref':
      return String.fromCharCode(part.code);
    case 'entityref':
      return ENTITIES[part.name] ?? `&${part.name};`;
    default:
      return '';
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Several text parts join as a string; one keeps its JSON type; none is null. */
function contentJson(parts: EvtxNode[]): JsonValue {
  if (parts.length === 0) return null;
  const only = parts[0]!;
  if (parts.length === 1 && only.kind === 'value') return valueJson(only);
  let s = '';
  for (const p of parts) s += textOf(p);
  return s;
}

function put(obj: JsonObject, key: string, value: JsonValue): void {
  if (!Object.hasOwn(obj, key)) {
    obj[key] = value;
    return;
  }
  const prev = obj[key]!;
  if (Array.isArray(prev) && (prev as JsonValue[] & { repeated?: true }).repeated === true) prev.push(value);
  else {
    const list = [prev, value] as JsonValue[] & { repeated?: true };
    // Marks arrays made here, so that an array-typed value is not mistaken for a list of repeats.
    Object.defineProperty(list, 'repeated', { value: true, enumerable: false });
    obj[key] = list;
  }
}

/** Sorts an element's children into text parts and child elements (embedded documents unfolded); returns whether any element was added. */
function collectChildren(nodes: EvtxNode[], text: EvtxNode[], children: JsonObject): boolean {
  let hasChildren = false;
  for (const c of nodes) {
    if (c.kind === 'element') {
      hasChildren = true;
      addElement(children, c);
    } else if (c.kind === 'value' && c.type === VT.BINXML && Array.isArray(c.value)) {
      if (collectChildren(c.value as EvtxNode[], text, children)) hasChildren = true;
    } else if (c.kind !== 'pi') {
      text.push(c);
    }
  }
  return hasChildren;
}

function elementJson(el: EvtxElement): JsonValue {
  let attrs: JsonObject | undefined;
  for (const a of el.attributes) {
    const v = contentJson(a.value);
    if (v === null) continue;
    attrs ??= {};
    attrs[a.name] = v;
  }
  // The common case, a leaf holding one value: no intermediate objects.
  const only = el.children[0];
  if (attrs === undefined && el.children.length === 1 && only!.kind === 'value' && only!.type !== VT.BINXML) return valueJson(only as EvtxValue);
  const text: EvtxNode[] = [];
  const children: JsonObject = {};
  const hasChildren = collectChildren(el.children, text, children);
  const textValue = contentJson(text);
  if (attrs === undefined) {
    if (!hasChildren) return textValue;
    if (textValue !== null) put(children, '#text', textValue);
    return children;
  }
  const out: JsonObject = { '#attributes': attrs };
  if (textValue !== null) out['#text'] = textValue;
  for (const k in children) out[k] = children[k]!;
  return out;
}

function addElement(obj: JsonObject, el: EvtxElement): void {
  if (el.name === 'Data') {
    const nameAttr = el.attributes.find((a) => a.name === 'Name');
    const name = nameAttr === undefined ? null : contentJson(nameAttr.value);
    if (typeof name === 'string') {
      const text = el.children.filter((c) => c.kind !== 'element');
      const nested = el.children.some((c) => c.kind === 'element' || (c.kind === 'value' && c.type === VT.BINXML));
      put(obj, name, nested ? elementJson({ ...el, attributes: [] }) : contentJson(text));
      return;
    }
  }
  put(obj, el.name, elementJson(el));
}

/** Nodes (a document or an embedded fragment) as one JSON object keyed by element name. */
export function nodesJson(nodes: EvtxNode[]): JsonObject {
  const out: JsonObject = {};
  for (const n of nodes) if (n.kind === 'element') addElement(out, n);
  return out;
}

/** A record's document in the evtx-dump JSON layout (`{"Event": {...}}`). */
export function recordJson(record: EvtxRecord): JsonObject {
  return nodesJson(record.nodes);
}
