/**
 * The durable side of notifications: the feed notify/ reads, the tenants'
 * settings, the outbox of notifications queued before anything is sent
 * (resumed after a restart), the dead letters, the per-recipient hourly
 * counts that fold storms into digests, and the feed cursor.
 *
 * Key layouts (kiseki.lmdb):
 *   notify-feed      seq                        -> NotifyFeedEvent (feed.ts writes it)
 *   notify-settings  supportId                  -> NotifySettings
 *   notify-outbox    outbox id                  -> OutboxEntry (id = idempotency key)
 *   notify-due       [nextAttemptAt, id]        -> id (pending entries by due time)
 *   notify-dead      [supportId, deadAt, id]    -> id (a tenant's dead letters)
 *   notify-state     'cursor'                   -> last feed seq queued
 *                    'rate:<recipient>:<hour>'  -> notifications queued that hour
 *                    'digest:<recipient>:<hour>' -> id of that hour's open digest
 *                    'reader:<name>'            -> last feed seq another reader handled
 *                                                  (cluster/alert-publisher.ts: 'alert-bucket')
 *
 * Queueing (`queueSync`, `setCursorSync`, `bumpRateSync`) runs inside one
 * `store.transaction()`, so a feed position is either fully queued or not
 * at all.
 */
import type { NotifyFeedEvent, NotifySettings, OutboxEntry } from './records.js';
import type { Tables } from './tables.js';

export interface NotifyRepository {
  /** Feed events strictly after `seq`, oldest first, at most `limit`. */
  feedAfter(seq: number, limit: number): NotifyFeedEvent[];
  /** The last feed position queued (0 before the first). */
  cursor(): number;
  /**
   * The last feed position another reader of the feed handled (0 before the
   * first): a cluster shard node's alert publisher keeps its own position,
   * independent of the notifier's. It does not trim the feed.
   */
  readerCursor(name: string): number;
  /** Stores a reader's position (durable once the returned promise resolves). */
  setReaderCursor(name: string, seq: number): Promise<void>;
  /** How far the notifier is behind the feed: entries after its cursor, and the time of the oldest of them (undefined when none). */
  feedLag(): { events: number; oldestAt: number | undefined };
  settings(supportId: string): NotifySettings | undefined;
  putSettings(settings: NotifySettings): Promise<boolean>;
  get(id: string): OutboxEntry | undefined;
  /** Pending entries due at or before `now`, oldest due first, at most `limit`. */
  due(now: number, limit: number): OutboxEntry[];
  /** A tenant's dead letters, newest first. */
  deadLetters(supportId: string): OutboxEntry[];
  /** Every outbox entry of a tenant (any state), for tests and the CLI. */
  scanTenant(supportId: string): OutboxEntry[];
  /** Inside `store.transaction()`: stores a new or changed entry and its due index. */
  queueSync(entry: OutboxEntry): void;
  /**
   * Inside `store.transaction()`: moves the feed cursor and drops the feed
   * entries before it. The entry at the cursor stays: the next sequence
   * number is counted from the last key, and reusing one would reuse an
   * idempotency key.
   */
  setCursorSync(seq: number): void;
  /** Inside `store.transaction()`: the count for a recipient's hour, plus one; returns the new count. */
  bumpRateSync(recipientId: string, hourStart: number): number;
  /** The open digest of a recipient's hour, if any. */
  openDigest(recipientId: string, hourStart: number): OutboxEntry | undefined;
  /** Inside `store.transaction()`: records the open digest of a recipient's hour. */
  setOpenDigestSync(recipientId: string, hourStart: number, id: string): void;
  /** Marks an entry sent (removed from the due index). */
  markSent(id: string, at: number): Promise<OutboxEntry | undefined>;
  /** Records a failed attempt: pending again at `nextAttemptAt`. */
  markRetry(id: string, error: string, nextAttemptAt: number): Promise<OutboxEntry | undefined>;
  /** Records the last failed attempt: dead-lettered. */
  markDead(id: string, error: string, at: number): Promise<OutboxEntry | undefined>;
  /** Pending again at `nextAttemptAt` without counting an attempt (another notifier holds its claim). */
  defer(id: string, nextAttemptAt: number): Promise<OutboxEntry | undefined>;
  /**
   * Another notifier settled this notification (sent it, or dead-lettered it: then listed among this store's
   * dead letters too); the entry ends in that state with `settledBy`, without an attempt of its own.
   */
  settleElsewhere(id: string, outcome: { state: 'sent' | 'dead'; by: string; at: number }): Promise<OutboxEntry | undefined>;
}

