/**
 * The /api/v1 routes (SPEC §7, §8). Every handler is scoped by tenant: an
 * admin or viewer sees only their tenant, and any other tenant's resource
 * answers 404 exactly like one that does not exist. Every state change writes
 * an audit record (who, what, when, from where).
 */
import { randomBytes } from 'node:crypto';
import { setCookie, deleteCookie } from 'hono/cookie';
import { z } from 'zod';
import { COMMAND_EXPIRY_MS, type AlertRecord, type TenantPolicy } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import {
  addException,
  appendAudit,
  createSession,
  createTenant,
  createUser,
  deviceCommands,
  listExceptions,
  queueCommand,
  readAlert,
  readCommand,
  revokeSession,
  seqGaps,
  setPassword,
  setTenantPolicy,
  tenantPolicy,
  verifyLogin,
  verifyPassword,
  type AuditRecord,
  type DeviceRecord,
  type HotStore,
  type UserRecord,
} from '../storage/index.js';
import { decodeCursor, defineRoute, encodeCursor, pageQuery, SESSION_COOKIE, type Route } from './route-kit.js';

const SESSION_TTL_MS = 12 * 3600 * 1000;

/** The tenant a user is confined to, or null for operators. */
function scopeOf(user: UserRecord): string | null {
  return user.role === 'operator' ? null : user.supportId;
}

/** 404 for a resource of another tenant: its existence is not revealed. */
function assertTenant(user: UserRecord, supportId: string | undefined): asserts supportId is string {
  const scope = scopeOf(user);
  if (supportId === undefined || (scope !== null && scope !== supportId)) throw new KisekiError('ERR_NOT_FOUND');
}

function userView(u: UserRecord) {
  return { id: u.id, role: u.role, supportId: u.supportId, mustChangePassword: u.mustChangePassword, createdAt: u.createdAt };
}

function deviceView(store: HotStore, d: DeviceRecord, detail: boolean) {
  const trail = store.trails.get(d.tmid);
  const isolation = store.isolation.get(d.tmid);
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
    isolation: isolation?.state ?? 'none',
    isolationSince: isolation?.since ?? null,
    events: trail?.events ?? 0,
    batches: trail?.batches ?? 0,
    seqGaps: gaps.reduce((n, [a, b]) => n + b - a + 1, 0),
    ...(detail ? { seqRanges: trail?.ranges ?? [], gaps, inventory: store.inventory.get(d.tmid) ?? null, isolationAllow: isolation?.allow ?? [] } : {}),
  };
}

/** The verdict an analyst set last, if any, wins over the engine's. */
function effectiveAlert(store: HotStore, a: AlertRecord) {
  let analyst: { verdict: AlertRecord['verdict']; by: string; at: number } | undefined;
  for (const { value } of store.analystVerdicts.getRange({ start: [a.id, Infinity], end: [a.id], reverse: true, limit: 1 })) analyst = value;
  return { ...a, engineVerdict: a.verdict, verdict: analyst?.verdict ?? a.verdict, verdictBy: analyst?.by ?? 'engine' };
}

const tmidParam = z.object({ tmid: z.string().min(1).max(64) });
const idParam = z.object({ id: z.string().min(1).max(128) });
const supportIdParam = z.object({ supportId: z.string().min(1).max(64) });
const password = z.string().regex(/^[\x20-\x7e]{6,128}$/, '6-128 printable ASCII characters');
const verdict = z.enum(['black', 'gray', 'white']);
const roleEnum = z.enum(['operator', 'admin', 'viewer']);

const allowEntry = z.object({
  cidr: z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'an IP address or CIDR'),
  port: z.number().int().min(1).max(65535).optional(),
});
const commandBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('isolate'), args: z.object({ allow: z.array(allowEntry).max(64).default([]) }).strict().default({ allow: [] }) }).strict(),
  z.object({ kind: z.literal('release'), args: z.object({}).strict().default({}) }).strict(),
  z.object({ kind: z.literal('delete-file'), args: z.object({ path: z.string().min(3).max(1024), sha256: z.string().regex(/^[0-9a-fA-F]{64}$/) }).strict() }).strict(),
  z.object({ kind: z.literal('collect-file'), args: z.object({ path: z.string().min(3).max(1024), sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).optional() }).strict() }).strict(),
  z.object({ kind: z.literal('set-policy'), args: z.record(z.string(), z.unknown()) }).strict(),
]);

