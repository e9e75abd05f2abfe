/**
 * What every network-log parser returns: the record's fields, or a failure
 * with a snake_case reason that is counted per tenant (docs/NETLOG.md lists
 * the reasons). Parsers never throw for a bad line.
 */
import type { NetworkLogAction, NetworkLogFormat, NetworkLogRecord } from '../../core/contracts.js';

/** Why a line was not stored; each has a counter per tenant. */
export type NetlogFailureReason =
  | 'line_too_long'
  | 'bad_syslog_header'
  | 'empty_message'
  | 'unknown_format'
  | 'bad_header'
  | 'bad_json'
  | 'missing_field'
  | 'bad_field'
  | 'unsupported_event'
  | 'unknown_tenant'
  | 'queue_full';

/** Every failure reason, in the order docs/NETLOG.md lists them. */
export const NETLOG_FAILURE_REASONS: readonly NetlogFailureReason[] = [
  'line_too_long',
  'bad_syslog_header',
  'empty_message',
  'unknown_format',
  'bad_header',
  'bad_json',
  'missing_field',
  'bad_field',
  'unsupported_event',
  'unknown_tenant',
  'queue_full',
];

/** The fields a format parser fills; the receiver adds tenant, times, sender and raw line. */
export type ParsedFields = Omit<NetworkLogRecord, 'supportId' | 'receivedAt' | 'ts' | 'sourceAddress' | 'raw' | 'format' | 'action'> & {
  /** The event's own time, epoch ms, where the line states it. */
  ts?: number;
  action: NetworkLogAction;
};

export type ParseResult = { ok: true; format: NetworkLogFormat; fields: ParsedFields } | { ok: false; reason: NetlogFailureReason };

/** A finite non-negative integer from text, or undefined (ports, byte counts). */
export function toInt(s: string | undefined): number | undefined {
  if (s === undefined || s === '' || s === '-') return undefined;
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** A port from text: undefined when absent, NaN when present and not 0-65535. */
export function toPort(s: string | number | undefined): number | undefined {
  if (s === undefined || s === '' || s === '-') return undefined;
  const n = typeof s === 'number' ? s : Number(s);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : Number.NaN;
}

/** The host of a URL or `host:port` (a CONNECT target), lower-cased, without port; undefined when none. */
export function hostOf(url: string): string | undefined {
  let s = url;
  const scheme = s.indexOf('://');
  if (scheme >= 0) s = s.slice(scheme + 3);
  const end = s.search(/[/?#]/);
  if (end >= 0) s = s.slice(0, end);
  const at = s.lastIndexOf('@');
  if (at >= 0) s = s.slice(at + 1);
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    return close > 0 ? s.slice(1, close).toLowerCase() : undefined;
  }
  const colon = s.indexOf(':');
  if (colon >= 0) s = s.slice(0, colon);
  return s === '' ? undefined : s.toLowerCase();
}

/** Sets `key` on `target` only when the value is defined (the records keep optional fields absent, not undefined). */
export function setIf<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}
