/**
 * Operational alerts: what is wrong with the fleet or a device's behaviour
 * rather than an antivirus detection — an agent offline, many agents of a
 * tenant dropped at once, a sliding-window threshold crossed. They carry no
 * quick report and no verdict; they are open until resolved. Liveness
 * (liveness.ts) and the shards' analytics (analytics.ts) write them inside
 * their own transactions through `putOpsAlertSync`, the one writer.
 *
 * Key layouts (kiseki.lmdb):
 *   ops-alerts         id                        -> OpsAlert
 *   tenant-ops-alerts  [supportId, createdAt, id] -> id (a tenant's alerts in time order)
 */
import { appendFeedSync } from './feed.js';
import type { NotifyFeedEvent, OpsAlert, OpsAlertKind } from './records.js';
import type { Tables } from './tables.js';

/**
 * Inside a write transaction of kiseki.lmdb: stores a new or changed alert
 * and its tenant index entry. Returns false (and writes nothing) when `ifAbsent`
 * and the id is already stored: replays and repeated checks never duplicate.
 */
export function putOpsAlertSync(t: Tables, alert: OpsAlert, ifAbsent = false): boolean {
  if (ifAbsent && t.opsAlerts.get(alert.id) !== undefined) return false;
  t.opsAlerts.putSync(alert.id, alert);
  t.tenantOpsAlerts.putSync([alert.supportId, alert.createdAt, alert.id], alert.id);
  return true;
}

/** Filters of {@link OpsAlertRepository.scan}. */
export interface OpsAlertFilter {
  kind?: OpsAlertKind;
  state?: OpsAlert['state'];
  tmid?: string;
}

export interface OpsAlertRepository {
  get(id: string): OpsAlert | undefined;
  /**
   * A tenant's alerts (every tenant's when `supportId` is null), newest first,
   * strictly after the cursor `after` ([createdAt, id]) when given.
   */
  scan(supportId: string | null, filter?: OpsAlertFilter, after?: [number, string]): Iterable<OpsAlert>;
  /** Inside `store.transaction()` (a shard's flush): stores the alert unless its id is stored already. */
  putIfAbsentSync(alert: OpsAlert): boolean;
  /**
   * Inside `store.transaction()`: stores a new alert and appends its
   * notification, both unless the id is stored already (a replayed batch).
   */
  raiseSync(alert: OpsAlert, feed: Omit<NotifyFeedEvent, 'seq'>): boolean;
  count(): number;
}

/** The operational-alert repository over the hot store's tables (called by openHotStore). */
export function createOpsAlertRepository(t: Tables): OpsAlertRepository {
  const { opsAlerts, tenantOpsAlerts } = t;
  const matches = (a: OpsAlert, f: OpsAlertFilter | undefined): boolean =>
    f === undefined || ((f.kind === undefined || a.kind === f.kind) && (f.state === undefined || a.state === f.state) && (f.tmid === undefined || a.tmid === f.tmid));
  return {
    get: (id) => opsAlerts.get(id),
    *scan(supportId, filter, after) {
      if (supportId === null) {
        // Operators: every tenant, newest first, merged by createdAt (tenants are few; alerts per tenant are indexed).
        const all: OpsAlert[] = [];
        for (const { value } of opsAlerts.getRange({ snapshot: false })) if (matches(value, filter)) all.push(value);
        all.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
        for (const a of all) {
          if (after !== undefined && (a.createdAt > after[0] || (a.createdAt === after[0] && a.id >= after[1]))) continue;
          yield a;
        }
        return;
      }
      const start: [string, number, string] = after === undefined ? [supportId, Number.MAX_SAFE_INTEGER, '\uffff'] : [supportId, after[0], after[1]];
      for (const { key, value } of tenantOpsAlerts.getRange({ start, end: [supportId, -1, ''], reverse: true })) {
        if (after !== undefined && key[1] === after[0] && key[2] === after[1]) continue;
        const a = opsAlerts.get(value);
        if (a !== undefined && matches(a, filter)) yield a;
      }
    },
    putIfAbsentSync: (alert) => putOpsAlertSync(t, alert, true),
    raiseSync(alert, feed) {
      if (!putOpsAlertSync(t, alert, true)) return false;
      appendFeedSync(t, feed);
      return true;
    },
    count: () => opsAlerts.getCount(),
  };
}
