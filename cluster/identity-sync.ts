/**
 * Users, sessions and API tokens shared by the API nodes through the
 * `kiseki-identity` bucket, so that a user created on one API node logs in on
 * any, and a session or token issued by one is accepted by all (no sticky
 * sessions behind a load balancer):
 * - `user.<base64url login ID>` → the UserRecord (its scrypt hash included:
 *   the NATS servers must be private to the cluster), the newest `updatedAt`
 *   winning everywhere;
 * - `session.<SHA-256 hex of the secret>` → the SessionRecord; a revocation
 *   (logout, password change, an operator's reset) deletes the key, and every
 *   node drops its copy.
 *
 * The API's identity repository is wrapped (`identity`): each change is made
 * in the local store as in the embedded mode, then written to the bucket
 * before the request is answered (bounded); a write NATS does not take is
 * retried in the background, the latest per key, and the request is still
 * answered from the local change. Every API node watches the bucket and copies
 * users (`identity.mirrorUser`) and sessions (`mirrorSession`, `dropSession`).
 * At start a node shares the users of its store the bucket lacks or holds
 * older (`kiseki user create --data DIR` before the start); not its sessions,
 * which could bring back one revoked while it was down.
 *
 * Lockout counters stay per node: MAX_FAILED_LOGINS per API node and window.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';
import { sha256Hex, type HotStore, type IdentityRepository, type SessionRecord, type UserRecord } from '../storage/index.js';
import { updateKey } from './bucket-update.js';
import { watchBucket } from './bucket-watch.js';
import { boundedNatsCall } from './nats.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64url');

export const userKey = (id: string): string => `user.${b64(id)}`;
export const sessionKey = (hash: string): string => `session.${hash}`;

const ROLES = new Set(['operator', 'admin', 'viewer']);

/** A `user.<id>` value; undefined for any other shape. */
export function parseUser(json: string, id: string): UserRecord | undefined {
  try {
    const v = JSON.parse(json) as Partial<UserRecord> | null;
    if (v === null || typeof v !== 'object' || v.id !== id || typeof v.role !== 'string' || !ROLES.has(v.role)) return undefined;
    if (typeof v.passwordHash !== 'string' || typeof v.updatedAt !== 'number' || typeof v.createdAt !== 'number' || (v.supportId !== null && typeof v.supportId !== 'string')) return undefined;
    return v as UserRecord;
  } catch {
    return undefined;
  }
}

/** A `session.<hash>` value; undefined for any other shape. */
export function parseSession(json: string): SessionRecord | undefined {
  try {
    const v = JSON.parse(json) as Partial<SessionRecord> | null;
    if (v === null || typeof v !== 'object' || typeof v.userId !== 'string' || (v.kind !== 'session' && v.kind !== 'token')) return undefined;
    if (typeof v.createdAt !== 'number' || typeof v.expiresAt !== 'number') return undefined;
    return v as SessionRecord;
  } catch {
    return undefined;
  }
}

/** What is left to write to the bucket for one key: the latest change made here. */
type PendingWrite = { kind: 'user'; user: UserRecord } | { kind: 'session'; hash: string; session: SessionRecord } | { kind: 'revoke'; hash: string };

export interface IdentitySync {
  /** The store's identity repository, each change also written to the bucket. */
  readonly identity: IdentityRepository;
  /** Users and sessions copied in, revocations applied, entries skipped, writes waiting for a retry. */
  stats(): { users: number; sessions: number; revoked: number; skipped: number; unshared: number; caughtUp: boolean };
  stop(): Promise<void>;
}

export interface IdentitySyncOptions {
  kv: KV;
  store: HotStore;
  logger: Logger;
  /** Wait before failed writes are retried, and before a watcher starts again, ms (default 1000). */
  retryMs?: number;
  /** Bound of one bucket call on the request path, ms (default 3000). */
  timeoutMs?: number;
}

