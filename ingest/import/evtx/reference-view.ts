/**
 * Renders records exactly as Debian's python3-evtx `evtx_dump.py` (0.6.x)
 * prints them, quirks included, so that the equality test can compare our
 * reader's output with the reference byte for byte instead of through a
 * lenient normalisation. Not used by the import: kiseki's own renderings are
 * evtx-xml.ts and evtx-json.ts.
 *
 * The reference's formatting, from its Views.py, Nodes.py and BinaryParser.py:
 * every element is `<name attrs>children</name>` plus a newline, never
 * self-closed; text and attribute values are escaped for & < > only, then
 * every non-ASCII character becomes a decimal character reference and C0
 * controls are dropped; a null (optional) substitution renders as an empty
 * string; GUIDs are `{lower-case}`, HEX32/HEX64 zero-padded, booleans
 * `True`/`False`, binary base64, floats Python's repr; FILETIME goes through
 * a double (`ticks * 1e-7 - 11644473600`) and is rounded half-even to the
 * microsecond, shown as `YYYY-MM-DD HH:MM:SS[.ffffff]`; a SYSTEMTIME's
 * milliseconds are taken as microseconds; string arrays become
 * `<string>…</string>` lines (escaped); character references are dropped and
 * entity references escaped.
 */
import { EVTX_ARRAY, VT, type EvtxNode, type EvtxRecord, type EvtxScalar, type EvtxValue, type SystemTime } from './evtx-types.js';

/** The header line evtx_dump.py prints (it ends with a newline, and print adds one). */
const XML_HEADER = '<?xml version="1.1" encoding="utf-8" standalone="yes" ?>\n';

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Python's `xml.sax.saxutils.escape`, then `xmlcharrefreplace` to ASCII, then the restricted controls removed. */
export function pyEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c === 0x26) out += '&amp;';
    else if (c === 0x3c) out += '&lt;';
    else if (c === 0x3e) out += '&gt;';
    else if (c >= 0x80) out += `&#${c};`;
    else if ((c >= 0x01 && c <= 0x08) || c === 0x0b || c === 0x0c || (c >= 0x0e && c <= 0x1f) || c === 0x7f) continue;
    else out += ch;
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

function pyDateTime(secs: number, us: number): string {
  const d = new Date(secs * 1000);
  const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  return us === 0 ? base : `${base}.${pad(us, 6)}`;
}

/** `datetime.utcfromtimestamp(float(ticks) * 1e-7 - 11644473600).isoformat(' ')`. */
export function pyFiletime(ticks: bigint): string {
  const t = Number(ticks) * 1e-7 - 11644473600;
  let int = Math.trunc(t);
  let us = roundHalfEven((t - int) * 1e6);
  if (us >= 1_000_000) {
    us -= 1_000_000;
    int += 1;
  } else if (us < 0) {
    us += 1_000_000;
    int -= 1;
  }
  return pyDateTime(int, us);
}

function pySystemTime(st: SystemTime): string {
  const base = `${pad(st.year, 4)}-${pad(st.month, 2)}-${pad(st.day, 2)} ${pad(st.hour, 2)}:${pad(st.minute, 2)}:${pad(st.second, 2)}`;
  // BinaryParser passes the milliseconds as datetime's microsecond argument.
  return st.millisecond === 0 ? base : `${base}.${pad(st.millisecond, 6)}`;
}

/** Python's `repr(float)`: shortest round-trip digits, exponent outside 1e-4 ≤ |x| < 1e16. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expPart] = x.toExponential().split('e') as [string, string];
  const exp = Number(expPart);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${pad(Math.abs(exp), 2)}`;
  } else if (exp < 0) {
    body = `0.${'0'.repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    body = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return neg ? `-${body}` : body;
}

function hexPadded(v: bigint | number, digits: number): string {
  return `0x${v.toString(16).padStart(digits, '0')}`;
}

function scalarString(type: number, v: EvtxScalar): string {
  switch (type) {
    case VT.WSTRING:
    case VT.ANSI:
      // Python's "utf16" codec takes a leading byte-order mark as such.
      return typeof v === 'string' && v.charCodeAt(0) === 0xfeff ? v.slice(1) : String(v);
    case VT.FLOAT:
    case VT.DOUBLE:
      return pyFloat(v as number);
    case VT.BOOL:
      return v === true ? 'True' : 'False';
    case VT.BINARY:
      return Buffer.from(v as Uint8Array).toString('base64');
    case VT.GUID:
      return `{${String(v)}}`;
    case VT.FILETIME:
      return pyFiletime(v as bigint);
    case VT.SYSTEMTIME:
      return pySystemTime(v as SystemTime);
    case VT.HEX32:
      return hexPadded(v as number, 8);
    case VT.HEX64:
      return hexPadded(v as bigint, 16);
    default:
      return String(v);
  }
}

function valueString(v: EvtxValue): string {
  if (v.value === null) return '';
  if (v.type === (EVTX_ARRAY | VT.WSTRING)) return (v.value as string[]).map((s) => `<string>${s}</string>\n`).join('');
  if (Array.isArray(v.value)) return (v.value as EvtxScalar[]).map((x) => scalarString(v.type & ~EVTX_ARRAY, x)).join('');
  return scalarString(v.type, v.value as EvtxScalar);
}

function render(node: EvtxNode, acc: string[]): void {
  switch (node.kind) {
    case 'element':
      acc.push('<', node.name);
      for (const a of node.attributes) {
        acc.push(' ', a.name, '="');
        for (const part of a.value) render(part, acc);
        acc.push('"');
      }
      acc.push('>');
      for (const c of node.children) render(c, acc);
      acc.push('</', node.name, '>\n');
      return;
    case 'value':
      if (node.type === VT.BINXML) {
        // An embedded document is rendered in place, unescaped.
        for (const c of node.value as EvtxNode[]) render(c, acc);
      } else {
        acc.push(pyEscape(valueString(node)));
      }
      return;
    case 'cdata':
      acc.push('<![CDATA[', pyEscape(node.text), ']]>');
      return;
    case 'entityref':
      acc.push(pyEscape(`&${node.name};`));
      return;
    case 'charref':
      // Views.py has no branch for character references: they vanish.
      return;
    case 'pi':
      acc.push(pyEscape(`<?${node.target}`), pyEscape(node.data === '' ? '?>' : ` ${node.data}?>`));
      return;
  }
}

/** One record as `record.xml()` returns it. */
export function pythonRecordXml(record: EvtxRecord): string {
  const acc: string[] = [];
  for (const n of record.nodes) render(n, acc);
  return acc.join('');
}

/** The whole stdout of `evtx_dump.py FILE` for these records. */
export function pythonEvtxDump(records: Iterable<EvtxRecord>): string {
  let out = `${XML_HEADER}\n<Events>\n`;
  for (const r of records) out += `${pythonRecordXml(r)}\n`;
  return `${out}</Events>\n`;
}
