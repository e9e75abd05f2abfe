/**
 * Alerts and everything hanging off them: quick-report revisions, the
 * engine's verdict history, analysts' verdicts and comments, the 72 h dedup
 * index, and the read models built from them. The one place that decides
 * the effective verdict (the analyst's last, else the engine's), so the CLI
 * and the API show the same one.
 *
 * Key layouts (kiseki.lmdb):
 *   alerts            alertId                     -> AlertRecord (the engine's view)
 *   tenant-alerts     [supportId, createdAt, id]  -> id (a tenant's alerts in time order)
 *   device-alerts     [tmid, detectedAt, id]      -> id (a device's alerts in detection order)
 *   alerts-by-time    [createdAt, id]             -> id (every alert in time order: operators' view)
 *   reports           [alertId, revision]         -> QuickReport
 *   verdict-history   [alertId, revision]         -> VerdictChange (engine changes)
 *   analyst-verdicts  [alertId, at, id]           -> AnalystVerdict
 *   comments          [alertId, at, id]           -> AlertComment
 *   alert-dedup       [tmid, sha256 or folded path] -> DedupEntry (first alert of that file)
 *
 * The engine's writes are the `...Sync` methods, run inside
 * `store.transaction()` together with the shard's checkpoint.
 */
import { randomBytes } from 'node:crypto';
import type { AlertRecord, QuickReport, Verdict, VerdictChange } from '../core/contracts.js';
import type { AlertComment, AnalystVerdict, DedupEntry, EffectiveAlert, VerdictHistoryEntry } from './records.js';
import { appendFeedSync } from './feed.js';
import type { Tables } from './tables.js';

/** An alert with its report revisions, verdict history and comments. */
export interface AlertView {
  alert: EffectiveAlert;
  /** Every revision of the quick report, oldest first. */
  revisions: QuickReport[];
  /** Engine and analyst verdict changes in time order, each with the effective verdict before it. */
  verdicts: VerdictHistoryEntry[];
  comments: AlertComment[];
}

/** A page cursor over alerts listed newest first: the last alert shown. */
export interface AlertCursor {
  createdAt: number;
  id: string;
}

/** The dedup key of a file: its SHA-256 when known, else its path folded to lower case. */
export function dedupFileKey(sha256: string | undefined, path: string): string {
  return sha256 ?? path.toLowerCase();
}

/** True when a detection at endpoint time `ts` is counted on the alert of `prior` (within `windowMs` after it). */
export function dedupApplies(prior: DedupEntry, ts: number, windowMs: number): boolean {
  return ts - prior.at < windowMs && ts >= prior.at;
}

