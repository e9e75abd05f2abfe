/**
 * Actions and reads that the JSON routes (/api/v1) and the console pages
 * (api/console) both perform: logging in, requesting a response command,
 * writing an audit record, and the filtered device and alert lists. One
 * implementation, so a page and the route it mirrors cannot disagree on
 * scoping, validation or what gets audited.
 */
import type { Context } from 'hono';
import { setCookie } from 'hono/cookie';
import { KisekiError } from '../core/errors.js';
import { verifyPassword, type AlertCursor, type CommandRecord, type DeviceRecord, type EffectiveAlert, type Role, type UserRecord } from '../storage/index.js';
import { startSpotJob, type ExportJob } from '../export/index.js';
import { auditAs, SESSION_COOKIE, type ApiDeps } from './route-kit.js';

export { auditAs };
import { assertTenant, deviceView, scopeOf } from './routes/shared.js';

/** How long a console or API session lives, ms (12 h). */
export const SESSION_TTL_MS = 12 * 3600 * 1000;


/**
 * Checks an ID and password, audits the outcome, creates a session and sets
 * its cookie (HttpOnly, SameSite=Strict, Secure under HTTPS).
 * @throws KisekiError ERR_INVALID_CREDENTIALS, ERR_ACCOUNT_LOCKED
 */
export async function loginWithPassword(c: Context, deps: ApiDeps, id: string, password: string, from: string): Promise<{ token: string; user: UserRecord; expiresAt: number }> {
  const now = deps.clock.now();
  const identity = deps.store.identity;
  const result = await identity.verifyLogin(id, password, now);
  if (!result.ok) {
    const user = identity.user(id);
    await identity.appendAudit({
      at: now,
      actor: id,
      role: user?.role ?? 'system',
      supportId: user?.supportId ?? null,
      action: result.reason === 'locked' ? 'auth.login_locked' : 'auth.login_failed',
      target: id,
      from,
    });
    throw new KisekiError(result.reason === 'locked' ? 'ERR_ACCOUNT_LOCKED' : 'ERR_INVALID_CREDENTIALS');
  }
  const token = await identity.createSession(result.user.id, 'session', now, SESSION_TTL_MS);
  setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/', secure: new URL(c.req.url).protocol === 'https:', maxAge: SESSION_TTL_MS / 1000 });
  await identity.appendAudit({ at: now, actor: result.user.id, role: result.user.role, supportId: result.user.supportId, action: 'auth.login', target: result.user.id, from });
  return { token, user: result.user, expiresAt: now + SESSION_TTL_MS };
}

/** A response action as requested by a user (already validated). */
export type CommandAsk =
  | { kind: 'isolate'; args: { allow: { cidr: string; port?: number }[] } }
  | { kind: 'release'; args: Record<string, never> }
  | { kind: 'delete-file'; args: { path: string; sha256: string } }
  | { kind: 'collect-file'; args: { path: string; sha256?: string } }
  | { kind: 'set-policy'; args: Record<string, unknown> }
  | { kind: 'upgrade'; args: { version: string; url: string; sha256: string } };

/**
 * Queues a response command for a device of the user's scope, audits it and
 * hands it to the agent server (sent at once when the device is connected).
 * @throws KisekiError ERR_NOT_FOUND for a device outside the user's tenant
 */
export async function requestCommand(deps: ApiDeps, user: UserRecord, from: string, tmid: string, ask: CommandAsk): Promise<CommandRecord> {
  const d = deps.store.devices.get(tmid);
  assertTenant(user, d?.supportId);
  const command = await deps.store.commands.queue({
    tmid: d!.tmid,
    supportId: d!.supportId,
    kind: ask.kind,
    args: ask.args as Record<string, unknown>,
    requestedBy: user.id,
    requestedAt: deps.clock.now(),
  });
  if (deps.shareCommand !== undefined) {
    try {
      await deps.shareCommand(command);
    } catch (err) {
      // Not known to reach the ingest nodes: failed here, and that state shared (retried) so that no node sends it later.
      const failed = await deps.store.commands.update(command.id, { state: 'failed', at: deps.clock.now(), error: 'cluster_unavailable', from: ['queued'] });
      if (failed !== undefined) deps.shareCommand(failed).catch(() => undefined);
      throw err;
    }
  }
  await auditAs(deps, user, from, 'command.requested', command.id, d!.supportId, { kind: ask.kind, tmid: d!.tmid, args: ask.args });
  deps.deliverCommands(d!.tmid);
  return deps.store.commands.get(command.id) ?? command;
}

/** Device list filters shared by GET /api/v1/devices and the console's devices page. */
export interface DeviceFilter {
  /** Operators only: one tenant. */
  supportId?: string;
  connected?: boolean;
  isolated?: boolean;
  /** Case-insensitive substring of the computer name. */
  computer?: string;
  /** Exact agent version. */
  agentVersion?: string;
  /** Last communication at or after / before, ms. */
  lastSeenFrom?: number;
  lastSeenBefore?: number;
  /** Device state (engine/device-status.ts). */
  state?: 'online' | 'offline' | 'isolated' | 'error';
}

