/**
 * The syslog header of one framed message: RFC 5424 (`<PRI>1 TIMESTAMP HOST
 * APP PROCID MSGID SD MSG`) or RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`).
 * What follows the header (the MSG) goes to the format parsers. A line with
 * no `<PRI>` at all is taken whole as the message: many appliances and
 * `logger`-style relays send bare lines. The routing token is read from the
 * structured-data element `[kiseki@32473 token="…"]` (32473 is the example
 * enterprise number of RFC 5612; see docs/NETLOG.md).
 */

/** The header fields kiseki uses; absent where the line does not state them. */
export interface SyslogMessage {
  /** Event time from the header, epoch ms; undefined when the header has none. */
  ts?: number;
  host?: string;
  app?: string;
  /** Token of the `kiseki@…` structured-data element (RFC 5424 only). */
  token?: string;
  /** The message after the header (a BOM removed). */
  msg: string;
}

/** A header kiseki cannot read, and why. */
export type SyslogHeaderResult = { ok: true; message: SyslogMessage } | { ok: false; reason: 'bad_syslog_header' };

const MONTHS: Readonly<Record<string, number>> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
const BAD: SyslogHeaderResult = { ok: false, reason: 'bad_syslog_header' };
const RFC3164_TS = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) /;

/**
 * Splits one framed syslog message into header fields and MSG.
 * @param line the message without framing (no trailing LF)
 * @param receivedAt epoch ms of receipt: RFC 3164 timestamps carry no year, the
 *   year is the one that puts the time closest before (or at most a day after) it
 */
export function parseSyslogHeader(line: string, receivedAt: number): SyslogHeaderResult {
  if (line.charCodeAt(0) !== 60 /* < */) return { ok: true, message: { msg: line } };
  const close = line.indexOf('>', 1);
  if (close < 2 || close > 4) return BAD;
  const pri = Number(line.slice(1, close));
  if (!Number.isInteger(pri) || pri > 191) return BAD;
  const rest = line.slice(close + 1);
  if (rest.startsWith('1 ')) return parse5424(rest.slice(2));
  return parse3164(rest, receivedAt);
}

function parse5424(s: string): SyslogHeaderResult {
  // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID: five space-separated fields, then SD.
  let pos = 0;
  const fields: string[] = [];
  for (let i = 0; i < 5; i++) {
    const sp = s.indexOf(' ', pos);
    if (sp < 0) return BAD;
    fields.push(s.slice(pos, sp));
    pos = sp + 1;
  }
  const [tsText, host, app] = fields as [string, string, string, string, string];
  let ts: number | undefined;
  if (tsText !== '-') {
    ts = Date.parse(tsText);
    if (!Number.isFinite(ts)) return BAD;
  }
  let token: string | undefined;
  if (s.charCodeAt(pos) === 45 /* - */) {
    pos += 1;
  } else if (s.charCodeAt(pos) === 91 /* [ */) {
    // One or more SD elements; values escape ", \ and ] with a backslash (RFC 5424 §6.3.3).
    while (s.charCodeAt(pos) === 91) {
      const el = readSdElement(s, pos);
      if (el === undefined) return BAD;
      if (el.id.startsWith('kiseki@') && el.params.token !== undefined) token = el.params.token;
      pos = el.end;
    }
  } else {
    return BAD;
  }
  let msg = s.charCodeAt(pos) === 32 ? s.slice(pos + 1) : s.slice(pos);
  if (msg.charCodeAt(0) === 0xfeff) msg = msg.slice(1);
  const message: SyslogMessage = { msg };
  if (ts !== undefined) message.ts = ts;
  if (host !== '-') message.host = host;
  if (app !== '-') message.app = app;
  if (token !== undefined) message.token = token;
  return { ok: true, message };
}

function readSdElement(s: string, start: number): { id: string; params: Record<string, string>; end: number } | undefined {
  let pos = start + 1;
  let idEnd = pos;
  while (idEnd < s.length && s[idEnd] !== ' ' && s[idEnd] !== ']') idEnd++;
  const id = s.slice(pos, idEnd);
  if (id === '' || idEnd >= s.length) return undefined;
  pos = idEnd;
  const params: Record<string, string> = {};
  while (s[pos] === ' ') {
    const eq = s.indexOf('="', pos + 1);
    if (eq < 0) return undefined;
    const name = s.slice(pos + 1, eq);
    let value = '';
    let i = eq + 2;
    for (; i < s.length; i++) {
      const ch = s[i];
      if (ch === '\\' && i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === '\\' || s[i + 1] === ']')) {
        value += s[i + 1];
        i++;
      } else if (ch === '"') {
        break;
      } else {
        value += ch;
      }
    }
    if (i >= s.length) return undefined;
    params[name] = value;
    pos = i + 1;
  }
  if (s[pos] !== ']') return undefined;
  return { id, params, end: pos + 1 };
}

function parse3164(s: string, receivedAt: number): SyslogHeaderResult {
  const m = RFC3164_TS.exec(s);
  // Senders that put a PRI and no timestamp exist (some appliances): the rest is the message.
  if (m === null) return { ok: true, message: { msg: s } };
  const month = MONTHS[m[1]!];
  if (month === undefined) return BAD;
  const ts = yearless(month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), receivedAt);
  let rest = s.slice(m[0].length);
  const message: SyslogMessage = { ts, msg: rest };
  // HOST is absent when the first word is already the TAG (ends in ':' or '[pid]:').
  const sp = rest.indexOf(' ');
  if (sp > 0) {
    const first = rest.slice(0, sp);
    if (!first.endsWith(':') && !first.endsWith(']')) {
      message.host = first;
      rest = rest.slice(sp + 1);
    }
  }
  const tag = /^([^\s:[\]]{1,48})(\[[^\]]*\])?: ?/.exec(rest);
  if (tag !== null) {
    message.app = tag[1];
    rest = rest.slice(tag[0].length);
  }
  message.msg = rest;
  return { ok: true, message };
}

/** RFC 3164 times are the sender's local time without a year: kiseki reads them as UTC (docs/NETLOG.md). */
function yearless(month: number, day: number, h: number, mi: number, sec: number, receivedAt: number): number {
  const year = new Date(receivedAt).getUTCFullYear();
  const t = Date.UTC(year, month, day, h, mi, sec);
  // A December line received in January belongs to last year.
  return t > receivedAt + 86_400_000 ? Date.UTC(year - 1, month, day, h, mi, sec) : t;
}
