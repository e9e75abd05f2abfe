/**
 * /users: list (operators all, admins their tenant), create users, and reset
 * a password (which revokes every session and token of the user).
 *
 * Login IDs are global, so a refused creation could tell an admin that an ID
 * exists in another tenant. IDs ending in `@<support ID>` belong to that
 * tenant: an admin may create only IDs ending in `@<own support ID>`, and no
 * one may give such an ID to another tenant. An admin's creation can then
 * only clash with a user of their own tenant, whom they can list anyway; any
 * other ID answers 400 whether it exists or not.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { assertTenant, collect, idParam, page, password, roleEnum, scopeOf, userView } from './shared.js';

/** The tenant an `…@<support ID>` login ID names, if that tenant exists. */
function namespaceOf(id: string, tenantExists: (supportId: string) => boolean): string | undefined {
  const at = id.lastIndexOf('@');
  if (at < 0) return undefined;
  const suffix = id.slice(at + 1);
  return tenantExists(suffix) ? suffix : undefined;
}

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
    async handler({ c, deps, user, body, audit }) {
      if (user.role === 'admin') {
        // Admins manage their own tenant's admins and viewers only.
        if (body.role === 'operator') throw new KisekiError('ERR_FORBIDDEN', { role: user.role });
        assertTenant(user, body.supportId ?? undefined);
        // Decided from the ID alone, never from whether it exists (see the file comment).
        if (!body.id.endsWith(`@${user.supportId}`)) {
          throw new KisekiError('ERR_VALIDATION', { field: 'id', reason: `IDs an admin creates end with @${user.supportId}` });
        }
      }
      const owner = namespaceOf(body.id, (s) => deps.store.tenants.get(s) !== undefined);
      if (owner !== undefined && owner !== body.supportId) {
        throw new KisekiError('ERR_VALIDATION', { field: 'id', reason: `IDs ending with @${owner} belong to tenant ${owner}` });
      }
      const created = await deps.store.identity.createUser({ ...body, now: deps.clock.now() });
      await audit('user.created', created.id, created.supportId, { role: created.role });
      return c.json(userView(created), 201);
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
