/**
 * /users: list (operators all, admins their tenant), create users (login-ID
 * namespaces: see createUserAs in api/services.ts), and reset a password
 * (which revokes every session and token of the user).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { KisekiError } from '../../core/errors.js';
import { createUserAs } from '../services.js';
import { collect, idParam, page, password, roleEnum, scopeOf, userView } from './shared.js';

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
    responses: { 201: 'Created', 400: 'Invalid request (admins: the ID must end with @<own support ID>)', 403: 'Role not allowed', 404: 'No such tenant', 409: 'ID taken (in the own tenant, for admins)' },
    async handler({ c, deps, user, body, from }) {
      return c.json(userView(await createUserAs(deps, user, from, body)), 201);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/users/:id/password-reset',
    summary: "Reset a user's password: unlocks the account, forces a change at the next login and revokes every session and token of the user.",
    tag: 'users',
    roles: ['operator', 'admin'],
    params: idParam,
    body: z.object({ password: password.optional() }).strict(),
    responses: { 200: 'Reset; the temporary password is shown once when none was given', 400: 'Invalid request', 403: 'Role not allowed', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const target = deps.store.identity.user(params.id);
      // Admins reach their own tenant's users only (operators have no tenant); others answer 404 like missing ones.
      if (target === undefined || (user.role !== 'operator' && target.supportId !== user.supportId)) throw new KisekiError('ERR_NOT_FOUND');
      const temporary = body.password ?? randomBytes(12).toString('base64url');
      await deps.store.identity.setPassword(target.id, temporary, deps.clock.now(), true);
      await audit('user.password_reset', target.id, target.supportId);
      return c.json({ id: target.id, mustChangePassword: true, ...(body.password === undefined ? { temporaryPassword: temporary } : {}) });
    },
  }),
];
