/**
 * Console and API identities (SPEC §7): users with a role, passwords hashed
 * with scrypt, lockout after repeated failures, forced change on first login;
 * sessions (console) and bearer tokens (scripts) stored only as hashes; and
 * the audit log of every state change.
 *
 * Key layouts (kiseki.lmdb):
 *   users     login ID                    -> UserRecord
 *   sessions        SHA-256 of session or token -> SessionRecord
 *   login-attempts  login ID (real or unknown)  -> LoginAttempts (lockout counter)
 *   audit           [at, id]                    -> AuditRecord (time order)
 *
 * Lockout is decided in LMDB write transactions (serialized by LMDB): an
 * attempt is counted before its password is checked, and an attempt that
 * finds MAX_FAILED_LOGINS already counted is refused unchecked, so a burst of
 * parallel guesses gets at most MAX_FAILED_LOGINS evaluations. Unknown IDs go
 * through the same counter and answer exactly like real ones.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { KisekiError } from '../core/errors.js';
import type { AuditRecord, LoginAttempts, Role, SessionRecord, UserRecord } from './records.js';
import { sha256Hex } from './secrets.js';
import type { Tables } from './tables.js';

/** Lockout: this many failed logins, each within LOCKOUT_MS of the previous one, lock the ID for LOCKOUT_MS. */
export const MAX_FAILED_LOGINS = 5;
export const LOCKOUT_MS = 15 * 60 * 1000;
/**
 * Most login IDs whose failures are tracked at once. Stale entries (window
 * over, not locked) are pruned when the table reaches it; scrypt's cost
 * bounds how fast new IDs can be added (each needs a checked attempt).
 */
export const MAX_TRACKED_LOGIN_IDS = 100_000;
const SCRYPT: ScryptOptions = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_BYTES = 32;

