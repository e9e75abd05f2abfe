/**
 * FortiGate key=value logs (`date=2024-03-12 time=09:00:00 devname="FGT60E"
 * … srcip=10.0.0.5 dstip=93.184.216.34 action="deny" …`): traffic, UTM and
 * event logs alike. Values may be double-quoted. `eventtime` (FortiOS 6.2+,
 * seconds, µs or ns since the epoch) wins over date + time, which are the
 * device's local time and read with its `tz` field when present, else as UTC.
 */
import { actionOf } from './cef.js';
import { hostOf, setIf, toInt, toPort, type ParseResult, type ParsedFields } from './parse-result.js';

/** True when `msg` looks like a FortiGate log (date= … devname= or logid=). */
export function looksLikeFortigate(msg: string): boolean {
  return msg.startsWith('date=') || msg.startsWith('logver=') || (msg.includes('devname=') && msg.includes('logid='));
}

/** key=value pairs; undefined when a quote is not closed. */
export function parseKeyValues(msg: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const n = msg.length;
  let i = 0;
  while (i < n) {
    while (i < n && msg.charCodeAt(i) === 32) i++;
    const eq = msg.indexOf('=', i);
    if (eq < 0) break;
    const key = msg.slice(i, eq);
    let j = eq + 1;
    let value: string;
    if (msg[j] === '"') {
      const close = msg.indexOf('"', j + 1);
      if (close < 0) return undefined;
      value = msg.slice(j + 1, close);
      j = close + 1;
    } else {
      const sp = msg.indexOf(' ', j);
      const end = sp < 0 ? n : sp;
      value = msg.slice(j, end);
      j = end;
    }
    out.set(key, value);
    i = j;
  }
  return out;
}

const PROTOCOLS: Readonly<Record<string, string>> = { '1': 'icmp', '6': 'tcp', '17': 'udp', '58': 'ipv6-icmp' };

function eventTime(kv: Map<string, string>): number | undefined {
  const et = kv.get('eventtime');
  if (et !== undefined && /^\d{10,19}$/.test(et)) {
    // Seconds (10 digits), ms (13), µs (16) or ns (19).
    return Math.floor(Number(et) / 10 ** Math.max(0, et.length - 13));
  }
  const date = kv.get('date');
  const time = kv.get('time');
  if (date === undefined || time === undefined) return undefined;
  const tz = kv.get('tz');
  const offset = tz !== undefined && /^[+-]\d{4}$/.test(tz) ? `${tz.slice(0, 3)}:${tz.slice(3)}` : 'Z';
  return Date.parse(`${date}T${time}${offset}`);
}

/** Parses one FortiGate key=value log line. */
export function parseFortigate(msg: string): ParseResult {
  const kv = parseKeyValues(msg);
  if (kv === undefined) return { ok: false, reason: 'bad_field' };
  if (!kv.has('logid') && !kv.has('type')) return { ok: false, reason: 'missing_field' };
  const ts = eventTime(kv);
  if (ts !== undefined && !Number.isFinite(ts)) return { ok: false, reason: 'bad_field' };
  const srcPort = toPort(kv.get('srcport'));
  const dstPort = toPort(kv.get('dstport'));
  if (Number.isNaN(srcPort) || Number.isNaN(dstPort)) return { ok: false, reason: 'bad_field' };
  const type = kv.get('type');
  const fields: ParsedFields = { action: actionOf(kv.get('action') ?? kv.get('utmaction'), type === 'utm' || type === 'attack' ? 'alert' : 'unknown') };
  // Sessions that ended normally are allowed traffic.
  if (fields.action === 'unknown' && /^(close|timeout|server-rst|client-rst|start)$/.test(kv.get('action') ?? '')) fields.action = 'allowed';
  setIf(fields, 'ts', ts);
  setIf(fields, 'srcIp', kv.get('srcip'));
  setIf(fields, 'srcPort', srcPort);
  setIf(fields, 'dstIp', kv.get('dstip'));
  setIf(fields, 'dstPort', dstPort);
  const proto = kv.get('proto');
  setIf(fields, 'protocol', proto === undefined ? kv.get('service')?.toLowerCase() : (PROTOCOLS[proto] ?? proto));
  const url = kv.get('url');
  const host = kv.get('hostname') ?? kv.get('qname');
  if (url !== undefined) fields.url = host !== undefined && url.startsWith('/') ? `http://${host}${url}` : url;
  setIf(fields, 'domain', (host ?? (url === undefined ? undefined : hostOf(url)))?.toLowerCase());
  setIf(fields, 'signature', kv.get('attack') ?? kv.get('msg') ?? (kv.get('policyid') === undefined ? undefined : `policy ${kv.get('policyid')}`));
  setIf(fields, 'vendorSeverity', kv.get('level') ?? kv.get('severity'));
  setIf(fields, 'bytesOut', toInt(kv.get('sentbyte')));
  setIf(fields, 'bytesIn', toInt(kv.get('rcvdbyte')));
  setIf(fields, 'user', kv.get('user') ?? kv.get('srcuser'));
  return { ok: true, format: 'fortigate', fields };
}