export interface AlertRepository {
  /** The alert as the engine stored it (engine verdict). */
  get(id: string): AlertRecord | undefined;
  /** Alerts stored, all tenants. */
  count(): number;
  /** The alert with its effective verdict. */
  effective(id: string): EffectiveAlert | undefined;
  /** The effective view of an alert record already read. */
  effectiveOf(alert: AlertRecord): EffectiveAlert;
  /** The alert with revisions, merged verdict history and comments, or undefined. */
  view(id: string): AlertView | undefined;
  /** A tenant's alerts, newest first, strictly after `after` when given. */
  scanTenant(supportId: string, after?: AlertCursor): Iterable<EffectiveAlert>;
  /** Every tenant's alerts, newest first, strictly after `after` when given. */
  scanAll(after?: AlertCursor): Iterable<EffectiveAlert>;
  /** A tenant's newest alerts (at most `limit`), effective verdicts. */
  latest(supportId: string, limit?: number): EffectiveAlert[];
  /** A device's alerts, newest detection first (at most `limit`). */
  recentOfDevice(tmid: string, limit: number): { alertId: string; detectedAt: number }[];
  revision(alertId: string, revision: number): QuickReport | undefined;
  /**
   * Records an analyst's verdict; it wins over the engine's from now on.
   * Returns the effective verdict before the change, the alert after it and the verdict's record, or undefined for an
   * unknown alert.
   */
  setVerdict(input: { alertId: string; at: number; by: string; verdict: Verdict; comment?: string }): Promise<{ before: Verdict; alert: EffectiveAlert; record: AnalystVerdict } | undefined>;
  /** Adds an analyst comment; undefined for an unknown alert. */
  addComment(input: { alertId: string; at: number; author: string; text: string }): Promise<AlertComment | undefined>;
  comments(alertId: string): AlertComment[];
  /** The first alert of a device and file, if recorded. */
  dedup(tmid: string, fileKey: string): DedupEntry | undefined;
  /**
   * Inside `store.transaction()`: the alert record. Replacing a stored one also appends an `alert.updated` feed
   * entry (at the alert's last repeat, else its creation), which only the cluster's alert publisher reads.
   */
  saveSync(alert: AlertRecord): void;
  /** Inside `store.transaction()`: the tenant, device and time index entries of a new alert. */
  indexSync(alert: AlertRecord): void;
  /** Inside `store.transaction()`: one quick-report revision. */
  putRevisionSync(report: QuickReport): void;
  /** Inside `store.transaction()`: an engine verdict change. */
  putVerdictChangeSync(change: VerdictChange): void;
  /** Inside `store.transaction()`: the first alert of a device and file. */
  putDedupSync(tmid: string, fileKey: string, entry: DedupEntry): void;
  /**
   * An API node's copy of alerts the shard nodes committed (cluster/api-node.ts): each alert stored as given,
   * indexed when new, with its report revision, in one transaction. A version older than the one held (a lower
   * report revision, or fewer repeats at the same revision: a replay published late) is skipped.
   *
   * With `notifyFrom` (ms) the copy appends the feed entries the engine would have written, in the same
   * transaction, so the node's notifier sees them: `alert.new` for an alert new here created at or after
   * `notifyFrom`, `alert.verdict` (by `engine`) when a later revision changes the engine's verdict, at or after
   * `notifyFrom`, and no analyst verdict was given here. Older changes (a node copying the bucket's history)
   * append nothing. Without it, no feed entry. Resolves with the number of alerts new here.
   */
  mirror(entries: readonly { alert: AlertRecord; report?: QuickReport | undefined }[], options?: { notifyFrom?: number }): Promise<number>;
  /**
   * A cluster shard node's copy of the alerts the shard nodes committed (cluster/bucket-copy.ts), for a takeover:
   * each alert stored when new or newer than the one held (as `mirror`), indexed when new, and made its device's
   * 72 h dedup entry for its file when it is the latest detection of that file there; no report, no feed entry
   * (nothing is published or notified again). A replayed detection then finds its alert, and a repeat after the
   * takeover is counted on the first alert. Resolves with the number of alerts new here.
   */
  seed(alerts: readonly AlertRecord[]): Promise<number>;
  /**
   * A cluster API node's copy of an analyst's verdict or comment made on another API node
   * (cluster/analysis-sync.ts), stored under its own id unless held already. A verdict that is now the alert's
   * latest analyst verdict and changes its effective verdict appends the `alert.verdict` entry `setVerdict` wrote
   * there, when made at or after `notifyFrom` (the API nodes' claims send it once). Resolves true when stored.
   */
  mirrorAnalysis(entry: AnalysisRecord, options?: { notifyFrom?: number }): Promise<boolean>;
  /** Every analyst verdict and comment, by alert (what an API node shares at start). */
  analysisRecords(): Iterable<AnalysisRecord>;
}

/** An analyst's verdict or comment, as API nodes share them. */
export type AnalysisRecord = { kind: 'verdict'; verdict: AnalystVerdict } | { kind: 'comment'; comment: AlertComment };

