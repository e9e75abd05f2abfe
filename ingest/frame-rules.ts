/**
 * Validation rules for agent frames beyond their MessagePack structure. Each
 * failure names the protocol error code and the field, so the agent's
 * developer can tell exactly what was wrong (docs/PROTOCOL.md).
 */
import { z } from 'zod';
import type { ProtocolErrorCode } from '../core/contracts.js';
import type { FrameEnvelope } from './frame-scanner.js';

export type Rejection = { ok: false; code: ProtocolErrorCode; message: string; field?: string };

const shortText = z.string().min(1).max(256);
const list = z.array(z.string().max(128)).max(64);

/** `hello`: either an enrollment key (new device) or TMID + token (known device). */
export const helloSchema = z
  .object({
    t: z.literal('hello'),
    enrollKey: z.string().min(1).max(256).optional(),
    tmid: z.string().min(1).max(64).optional(),
    token: z.string().min(1).max(256).optional(),
    computer: shortText,
    agentVersion: z.string().min(1).max(64),
    os: shortText,
    ips: list,
    macs: list,
  })
  .loose();

export type HelloInput = z.infer<typeof helloSchema>;

/** `cmdr`: the agent's answer to a command: acknowledged on receipt, then done or failed. */
export const commandResultSchema = z
  .object({
    t: z.literal('cmdr'),
    id: z.string().min(1).max(64),
    status: z.enum(['acknowledged', 'done', 'failed']),
    result: z.record(z.string(), z.unknown()).optional(),
    error: z.string().max(1024).optional(),
  })
  .loose();

/** Maps a zod failure on `input` to the protocol's missing_field / invalid_field (nil counts as missing). */
export function rejectionFromZod(error: z.ZodError, input: unknown): Rejection {
  const issue = error.issues[0];
  const field = issue === undefined ? undefined : issue.path.join('.');
  let value: unknown = input;
  for (const key of issue?.path ?? []) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  const missing = issue !== undefined && issue.path.length > 0 && (value === undefined || value === null);
  return {
    ok: false,
    code: missing ? 'missing_field' : 'invalid_field',
    message: missing ? `Field ${field} is required.` : `Field ${field} is invalid: ${issue?.message ?? 'unknown'}.`,
    ...(field === undefined ? {} : { field }),
  };
}

const BATCH_ID = /^[0-9a-f]{32}$/;

/**
 * Highest seq a batch may end at: 2^53 - 1 (Number.MAX_SAFE_INTEGER) less a
 * margin of 2^20. Past it `last + 1` (the next batch's first, welcome's
 * nextSeq) and range arithmetic would leave the exact integers and the device
 * could never send again; with the margin every seq the server computes from
 * a stored one stays exact. 4.5e15 events lasts a device 142 years at 10^6/s.
 */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER - 2 ** 20;

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** Checks a batch envelope; the events themselves are the shard's business. */
export function checkBatchEnvelope(env: FrameEnvelope): { ok: true } | Rejection {
  const required: [keyof FrameEnvelope, string][] = [
    ['id', 'id'],
    ['sentAt', 'sentAt'],
    ['first', 'first'],
    ['last', 'last'],
  ];
  for (const [key, field] of required) {
    if (env[key] === undefined || env[key] === null) return { ok: false, code: 'missing_field', message: `Field ${field} is required.`, field };
  }
  if (!env.hasEvents) return { ok: false, code: 'missing_field', message: 'Field events is required.', field: 'events' };
  if (typeof env.id !== 'string' || !BATCH_ID.test(env.id)) {
    return { ok: false, code: 'invalid_field', message: 'Field id must be 32 lowercase hexadecimal characters.', field: 'id' };
  }
  if (typeof env.sentAt !== 'number' || !Number.isSafeInteger(env.sentAt) || env.sentAt < 0) {
    return { ok: false, code: 'invalid_field', message: 'Field sentAt must be milliseconds since the epoch.', field: 'sentAt' };
  }
  if (!isSeq(env.first)) return { ok: false, code: 'invalid_field', message: 'Field first must be an integer >= 1.', field: 'first' };
  if (!isSeq(env.last) || env.last < env.first) {
    return { ok: false, code: 'invalid_field', message: 'Field last must be an integer >= first.', field: 'last' };
  }
  if (env.last > MAX_SEQ) {
    return { ok: false, code: 'seq_out_of_range', message: `Field last must be at most ${MAX_SEQ}.`, field: 'last' };
  }
  if (!env.eventsIsArray) return { ok: false, code: 'invalid_field', message: 'Field events must be an array.', field: 'events' };
  if (env.eventCount !== env.last - env.first + 1) {
    return { ok: false, code: 'invalid_field', message: 'Field events must hold last - first + 1 events.', field: 'events' };
  }
  return { ok: true };
}