function scrypt(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** 6 to 128 printable ASCII characters (SPEC §7). */
export function checkPasswordRule(password: string): boolean {
  return /^[\x20-\x7e]{6,128}$/.test(password);
}

/** An scrypt hash of a password with a random salt, parameters included (`scrypt$N$r$p$salt$key`). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `password` matches a hash made by hashPassword (constant-time comparison). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false;
  const expected = Buffer.from(key, 'base64');
  const got = await scrypt(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem! });
  return got.length === expected.length && timingSafeEqual(got, expected);
}

const LOGIN_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$/;

export type LoginResult = { ok: true; user: UserRecord } | { ok: false; reason: 'invalid_credentials' | 'locked' };

/** A page cursor over the audit log (newest first): the last record shown. */
export interface AuditCursor {
  at: number;
  id: string;
}

export interface IdentityRepository {
  /**
   * Creates a user who must change the password at first login.
   * @throws KisekiError ERR_INVALID_INPUT, ERR_TENANT_NOT_FOUND, ERR_USER_EXISTS
   */
  createUser(input: { id: string; role: Role; supportId: string | null; password: string; now: number; mustChangePassword?: boolean }): Promise<UserRecord>;
  user(id: string): UserRecord | undefined;
  /** Users in login-ID order, strictly after `after` when given. */
  scanUsers(after?: string): Iterable<UserRecord>;
  /**
   * Checks a login. The attempt is counted before the password is checked
   * (atomically), so at most MAX_FAILED_LOGINS attempts per window are
   * evaluated whatever the concurrency; the one reaching the limit and every
   * later one answer `locked` for LOCKOUT_MS. Unknown IDs are counted and
   * answered the same way. A success clears the counter.
   */
  verifyLogin(id: string, password: string, now: number): Promise<LoginResult>;
  /**
   * Sets a new password, clears the lockout and revokes the user's sessions
   * and tokens (all of them, or all but `keepToken`'s: the session that made
   * the change) in the same transaction. `mustChange` forces another change
   * at the next login (reset by an operator).
   * @throws KisekiError ERR_INVALID_INPUT, ERR_USER_NOT_FOUND
   */
  setPassword(id: string, password: string, now: number, mustChange: boolean, keepToken?: string): Promise<UserRecord>;
  /** Issues a session or bearer token; only its SHA-256 is stored. */
  createSession(userId: string, kind: SessionRecord['kind'], now: number, ttlMs: number, label?: string): Promise<string>;
  /** The user behind a live session or token, or undefined. */
  resolveSession(token: string, now: number): { user: UserRecord; session: SessionRecord } | undefined;
  revokeSession(token: string): Promise<void>;
  /** Revokes every session and token of a user but `keepToken`'s (expired ones at `now` are dropped too); returns how many were revoked. */
  revokeSessions(userId: string, now: number, keepToken?: string): Promise<number>;
  /**
   * A cluster API node's copy of a user another API node wrote (cluster/identity-sync.ts), kept unless the local
   * record changed as late or later (`updatedAt`); resolves true when written.
   */
  mirrorUser(user: UserRecord): Promise<boolean>;
  /** A copy of a session or token another API node issued, under the SHA-256 of its secret (kept as it is when held). */
  mirrorSession(hash: string, session: SessionRecord): Promise<void>;
  /** Removes the copy of a session or token revoked on another API node. */
  dropSession(hash: string): Promise<void>;
  /** The SHA-256s of a user's sessions and tokens held here (a revocation's before and after). */
  sessionHashesOf(userId: string): string[];
  /** Appends an audit record; the key [at, id] keeps them in time order. */
  appendAudit(entry: Omit<AuditRecord, 'id'>): Promise<boolean>;
  /** The audit log newest first, strictly after `after` when given. */
  scanAudit(after?: AuditCursor): Iterable<AuditRecord>;
}

let auditSeq = 0;

/** The identity repository over the hot store's tables (called by openHotStore). */
export function createIdentityRepository(t: Tables): IdentityRepository {
  const { users, sessions, audit, tenants, loginAttempts } = t;
  /** The counter as it stands at `now`: a window whose last attempt is LOCKOUT_MS old is forgotten. */
  const attemptsAt = (id: string, now: number): LoginAttempts => {
    const e = loginAttempts.get(id);
    if (e === undefined || (e.lockedUntil <= now && e.lastAt + LOCKOUT_MS <= now)) return { failed: 0, lastAt: 0, lockedUntil: 0 };
    return e;
  };
  const trackedIds = (): number => (loginAttempts.getStats() as { entryCount: number }).entryCount;
  let lastPruneAt = -Infinity;
  /** Drops stale counters when the table is full; at most once a minute (a full scan). */
  const pruneAttempts = async (now: number): Promise<void> => {
    if (now - lastPruneAt < 60_000 || trackedIds() < MAX_TRACKED_LOGIN_IDS) return;
    lastPruneAt = now;
    await loginAttempts.transaction(() => {
      for (const { key, value } of loginAttempts.getRange({})) {
        if (value.lockedUntil <= now && value.lastAt + LOCKOUT_MS <= now) loginAttempts.removeSync(key);
      }
    });
  };
  /** Removes a user's sessions and tokens but `keepHash`, and any expired session met on the way. */
  const revokeSessionsSync = (userId: string, now: number, keepHash?: string): number => {
    let revoked = 0;
    // A full scan: revocation is rare (logout revokes by key) and sessions are few.
    for (const { key, value } of sessions.getRange({})) {
      if (value.userId === userId && key !== keepHash) {
        sessions.removeSync(key);
        revoked++;
      } else if (value.expiresAt <= now) {
        sessions.removeSync(key);
      }
    }
    return revoked;
  };
  return {
    async createUser(input) {
      if (!LOGIN_ID.test(input.id)) throw new KisekiError('ERR_INVALID_INPUT', { field: 'id', rule: LOGIN_ID.source });
      if (!checkPasswordRule(input.password)) throw new KisekiError('ERR_INVALID_INPUT', { field: 'password', rule: '6-128 printable ASCII characters' });
      if (input.role === 'operator' ? input.supportId !== null : input.supportId === null) {
        throw new KisekiError('ERR_INVALID_INPUT', { field: 'supportId', rule: 'operators have none; admins and viewers belong to one tenant' });
      }
      if (input.supportId !== null && tenants.get(input.supportId) === undefined) {
        throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId: input.supportId });
      }
      const user: UserRecord = {
        id: input.id,
        role: input.role,
        supportId: input.supportId,
        passwordHash: await hashPassword(input.password),
        mustChangePassword: input.mustChangePassword ?? true,
        failedLogins: 0,
        lockedUntil: 0,
        createdAt: input.now,
        updatedAt: input.now,
      };
      const created = await users.transaction(() => {
        if (users.get(user.id) !== undefined) return false;
        users.putSync(user.id, user);
        return true;
      });
      if (!created) throw new KisekiError('ERR_USER_EXISTS', { id: input.id });
      return user;
    },
    user: (id) => users.get(id),
    *scanUsers(after) {
      for (const { key, value } of users.getRange(after === undefined ? {} : { start: after })) {
        if (key === after) continue;
        yield value;
      }
    },
    async verifyLogin(id, password, now) {
      await pruneAttempts(now);
      // Count the attempt first: a parallel burst is cut at MAX_FAILED_LOGINS before any password is checked.
      const gate = await loginAttempts.transaction((): 'go' | 'locked' | 'untracked' => {
        const e = attemptsAt(id, now);
        if (e.lockedUntil > now) return 'locked';
        if (e.failed >= MAX_FAILED_LOGINS) {
          loginAttempts.putSync(id, { failed: 0, lastAt: now, lockedUntil: now + LOCKOUT_MS });
          return 'locked';
        }
        if (e.failed === 0 && loginAttempts.get(id) === undefined && trackedIds() >= MAX_TRACKED_LOGIN_IDS) return 'untracked';
        loginAttempts.putSync(id, { failed: e.failed + 1, lastAt: now, lockedUntil: 0 });
        return 'go';
      });
      if (gate === 'locked') return { ok: false, reason: 'locked' };
      const user = users.get(id);
      // Unknown IDs cost the same scrypt work, so response time does not reveal which IDs exist.
      const ok = await verifyPassword(password, user?.passwordHash ?? `scrypt$${SCRYPT.N}$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA`);
      if (ok && user !== undefined) {
        await loginAttempts.remove(id);
        return { ok: true, user: users.get(id) ?? user };
      }
      if (gate === 'untracked') return { ok: false, reason: 'invalid_credentials' };
      const locked = await loginAttempts.transaction(() => {
        const e = attemptsAt(id, now);
        if (e.lockedUntil > now) return true;
        if (e.failed < MAX_FAILED_LOGINS) return false;
        loginAttempts.putSync(id, { failed: 0, lastAt: now, lockedUntil: now + LOCKOUT_MS });
        return true;
      });
      return { ok: false, reason: locked ? 'locked' : 'invalid_credentials' };
    },
    async setPassword(id, password, now, mustChange, keepToken) {
      if (!checkPasswordRule(password)) throw new KisekiError('ERR_INVALID_INPUT', { field: 'password', rule: '6-128 printable ASCII characters' });
      if (users.get(id) === undefined) throw new KisekiError('ERR_USER_NOT_FOUND', { id });
      const passwordHash = await hashPassword(password);
      const keepHash = keepToken === undefined ? undefined : sha256Hex(keepToken);
      // One transaction: no request can use an old session once the new password is in place.
      const next = await t.root.transaction(() => {
        const user = users.get(id);
        if (user === undefined) return undefined;
        const updated: UserRecord = { ...user, passwordHash, mustChangePassword: mustChange, failedLogins: 0, lockedUntil: 0, updatedAt: now };
        users.putSync(id, updated);
        loginAttempts.removeSync(id);
        revokeSessionsSync(id, now, keepHash);
        return updated;
      });
      if (next === undefined) throw new KisekiError('ERR_USER_NOT_FOUND', { id });
      await t.root.flushed;
      return next;
    },
    async createSession(userId, kind, now, ttlMs, label) {
      const token = `${kind === 'session' ? 'kss' : 'kst'}_${randomBytes(32).toString('base64url')}`;
      const record: SessionRecord = { userId, kind, createdAt: now, expiresAt: now + ttlMs, ...(label === undefined ? {} : { label }) };
      await sessions.put(sha256Hex(token), record);
      return token;
    },
    resolveSession(token, now) {
      const session = sessions.get(sha256Hex(token));
      if (session === undefined || session.expiresAt <= now) return undefined;
      const user = users.get(session.userId);
      return user === undefined ? undefined : { user, session };
    },
    async revokeSession(token) {
      await sessions.remove(sha256Hex(token));
      await t.root.flushed;
    },
    async revokeSessions(userId, now, keepToken) {
      const keepHash = keepToken === undefined ? undefined : sha256Hex(keepToken);
      const revoked = await sessions.transaction(() => revokeSessionsSync(userId, now, keepHash));
      await t.root.flushed;
      return revoked;
    },
    async mirrorUser(user) {
      return users.transaction(() => {
        const held = users.get(user.id);
        if (held !== undefined && held.updatedAt >= user.updatedAt) return false;
        users.putSync(user.id, user);
        return true;
      });
    },
    async mirrorSession(hash, session) {
      await sessions.transaction(() => {
        if (sessions.get(hash) === undefined) sessions.putSync(hash, session);
      });
    },
    async dropSession(hash) {
      await sessions.remove(hash);
    },
    sessionHashesOf(userId) {
      const out: string[] = [];
      for (const { key, value } of sessions.getRange({})) if (value.userId === userId) out.push(key);
      return out;
    },
    appendAudit(entry) {
      const id = `au_${entry.at.toString(36)}_${(auditSeq++ % 1_000_000).toString(36)}_${randomBytes(3).toString('hex')}`;
      return audit.put([entry.at, id], { ...entry, id });
    },
    *scanAudit(after) {
      const start: [number, string] = [after?.at ?? Infinity, after?.id ?? '\uffff'];
      for (const { key, value } of audit.getRange({ start, end: [0], reverse: true })) {
        if (key[1] === after?.id) continue;
        yield { ...value, id: key[1] };
      }
    },
  };
}
