/**
 * Network-intel alerts (engine/intel's network matcher stores them): a
 * network log that hit an indicator, with the endpoint evidence when an agent
 * saw the connection. Creating one appends an `intel.hit` event to the
 * notification feed in the same transaction (notify/ and SIEM forwarding
 * read it); attaching endpoint evidence later that raises the severity
 * appends another.
 *
 * Key layouts (kiseki.lmdb):
 *   intel-alerts           id                        -> NetworkIntelAlert
 *   tenant-intel-alerts    [supportId, createdAt, id] -> id (a tenant's, in time order)
 *   intel-alerts-by-time   [createdAt, id]            -> id (every tenant's: operators' view)
 *   intel-alert-dedup      [supportId, dedup key]     -> { id, at } (first alert of an indicator and address)
 *   intel-alerts-unlinked  [createdAt, id]            -> id (no endpoint evidence yet: retried by the matcher)
 */
import type { NetworkIntelAlert } from '../core/contracts.js';
import { appendFeedSync } from './feed.js';
import type { Tables } from './tables.js';

/** A page cursor over intel alerts listed newest first. */
export interface IntelAlertCursor {
  createdAt: number;
  id: string;
}

/** What `record` did with an alert. */
export type IntelAlertOutcome = 'created' | 'duplicate' | 'repeat';

export interface IntelAlertRepository {
  get(id: string): NetworkIntelAlert | undefined;
  count(): number;
  /** A tenant's alerts, newest first, strictly after `after`. */
  scanTenant(supportId: string, after?: IntelAlertCursor): Iterable<NetworkIntelAlert>;
  /** Every tenant's alerts, newest first. */
  scanAll(after?: IntelAlertCursor): Iterable<NetworkIntelAlert>;
  /**
   * Stores a new alert (with its feed event) unless its id is already stored
   * (`duplicate`: a redelivered line) or an alert of the same `dedupKey` was
   * created within `windowMs` of its time (`repeat`: counted on that one).
   */
  record(alert: NetworkIntelAlert, dedupKey: string, windowMs: number): Promise<{ outcome: IntelAlertOutcome; id: string }>;
  /** Alerts without endpoint evidence created at or after `since`, oldest first. */
  unlinked(since: number): NetworkIntelAlert[];
  /** Attaches the device and endpoint evidence and the new severity; a raised severity notifies again. */
  link(id: string, change: Pick<NetworkIntelAlert, 'severity'> & Partial<Pick<NetworkIntelAlert, 'device' | 'endpoint' | 'linkedAt'>>, at: number): Promise<NetworkIntelAlert | undefined>;
  /** Stops retrying links of alerts created before `before`. */
  dropUnlinkedBefore(before: number): Promise<number>;
}

const RANK: Record<NetworkIntelAlert['severity'], number> = { Information: 0, Medium: 1, Serious: 2, Critical: 3 };

/** The intel-alert repository over the hot store's tables (called by openHotStore). */
export function createIntelAlertRepository(t: Tables): IntelAlertRepository {
  const { intelAlerts, tenantIntelAlerts, intelAlertsByTime, intelAlertDedup, intelAlertsUnlinked, root } = t;
  function* byIds(ids: Iterable<string>): Iterable<NetworkIntelAlert> {
    for (const id of ids) {
      const a = intelAlerts.get(id);
      if (a !== undefined) yield a;
    }
  }
  function* tenantIds(supportId: string, after: IntelAlertCursor | undefined): Iterable<string> {
    for (const key of tenantIntelAlerts.getKeys({ start: [supportId, after?.createdAt ?? Infinity, after?.id ?? '\uffff'], end: [supportId], reverse: true })) {
      if (key[2] !== after?.id) yield key[2];
    }
  }
  function* allIds(after: IntelAlertCursor | undefined): Iterable<string> {
    for (const key of intelAlertsByTime.getKeys({ start: [after?.createdAt ?? Infinity, after?.id ?? '\uffff'], end: [-Infinity], reverse: true })) {
      if (key[1] !== after?.id) yield key[1];
    }
  }
  const feed = (a: NetworkIntelAlert, at: number, by: string): void => {
    appendFeedSync(t, { kind: 'intel.hit', supportId: a.supportId, at, alertId: a.id, ...(a.device === undefined ? {} : { tmid: a.device.tmid }), severity: a.severity, by });
  };
  return {
    get: (id) => intelAlerts.get(id),
    count: () => intelAlerts.getCount(),
    scanTenant: (supportId, after) => byIds(tenantIds(supportId, after)),
    scanAll: (after) => byIds(allIds(after)),
    record: (alert, dedupKey, windowMs) =>
      root.transaction(() => {
        if (intelAlerts.get(alert.id) !== undefined) return { outcome: 'duplicate' as const, id: alert.id };
        const prior = intelAlertDedup.get([alert.supportId, dedupKey]);
        const first = prior === undefined ? undefined : intelAlerts.get(prior.id);
        if (prior !== undefined && first !== undefined && alert.at >= prior.at && alert.at - prior.at < windowMs) {
          intelAlerts.putSync(first.id, { ...first, repeats: first.repeats + 1, lastRepeatAt: alert.at });
          return { outcome: 'repeat' as const, id: first.id };
        }
        intelAlerts.putSync(alert.id, alert);
        tenantIntelAlerts.putSync([alert.supportId, alert.createdAt, alert.id], alert.id);
        intelAlertsByTime.putSync([alert.createdAt, alert.id], alert.id);
        intelAlertDedup.putSync([alert.supportId, dedupKey], { id: alert.id, at: alert.at });
        if (alert.endpoint === undefined) intelAlertsUnlinked.putSync([alert.createdAt, alert.id], alert.id);
        feed(alert, alert.createdAt, 'engine');
        return { outcome: 'created' as const, id: alert.id };
      }),
    unlinked(since) {
      return [...byIds([...intelAlertsUnlinked.getRange({ start: [since], end: [Infinity] })].map((r) => r.value))];
    },
    link: (id, change, at) =>
      root.transaction(() => {
        const prev = intelAlerts.get(id);
        if (prev === undefined) return undefined;
        const next: NetworkIntelAlert = { ...prev, ...change };
        intelAlerts.putSync(id, next);
        if (next.endpoint !== undefined) intelAlertsUnlinked.removeSync([prev.createdAt, id]);
        if (RANK[next.severity] > RANK[prev.severity]) feed(next, at, 'engine:link');
        return next;
      }),
    async dropUnlinkedBefore(before) {
      const keys = [...intelAlertsUnlinked.getKeys({ start: [-Infinity], end: [before] })];
      if (keys.length > 0) await root.transaction(() => keys.forEach((k) => intelAlertsUnlinked.removeSync(k)));
      return keys.length;
    },
  };
}
