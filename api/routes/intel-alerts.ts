/**
 * /intel-alerts: network logs that hit a threat-intelligence indicator
 * (engine/intel's network matcher stores them), newest first, filtered by
 * tenant, severity, device and creation time, and one alert with its
 * network evidence (the parsed record and the raw line) and, where an agent
 * saw the connection, the endpoint evidence (device, process, net.conn).
 */
import { z } from 'zod';
import type { NetworkIntelAlert } from '../../core/contracts.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { assertTenant, collect, EMPTY_PAGE, idParam, listScope, newestFirstStart, newestUntil, page } from './shared.js';

const severity = z.enum(['Critical', 'Serious', 'Medium', 'Information']);

export const INTEL_ALERT_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/intel-alerts',
    summary: 'Network-intel alerts (network logs that hit an indicator), newest first.',
    tag: 'intel',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      severity: severity.optional(),
      tmid: z.string().max(64).optional(),
      /** Only alerts with (true) or without (false) the endpoint process. */
      linked: z.enum(['true', 'false']).optional(),
      /** Creation time bounds, ms since the epoch, inclusive. */
      from: z.coerce.number().int().optional(),
      to: z.coerce.number().int().optional(),
    }),
    responses: { 200: 'A page of network-intel alerts', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const scope = listScope(user, query.supportId);
      if (scope === false) return c.json(EMPTY_PAGE);
      const start = newestFirstStart(decodeCursor(query.cursor), query.to);
      const after = start && { createdAt: start.time, id: start.id };
      const keep = (a: NetworkIntelAlert) => {
        if (query.severity !== undefined && a.severity !== query.severity) return undefined;
        if (query.tmid !== undefined && a.device?.tmid !== query.tmid) return undefined;
        if (query.linked !== undefined && (a.endpoint !== undefined) !== (query.linked === 'true')) return undefined;
        return a;
      };
      const source = scope !== null ? deps.store.intelAlerts.scanTenant(scope, after) : deps.store.intelAlerts.scanAll(after);
      const items = collect(newestUntil(source, query.from, (a) => a.createdAt), query.limit, keep);
      return c.json(page(items, query.limit, (a) => [a.createdAt, a.id]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/intel-alerts/:id',
    summary: 'One network-intel alert with its network and endpoint evidence.',
    tag: 'intel',
    params: idParam,
    responses: { 200: 'The alert', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const a = deps.store.intelAlerts.get(params.id);
      assertTenant(user, a?.supportId);
      return c.json(a);
    },
  }),
];
