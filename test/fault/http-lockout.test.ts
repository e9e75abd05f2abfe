/**
 * Issue 11, item 4 and the login oracle of "also seen": the failed-login
 * counter is decided atomically before any password is checked, so parallel
 * guesses cannot all be evaluated and a burst containing the right password
 * does not log in once the limit is reached; unknown IDs are counted and
 * answered exactly like real ones (no 423/401 oracle).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCKOUT_MS, MAX_FAILED_LOGINS } from '../../storage/index.js';
import { call, openHttpWorld, PW, type HttpWorld } from './http-support.js';

let w: HttpWorld;
beforeEach(async () => {
  w = await openHttpWorld();
});
afterEach(async () => {
  await w.close();
});

const attempt = (id: string, password: string) => call(w, 'POST', '/api/v1/auth/login', { body: { id, password } });

describe('item 4: login lockout under parallel guessing', () => {
  it('item 4: 200 parallel wrong guesses are cut at the limit (at most 4 answered 401), and the account is then locked', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => attempt('viewer@TA', `wrong-guess-${i}`)));
    const byStatus = new Map<number, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    // A 401 is a guess evaluated before the limit: at most MAX - 1 of them, whatever the concurrency.
    expect(byStatus.get(401) ?? 0).toBeLessThanOrEqual(MAX_FAILED_LOGINS - 1);
    expect([...byStatus.keys()].every((s) => s === 401 || s === 423)).toBe(true);
    const right = await attempt('viewer@TA', PW);
    expect(right.status).toBe(423);
    expect(right.json.code).toBe('ERR_ACCOUNT_LOCKED');
  });

  it('item 4: a parallel burst with the right password after the limit does not log in', async () => {
    const guesses = Array.from({ length: 30 }, (_, i) => `wrong-guess-${i}`);
    const answers = await Promise.all([...guesses, PW].map((p) => attempt('admin@TA', p)));
    expect(answers.filter((a) => a.status === 200)).toEqual([]);
    expect(answers.at(-1)!.json.code).toBe('ERR_ACCOUNT_LOCKED');
    expect((await attempt('admin@TA', PW)).status).toBe(423);
  });

  it('item 4: the lock lifts after the lockout period, and old failures are forgotten', async () => {
    for (let i = 0; i < MAX_FAILED_LOGINS; i++) await attempt('viewer@TA', 'wrong-guess');
    expect((await attempt('viewer@TA', PW)).status).toBe(423);
    w.clock.advance(LOCKOUT_MS);
    expect((await attempt('viewer@TA', PW)).status).toBe(200);
    // Four failures, a quiet lockout period, four more: never five in one window.
    for (let i = 0; i < MAX_FAILED_LOGINS - 1; i++) expect((await attempt('viewer@TA', 'wrong-guess')).status).toBe(401);
    w.clock.advance(LOCKOUT_MS);
    for (let i = 0; i < MAX_FAILED_LOGINS - 1; i++) expect((await attempt('viewer@TA', 'wrong-guess')).status).toBe(401);
    expect((await attempt('viewer@TA', PW)).status).toBe(200);
  });

  it('item 4: wrong current passwords on /auth/password count toward the same lockout', async () => {
    const token = (await attempt('viewer@TA', PW)).json.token as string;
    const answers = [];
    for (let i = 0; i < MAX_FAILED_LOGINS; i++) {
      answers.push((await call(w, 'POST', '/api/v1/auth/password', { auth: token, body: { currentPassword: `wrong-${i}`, newPassword: 'another-pass-9' } })).status);
    }
    expect(answers).toEqual([401, 401, 401, 401, 423]);
    expect((await attempt('viewer@TA', PW)).status).toBe(423);
  });
});

describe('also seen: no login oracle for unknown IDs', () => {
  it('also seen: an unknown ID gets the same statuses and bodies as a real one (401 until the limit, then 423)', async () => {
    const run = async (id: string) => {
      const out: { status: number; json: unknown }[] = [];
      for (let i = 0; i < MAX_FAILED_LOGINS + 2; i++) {
        const a = await attempt(id, 'wrong-guess');
        out.push({ status: a.status, json: a.json });
      }
      return out;
    };
    const real = await run('viewer@TA');
    const unknown = await run('nobody@TA');
    expect(unknown).toEqual(real);
    expect(real.map((a) => a.status)).toEqual([401, 401, 401, 401, 423, 423, 423]);
  });

  it('also seen: parallel guesses at an unknown ID are cut the same way', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt('ghost.user', `wrong-guess-${i}`)));
    expect(answers.filter((a) => a.status === 401).length).toBeLessThanOrEqual(MAX_FAILED_LOGINS - 1);
    expect(answers.filter((a) => a.status === 423).length).toBeGreaterThanOrEqual(50 - (MAX_FAILED_LOGINS - 1));
  });
});
