/** /audit: the audit log, newest first, scoped to the admin's tenant. */
import { z } from 'zod';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { collect, page, scopeOf } from './shared.js';

export const AUDIT_ROUTES: Route[] = [
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
      const cursor = decodeCursor(query.cursor);
      const after = cursor === undefined ? undefined : { at: typeof cursor[0] === 'number' ? cursor[0] : Infinity, id: typeof cursor[1] === 'string' ? cursor[1] : '\uffff' };
      const items = collect(deps.store.identity.scanAudit(after), query.limit, (a) => {
        if (scope !== null && a.supportId !== scope) return undefined;
        if (query.action !== undefined && a.action !== query.action) return undefined;
        return a;
      });
      return c.json(page(items, query.limit, (a) => [a.at, a.id]));
    },
  }),
];