export function startIdentitySync(options: IdentitySyncOptions): IdentitySync {
  const { kv, store } = options;
  const inner = store.identity;
  const log = options.logger.child({ component: 'identity-sync' });
  const retryMs = options.retryMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 3000;
  const unshared = new Map<string, PendingWrite>();
  const counts = { users: 0, sessions: 0, revoked: 0, skipped: 0 };
  let failing = false;

  async function write(w: PendingWrite): Promise<void> {
    if (w.kind === 'user') {
      // The newest version wins in the bucket too: a node behind never puts an older user back.
      await updateKey<UserRecord>(
        kv,
        userKey(w.user.id),
        (json) => parseUser(json, w.user.id),
        () => undefined,
        (held) => (held === undefined || held.updatedAt < w.user.updatedAt ? w.user : undefined),
        timeoutMs,
      );
    } else if (w.kind === 'session') {
      await boundedNatsCall(kv.put(sessionKey(w.hash), JSON.stringify(w.session)), timeoutMs, 'session put');
    } else {
      await boundedNatsCall(kv.delete(sessionKey(w.hash)), timeoutMs, 'session revoke');
    }
  }

  const keyOf = (w: PendingWrite): string => (w.kind === 'user' ? userKey(w.user.id) : sessionKey(w.hash));

  /** Writes now; a failure leaves it (the latest per key) to the retry timer, and the caller goes on. */
  async function share(w: PendingWrite): Promise<void> {
    unshared.delete(keyOf(w));
    try {
      await write(w);
    } catch (err) {
      unshared.set(keyOf(w), w);
      if (!failing) log.warn({ err: err instanceof Error ? err.message : String(err) }, 'A user or session change could not be shared yet; retrying in the background.');
      failing = true;
    }
  }

  let retrying = false;
  const retryTimer = setInterval(() => {
    if (retrying || unshared.size === 0) return;
    retrying = true;
    void (async () => {
      for (const [key, w] of [...unshared]) {
        try {
          await write(w);
          if (unshared.get(key) === w) unshared.delete(key);
        } catch {
          return;
        }
      }
      if (failing && unshared.size === 0) log.info('User and session changes are shared again.');
      failing = unshared.size > 0;
    })().finally(() => {
      retrying = false;
    });
  }, retryMs);
  retryTimer.unref();

  /** The bucket loses the sessions of `userId` this store no longer holds (revoked by the call in between). */
  async function shareRevocations(before: readonly string[], userId: string): Promise<void> {
    const kept = new Set(inner.sessionHashesOf(userId));
    for (const hash of before) if (!kept.has(hash)) await share({ kind: 'revoke', hash });
  }

  const identity: IdentityRepository = {
    ...inner,
    async createUser(input) {
      const user = await inner.createUser(input);
      await share({ kind: 'user', user });
      return user;
    },
    async setPassword(id, password, now, mustChange, keepToken) {
      const before = inner.sessionHashesOf(id);
      const user = await inner.setPassword(id, password, now, mustChange, keepToken);
      await share({ kind: 'user', user });
      await shareRevocations(before, id);
      return user;
    },
    async createSession(userId, kind, now, ttlMs, label) {
      const token = await inner.createSession(userId, kind, now, ttlMs, label);
      const session = inner.resolveSession(token, now)?.session;
      if (session !== undefined) await share({ kind: 'session', hash: sha256Hex(token), session });
      return token;
    },
    async revokeSession(token) {
      await inner.revokeSession(token);
      await share({ kind: 'revoke', hash: sha256Hex(token) });
    },
    async revokeSessions(userId, now, keepToken) {
      const before = inner.sessionHashesOf(userId);
      const revoked = await inner.revokeSessions(userId, now, keepToken);
      await shareRevocations(before, userId);
      return revoked;
    },
  };

  // Users made in this store while the node was stopped (`kiseki user create --data DIR`) go out now.
  for (const user of inner.scanUsers()) unshared.set(userKey(user.id), { kind: 'user', user });

  const watcher = watchBucket(
    kv,
    'kiseki-identity',
    async (e) => {
      const dot = e.key.indexOf('.');
      const kind = e.key.slice(0, dot);
      const rest = e.key.slice(dot + 1);
      if (kind === 'session' && /^[0-9a-f]{64}$/.test(rest)) {
        if (e.operation !== 'PUT') {
          await inner.dropSession(rest);
          counts.revoked++;
          return;
        }
        const session = parseSession(e.string());
        if (session === undefined) counts.skipped++;
        else {
          await inner.mirrorSession(rest, session);
          counts.sessions++;
        }
        return;
      }
      if (kind === 'user' && e.operation === 'PUT') {
        const user = parseUser(e.string(), Buffer.from(rest, 'base64url').toString());
        if (user === undefined) counts.skipped++;
        else if (await inner.mirrorUser(user)) counts.users++;
        return;
      }
      if (e.operation === 'PUT') counts.skipped++;
    },
    log,
    retryMs,
    () => undefined,
  );

  return {
    identity,
    stats: () => ({ ...counts, unshared: unshared.size, caughtUp: watcher.caughtUp() }),
    async stop() {
      clearInterval(retryTimer);
      await watcher.stop();
    },
  };
}
