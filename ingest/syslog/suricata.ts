/**
 * Suricata EVE JSON (one JSON object per line, `event_type` alert, dns,
 * http, tls or flow). Other event types (stats, fileinfo, anomaly…) are
 * counted as `unsupported_event`, not stored: they carry no connection that
 * intel matching or correlation could use.
 */
import { setIf, toPort, type ParseResult, type ParsedFields } from './parse-result.js';

const SUPPORTED = new Set(['alert', 'dns', 'http', 'tls', 'flow']);

type Obj = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/** EVE times are `2024-03-12T09:00:00.123456+0000`: Date.parse wants a colon in the offset. */
function eveTime(s: string): number {
  return Date.parse(s.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
}

/** Parses one EVE JSON line. */
export function parseSuricata(msg: string): ParseResult {
  let eve: Obj | undefined;
  try {
    eve = obj(JSON.parse(msg));
  } catch {
    return { ok: false, reason: 'bad_json' };
  }
  if (eve === undefined) return { ok: false, reason: 'bad_json' };
  const type = str(eve.event_type);
  if (type === undefined) return { ok: false, reason: 'missing_field' };
  if (!SUPPORTED.has(type)) return { ok: false, reason: 'unsupported_event' };
  const timestamp = str(eve.timestamp);
  if (timestamp === undefined) return { ok: false, reason: 'missing_field' };
  const ts = eveTime(timestamp);
  const srcPort = toPort(num(eve.src_port));
  const dstPort = toPort(num(eve.dest_port));
  if (!Number.isFinite(ts) || Number.isNaN(srcPort) || Number.isNaN(dstPort)) return { ok: false, reason: 'bad_field' };
  const fields: ParsedFields = { ts, action: 'unknown' };
  setIf(fields, 'srcIp', str(eve.src_ip));
  setIf(fields, 'srcPort', srcPort);
  setIf(fields, 'dstIp', str(eve.dest_ip));
  setIf(fields, 'dstPort', dstPort);
  const proto = str(eve.app_proto) ?? str(eve.proto);
  setIf(fields, 'protocol', proto?.toLowerCase());
  if (type === 'alert') {
    const alert = obj(eve.alert);
    const signature = str(alert?.signature);
    if (alert === undefined || signature === undefined) return { ok: false, reason: 'missing_field' };
    fields.signature = signature;
    fields.action = alert.action === 'blocked' ? 'blocked' : 'alert';
    const sev = num(alert.severity);
    if (sev !== undefined) fields.vendorSeverity = String(sev);
  }
  // Alerts carry the app-layer object of their flow too (`http`, `dns`, `tls` beside `alert`).
  const http = obj(eve.http);
  if (http !== undefined) {
    const host = str(http.hostname);
    setIf(fields, 'domain', host?.toLowerCase());
    const url = str(http.url);
    if (url !== undefined) fields.url = host !== undefined && url.startsWith('/') ? `http://${host}${url}` : url;
    const length = num(http.length);
    if (length !== undefined) fields.bytesIn = length;
  }
  const dns = obj(eve.dns);
  if (dns !== undefined) {
    // EVE v1 has dns.rrname; v2/v3 queries have dns.queries[0].rrname.
    const queries = Array.isArray(dns.queries) ? dns.queries : [];
    const rrname = str(dns.rrname) ?? str(obj(queries[0])?.rrname);
    if (type === 'dns' && rrname === undefined) return { ok: false, reason: 'missing_field' };
    setIf(fields, 'domain', rrname?.toLowerCase());
  }
  const tls = obj(eve.tls);
  if (tls !== undefined) setIf(fields, 'domain', str(tls.sni)?.toLowerCase());
  const flow = obj(eve.flow);
  if (type === 'flow' && flow !== undefined) {
    setIf(fields, 'bytesOut', num(flow.bytes_toserver));
    setIf(fields, 'bytesIn', num(flow.bytes_toclient));
    if (flow.action === 'drop' || flow.action === 'blocked') fields.action = 'blocked';
  }
  if (fields.srcIp === undefined && fields.dstIp === undefined) return { ok: false, reason: 'missing_field' };
  return { ok: true, format: 'suricata', fields };
}
