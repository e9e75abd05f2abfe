/**
 * One framed syslog message → a NetworkLogRecord or a failure reason: the
 * syslog header first (ingest/syslog/syslog-header.ts), then the format,
 * recognised from the message itself (CEF by its `CEF:` prefix, Suricata EVE
 * by a JSON object, Squid by its leading epoch time, FortiGate by its
 * key=value fields), so one listener takes every format.
 */
import type { NetworkLogRecord } from '../../core/contracts.js';
import { cefStart, parseCef } from './cef.js';
import { looksLikeFortigate, parseFortigate } from './fortigate.js';
import type { NetlogFailureReason, ParseResult } from './parse-result.js';
import { looksLikeSquid, parseSquid } from './squid.js';
import { parseSuricata } from './suricata.js';
import { parseSyslogHeader, type SyslogMessage } from './syslog-header.js';

/** Parses the message part (after the syslog header) in whichever format it is. */
export function parseMessage(msg: string): ParseResult {
  const c = msg.charCodeAt(0);
  if (c === 123 /* { */) return parseSuricata(msg);
  const cef = cefStart(msg);
  if (cef >= 0) return parseCef(msg.slice(cef));
  if (looksLikeSquid(msg)) return parseSquid(msg);
  if (looksLikeFortigate(msg)) return parseFortigate(msg);
  return { ok: false, reason: 'unknown_format' };
}

/** A parsed line before tenant routing: the record without supportId, and the header's token. */
export type LineResult =
  | { ok: true; record: Omit<NetworkLogRecord, 'supportId'>; token: string | undefined }
  | { ok: false; reason: NetlogFailureReason; token: string | undefined };

/**
 * Parses one framed message (the line as received, no trailing newline).
 * @param receivedAt epoch ms of receipt (the record's ts where the line states none)
 * @param sourceAddress the sender's IP address
 */
export function parseLine(line: string, receivedAt: number, sourceAddress: string): LineResult {
  const header = parseSyslogHeader(line, receivedAt);
  if (!header.ok) return { ok: false, reason: header.reason, token: undefined };
  const h: SyslogMessage = header.message;
  const msg = h.msg.trim();
  if (msg === '') return { ok: false, reason: 'empty_message', token: h.token };
  const parsed = parseMessage(msg);
  if (!parsed.ok) return { ok: false, reason: parsed.reason, token: h.token };
  const { ts, ...fields } = parsed.fields;
  const record: Omit<NetworkLogRecord, 'supportId'> = {
    receivedAt,
    ts: ts ?? h.ts ?? receivedAt,
    format: parsed.format,
    sourceAddress,
    ...fields,
    raw: line,
  };
  const host = h.host ?? h.app;
  if (host !== undefined) record.host = host;
  return { ok: true, record, token: h.token };
}
