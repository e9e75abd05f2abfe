/**
 * What the resource route files share: tenant scoping (another tenant's
 * resource answers 404 exactly like a missing one), views, parameter
 * schemas and the page shape.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { deviceStatus } from '../../engine/index.js';
import { seqGaps, type DeviceRecord, type HotStore, type UserRecord } from '../../storage/index.js';
import { encodeCursor } from '../route-kit.js';

/** The tenant a user is confined to, or null for operators. */
export function scopeOf(user: UserRecord): string | null {
  return user.role === 'operator' ? null : user.supportId;
}

/**
 * The tenant a list request covers: the user's own (whatever it asked for), the
 * one an operator asked for, or null for an operator's all-tenant list.
 * `false` when a tenant user asked for another tenant: the list is empty,
 * revealing nothing.
 */
export function listScope(user: UserRecord, requested: string | undefined): string | null | false {
  const own = scopeOf(user);
  if (own !== null && requested !== undefined && requested !== own) return false;
  return own ?? requested ?? null;
}

/** The empty page a list answers with when {@link listScope} says `false`. */
export const EMPTY_PAGE = Object.freeze({ items: [], nextCursor: null });

/**
 * Where a newest-first scan keyed by (time, id) starts: after the cursor's
 * position (time, id), or just past `to` when that is older, so the scan
 * begins there rather than filtering everything newer.
 */
export function newestFirstStart(cursor: unknown[] | undefined, to: number | undefined): { time: number; id: string } | undefined {
  let start = cursor === undefined ? undefined : { time: typeof cursor[0] === 'number' ? cursor[0] : Infinity, id: typeof cursor[1] === 'string' ? cursor[1] : '\uffff' };
  if (to !== undefined && (start === undefined || start.time > to)) start = { time: to, id: '\uffff' };
  return start;
}

/** 404 for a resource of another tenant: its existence is not revealed. */
export function assertTenant(user: UserRecord, supportId: string | undefined): asserts supportId is string {
  const scope = scopeOf(user);
  if (supportId === undefined || (scope !== null && scope !== supportId)) throw new KisekiError('ERR_NOT_FOUND');
}

export function userView(u: UserRecord) {
  return { id: u.id, role: u.role, supportId: u.supportId, mustChangePassword: u.mustChangePassword, createdAt: u.createdAt };
}

export function deviceView(store: HotStore, d: DeviceRecord, detail: boolean) {
  const trail = store.log.trail(d.tmid);
  const isolation = store.commands.isolation(d.tmid);
  const gaps = trail === undefined ? [] : seqGaps(trail.ranges);
  return {
    tmid: d.tmid,
    supportId: d.supportId,
    computer: d.computer,
    agentVersion: d.agentVersion,
    os: d.os,
    ips: d.ips,
    macs: d.macs,
    firstSeen: d.firstSeen,
    lastCommunication: Math.max(d.lastSeen, trail?.lastBatchAt ?? 0),
    connected: d.connected,
    /** online / offline / isolated / error (engine/device-status.ts). */
    state: deviceStatus(store, d),
    isolation: isolation?.state ?? 'none',
    isolationSince: isolation?.since ?? null,
    events: trail?.events ?? 0,
    batches: trail?.batches ?? 0,
    seqGaps: gaps.reduce((n, [a, b]) => n + b - a + 1, 0),
    ...(detail ? { seqRanges: trail?.ranges ?? [], gaps, inventory: store.devices.inventory(d.tmid) ?? null, isolationAllow: isolation?.allow ?? [] } : {}),
  };
}

export const tmidParam = z.object({ tmid: z.string().min(1).max(64) });
export const idParam = z.object({ id: z.string().min(1).max(128) });
export const supportIdParam = z.object({ supportId: z.string().min(1).max(64) });
export const password = z.string().regex(/^[\x20-\x7e]{6,128}$/, '6-128 printable ASCII characters');
export const verdict = z.enum(['black', 'gray', 'white']);
export const roleEnum = z.enum(['operator', 'admin', 'viewer']);

/** Up to `limit` items (callers collect limit + 1 to know whether there is more) and the cursor of the last shown. */
export function page<T>(items: T[], limit: number, cursorOf: (last: T) => unknown[]) {
  const more = items.length > limit;
  const shown = more ? items.slice(0, limit) : items;
  return { items: shown, nextCursor: more && shown.length > 0 ? encodeCursor(cursorOf(shown[shown.length - 1]!)) : null };
}

/** Collects items from `source` that `keep` accepts, stopping after limit + 1 (one more tells there is a next page). */
export function collect<S, T>(source: Iterable<S>, limit: number, view: (s: S) => T | undefined): T[] {
  const items: T[] = [];
  for (const s of source) {
    const v = view(s);
    if (v === undefined) continue;
    items.push(v);
    if (items.length > limit) break;
  }
  return items;
}

/** Items of `source` (newest first) down to time `from` (by `timeOf`): the scan stops there. */
export function* newestUntil<T>(source: Iterable<T>, from: number | undefined, timeOf: (item: T) => number): Iterable<T> {
  for (const item of source) {
    if (from !== undefined && timeOf(item) < from) return;
    yield item;
  }
}
/** An agent package (fleet management, docs/FLEET.md): the version, where agents download it (https), its SHA-256. */
export const agentPackage = z
  .object({
    version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/, 'a version such as 3.3.0'),
    url: z.string().url().max(2048).refine((u) => u.startsWith('https://'), 'an https URL'),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).transform((s) => s.toLowerCase()),
  })
  .strict();
