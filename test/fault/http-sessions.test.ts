/**
 * Issue 11, item 7: sessions and tokens are revoked. Logout ends the session
 * it was sent with (cookie or bearer); a password change ends every other
 * session and token of the user; a reset (API or CLI path) ends them all.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, login, openHttpWorld, PW, type HttpWorld } from './http-support.js';

let w: HttpWorld;
beforeEach(async () => {
  w = await openHttpWorld();
});
afterEach(async () => {
  await w.close();
});

const me = (auth: string | { cookie: string }) => call(w, 'GET', '/api/v1/auth/me', { auth });

async function issueToken(session: string): Promise<string> {
  const r = await call(w, 'POST', '/api/v1/auth/tokens', { auth: session, body: { label: 'script' } });
  expect(r.status).toBe(201);
  return r.json.token as string;
}

describe('item 7: revocation', () => {
  it('item 7: logout with the session cookie revokes the session; the token stops working', async () => {
    const session = await login(w, 'viewer@TA');
    expect((await me({ cookie: session })).status).toBe(200);
    const out = await call(w, 'POST', '/api/v1/auth/logout', { auth: { cookie: session } });
    expect(out.status).toBe(204);
    expect((await me({ cookie: session })).status).toBe(401);
    expect((await me(session)).status).toBe(401);
  });

  it('item 7: logout with a bearer token revokes that token only', async () => {
    const session = await login(w, 'viewer@TA');
    const token = await issueToken(session);
    expect((await call(w, 'POST', '/api/v1/auth/logout', { auth: token })).status).toBe(204);
    expect((await me(token)).status).toBe(401);
    expect((await me(session)).status).toBe(200);
  });

  it('item 7: a password change revokes every other session and token of the user and keeps the one that made it', async () => {
    const s1 = await login(w, 'admin@TA');
    const s2 = await login(w, 'admin@TA');
    const token = await issueToken(s2);
    const other = await login(w, 'viewer@TA');
    const r = await call(w, 'POST', '/api/v1/auth/password', { auth: s1, body: { currentPassword: PW, newPassword: 'new-pass-42' } });
    expect(r.status).toBe(204);
    expect((await me(s1)).status).toBe(200);
    expect((await me(s2)).status).toBe(401);
    expect((await me(token)).status).toBe(401);
    // Another user's session is untouched.
    expect((await me(other)).status).toBe(200);
  });

  it("item 7: an operator's reset through the API revokes every session and token, unlocks, and forces a change", async () => {
    const s1 = await login(w, 'viewer@TA');
    const token = await issueToken(s1);
    const op = await login(w, 'op.one');
    const r = await call(w, 'POST', '/api/v1/users/viewer@TA/password-reset', { auth: op, body: {} });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: 'viewer@TA', mustChangePassword: true, temporaryPassword: expect.any(String) });
    expect((await me(s1)).status).toBe(401);
    expect((await me(token)).status).toBe(401);
    const fresh = await call(w, 'POST', '/api/v1/auth/login', { body: { id: 'viewer@TA', password: r.json.temporaryPassword } });
    expect(fresh.status).toBe(200);
    expect(fresh.json.mustChangePassword).toBe(true);
    const audit = await call(w, 'GET', '/api/v1/audit?action=user.password_reset', { auth: op });
    expect(audit.json.items[0]).toMatchObject({ actor: 'op.one', target: 'viewer@TA', supportId: 'TA' });
  });

  it('item 7: a reset the CLI way (kiseki user reset-password → identity.setPassword) revokes every session and token', async () => {
    const s1 = await login(w, 'viewer@TA');
    const token = await issueToken(s1);
    await w.store.identity.setPassword('viewer@TA', 'temporary-1', w.clock.now(), true);
    expect((await me(s1)).status).toBe(401);
    expect((await me(token)).status).toBe(401);
  });

  it('item 7: a tenant admin resets only the own tenant’s users; others answer 404 like missing ones', async () => {
    const adminB = await login(w, 'admin@TB');
    const session = await login(w, 'viewer@TA');
    for (const id of ['viewer@TA', 'op.one', 'missing@TB']) {
      const r = await call(w, 'POST', `/api/v1/users/${id}/password-reset`, { auth: adminB, body: {} });
      expect(r.status, id).toBe(404);
      expect(r.json.code, id).toBe('ERR_NOT_FOUND');
    }
    expect((await me(session)).status).toBe(200);
    const viewer = await call(w, 'POST', '/api/v1/users/viewer@TA/password-reset', { auth: session, body: {} });
    expect(viewer.status).toBe(403);
  });
});