export type DeviceListItem = ReturnType<typeof deviceView>;

/** Bounds a device scan: stop after `max` records read; `scanned` and `last` tell where it stopped. */
export interface ScanBudget {
  max: number;
  scanned: number;
  /** TMID of the last record read (a cursor to resume from). */
  last?: string;
  exhausted: boolean;
}

/**
 * Devices in the user's scope that pass `filter`, in TMID order after
 * `afterTmid`: a lazy iterator, so a page stops reading after limit + 1;
 * with a `budget`, it also stops after that many records read (a filter
 * that matches few devices then answers in bounded time and resumes).
 */
export function* filteredDevices(deps: ApiDeps, user: UserRecord, filter: DeviceFilter, afterTmid?: string, budget?: ScanBudget): Iterable<DeviceListItem> {
  const own = scopeOf(user);
  if (own !== null && filter.supportId !== undefined && filter.supportId !== own) return;
  const scope = own ?? filter.supportId ?? null;
  const computer = filter.computer?.toLowerCase();
  const source: Iterable<DeviceRecord> = scope !== null ? deps.store.devices.scanTenant(scope, afterTmid) : deps.store.devices.scan(afterTmid);
  for (const d of source) {
    if (budget !== undefined) {
      if (budget.scanned >= budget.max) {
        budget.exhausted = true;
        return;
      }
      budget.scanned++;
      budget.last = d.tmid;
    }
    if (filter.connected !== undefined && d.connected !== filter.connected) continue;
    if (computer !== undefined && !d.computer.toLowerCase().includes(computer)) continue;
    if (filter.agentVersion !== undefined && d.agentVersion !== filter.agentVersion) continue;
    const v = deviceView(deps.store, d, false);
    if (filter.isolated !== undefined && (v.isolation === 'isolated') !== filter.isolated) continue;
    if (filter.state !== undefined && v.state !== filter.state) continue;
    if (filter.lastSeenFrom !== undefined && v.lastCommunication < filter.lastSeenFrom) continue;
    if (filter.lastSeenBefore !== undefined && v.lastCommunication >= filter.lastSeenBefore) continue;
    yield v;
  }
}

/** Alert list filters shared by GET /api/v1/alerts and the console's alerts page. */
export interface AlertFilter {
  supportId?: string;
  verdict?: 'black' | 'gray' | 'white';
  state?: 'reported' | 'suppressed' | 'tuning';
  tmid?: string;
  /** Created at or after / before, ms (server time). */
  from?: number;
  before?: number;
}

/** Alerts in the user's scope that pass `filter`, newest first after `after`: lazy, stops at `from`. */
export function* filteredAlerts(deps: ApiDeps, user: UserRecord, filter: AlertFilter, after?: AlertCursor): Iterable<EffectiveAlert> {
  const own = scopeOf(user);
  if (own !== null && filter.supportId !== undefined && filter.supportId !== own) return;
  const scope = own ?? filter.supportId ?? null;
  // Newest first: start just before `before` rather than filtering the newer ones out one by one.
  const start = after ?? (filter.before === undefined ? undefined : { createdAt: filter.before, id: '' });
  const source = scope !== null ? deps.store.alerts.scanTenant(scope, start) : deps.store.alerts.scanAll(start);
  for (const a of source) {
    if (filter.before !== undefined && a.createdAt >= filter.before) continue;
    if (filter.from !== undefined && a.createdAt < filter.from) return;
    if (filter.verdict !== undefined && a.verdict !== filter.verdict) continue;
    if (filter.state !== undefined && a.state !== filter.state) continue;
    if (filter.tmid !== undefined && a.tmid !== filter.tmid) continue;
    yield a;
  }
}

/**
 * Changes the user's own password after checking the current one, and audits it.
 * @throws KisekiError ERR_INVALID_CREDENTIALS (wrong current password), ERR_VALIDATION (same as the current one), ERR_INVALID_INPUT (rule)
 */
export async function changeOwnPassword(deps: ApiDeps, user: UserRecord, from: string, currentPassword: string, newPassword: string, keepToken?: string): Promise<void> {
  // Through the login counter: a stolen session must not become a password-guessing oracle.
  const check = await deps.store.identity.verifyLogin(user.id, currentPassword, deps.clock.now());
  if (!check.ok) throw new KisekiError(check.reason === 'locked' ? 'ERR_ACCOUNT_LOCKED' : 'ERR_INVALID_CREDENTIALS');
  if (currentPassword === newPassword) throw new KisekiError('ERR_VALIDATION', { field: 'newPassword', reason: 'must differ from the current password' });
  // A changed password ends whatever a thief may hold: every session and token but the one in use.
  await deps.store.identity.setPassword(user.id, newPassword, deps.clock.now(), false, keepToken);
  await auditAs(deps, user, from, 'user.password_changed', user.id, user.supportId);
}

