/**
 * Console and API identities (SPEC §7): users with a role, passwords hashed
 * with scrypt, lockout after repeated failures, forced change on first login;
 * sessions (console) and bearer tokens (scripts) stored only as hashes; and
 * the audit log of every state change.
 *
 * Key layouts (kiseki.lmdb):
 *   users     login ID                    -> UserRecord
 *   sessions  SHA-256 of session or token -> SessionRecord
 *   audit     [at, id]                    -> AuditRecord (time order)
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { KisekiError } from '../core/errors.js';
import type { AuditRecord, Role, SessionRecord, UserRecord } from './records.js';
import { sha256Hex } from './secrets.js';
import type { Tables } from './tables.js';

/** Lockout: this many consecutive failures lock the account for LOCKOUT_MS. */
export const MAX_FAILED_LOGINS = 5;
export const LOCKOUT_MS = 15 * 60 * 1000;
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
  /** Checks a login; counts failures and locks the account after MAX_FAILED_LOGINS. */
  verifyLogin(id: string, password: string, now: number): Promise<LoginResult>;
  /**
   * Sets a new password; `mustChange` forces another change at the next login (reset by an operator).
   * @throws KisekiError ERR_INVALID_INPUT, ERR_USER_NOT_FOUND
   */
  setPassword(id: string, password: string, now: number, mustChange: boolean): Promise<UserRecord>;
  /** Issues a session or bearer token; only its SHA-256 is stored. */
  createSession(userId: string, kind: SessionRecord['kind'], now: number, ttlMs: number, label?: string): Promise<string>;
  /** The user behind a live session or token, or undefined. */
  resolveSession(token: string, now: number): { user: UserRecord; session: SessionRecord } | undefined;
  revokeSession(token: string): Promise<void>;
  /** Appends an audit record; the key [at, id] keeps them in time order. */
  appendAudit(entry: Omit<AuditRecord, 'id'>): Promise<boolean>;
  /** The audit log newest first, strictly after `after` when given. */
  scanAudit(after?: AuditCursor): Iterable<AuditRecord>;
}

let auditSeq = 0;

/** The identity repository over the hot store's tables (called by openHotStore). */
export function createIdentityRepository(t: Tables): IdentityRepository {
  const { users, sessions, audit, tenants } = t;
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
      const user = users.get(id);
      if (user === undefined) {
        // Same work as a real check, so response time does not reveal which IDs exist.
        await verifyPassword(password, `scrypt$${SCRYPT.N}$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA`);
        return { ok: false, reason: 'invalid_credentials' };
      }
      if (user.lockedUntil > now) return { ok: false, reason: 'locked' };
      const ok = await verifyPassword(password, user.passwordHash);
      const current = users.get(id) ?? user;
      if (!ok) {
        const failed = current.failedLogins + 1;
        const locked = failed >= MAX_FAILED_LOGINS;
        await users.put(id, { ...current, failedLogins: locked ? 0 : failed, lockedUntil: locked ? now + LOCKOUT_MS : current.lockedUntil, updatedAt: now });
        return { ok: false, reason: locked ? 'locked' : 'invalid_credentials' };
      }
      const cleared = { ...current, failedLogins: 0, lockedUntil: 0, updatedAt: now };
      await users.put(id, cleared);
      return { ok: true, user: cleared };
    },
    async setPassword(id, password, now, mustChange) {
      if (!checkPasswordRule(password)) throw new KisekiError('ERR_INVALID_INPUT', { field: 'password', rule: '6-128 printable ASCII characters' });
      const user = users.get(id);
      if (user === undefined) throw new KisekiError('ERR_USER_NOT_FOUND', { id });
      const next: UserRecord = { ...user, passwordHash: await hashPassword(password), mustChangePassword: mustChange, failedLogins: 0, lockedUntil: 0, updatedAt: now };
      await users.put(id, next);
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
