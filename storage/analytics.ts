/**
 * Streaming analytics at rest (SPEC §4): per tenant, device and JST day, the
 * counters the shards derive (events by kind, processes started, failed
 * logons, USB insertions, file deletions, distinct destinations, threshold
 * alerts), the tenants' threshold rules, the values first-seen rules have
 * learnt, and the read models of the console's charts. Shards add their
 * deltas with `addDailySync` inside their checkpoint transaction, once per
 * device and day per flush: counters are exactly-once on replay, like alerts.
 * Retention sweeps days older than 90 (SPEC §5).
 *
 * Key layouts (kiseki.lmdb):
 *   analytics-daily  [day, supportId, tmid] -> DailyCounters (day `YYYY-MM-DD`, JST)
 *   analytics-dests  [day, tmid]            -> distinct remote IPs of that day (at most DESTINATIONS_CAP)
 *   analytics-known  [tmid, field]          -> { since, values } learnt by a first-seen rule (at most KNOWN_CAP)
 *   analytics-rules  supportId              -> ThresholdRuleSet
 * Day-first keys make the retention sweep one range delete and a tenant's day one range read.
 */
import type { DailyCounters, DailyDelta, ThresholdRuleSet } from './records.js';
import type { Tables } from './tables.js';

/** Distinct destinations kept per device and day; beyond it the count is a floor (`destinationsCapped`). */
export const DESTINATIONS_CAP = 1024;
/** Values a first-seen rule remembers per device; beyond it new values are no longer learnt (nor alerted). */
export const KNOWN_CAP = 4096;

/** The counters a series can chart: a DailyCounters field, or `kind:<event kind>`. */
export type AnalyticsMetric = 'events' | 'procStarts' | 'failedLogons' | 'usbInsertions' | 'fileDeletes' | 'destinations' | 'thresholdAlerts' | `kind:${string}`;

/** Totals of a tenant over some days. */
export interface AnalyticsSummary {
  supportId: string;
  from: string;
  to: string;
  /** Devices with any counter in the range. */
  devices: number;
  totals: Record<'events' | 'procStarts' | 'failedLogons' | 'usbInsertions' | 'fileDeletes' | 'destinations' | 'thresholdAlerts', number>;
  kinds: Record<string, number>;
  /** The devices with the most failed logons, most first (at most 10). */
  topFailedLogons: { tmid: string; failedLogons: number }[];
}

export interface AnalyticsRepository {
  /** Inside `store.transaction()` (a shard's flush): adds one flush's delta to a device's day; true when its distinct-destination set is full. */
  addDailySync(day: string, supportId: string, tmid: string, delta: DailyDelta): boolean;
  /** A device's counters of one day. */
  daily(day: string, supportId: string, tmid: string): DailyCounters | undefined;
  /** One value per day of `days` (zero where nothing was counted): one device's, or the tenant's sum when `tmid` is undefined. */
  series(supportId: string, tmid: string | undefined, metric: AnalyticsMetric, days: readonly string[]): number[];
  summary(supportId: string, days: readonly string[]): AnalyticsSummary;
  /** What a first-seen rule learnt on a device. */
  known(tmid: string, field: string): { since: number; values: string[] } | undefined;
  /** Inside `store.transaction()`. */
  putKnownSync(tmid: string, field: string, known: { since: number; values: string[] }): void;
  rules(supportId: string): ThresholdRuleSet | undefined;
  putRules(set: ThresholdRuleSet): Promise<boolean>;
  /** A cluster node's copy of a tenant's rule set: stored when newer (`updatedAt`) than the local one. True when stored. */
  mirrorRules(set: ThresholdRuleSet): Promise<boolean>;
  /** Every tenant's rule set (shards load them at start and every few seconds). */
  allRules(): ThresholdRuleSet[];
  /**
   * Deletes counters of days before `beforeDay` and destination sets of days
   * before `destsBeforeDay` (only the current days need them). Returns how many records went.
   */
  sweep(beforeDay: string, destsBeforeDay: string): Promise<{ daily: number; dests: number }>;
}

function metricOf(c: DailyCounters, metric: AnalyticsMetric): number {
  if (metric.startsWith('kind:')) return c.kinds[metric.slice(5)] ?? 0;
  const v = c[metric as keyof DailyCounters];
  return typeof v === 'number' ? v : 0;
}