/** The alert repository over the hot store's tables (called by openHotStore). */
export function createAlertRepository(t: Tables): AlertRepository {
  const { alerts, tenantAlerts, deviceAlerts, alertsByTime, reports, verdictHistory, analystVerdicts, comments, alertDedup } = t;

  const lastAnalyst = (id: string): AnalystVerdict | undefined => {
    for (const { value } of analystVerdicts.getRange({ start: [id, Infinity], end: [id], reverse: true, limit: 1 })) return value;
    return undefined;
  };
  const effectiveOf = (a: AlertRecord): EffectiveAlert => {
    const analyst = lastAnalyst(a.id);
    return { ...a, engineVerdict: a.verdict, verdict: analyst?.verdict ?? a.verdict, verdictBy: analyst?.by ?? 'engine' };
  };
  /** The tenant, device and time index entries of a new alert. */
  const putIndexEntriesSync = (a: AlertRecord): void => {
    tenantAlerts.putSync([a.supportId, a.createdAt, a.id], a.id);
    deviceAlerts.putSync([a.tmid, a.detectedAt, a.id], a.id);
    alertsByTime.putSync([a.createdAt, a.id], a.id);
  };
  /** Inside a transaction: stores a copy of an alert another node wrote unless the one held is newer (a higher report revision, or more repeats at the same one). */
  const putCopySync = (a: AlertRecord): { outcome: 'new' | 'newer' | 'older'; held: AlertRecord | undefined } => {
    const held = alerts.get(a.id);
    if (held !== undefined && (held.revision > a.revision || (held.revision === a.revision && held.repeats > a.repeats))) return { outcome: 'older', held };
    if (held === undefined) putIndexEntriesSync(a);
    alerts.putSync(a.id, a);
    return { outcome: held === undefined ? 'new' : 'newer', held };
  };
  const commentsOf = (id: string): AlertComment[] => [...comments.getRange({ start: [id], end: [id, Infinity] })].map((e) => e.value);

  /** Engine and analyst changes in time order; an analyst change's `from` is the effective verdict before it. */
  const history = (id: string): VerdictHistoryEntry[] => {
    const engine: VerdictHistoryEntry[] = [...verdictHistory.getRange({ start: [id], end: [id, Infinity] })].map((e) => e.value);
    const analyst = [...analystVerdicts.getRange({ start: [id], end: [id, Infinity] })].map((e) => e.value);
    const merged: (VerdictHistoryEntry & { analyst?: AnalystVerdict })[] = [
      ...engine,
      ...analyst.map((v) => ({ alertId: v.alertId, at: v.at, revision: null, from: null, to: v.verdict, by: v.by, comment: v.comment, analyst: v })),
    ].sort((a, b) => a.at - b.at);
    let engineVerdict: Verdict | null = null;
    let analystVerdict: Verdict | null = null;
    return merged.map(({ analyst: v, ...entry }) => {
      if (v === undefined) {
        engineVerdict = entry.to;
        return entry;
      }
      const from = v.from ?? analystVerdict ?? engineVerdict;
      analystVerdict = entry.to;
      return { ...entry, from };
    });
  };

  function* scan(keys: Iterable<string>): Iterable<EffectiveAlert> {
    for (const id of keys) {
      const a = alerts.get(id);
      if (a !== undefined) yield effectiveOf(a);
    }
  }
  function* tenantIds(supportId: string, after: AlertCursor | undefined, limit?: number): Iterable<string> {
    const start: [string, number, string] = [supportId, after?.createdAt ?? Infinity, after?.id ?? '\uffff'];
    for (const key of tenantAlerts.getKeys({ start, end: [supportId], reverse: true, ...(limit === undefined ? {} : { limit }) })) {
      if (key[2] !== after?.id) yield key[2];
    }
  }
  function* allIds(after: AlertCursor | undefined): Iterable<string> {
    for (const key of alertsByTime.getKeys({ start: [after?.createdAt ?? Infinity, after?.id ?? '\uffff'], end: [0], reverse: true })) {
      if (key[1] !== after?.id) yield key[1];
    }
  }

  return {
    get: (id) => alerts.get(id),
    count: () => alerts.getCount(),
    effective(id) {
      const a = alerts.get(id);
      return a === undefined ? undefined : effectiveOf(a);
    },
    effectiveOf,
    view(id) {
      const a = alerts.get(id);
      if (a === undefined) return undefined;
      const revisions = [...reports.getRange({ start: [id], end: [id, Infinity] })].map((e) => e.value);
      return { alert: effectiveOf(a), revisions, verdicts: history(id), comments: commentsOf(id) };
    },
    scanTenant: (supportId, after) => scan(tenantIds(supportId, after)),
    scanAll: (after) => scan(allIds(after)),
    latest: (supportId, limit = 100) => [...scan(tenantIds(supportId, undefined, limit))],
    recentOfDevice(tmid, limit) {
      const out: { alertId: string; detectedAt: number }[] = [];
      for (const key of deviceAlerts.getKeys({ start: [tmid, Infinity], end: [tmid], reverse: true, limit })) out.push({ alertId: key[2], detectedAt: key[1] });
      return out;
    },
    revision: (alertId, revision) => reports.get([alertId, revision]),
    async setVerdict(input) {
      const a = alerts.get(input.alertId);
      if (a === undefined) return undefined;
      const before = effectiveOf(a).verdict;
      const id = `av_${randomBytes(6).toString('hex')}`;
      const record: AnalystVerdict = {
        id,
        alertId: a.id,
        at: input.at,
        by: input.by,
        verdict: input.verdict,
        from: before,
        ...(input.comment === undefined ? {} : { comment: input.comment }),
      };
      // The verdict and its feed entry commit together: notify/ never misses or invents a change.
      await t.root.transaction(() => {
        analystVerdicts.putSync([a.id, input.at, id], record);
        if (before !== input.verdict) {
          appendFeedSync(t, { kind: 'alert.verdict', supportId: a.supportId, at: input.at, alertId: a.id, tmid: a.tmid, verdict: input.verdict, from: before, by: input.by });
        }
      });
      return { before, alert: effectiveOf(a), record };
    },
    async addComment(input) {
      if (alerts.get(input.alertId) === undefined) return undefined;
      const comment: AlertComment = { id: `co_${randomBytes(6).toString('hex')}`, ...input };
      await comments.put([input.alertId, input.at, comment.id], comment);
      return comment;
    },
    comments: commentsOf,
    dedup: (tmid, fileKey) => alertDedup.get([tmid, fileKey]),
    saveSync(a) {
      // A new alert is announced by indexSync's alert.new; a later version of a stored one by alert.updated.
      if (alerts.get(a.id) !== undefined) {
        appendFeedSync(t, { kind: 'alert.updated', supportId: a.supportId, at: a.lastRepeatAt ?? a.createdAt, alertId: a.id, tmid: a.tmid, by: 'engine' });
      }
      alerts.putSync(a.id, a);
    },
    indexSync(a) {
      putIndexEntriesSync(a);
      appendFeedSync(t, { kind: 'alert.new', supportId: a.supportId, at: a.createdAt, alertId: a.id, tmid: a.tmid, verdict: a.verdict, state: a.state, by: 'engine' });
    },
    putRevisionSync(report) {
      reports.putSync([report.alertId, report.revision], report);
    },
    putVerdictChangeSync(change) {
      verdictHistory.putSync([change.alertId, change.revision], change);
      // The first report's verdict is announced by alert.new; later engine revisions that change it notify.
      if (change.from !== null && change.from !== change.to && lastAnalyst(change.alertId) === undefined) {
        const a = alerts.get(change.alertId);
        if (a !== undefined) {
          appendFeedSync(t, { kind: 'alert.verdict', supportId: a.supportId, at: change.at, alertId: a.id, tmid: a.tmid, verdict: change.to, from: change.from, by: change.by });
        }
      }
    },
    putDedupSync(tmid, fileKey, entry) {
      alertDedup.putSync([tmid, fileKey], entry);
    },
    async mirror(entries, options) {
      const notifyFrom = options?.notifyFrom;
      let added = 0;
      await t.root.transaction(() => {
        for (const { alert: a, report } of entries) {
          const { outcome, held } = putCopySync(a);
          if (outcome === 'older') continue;
          if (outcome === 'new') {
            added++;
            // What indexSync announces on the shard node; the first verdict seen here is the alert's.
            if (notifyFrom !== undefined && a.createdAt >= notifyFrom) {
              appendFeedSync(t, { kind: 'alert.new', supportId: a.supportId, at: a.createdAt, alertId: a.id, tmid: a.tmid, verdict: a.verdict, state: a.state, by: 'engine' });
            }
          } else if (notifyFrom !== undefined && held !== undefined && held.verdict !== a.verdict && lastAnalyst(a.id) === undefined) {
            // What putVerdictChangeSync announces: the engine's verdict changed and no analyst here overrode it.
            // The change's time is its report revision's (the bucket carries no verdict history).
            const at = report !== undefined && report.revision === a.revision ? report.createdAt : (a.lastRepeatAt ?? a.createdAt);
            if (at >= notifyFrom) {
              appendFeedSync(t, { kind: 'alert.verdict', supportId: a.supportId, at, alertId: a.id, tmid: a.tmid, verdict: a.verdict, from: held.verdict, by: 'engine' });
            }
          }
          if (report !== undefined) reports.putSync([report.alertId, report.revision], report);
        }
      });
      return added;
    },
    async mirrorAnalysis(entry, options) {
      return t.root.transaction(() => {
        if (entry.kind === 'comment') {
          const c = entry.comment;
          if (comments.get([c.alertId, c.at, c.id]) !== undefined) return false;
          comments.putSync([c.alertId, c.at, c.id], c);
          return true;
        }
        const v = entry.verdict;
        if (analystVerdicts.get([v.alertId, v.at, v.id]) !== undefined) return false;
        const a = alerts.get(v.alertId);
        const before = a === undefined ? undefined : effectiveOf(a).verdict;
        analystVerdicts.putSync([v.alertId, v.at, v.id], v);
        const notifyFrom = options?.notifyFrom;
        if (a !== undefined && before !== undefined && notifyFrom !== undefined && v.at >= notifyFrom && lastAnalyst(v.alertId)?.id === v.id && before !== v.verdict) {
          appendFeedSync(t, { kind: 'alert.verdict', supportId: a.supportId, at: v.at, alertId: a.id, tmid: a.tmid, verdict: v.verdict, from: before, by: v.by });
        }
        return true;
      });
    },
    *analysisRecords() {
      for (const { value } of analystVerdicts.getRange({ snapshot: false })) yield { kind: 'verdict', verdict: value };
      for (const { value } of comments.getRange({ snapshot: false })) yield { kind: 'comment', comment: value };
    },
    async seed(list) {
      let added = 0;
      await t.root.transaction(() => {
        for (const a of list) {
          const { outcome } = putCopySync(a);
          if (outcome === 'older') continue;
          if (outcome === 'new') added++;
          const fileKey = dedupFileKey(a.sha256 === '' ? undefined : a.sha256, a.path);
          const held = alertDedup.get([a.tmid, fileKey]);
          if (held === undefined || held.at < a.detectedAt) alertDedup.putSync([a.tmid, fileKey], { alertId: a.id, at: a.detectedAt });
        }
      });
      return added;
    },
  };
}
