/** /users: list (operators all, admins their tenant) and create users. */
import { z } from 'zod';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { createUserAs } from '../services.js';
import { collect, page, password, roleEnum, scopeOf, userView } from './shared.js';

export const USER_ROUTES: Route[] = [
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
      const items = collect(deps.store.identity.scanUsers(typeof after === 'string' ? after : undefined), query.limit, (u) =>
        scope !== null && u.supportId !== scope ? undefined : userView(u),
      );
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
    async handler({ c, deps, user, body, from }) {
      return c.json(userView(await createUserAs(deps, user, from, body)), 201);
    },
  }),
];
