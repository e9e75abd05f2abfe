/**
 * ArcSight CEF:0 (`CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|Extension`).
 * Escaping follows the CEF specification: in the header `\|` and `\\`; in
 * extension values `\=`, `\\`, `\n` and `\r`. A value runs to the next
 * unescaped ` key=` (values may hold spaces). Some senders put text before
 * `CEF:` (a host name): it is skipped.
 */
import { hostOf, setIf, toInt, toPort, type ParseResult, type ParsedFields } from './parse-result.js';
import type { NetworkLogAction } from '../../core/contracts.js';

/** Index of `CEF:` within the first 128 characters of `msg`, or -1. */
export function cefStart(msg: string): number {
  const i = msg.indexOf('CEF:');
  return i >= 0 && i < 128 ? i : -1;
}

/** Splits the seven header fields and the extension; undefined when the header is short. */
function splitHeader(s: string): { header: string[]; ext: string } | undefined {
  const header: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\' && (s[i + 1] === '|' || s[i + 1] === '\\')) {
      cur += s[i + 1];
      i++;
    } else if (ch === '|') {
      header.push(cur);
      cur = '';
      if (header.length === 7) return { header, ext: s.slice(i + 1) };
    } else {
      cur += ch;
    }
  }
  return undefined;
}

/** key=value pairs of a CEF extension, unescaped (an escaped `\=` never starts a key: a backslash is no key character). */
export function parseCefExtension(ext: string): Map<string, string> {
  const out = new Map<string, string>();
  // Keys are alphanumeric (plus _ . [ ]): find each ` key=` not preceded by a backslash.
  const keyRe = /(?:^|\s)([A-Za-z0-9_.[\]-]+)=/g;
  const starts: { key: string; valueStart: number; keyStart: number }[] = [];
  let m: RegExpExecArray | null;
  while ((m = keyRe.exec(ext)) !== null) {
    const eq = m.index + m[0].length - 1;
    starts.push({ key: m[1]!, valueStart: eq + 1, keyStart: eq - m[1]!.length });
  }
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i]!;
    const end = i + 1 < starts.length ? starts[i + 1]!.keyStart : ext.length;
    out.set(s.key, unescapeValue(ext.slice(s.valueStart, end).trimEnd()));
  }
  return out;
}

function unescapeValue(v: string): string {
  if (!v.includes('\\')) return v;
  return v.replace(/\\([=\\nr|])/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
}

const BLOCKED = /^(block|blocked|deny|denied|drop|dropped|reject|rejected|quarantine|prevented)/i;
const ALLOWED = /^(allow|allowed|accept|accepted|permit|permitted|pass|passed|success)/i;

/** The action word of `act` (or the outcome) mapped to allowed / blocked. */
export function actionOf(word: string | undefined, fallback: NetworkLogAction): NetworkLogAction {
  if (word === undefined) return fallback;
  if (BLOCKED.test(word)) return 'blocked';
  if (ALLOWED.test(word)) return 'allowed';
  return fallback;
}

/** `rt`: epoch ms, or `MMM dd yyyy HH:mm:ss[.SSS] [zone]` (read as UTC when no zone). */
function cefTime(rt: string): number {
  if (/^\d{10,13}$/.test(rt)) return rt.length === 13 ? Number(rt) : Number(rt) * 1000;
  const t = Date.parse(/[A-Z]{3}$|[+-]\d\d:?\d\d$|Z$/.test(rt) ? rt : `${rt} UTC`);
  return t;
}

/** Parses the CEF part of a message (from `CEF:` on). */
export function parseCef(msg: string): ParseResult {
  if (!msg.startsWith('CEF:')) return { ok: false, reason: 'bad_header' };
  const split = splitHeader(msg.slice(4));
  if (split === undefined) return { ok: false, reason: 'bad_header' };
  const [version, , , , sigId, name, severity] = split.header as [string, string, string, string, string, string, string];
  if (version !== '0' && version !== '1') return { ok: false, reason: 'bad_header' };
  const ext = parseCefExtension(split.ext);
  const srcPort = toPort(ext.get('spt'));
  const dstPort = toPort(ext.get('dpt'));
  if (Number.isNaN(srcPort) || Number.isNaN(dstPort)) return { ok: false, reason: 'bad_field' };
  const fields: ParsedFields = {
    action: actionOf(ext.get('act') ?? ext.get('outcome'), 'alert'),
    signature: name !== '' ? name : sigId,
    vendorSeverity: severity,
  };
  const rt = ext.get('rt') ?? ext.get('end') ?? ext.get('start');
  if (rt !== undefined) {
    const ts = cefTime(rt);
    if (!Number.isFinite(ts)) return { ok: false, reason: 'bad_field' };
    fields.ts = ts;
  }
  setIf(fields, 'srcIp', ext.get('src') ?? ext.get('c6a2'));
  setIf(fields, 'srcPort', srcPort);
  setIf(fields, 'dstIp', ext.get('dst') ?? ext.get('c6a3'));
  setIf(fields, 'dstPort', dstPort);
  setIf(fields, 'protocol', (ext.get('app') ?? ext.get('proto'))?.toLowerCase());
  const url = ext.get('request');
  setIf(fields, 'url', url);
  const domain = ext.get('dhost') ?? ext.get('destinationDnsDomain') ?? (url === undefined ? undefined : hostOf(url));
  setIf(fields, 'domain', domain?.toLowerCase());
  setIf(fields, 'user', ext.get('suser') ?? ext.get('duser'));
  setIf(fields, 'bytesOut', toInt(ext.get('out')));
  setIf(fields, 'bytesIn', toInt(ext.get('in')));
  return { ok: true, format: 'cef', fields };
}