/** The exports side of the deps, or 404 when this server runs without exports. */
export function exportsOf(deps: ApiDeps): NonNullable<ApiDeps['exports']> {
  if (deps.exports === undefined) throw new KisekiError('ERR_NOT_FOUND');
  return deps.exports;
}

/** A log-spot request: 30 days of all devices, or everything of one device. */
export type SpotAsk =
  | { kind: 'spot30'; supportId?: string; from: string; to: string }
  | { kind: 'spot1y'; supportId?: string; tmid: string; computer?: string };

/**
 * Starts a log-spot job for the user's tenant (operators name one), audits
 * it, and returns the job as first written (it runs in the export pool).
 * @throws KisekiError ERR_VALIDATION, ERR_NOT_FOUND (tenant or device outside the scope)
 */
export async function requestSpotJob(deps: ApiDeps, user: UserRecord, from: string, ask: SpotAsk): Promise<ExportJob> {
  const ex = exportsOf(deps);
  const supportId = user.role === 'operator' ? ask.supportId : user.supportId;
  if (supportId === undefined || supportId === null) throw new KisekiError('ERR_VALIDATION', { field: 'supportId', reason: 'operators name the tenant' });
  if (user.role !== 'operator' && ask.supportId !== undefined && ask.supportId !== supportId) throw new KisekiError('ERR_NOT_FOUND');
  if (deps.store.tenants.get(supportId) === undefined) throw new KisekiError('ERR_NOT_FOUND');
  if (ask.kind === 'spot1y' && deps.store.devices.get(ask.tmid)?.supportId !== supportId) throw new KisekiError('ERR_NOT_FOUND');
  const request = ask.kind === 'spot30' ? { kind: 'spot30' as const, from: ask.from, to: ask.to } : { kind: 'spot1y' as const, tmid: ask.tmid, ...(ask.computer === undefined ? {} : { computer: ask.computer }) };
  let started: ReturnType<typeof startSpotJob>;
  try {
    started = startSpotJob({ store: deps.store, dataDir: ex.dataDir, runner: ex.runner, config: ex.config, now: deps.clock.now(), supportId, request });
  } catch (err) {
    if (err instanceof KisekiError && err.code === 'ERR_INVALID_INPUT') throw new KisekiError('ERR_VALIDATION', err.details);
    throw err;
  }
  started.done.catch((err: unknown) => deps.logger.error({ err, job: started.job.id }, 'Log-spot job failed.'));
  await auditAs(deps, user, from, 'export.requested', started.job.id, supportId, { kind: ask.kind, params: started.job.params });
  return started.job;
}

/**
 * Creates a user with a temporary password (changed at first login): operators
 * create anyone, admins only admins and viewers of their own tenant. Audited.
 * @throws KisekiError ERR_FORBIDDEN, ERR_NOT_FOUND, ERR_USER_EXISTS, ERR_TENANT_NOT_FOUND, ERR_INVALID_INPUT
 */
/**
 * The tenant an `…@<support ID>` login ID names, if that tenant exists.
 * Login IDs are global, so a refused creation could tell an admin that an ID
 * exists in another tenant. IDs ending in `@<support ID>` belong to that
 * tenant: an admin may create only IDs ending in `@<own support ID>`, and no
 * one may give such an ID to another tenant. An admin's creation can then
 * only clash with a user of their own tenant, whom they can list anyway; any
 * other ID answers 400 whether it exists or not.
 */
function loginNamespaceOf(id: string, tenantExists: (supportId: string) => boolean): string | undefined {
  const at = id.lastIndexOf('@');
  if (at < 0) return undefined;
  const suffix = id.slice(at + 1);
  return tenantExists(suffix) ? suffix : undefined;
}

export async function createUserAs(deps: ApiDeps, user: UserRecord, from: string, input: { id: string; role: Role; supportId: string | null; password: string }): Promise<UserRecord> {
  if (user.role === 'viewer') throw new KisekiError('ERR_FORBIDDEN', { role: user.role });
  if (user.role === 'admin') {
    // Admins manage their own tenant's admins and viewers only.
    if (input.role === 'operator') throw new KisekiError('ERR_FORBIDDEN', { role: user.role });
    assertTenant(user, input.supportId ?? undefined);
    // Decided from the ID alone, never from whether it exists (see loginNamespaceOf).
    if (!input.id.endsWith(`@${user.supportId}`)) throw new KisekiError('ERR_VALIDATION', { field: 'id', reason: `IDs an admin creates end with @${user.supportId}` });
  }
  const owner = loginNamespaceOf(input.id, (s) => deps.store.tenants.get(s) !== undefined);
  if (owner !== undefined && owner !== input.supportId) throw new KisekiError('ERR_VALIDATION', { field: 'id', reason: `IDs ending with @${owner} belong to tenant ${owner}` });
  const created = await deps.store.identity.createUser({ ...input, now: deps.clock.now() });
  await auditAs(deps, user, from, 'user.created', created.id, created.supportId, { role: created.role });
  return created;
}