/** The notification repository over the hot store's tables (called by openHotStore). */
export function createNotifyRepository(t: Tables): NotifyRepository {
  const { notifyFeed, notifySettings, notifyOutbox, notifyDue, notifyDead, notifyState, root } = t;

  const putSync = (prev: OutboxEntry | undefined, next: OutboxEntry): void => {
    if (prev?.state === 'pending') notifyDue.removeSync([prev.nextAttemptAt, prev.id]);
    notifyOutbox.putSync(next.id, next);
    if (next.state === 'pending') notifyDue.putSync([next.nextAttemptAt, next.id], next.id);
  };
  const update = (id: string, change: (e: OutboxEntry) => OutboxEntry): Promise<OutboxEntry | undefined> =>
    root.transaction(() => {
      const prev = notifyOutbox.get(id);
      if (prev === undefined) return undefined;
      const next = change(prev);
      putSync(prev, next);
      return next;
    });

  return {
    feedAfter: (seq, limit) => [...notifyFeed.getRange({ start: seq + 1, limit })].map((e) => e.value),
    cursor: () => {
      const v = notifyState.get('cursor');
      return typeof v === 'number' ? v : 0;
    },
    readerCursor(name) {
      const v = notifyState.get(`reader:${name}`);
      return typeof v === 'number' ? v : 0;
    },
    async setReaderCursor(name, seq) {
      await notifyState.put(`reader:${name}`, seq);
    },
    feedLag() {
      const v = notifyState.get('cursor');
      const cursor = typeof v === 'number' ? v : 0;
      let last = cursor;
      for (const key of notifyFeed.getKeys({ reverse: true, limit: 1 })) last = Math.max(cursor, key);
      // Sequence numbers are consecutive (feed.ts), so the count is a subtraction, not a scan.
      let oldestAt: number | undefined;
      for (const { value } of notifyFeed.getRange({ start: cursor + 1, limit: 1 })) oldestAt = value.at;
      return { events: last - cursor, oldestAt };
    },
    settings: (supportId) => notifySettings.get(supportId),
    putSettings: (s) => notifySettings.put(s.supportId, s),
    get: (id) => notifyOutbox.get(id),
    due(now, limit) {
      const out: OutboxEntry[] = [];
      for (const { value } of notifyDue.getRange({ start: [0], end: [now, '\uffff'], limit })) {
        const e = notifyOutbox.get(value);
        if (e !== undefined && e.state === 'pending') out.push(e);
      }
      return out;
    },
    deadLetters(supportId) {
      const out: OutboxEntry[] = [];
      for (const { value } of notifyDead.getRange({ start: [supportId, Infinity], end: [supportId], reverse: true })) {
        const e = notifyOutbox.get(value);
        if (e !== undefined) out.push(e);
      }
      return out;
    },
    scanTenant: (supportId) => [...notifyOutbox.getRange({})].map((e) => e.value).filter((e) => e.supportId === supportId),
    queueSync(entry) {
      putSync(notifyOutbox.get(entry.id), entry);
    },
    setCursorSync(seq) {
      notifyState.putSync('cursor', seq);
      for (const key of notifyFeed.getKeys({ start: 0, end: seq })) notifyFeed.removeSync(key);
    },
    bumpRateSync(recipientId, hourStart) {
      const key = `rate:${recipientId}:${hourStart}`;
      const v = notifyState.get(key);
      const n = (typeof v === 'number' ? v : 0) + 1;
      notifyState.putSync(key, n);
      return n;
    },
    openDigest(recipientId, hourStart) {
      const id = notifyState.get(`digest:${recipientId}:${hourStart}`);
      return typeof id === 'string' ? notifyOutbox.get(id) : undefined;
    },
    setOpenDigestSync(recipientId, hourStart, id) {
      notifyState.putSync(`digest:${recipientId}:${hourStart}`, id);
    },
    markSent: (id, at) => update(id, (e) => ({ ...e, state: 'sent', sentAt: at, attempts: e.attempts + 1 })),
    markRetry: (id, error, nextAttemptAt) => update(id, (e) => ({ ...e, attempts: e.attempts + 1, lastError: error, nextAttemptAt })),
    markDead: (id, error, at) =>
      root.transaction(() => {
        const prev = notifyOutbox.get(id);
        if (prev === undefined) return undefined;
        const next: OutboxEntry = { ...prev, state: 'dead', attempts: prev.attempts + 1, lastError: error };
        putSync(prev, next);
        notifyDead.putSync([prev.supportId, at, id], id);
        return next;
      }),
    defer: (id, nextAttemptAt) => update(id, (e) => ({ ...e, nextAttemptAt })),
    settleElsewhere: (id, { state, by, at }) =>
      root.transaction(() => {
        const prev = notifyOutbox.get(id);
        if (prev === undefined) return undefined;
        const next: OutboxEntry = { ...prev, state, settledBy: by, ...(state === 'sent' ? { sentAt: at } : {}) };
        putSync(prev, next);
        if (state === 'dead') notifyDead.putSync([prev.supportId, at, id], id);
        return next;
      }),
  };
}