function page<T>(items: T[], limit: number, cursorOf: (last: T) => unknown[]) {
  const more = items.length > limit;
  const shown = more ? items.slice(0, limit) : items;
  return { items: shown, nextCursor: more && shown.length > 0 ? encodeCursor(cursorOf(shown[shown.length - 1]!)) : null };
}

export const ROUTES: Route[] = [
  // --- authentication -------------------------------------------------------
  defineRoute({
    method: 'post',
    path: '/auth/login',
    summary: 'Log in with ID and password; returns a session token (also set as a cookie).',
    tag: 'auth',
    auth: 'public',
    body: z.object({ id: z.string().min(1).max(64), password: z.string().min(1).max(128) }).strict(),
    responses: { 200: 'Logged in', 400: 'Invalid request', 401: 'Wrong ID or password', 423: 'Account locked' },
    async handler({ c, deps, body, from }) {
      const now = deps.clock.now();
      const result = await verifyLogin(deps.store, body.id, body.password, now);
      if (!result.ok) {
        const user = deps.store.users.get(body.id);
        await appendAudit(deps.store, {
          at: now,
          actor: body.id,
          role: user?.role ?? 'system',
          supportId: user?.supportId ?? null,
          action: result.reason === 'locked' ? 'auth.login_locked' : 'auth.login_failed',
          target: body.id,
          from,
        });
        throw new KisekiError(result.reason === 'locked' ? 'ERR_ACCOUNT_LOCKED' : 'ERR_INVALID_CREDENTIALS');
      }
      const token = await createSession(deps.store, result.user.id, 'session', now, SESSION_TTL_MS);
      setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/', secure: new URL(c.req.url).protocol === 'https:', maxAge: SESSION_TTL_MS / 1000 });
      await appendAudit(deps.store, { at: now, actor: result.user.id, role: result.user.role, supportId: result.user.supportId, action: 'auth.login', target: result.user.id, from });
      return c.json({ token, expiresAt: now + SESSION_TTL_MS, user: userView(result.user), mustChangePassword: result.user.mustChangePassword });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/auth/logout',
    summary: 'End the current session.',
    tag: 'auth',
    beforePasswordChange: true,
    responses: { 204: 'Logged out', 401: 'Not logged in' },
    async handler({ c, deps, audit }) {
      const token = c.req.header('authorization')?.replace(/^Bearer\s+/i, '') ?? undefined;
      if (token !== undefined) await revokeSession(deps.store, token);
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      await audit('auth.logout', 'session', null);
      return c.body(null, 204);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/auth/me',
    summary: 'The logged-in user.',
    tag: 'auth',
    beforePasswordChange: true,
    responses: { 200: 'The user', 401: 'Not logged in' },
    handler: ({ c, user }) => c.json(userView(user)),
  }),
  defineRoute({
    method: 'post',
    path: '/auth/password',
    summary: 'Change your password (required after the first login and after a reset).',
    tag: 'auth',
    beforePasswordChange: true,
    body: z.object({ currentPassword: z.string().min(1).max(128), newPassword: password }).strict(),
    responses: { 204: 'Changed', 400: 'Invalid new password', 401: 'Wrong current password' },
    async handler({ c, deps, user, body, audit }) {
      if (!(await verifyPassword(body.currentPassword, user.passwordHash))) throw new KisekiError('ERR_INVALID_CREDENTIALS');
      if (body.currentPassword === body.newPassword) throw new KisekiError('ERR_VALIDATION', { field: 'newPassword', reason: 'must differ from the current password' });
      await setPassword(deps.store, user.id, body.newPassword, deps.clock.now(), false);
      await audit('user.password_changed', user.id, user.supportId);
      return c.body(null, 204);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/auth/tokens',
    summary: 'Issue a bearer token for scripts (shown once).',
    tag: 'auth',
    body: z.object({ label: z.string().min(1).max(100), ttlDays: z.number().int().min(1).max(365).default(30) }).strict(),
    responses: { 201: 'Token issued', 400: 'Invalid request' },
    async handler({ c, deps, user, body, audit }) {
      const now = deps.clock.now();
      const token = await createSession(deps.store, user.id, 'token', now, body.ttlDays * 86_400_000, body.label);
      await audit('auth.token_issued', user.id, user.supportId, { label: body.label, ttlDays: body.ttlDays });
      return c.json({ token, label: body.label, expiresAt: now + body.ttlDays * 86_400_000 }, 201);
    },
  }),

  // --- users ------------------------------------------------------------------
  defineRoute({
    method: 'get',
    path: '/users',
    summary: 'Users: all for operators, the own tenant for admins.',
    tag: 'users',
    roles: ['operator', 'admin'],
    query: pageQuery,
    responses: { 200: 'A page of users' },
    handler({ c, deps, user, query }) {
      const scope = scopeOf(user);
      const after = decodeCursor(query.cursor)?.[0];
      const items: ReturnType<typeof userView>[] = [];
      for (const { value } of deps.store.users.getRange(typeof after === 'string' ? { start: after } : {})) {
        if (typeof after === 'string' && value.id === after) continue;
        if (scope !== null && value.supportId !== scope) continue;
        items.push(userView(value));
        if (items.length > query.limit) break;
      }
      return c.json(page(items, query.limit, (u) => [u.id]));
    },
  }),
  defineRoute({
    method: 'post',
    path: '/users',
    summary: 'Create a user with a temporary password (changed at first login).',
    tag: 'users',
    roles: ['operator', 'admin'],
    body: z.object({ id: z.string().min(3).max(64), role: roleEnum, supportId: z.string().min(1).max(64).nullable().default(null), password }).strict(),
    responses: { 201: 'Created', 400: 'Invalid request', 403: 'Role not allowed', 404: 'No such tenant', 409: 'ID taken' },
    async handler({ c, deps, user, body, audit }) {
      if (user.role === 'admin') {
        // Admins manage their own tenant's admins and viewers only.
        if (body.role === 'operator') throw new KisekiError('ERR_FORBIDDEN', { role: user.role });
        assertTenant(user, body.supportId ?? undefined);
      }
      const created = await createUser(deps.store, { ...body, now: deps.clock.now() });
      await audit('user.created', created.id, created.supportId, { role: created.role });
      return c.json(userView(created), 201);
    },
  }),

  // --- tenants ----------------------------------------------------------------
  defineRoute({
    method: 'get',
    path: '/tenants',
    summary: 'Tenants: all for operators, the own one otherwise.',
    tag: 'tenants',
    query: pageQuery,
    responses: { 200: 'A page of tenants' },
    handler({ c, deps, user, query }) {
      const scope = scopeOf(user);
      const after = decodeCursor(query.cursor)?.[0];
      const items = [];
      for (const { value } of deps.store.tenants.getRange(typeof after === 'string' ? { start: after } : {})) {
        if (value.supportId === after) continue;
        if (scope !== null && value.supportId !== scope) continue;
        items.push({ supportId: value.supportId, name: value.name, createdAt: value.createdAt, policy: tenantPolicy(deps.store, value.supportId) });
        if (items.length > query.limit) break;
      }
      return c.json(page(items, query.limit, (t) => [t.supportId]));
    },
  }),
  defineRoute({
    method: 'post',
    path: '/tenants',
    summary: 'Create a tenant; the enrollment key for its agents is returned once.',
    tag: 'tenants',
    roles: ['operator'],
    body: z.object({ supportId: z.string().min(1).max(64), name: z.string().min(1).max(200) }).strict(),
    responses: { 201: 'Created', 400: 'Invalid request', 409: 'Support ID taken' },
    async handler({ c, deps, body, audit }) {
      const { tenant, enrollKey } = await createTenant(deps.store, { ...body, now: deps.clock.now() });
      await audit('tenant.created', tenant.supportId, tenant.supportId);
      return c.json({ supportId: tenant.supportId, name: tenant.name, createdAt: tenant.createdAt, enrollKey }, 201);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId',
    summary: 'One tenant with its policy.',
    tag: 'tenants',
    params: supportIdParam,
    responses: { 200: 'The tenant', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const t = deps.store.tenants.get(params.supportId);
      assertTenant(user, t?.supportId);
      return c.json({ supportId: t!.supportId, name: t!.name, createdAt: t!.createdAt, policy: tenantPolicy(deps.store, t!.supportId) });
    },
  }),
  defineRoute({
    method: 'put',
    path: '/tenants/:supportId/policy',
    summary: 'Change the tenant policy (hearing sheet): isolation on black, automatic exceptions, tuning period.',
    tag: 'tenants',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: z.object({ isolateOnBlack: z.boolean().optional(), autoExceptWhite: z.boolean().optional(), tuningUntil: z.number().int().nullable().optional() }).strict(),
    responses: { 200: 'The new policy', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const change: Partial<TenantPolicy> = {};
      if (body.isolateOnBlack !== undefined) change.isolateOnBlack = body.isolateOnBlack;
      if (body.autoExceptWhite !== undefined) change.autoExceptWhite = body.autoExceptWhite;
      if (body.tuningUntil !== undefined) change.tuningUntil = body.tuningUntil;
      const policy = await setTenantPolicy(deps.store, params.supportId, change);
      await audit('tenant.policy_changed', params.supportId, params.supportId, change as Record<string, unknown>);
      return c.json(policy);
    },
  }),

  // --- devices ----------------------------------------------------------------
  defineRoute({
    method: 'get',
    path: '/devices',
    summary: 'Devices with last communication, agent version, connection and isolation state.',
    tag: 'devices',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      connected: z.enum(['true', 'false']).optional(),
      isolated: z.enum(['true', 'false']).optional(),
      computer: z.string().max(256).optional(),
    }),
    responses: { 200: 'A page of devices', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const scope = scopeOf(user) ?? query.supportId ?? null;
      if (scopeOf(user) !== null && query.supportId !== undefined && query.supportId !== scopeOf(user)) return c.json({ items: [], nextCursor: null });
      const after = decodeCursor(query.cursor);
      const computer = query.computer?.toLowerCase();
      const items: ReturnType<typeof deviceView>[] = [];
      const consider = (d: DeviceRecord | undefined) => {
        if (d === undefined) return;
        if (query.connected !== undefined && String(d.connected) !== query.connected) return;
        if (computer !== undefined && !d.computer.toLowerCase().includes(computer)) return;
        const view = deviceView(deps.store, d, false);
        if (query.isolated !== undefined && String(view.isolation === 'isolated') !== query.isolated) return;
        items.push(view);
      };
      if (scope !== null) {
        const start: [string, string] = [scope, typeof after?.[0] === 'string' ? after[0] : ''];
        for (const key of deps.store.tenantDevices.getKeys({ start, end: [scope, '\uffff'] })) {
          if (key[1] === after?.[0]) continue;
          consider(deps.store.devices.get(key[1]));
          if (items.length > query.limit) break;
        }
      } else {
        for (const { key, value } of deps.store.devices.getRange(typeof after?.[0] === 'string' ? { start: after[0] } : {})) {
          if (key === after?.[0]) continue;
          consider(value);
          if (items.length > query.limit) break;
        }
      }
      return c.json(page(items, query.limit, (d) => [d.tmid]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/devices/:tmid',
    summary: 'One device with seq ranges and gaps, inventory and isolation allow-list.',
    tag: 'devices',
    params: tmidParam,
    responses: { 200: 'The device', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const d = deps.store.devices.get(params.tmid);
      assertTenant(user, d?.supportId);
      return c.json(deviceView(deps.store, d!, true));
    },
  }),

  // --- response actions -------------------------------------------------------
  defineRoute({
    method: 'post',
    path: '/devices/:tmid/commands',
    summary: 'Request a response action: isolate (with an allow-list), release, delete-file, collect-file, set-policy.',
    tag: 'commands',
    roles: ['operator', 'admin'],
    params: tmidParam,
    body: commandBody,
    responses: { 202: 'Queued (sent at once when the device is connected)', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const d = deps.store.devices.get(params.tmid);
      assertTenant(user, d?.supportId);
      const now = deps.clock.now();
      const command = await queueCommand(deps.store, {
        tmid: d!.tmid,
        supportId: d!.supportId,
        kind: body.kind,
        args: body.args as Record<string, unknown>,
        requestedBy: user.id,
        requestedAt: now,
        expiresAt: now + COMMAND_EXPIRY_MS,
      });
      await audit(`command.requested`, command.id, d!.supportId, { kind: body.kind, tmid: d!.tmid, args: body.args });
      deps.deliverCommands(d!.tmid);
      return c.json(readCommand(deps.store, command.id) ?? command, 202);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/devices/:tmid/commands',
    summary: "A device's commands and their states.",
    tag: 'commands',
    params: tmidParam,
    responses: { 200: 'The commands, oldest first', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const d = deps.store.devices.get(params.tmid);
      assertTenant(user, d?.supportId);
      return c.json({ items: deviceCommands(deps.store, d!.tmid) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/commands/:id',
    summary: 'One command: state (queued → sent → acknowledged → done / failed / expired) and result.',
    tag: 'commands',
    params: idParam,
    responses: { 200: 'The command', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const cmd = readCommand(deps.store, params.id);
      assertTenant(user, cmd?.supportId);
      return c.json(cmd);
    },
  }),

  // --- alerts and reports -----------------------------------------------------
  defineRoute({
    method: 'get',
    path: '/alerts',
    summary: 'Alerts, newest first, with their current verdict.',
    tag: 'alerts',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      verdict: verdict.optional(),
      state: z.enum(['reported', 'suppressed', 'tuning']).optional(),
      tmid: z.string().max(64).optional(),
    }),
    responses: { 200: 'A page of alerts', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const own = scopeOf(user);
      if (own !== null && query.supportId !== undefined && query.supportId !== own) return c.json({ items: [], nextCursor: null });
      const scope = own ?? query.supportId ?? null;
      const after = decodeCursor(query.cursor);
      const items: ReturnType<typeof effectiveAlert>[] = [];
      const consider = (id: string) => {
        const a = deps.store.alerts.get(id);
        if (a === undefined) return;
        const view = effectiveAlert(deps.store, a);
        if (query.verdict !== undefined && view.verdict !== query.verdict) return;
        if (query.state !== undefined && view.state !== query.state) return;
        if (query.tmid !== undefined && view.tmid !== query.tmid) return;
        items.push(view);
      };
      const afterAt = typeof after?.[0] === 'number' ? after[0] : Infinity;
      const afterId = typeof after?.[1] === 'string' ? after[1] : '\uffff';
      if (scope !== null) {
        for (const key of deps.store.tenantAlerts.getKeys({ start: [scope, afterAt, afterId], end: [scope], reverse: true })) {
          if (key[2] === after?.[1]) continue;
          consider(key[2]);
          if (items.length > query.limit) break;
        }
      } else {
        for (const key of deps.store.alertsByTime.getKeys({ start: [afterAt, afterId], end: [0], reverse: true })) {
          if (key[1] === after?.[1]) continue;
          consider(key[1]);
          if (items.length > query.limit) break;
        }
      }
      return c.json(page(items, query.limit, (a) => [a.createdAt, a.id]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/alerts/:id',
    summary: 'One alert with every quick-report revision, the verdict history and analyst comments.',
    tag: 'alerts',
    params: idParam,
    responses: { 200: 'The alert', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const view = readAlert(deps.store, params.id);
      assertTenant(user, view?.alert.supportId);
      const analyst = [...deps.store.analystVerdicts.getRange({ start: [params.id], end: [params.id, Infinity] })].map((e) => e.value);
      const comments = [...deps.store.comments.getRange({ start: [params.id], end: [params.id, Infinity] })].map((e) => e.value);
      return c.json({
        alert: effectiveAlert(deps.store, view!.alert),
        report: view!.revisions.at(-1) ?? null,
        revisions: view!.revisions,
        verdictHistory: [...view!.verdicts, ...analyst.map((v) => ({ alertId: v.alertId, at: v.at, revision: null, from: null, to: v.verdict, by: v.by, comment: v.comment }))].sort((a, b) => a.at - b.at),
        comments,
      });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/alerts/:id/verdict',
    summary: "Confirm or change an alert's verdict (operators).",
    tag: 'alerts',
    roles: ['operator'],
    params: idParam,
    body: z.object({ verdict, comment: z.string().max(10_000).optional() }).strict(),
    responses: { 200: 'The alert with its new verdict', 400: 'Invalid request', 403: 'Operators only', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const a = deps.store.alerts.get(params.id);
      if (a === undefined) throw new KisekiError('ERR_NOT_FOUND');
      const at = deps.clock.now();
      const id = `av_${randomBytes(6).toString('hex')}`;
      const before = effectiveAlert(deps.store, a).verdict;
      await deps.store.analystVerdicts.put([a.id, at, id], { id, alertId: a.id, at, by: user.id, verdict: body.verdict, ...(body.comment === undefined ? {} : { comment: body.comment }) });
      await audit('alert.verdict_changed', a.id, a.supportId, { from: before, to: body.verdict });
      return c.json(effectiveAlert(deps.store, a));
    },
  }),
  defineRoute({
    method: 'post',
    path: '/alerts/:id/comments',
    summary: 'Add an analyst comment to an alert (operators).',
    tag: 'alerts',
    roles: ['operator'],
    params: idParam,
    body: z.object({ text: z.string().min(1).max(10_000) }).strict(),
    responses: { 201: 'Added', 400: 'Invalid request', 403: 'Operators only', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const a = deps.store.alerts.get(params.id);
      if (a === undefined) throw new KisekiError('ERR_NOT_FOUND');
      const at = deps.clock.now();
      const comment = { id: `co_${randomBytes(6).toString('hex')}`, alertId: a.id, at, author: user.id, text: body.text };
      await deps.store.comments.put([a.id, at, comment.id], comment);
      await audit('alert.commented', a.id, a.supportId, { comment: comment.id });
      return c.json(comment, 201);
    },
  }),

  // --- exception list -----------------------------------------------------------
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/exceptions',
    summary: "The tenant's exception list.",
    tag: 'exceptions',
    params: supportIdParam,
    responses: { 200: 'The entries', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      return c.json({ items: listExceptions(deps.store, params.supportId) });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/tenants/:supportId/exceptions',
    summary: 'Add an exception-list entry (hash, path pattern and/or signer, optional expiry).',
    tag: 'exceptions',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: z
      .object({
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).optional(),
        pathPattern: z.string().min(1).max(1024).optional(),
        signer: z.string().min(1).max(256).optional(),
        expiresAt: z.number().int().optional(),
        reason: z.string().min(1).max(1000),
      })
      .strict()
      .refine((b) => b.sha256 !== undefined || b.pathPattern !== undefined || b.signer !== undefined, 'sha256, pathPattern or signer is required'),
    responses: { 201: 'Added', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const entry = await addException(deps.store, {
        supportId: params.supportId,
        ...(body.sha256 === undefined ? {} : { sha256: body.sha256 }),
        ...(body.pathPattern === undefined ? {} : { pathPattern: body.pathPattern }),
        ...(body.signer === undefined ? {} : { signer: body.signer }),
        ...(body.expiresAt === undefined ? {} : { expiresAt: body.expiresAt }),
        reason: body.reason,
        createdAt: deps.clock.now(),
        createdBy: user.id,
      });
      await audit('exception.added', entry.id, params.supportId, { sha256: entry.sha256, pathPattern: entry.pathPattern, signer: entry.signer });
      return c.json(entry, 201);
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/tenants/:supportId/exceptions/:id',
    summary: 'Remove an exception-list entry.',
    tag: 'exceptions',
    roles: ['operator', 'admin'],
    params: supportIdParam.extend({ id: z.string().min(1).max(128) }),
    responses: { 204: 'Removed', 404: 'Not found' },
    async handler({ c, deps, user, params, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const key: [string, string] = [params.supportId, params.id];
      if (deps.store.exceptions.get(key) === undefined) throw new KisekiError('ERR_NOT_FOUND');
      await deps.store.exceptions.remove(key);
      await audit('exception.removed', params.id, params.supportId);
      return c.body(null, 204);
    },
  }),

  // --- audit --------------------------------------------------------------------
  defineRoute({
    method: 'get',
    path: '/audit',
    summary: 'The audit log, newest first: who did what, when, from where.',
    tag: 'audit',
    roles: ['operator', 'admin'],
    query: pageQuery.extend({ action: z.string().max(64).optional() }),
    responses: { 200: 'A page of audit records' },
    handler({ c, deps, user, query }) {
      const scope = scopeOf(user);
      const after = decodeCursor(query.cursor);
      const start: [number, string] = [typeof after?.[0] === 'number' ? after[0] : Infinity, typeof after?.[1] === 'string' ? after[1] : '\uffff'];
      const items: AuditRecord[] = [];
      for (const { key, value } of deps.store.audit.getRange({ start, end: [0], reverse: true })) {
        if (key[1] === after?.[1]) continue;
        if (scope !== null && value.supportId !== scope) continue;
        if (query.action !== undefined && value.action !== query.action) continue;
        items.push({ ...value, id: key[1] });
        if (items.length > query.limit) break;
      }
      return c.json(page(items, query.limit, (a) => [a.at, a.id]));
    },
  }),
];
