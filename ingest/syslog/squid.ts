/**
 * Squid access.log in its native format (`logformat squid`):
 *   time elapsed client code/status bytes method URL user hierarchy/peer type
 * e.g. `1710234000.123    154 10.0.0.5 TCP_MISS/200 1520 GET http://example.com/ - HIER_DIRECT/93.184.216.34 text/html`.
 * A result code with DENIED in it (`TCP_DENIED`, `NONE_NONE_DENIED`…) is a block.
 */
import { hostOf, setIf, toInt, type ParseResult, type ParsedFields } from './parse-result.js';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** True when `msg` looks like a native Squid line (epoch seconds with milliseconds first). */
export function looksLikeSquid(msg: string): boolean {
  return /^\d{9,11}\.\d{3} /.test(msg);
}

/** Parses one native Squid access.log line. */
export function parseSquid(msg: string): ParseResult {
  const f = msg.split(/ +/);
  if (f.length < 10) return { ok: false, reason: 'bad_header' };
  const [time, , client, codeStatus, bytes, method, url, user, hier] = f as [string, string, string, string, string, string, string, string, string];
  const ts = Math.round(Number(time) * 1000);
  const slash = codeStatus.indexOf('/');
  if (!Number.isFinite(ts) || slash < 0 || toInt(codeStatus.slice(slash + 1)) === undefined) return { ok: false, reason: 'bad_field' };
  const bytesIn = toInt(bytes);
  if (bytesIn === undefined && bytes !== '-') return { ok: false, reason: 'bad_field' };
  const code = codeStatus.slice(0, slash);
  const scheme = url.indexOf('://');
  // CONNECT names host:port; other methods a URL (or an error: pseudo-URL, which has no host).
  const target = method === 'CONNECT' ? /^(.+):(\d+)$/.exec(url) : null;
  const fields: ParsedFields = {
    ts,
    action: code.includes('DENIED') ? 'blocked' : 'allowed',
    srcIp: client,
    url,
    signature: codeStatus,
  };
  if (target !== null) {
    fields.domain = target[1]!.toLowerCase();
    fields.dstPort = Number(target[2]);
    fields.protocol = fields.dstPort === 443 ? 'https' : 'tcp';
  } else if (scheme > 0) {
    fields.protocol = url.slice(0, scheme).toLowerCase();
    setIf(fields, 'domain', hostOf(url));
    const port = /^[^/]*:(\d+)(?:[/?#]|$)/.exec(url.slice(scheme + 3));
    fields.dstPort = port !== null ? Number(port[1]) : fields.protocol === 'https' ? 443 : fields.protocol === 'http' ? 80 : undefined;
    if (fields.dstPort === undefined) delete fields.dstPort;
  }
  setIf(fields, 'bytesIn', bytesIn);
  if (user !== '-') fields.user = user;
  const peer = hier.slice(hier.indexOf('/') + 1);
  if (IPV4.test(peer) || peer.includes(':')) fields.dstIp = peer;
  return { ok: true, format: 'squid', fields };
}
