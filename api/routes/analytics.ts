/**
 * Streaming analytics for the console's charts (engine/analytics.ts,
 * docs/ANALYTICS.md): a per-day series of one counter for a tenant or one
 * device, a tenant's summary over a range of days, the tenant's threshold
 * rules (data: sliding windows and first-seen values), and the operational
 * alerts liveness and the rules raise. Days are JST calendar days.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { DEFAULT_THRESHOLD_RULES, jstDay } from '../../engine/index.js';
import type { AnalyticsMetric, OpsAlert, ThresholdRuleSet, UserRecord } from '../../storage/index.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { assertTenant, collect, EMPTY_PAGE, idParam, listScope, page, scopeOf, supportIdParam } from './shared.js';

const DAY_MS = 86_400_000;
/** Longest range one request may chart: the 90 days kept, with room. */
const MAX_DAYS = 366;
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD (JST)');
const metric = z.union([z.enum(['events', 'procStarts', 'failedLogons', 'usbInsertions', 'fileDeletes', 'destinations', 'thresholdAlerts']), z.string().regex(/^kind:[a-z0-9_.]{1,64}$/)]);

/** The JST days from `from` to `to`, both included (default: the last 30 days to today). */
function daysOf(from: string | undefined, to: string | undefined, now: number): string[] {
  const end = to ?? jstDay(now);
  const start = from ?? jstDay(Date.parse(`${end}T00:00:00Z`) - 29 * DAY_MS);
  const a = Date.parse(`${start}T00:00:00Z`);
  const b = Date.parse(`${end}T00:00:00Z`);
  if (!Number.isFinite(a) || !Number.isFinite(b) || b < a) throw new KisekiError('ERR_VALIDATION', { reason: 'from must be a day at or before to' });
  if ((b - a) / DAY_MS + 1 > MAX_DAYS) throw new KisekiError('ERR_VALIDATION', { reason: `at most ${MAX_DAYS} days per request` });
  const days: string[] = [];
  for (let t = a; t <= b; t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/** The tenant a request is about: the user's own, or the one an operator names. */
function tenantOf(deps: { store: { tenants: { get(id: string): { supportId: string } | undefined } } }, user: UserRecord, tenant: string | undefined): string {
  const id = tenant ?? scopeOf(user) ?? undefined;
  if (id === undefined) throw new KisekiError('ERR_VALIDATION', { reason: 'tenant is required for operators' });
  assertTenant(user, deps.store.tenants.get(id)?.supportId);
  return id;
}

const where = z.record(z.string().regex(/^[A-Za-z0-9_]{1,64}$/), z.union([z.string().max(256), z.number(), z.boolean()]));
const rule = z
  .object({
    id: z.string().regex(/^[a-z0-9_-]{1,64}$/),
    title: z.string().min(1).max(200),
    enabled: z.boolean().default(true),
    kind: z.string().regex(/^[a-z0-9_.]{1,64}$/),
    where: where.optional(),
    threshold: z.number().int().min(1).max(100_000).optional(),
    windowMs: z.number().int().min(1000).max(86_400_000).optional(),
    firstSeen: z.enum(['net16', 'rhost']).optional(),
    learnDays: z.number().int().min(0).max(365).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.firstSeen === undefined && (r.threshold === undefined || r.windowMs === undefined)) ctx.addIssue({ code: 'custom', message: 'a window rule needs threshold and windowMs', path: ['threshold'] });
    if (r.firstSeen !== undefined && r.kind !== 'net.conn') ctx.addIssue({ code: 'custom', message: 'first-seen rules read net.conn events', path: ['kind'] });
  });

const opsAlertQuery = pageQuery.extend({
  supportId: z.string().max(64).optional(),
  kind: z.enum(['agent.offline', 'agent.mass_offline', 'analytics.threshold', 'intel.endpoint']).optional(),
  state: z.enum(['open', 'resolved']).optional(),
  tmid: z.string().max(64).optional(),
});

export const ANALYTICS_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/analytics/series',
    summary: 'One counter per JST day for a tenant (summed over its devices) or one device: the console charts.',
    tag: 'analytics',
    query: z.object({ tenant: z.string().max(64).optional(), device: z.string().max(64).optional(), metric: metric.default('events'), from: day.optional(), to: day.optional(), step: z.enum(['day']).default('day') }),
    responses: { 200: 'The series', 400: 'Invalid query', 404: 'Not found' },
    handler({ c, deps, user, query }) {
      const supportId = tenantOf(deps, user, query.tenant);
      if (query.device !== undefined && deps.store.devices.get(query.device)?.supportId !== supportId) throw new KisekiError('ERR_NOT_FOUND');
      const days = daysOf(query.from, query.to, deps.clock.now());
      const values = deps.store.analytics.series(supportId, query.device, query.metric as AnalyticsMetric, days);
      return c.json({ tenant: supportId, device: query.device ?? null, metric: query.metric, step: query.step, points: days.map((d, i) => ({ day: d, value: values[i]! })) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/analytics/summary',
    summary: "A tenant's totals over a range of JST days: counters, events by kind, the devices with the most failed logons.",
    tag: 'analytics',
    query: z.object({ tenant: z.string().max(64).optional(), from: day.optional(), to: day.optional() }),
    responses: { 200: 'The summary', 400: 'Invalid query', 404: 'Not found' },
    handler({ c, deps, user, query }) {
      const supportId = tenantOf(deps, user, query.tenant);
      return c.json(deps.store.analytics.summary(supportId, daysOf(query.from, query.to, deps.clock.now())));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/analytics/rules',
    summary: "A tenant's threshold rules (the defaults until it sets its own).",
    tag: 'analytics',
    params: supportIdParam,
    responses: { 200: 'The rules', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const set = deps.store.analytics.rules(params.supportId);
      return c.json({ supportId: params.supportId, rules: set?.rules ?? DEFAULT_THRESHOLD_RULES, defaults: set === undefined, updatedAt: set?.updatedAt ?? null, updatedBy: set?.updatedBy ?? null });
    },
  }),
  defineRoute({
    method: 'put',
    path: '/tenants/:supportId/analytics/rules',
    summary: "Replaces a tenant's threshold rules; the shards apply them within 5 s.",
    tag: 'analytics',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: z.object({ rules: z.array(rule).max(100) }).strict(),
    responses: { 200: 'The rules', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const ids = new Set<string>();
      for (const r of body.rules) {
        if (ids.has(r.id)) throw new KisekiError('ERR_VALIDATION', { reason: `rule id ${r.id} is used twice` });
        ids.add(r.id);
      }
      let set: ThresholdRuleSet = { supportId: params.supportId, rules: body.rules, updatedAt: deps.clock.now(), updatedBy: user.id };
      // On a cluster API node the rules go to the shared bucket first (the shard nodes evaluate them).
      if (deps.sharedSettings !== undefined) set = await deps.sharedSettings.setAnalyticsRules(set);
      else await deps.store.analytics.putRules(set);
      await audit('analytics.rules_changed', params.supportId, params.supportId, { rules: body.rules.length });
      return c.json({ ...set, defaults: false });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/ops-alerts',
    summary: 'Operational alerts (agent offline, mass offline, analytics thresholds), newest first.',
    tag: 'analytics',
    query: opsAlertQuery,
    responses: { 200: 'A page of alerts', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const scope = listScope(user, query.supportId);
      if (scope === false) return c.json(EMPTY_PAGE);
      const cursor = decodeCursor(query.cursor);
      const after = cursor !== undefined && typeof cursor[0] === 'number' && typeof cursor[1] === 'string' ? ([cursor[0], cursor[1]] as [number, string]) : undefined;
      const filter = { ...(query.kind === undefined ? {} : { kind: query.kind }), ...(query.state === undefined ? {} : { state: query.state }), ...(query.tmid === undefined ? {} : { tmid: query.tmid }) };
      const items = collect(deps.store.opsAlerts.scan(scope, filter, after), query.limit, (a: OpsAlert) => a);
      return c.json(page(items, query.limit, (a) => [a.createdAt, a.id]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/ops-alerts/:id',
    summary: 'One operational alert.',
    tag: 'analytics',
    params: idParam,
    responses: { 200: 'The alert', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const a = deps.store.opsAlerts.get(params.id);
      assertTenant(user, a?.supportId);
      return c.json(a);
    },
  }),
];
