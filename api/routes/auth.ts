/** /auth: log in and out, the current user, password change, bearer tokens for scripts. */
import { deleteCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { defineRoute, SESSION_COOKIE, type Route } from '../route-kit.js';
import { password, userView } from './shared.js';

const SESSION_TTL_MS = 12 * 3600 * 1000;

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
      const now = deps.clock.now();
      const identity = deps.store.identity;
      const result = await identity.verifyLogin(body.id, body.password, now);
      if (!result.ok) {
        const user = identity.user(body.id);
        await identity.appendAudit({
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
      const token = await identity.createSession(result.user.id, 'session', now, SESSION_TTL_MS);
      setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/', secure: new URL(c.req.url).protocol === 'https:', maxAge: SESSION_TTL_MS / 1000 });
      await identity.appendAudit({ at: now, actor: result.user.id, role: result.user.role, supportId: result.user.supportId, action: 'auth.login', target: result.user.id, from });
      return c.json({ token, expiresAt: now + SESSION_TTL_MS, user: userView(result.user), mustChangePassword: result.user.mustChangePassword });
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
    async handler({ c, deps, user, body, token, audit }) {
      // Through the login counter: a stolen session must not become a password-guessing oracle.
      const check = await deps.store.identity.verifyLogin(user.id, body.currentPassword, deps.clock.now());
      if (!check.ok) throw new KisekiError(check.reason === 'locked' ? 'ERR_ACCOUNT_LOCKED' : 'ERR_INVALID_CREDENTIALS');
      if (body.currentPassword === body.newPassword) throw new KisekiError('ERR_VALIDATION', { field: 'newPassword', reason: 'must differ from the current password' });
      // A changed password ends whatever a thief may hold: every session and token but this one.
      await deps.store.identity.setPassword(user.id, body.newPassword, deps.clock.now(), false, token);
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
      const token = await deps.store.identity.createSession(user.id, 'token', now, body.ttlDays * 86_400_000, body.label);
      await audit('auth.token_issued', user.id, user.supportId, { label: body.label, ttlDays: body.ttlDays });
      return c.json({ token, label: body.label, expiresAt: now + body.ttlDays * 86_400_000 }, 201);
    },
  }),
];
