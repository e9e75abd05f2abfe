/**
 * /detections: the Sigma detections the shards stored (newest event first,
 * filtered by tenant, device, rule, severity and event time), one detection,
 * and a tenant's Sigma settings (the pack on or off, rules turned off),
 * which the shards apply within seconds.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import type { SigmaDetection } from '../../core/contracts.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { assertTenant, collect, EMPTY_PAGE, idParam, listScope, newestFirstStart, newestUntil, page, supportIdParam } from './shared.js';

const severity = z.enum(['Critical', 'Serious', 'Medium', 'Information']);

export const DETECTION_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/detections',
    summary: 'Sigma detections, newest event first.',
    tag: 'detections',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      tmid: z.string().max(64).optional(),
      rule: z.string().max(128).optional(),
      severity: severity.optional(),
      /** Event time bounds, ms since the epoch, inclusive. */
      from: z.coerce.number().int().optional(),
      to: z.coerce.number().int().optional(),
    }),
    responses: { 200: 'A page of detections', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const scope = listScope(user, query.supportId);
      if (scope === false) return c.json(EMPTY_PAGE);
      const start = newestFirstStart(decodeCursor(query.cursor), query.to);
      const after = start && { at: start.time, id: start.id };
      const keep = (d: SigmaDetection) => {
        if (query.tmid !== undefined && d.tmid !== query.tmid) return undefined;
        if (query.rule !== undefined && d.ruleId !== query.rule) return undefined;
        if (query.severity !== undefined && d.severity !== query.severity) return undefined;
        return d;
      };
      const source = scope !== null ? deps.store.detections.scanTenant(scope, after) : deps.store.detections.scanAll(after);
      const items = collect(newestUntil(source, query.from, (d) => d.at), query.limit, keep);
      return c.json(page(items, query.limit, (d) => [d.at, d.id]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/detections/:id',
    summary: 'One Sigma detection.',
    tag: 'detections',
    params: idParam,
    responses: { 200: 'The detection', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const d = deps.store.detections.get(params.id);
      assertTenant(user, d?.supportId);
      return c.json(d);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/sigma',
    summary: "A tenant's Sigma settings: the pack on or off, and the rules turned off.",
    tag: 'detections',
    params: supportIdParam,
    responses: { 200: 'The settings', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      return c.json(deps.store.detections.settings(params.supportId));
    },
  }),
  defineRoute({
    method: 'put',
    path: '/tenants/:supportId/sigma',
    summary: "Change a tenant's Sigma settings (the shards apply them within 5 s).",
    tag: 'detections',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: z.object({ enabled: z.boolean().optional(), disabledRules: z.array(z.string().min(1).max(128)).max(10_000).optional() }).strict(),
    responses: { 200: 'The new settings', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      if (body.enabled === undefined && body.disabledRules === undefined) throw new KisekiError('ERR_VALIDATION', { reason: 'nothing to change' });
      const change = { ...(body.enabled === undefined ? {} : { enabled: body.enabled }), ...(body.disabledRules === undefined ? {} : { disabledRules: body.disabledRules }) };
      // On a cluster API node the change goes to the shared bucket first (the shard nodes' matchers read it).
      if (deps.sharedSettings !== undefined) await deps.sharedSettings.setSigmaSettings(params.supportId, change, deps.clock.now());
      else {
        const current = deps.store.detections.settings(params.supportId);
        await deps.store.detections.setSettings(params.supportId, { enabled: change.enabled ?? current.enabled, disabledRules: change.disabledRules ?? current.disabledRules });
      }
      await audit('tenant.sigma_changed', params.supportId, params.supportId, body as Record<string, unknown>);
      return c.json(deps.store.detections.settings(params.supportId));
    },
  }),
];
