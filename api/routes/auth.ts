/** /auth: log in and out, the current user, password change, bearer tokens for scripts. */
import { deleteCookie } from 'hono/cookie';
import { z } from 'zod';
import { defineRoute, SESSION_COOKIE, type Route } from '../route-kit.js';
import { changeOwnPassword, loginWithPassword } from '../services.js';
import { password, userView } from './shared.js';

export const AUTH_ROUTES: Route[] = [
  defineRoute({
    method: 'post',
    path: '/auth/login',
    summary: 'Log in with ID and password; returns a session token (also set as a cookie).',
    tag: 'auth',
    auth: 'public',
    body: z.object({ id: z.string().min(1).max(64), password: z.string().min(1).max(128) }).strict(),
    responses: { 200: 'Logged in', 400: 'Invalid request', 401: 'Wrong ID or password', 423: 'Account locked' },
    async handler({ c, deps, body, from }) {
      const { token, user, expiresAt } = await loginWithPassword(c, deps, body.id, body.password, from);
      return c.json({ token, expiresAt, user: userView(user), mustChangePassword: user.mustChangePassword });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/auth/logout',
    summary: 'End the current session (or revoke the bearer token used); it stops working at once.',
    tag: 'auth',
    beforePasswordChange: true,
    responses: { 204: 'Logged out', 401: 'Not logged in' },
    async handler({ c, deps, token, audit }) {
      // The token this request came with, from the header or the cookie: either way it stops working now.
      if (token !== undefined) await deps.store.identity.revokeSession(token);
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
    summary: 'Change your password (required after the first login and after a reset); every other session and token of yours is revoked.',
    tag: 'auth',
    beforePasswordChange: true,
    body: z.object({ currentPassword: z.string().min(1).max(128), newPassword: password }).strict(),
    responses: { 204: 'Changed', 400: 'Invalid new password', 401: 'Wrong current password', 423: 'Account locked' },
    async handler({ c, deps, user, body, from, token }) {
      await changeOwnPassword(deps, user, from, body.currentPassword, body.newPassword, token);
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
      const token = await deps.store.identity.createSession(user.id, 'token', now, body.ttlDays * 86_400_000, body.label);
      await audit('auth.token_issued', user.id, user.supportId, { label: body.label, ttlDays: body.ttlDays });
      return c.json({ token, label: body.label, expiresAt: now + body.ttlDays * 86_400_000 }, 201);
    },
  }),
];