/** The analytics repository over the hot store's tables (called by openHotStore). */
export function createAnalyticsRepository(t: Tables): AnalyticsRepository {
  const { analyticsDaily, analyticsDests, analyticsKnown, analyticsRules, root } = t;
  const tenantDay = (day: string, supportId: string) => analyticsDaily.getRange({ start: [day, supportId, ''], end: [day, supportId, '\uffff'] });
  return {
    addDailySync(day, supportId, tmid, d) {
      const key: [string, string, string] = [day, supportId, tmid];
      const prev = analyticsDaily.get(key);
      const kinds: Record<string, number> = { ...prev?.kinds };
      for (const [k, n] of d.kinds) kinds[k] = (kinds[k] ?? 0) + n;
      let destinations = prev?.destinations ?? 0;
      let capped = prev?.destinationsCapped ?? false;
      if (d.destinations.size > 0) {
        const held = analyticsDests.get([day, tmid]) ?? [];
        const set = new Set(held);
        for (const ip of d.destinations) {
          if (set.has(ip)) continue;
          if (set.size >= DESTINATIONS_CAP) {
            capped = true;
            break;
          }
          set.add(ip);
        }
        if (set.size !== held.length) analyticsDests.putSync([day, tmid], [...set]);
        destinations = set.size;
      }
      analyticsDaily.putSync(key, {
        day,
        supportId,
        tmid,
        events: (prev?.events ?? 0) + d.events,
        kinds,
        procStarts: (prev?.procStarts ?? 0) + d.procStarts,
        failedLogons: (prev?.failedLogons ?? 0) + d.failedLogons,
        usbInsertions: (prev?.usbInsertions ?? 0) + d.usbInsertions,
        fileDeletes: (prev?.fileDeletes ?? 0) + d.fileDeletes,
        destinations,
        destinationsCapped: capped,
        thresholdAlerts: (prev?.thresholdAlerts ?? 0) + d.thresholdAlerts,
      });
      return capped || destinations >= DESTINATIONS_CAP;
    },
    daily: (day, supportId, tmid) => analyticsDaily.get([day, supportId, tmid]),
    series(supportId, tmid, metric, days) {
      return days.map((day) => {
        if (tmid !== undefined) {
          const c = analyticsDaily.get([day, supportId, tmid]);
          return c === undefined ? 0 : metricOf(c, metric);
        }
        let sum = 0;
        for (const { value } of tenantDay(day, supportId)) sum += metricOf(value, metric);
        return sum;
      });
    },
    summary(supportId, days) {
      const totals: AnalyticsSummary['totals'] = { events: 0, procStarts: 0, failedLogons: 0, usbInsertions: 0, fileDeletes: 0, destinations: 0, thresholdAlerts: 0 };
      const kinds: Record<string, number> = {};
      const failed = new Map<string, number>();
      const devices = new Set<string>();
      for (const day of days) {
        for (const { value: c } of tenantDay(day, supportId)) {
          devices.add(c.tmid);
          for (const k of Object.keys(totals) as (keyof AnalyticsSummary['totals'])[]) totals[k] += c[k];
          for (const [k, n] of Object.entries(c.kinds)) kinds[k] = (kinds[k] ?? 0) + n;
          if (c.failedLogons > 0) failed.set(c.tmid, (failed.get(c.tmid) ?? 0) + c.failedLogons);
        }
      }
      const topFailedLogons = [...failed]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 10)
        .map(([tmid, failedLogons]) => ({ tmid, failedLogons }));
      return { supportId, from: days[0] ?? '', to: days.at(-1) ?? '', devices: devices.size, totals, kinds, topFailedLogons };
    },
    known: (tmid, field) => analyticsKnown.get([tmid, field]),
    putKnownSync(tmid, field, known) {
      analyticsKnown.putSync([tmid, field], known);
    },
    rules: (supportId) => analyticsRules.get(supportId),
    putRules: (set) => analyticsRules.put(set.supportId, set),
    mirrorRules: (set) =>
      analyticsRules.transaction(() => {
        const local = analyticsRules.get(set.supportId);
        if (local !== undefined && local.updatedAt >= set.updatedAt) return false;
        analyticsRules.putSync(set.supportId, set);
        return true;
      }),
    allRules: () => [...analyticsRules.getRange({})].map((e) => e.value),
    async sweep(beforeDay, destsBeforeDay) {
      let daily = 0;
      let dests = 0;
      // Nothing old enough: no write transaction at all (the sweep runs at every start).
      const none = (it: Iterable<unknown>): boolean => {
        for (const _ of it) return false;
        return true;
      };
      if (none(analyticsDaily.getKeys({ end: [beforeDay], limit: 1 })) && none(analyticsDests.getKeys({ end: [destsBeforeDay], limit: 1 }))) return { daily, dests };
      await root.transaction(() => {
        for (const key of analyticsDaily.getKeys({ end: [beforeDay] })) {
          analyticsDaily.removeSync(key);
          daily++;
        }
        for (const key of analyticsDests.getKeys({ end: [destsBeforeDay] })) {
          analyticsDests.removeSync(key);
          dests++;
        }
      });
      return { daily, dests };
    },
  };
}
