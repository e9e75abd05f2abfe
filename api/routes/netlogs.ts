/**
 * /netlogs: the network logs the syslog receiver stored (docs/NETLOG.md),
 * one tenant at a time, last received first, filtered by receive time,
 * destination (IP address or domain) and format; and the counts of stored
 * records and of lines that failed to parse, by reason.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { collect, page, scopeOf } from './shared.js';

const formats = z.enum(['squid', 'suricata', 'cef', 'fortigate']);

/** The tenant a request reads: a user's own, else `supportId` (or its alias `tenant`). */
function tenantOf(own: string | null, query: { supportId?: string | undefined; tenant?: string | undefined }): string | undefined {
  const wanted = query.supportId ?? query.tenant;
  if (own !== null) return wanted === undefined || wanted === own ? own : undefined;
  return wanted;
}

export const NETLOG_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/netlogs',
    summary: "A tenant's network logs, last received first.",
    tag: 'netlogs',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      tenant: z.string().max(64).optional(),
      /** Receive time bounds, ms since the epoch, inclusive (each record also carries its event time `ts`). */
      from: z.coerce.number().int().optional(),
      to: z.coerce.number().int().optional(),
      /** Destination IP address or domain, exact. */
      dst: z.string().min(1).max(255).optional(),
      format: formats.optional(),
    }),
    responses: { 200: 'A page of network-log records', 400: 'Invalid query (an operator must name the tenant)' },
    handler({ c, deps, user, query }) {
      const own = scopeOf(user);
      const supportId = tenantOf(own, query);
      if (own !== null && supportId === undefined) return c.json({ items: [], nextCursor: null });
      if (supportId === undefined) throw new KisekiError('ERR_VALIDATION', { reason: 'supportId is required: network logs are listed one tenant at a time' });
      const cursor = decodeCursor(query.cursor);
      const after = cursor !== undefined && typeof cursor[0] === 'number' && typeof cursor[1] === 'number' ? { at: cursor[0], seq: cursor[1] } : undefined;
      const dst = query.dst === undefined ? undefined : query.dst.toLowerCase();
      const source = deps.store.netlog.scan(supportId, {
        ...(query.from === undefined ? {} : { from: query.from }),
        ...(query.to === undefined ? {} : { to: query.to }),
        ...(dst === undefined ? {} : { dst }),
        ...(query.format === undefined ? {} : { format: query.format }),
        ...(after === undefined ? {} : { after }),
      });
      const items = collect(source, query.limit, (s) => ({ seq: s.seq, ...s.record }));
      return c.json(page(items, query.limit, (r) => [r.receivedAt, r.seq]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/netlogs/stats',
    summary: 'Network-log records stored and lines that failed to parse, by reason.',
    tag: 'netlogs',
    query: z.object({ supportId: z.string().max(64).optional(), tenant: z.string().max(64).optional() }),
    responses: { 200: 'Counts per tenant' },
    handler({ c, deps, user, query }) {
      const own = scopeOf(user);
      const supportId = tenantOf(own, query);
      if (own !== null && supportId === undefined) return c.json({ tenants: [] });
      const failures = deps.store.netlog.failures(supportId);
      // Operators see the lines routed to no tenant under supportId "".
      const ids = supportId !== undefined ? [supportId] : [...new Set([...failures.map((f) => f.supportId), ...deps.store.tenants.ids()])].sort();
      const tenants = ids.map((id) => {
        const failed: Record<string, number> = {};
        for (const f of failures) if (f.supportId === id) failed[f.reason] = f.count;
        return { supportId: id, stored: id === '' ? 0 : deps.store.netlog.count(id), failed };
      });
      return c.json({ tenants });
    },
  }),
];
