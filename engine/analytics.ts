/**
 * Streaming analytics in the shards (SPEC §4 "Streaming analytics", issue
 * 16): per tenant, device and JST day of receipt, counters of events by kind,
 * processes started, failed logons (`logon` with `ok: false`, Security 4625),
 * USB insertions (`usb.connect`), file deletions and distinct destinations
 * (remote IPs of `net.conn`, an exact set capped at DESTINATIONS_CAP); and
 * threshold rules defined as data per tenant (DEFAULT_THRESHOLD_RULES unless
 * the tenant set its own) that raise `analytics.threshold` alerts:
 * - sliding windows: ≥ `threshold` matching events within `windowMs` on one
 *   device (failed logons, a burst of file deletions);
 * - first seen: a `net.conn` to a /16 network (or a domain) the device never
 *   reached before, after `learnDays` of learning. kiseki has no GeoIP source,
 *   so "a new destination country" is approximated by the new /16.
 *
 * Hot path: the shard calls `beginBatch` once per batch and `observe` per
 * event inside the loop it already runs; `observe` allocates nothing for
 * events seen before (counters are numbers on a per-device accumulator, the
 * window is a preallocated ring of timestamps, a remote IP is kept as the
 * string the decoder made). Storage is touched at flush only: `capture` swaps
 * the accumulators out and `writeSync` adds them inside the shard's
 * checkpoint transaction, one record per device and day, so counters are
 * exactly-once on replay. Alert ids derive from the batch's lsn and the
 * event's index, so a replayed batch cannot raise its alert twice.
 * Window state is memory only: a burst split by a restart may go unseen.
 */
import type { ThreatIntel } from './intel/index.js';
import type { Clock } from '../core/clock.js';
import { internString } from '../core/intern.js';
import type { DailyDelta, HotStore, NotifyFeedEvent, OpsAlert, ThresholdRule } from '../storage/index.js';
import { KNOWN_CAP } from '../storage/index.js';

const DAY_MS = 86_400_000;
const JST_OFFSET_MS = 9 * 3_600_000;
/** Distinct destinations collected per device and flush before the rest is left to storage's cap. */
const FLUSH_DESTS_MAX = 1024;
/**
 * What first-seen rules learnt is written at most this often (and at a
 * shard's final flush), not at every flush: a set of 4,096 values rewritten
 * every 100 ms cost more than the counting (bench/micro/analytics-shard.bench.ts).
 * Losing the last interval's learning to a crash can only repeat a
 * first-seen alert for a value learnt in it, never miss one.
 */
const KNOWN_WRITE_INTERVAL_MS = 30_000;

/** The rules a tenant gets until it sets its own (PUT /api/v1/tenants/:id/analytics/rules). */
export const DEFAULT_THRESHOLD_RULES: readonly ThresholdRule[] = Object.freeze([
  { id: 'failed-logons', title: '10 or more failed logons within 5 minutes', enabled: true, kind: 'logon', where: { ok: false }, threshold: 10, windowMs: 5 * 60_000 },
  { id: 'file-deletion-burst', title: '200 or more file deletions within 1 minute', enabled: true, kind: 'file.delete', threshold: 200, windowMs: 60_000 },
  { id: 'new-destination-net16', title: 'Connection to a /16 network this device never reached', enabled: true, kind: 'net.conn', firstSeen: 'net16', learnDays: 7 },
]);

/** `YYYY-MM-DD` of the JST day holding `t`. */
export function jstDay(t: number): string {
  return new Date(t + JST_OFFSET_MS).toISOString().slice(0, 10);
}

interface CompiledRule {
  rule: ThresholdRule;
  whereKeys: string[];
  whereValues: unknown[];
}

/** One device's day in the current flush. Stable shape: created once per device and day per flush. */
interface DeviceAcc extends DailyDelta {
  tmid: string;
  supportId: string;
  day: string;
  kinds: Map<string, number>;
  destinations: Set<string>;
  rules: ReadonlyMap<string, CompiledRule[]> | undefined;
  lsn: number;
  /** False while `kinds` is the shard's own per-device count of this flush (one Map update per event, not two). */
  ownKinds: boolean;
  /** Storage's distinct set of this day is full: collecting more is wasted work. */
  destCapped: boolean;
}

interface Ring {
  ts: Float64Array;
  head: number;
  n: number;
  quietUntil: number;
}

interface Known {
  since: number;
  /** `net16`: the /16 as a number (a × 256 + b), so checking an address allocates nothing; `rhost`: the domain. */
  values: Set<number | string>;
  dirty: boolean;
}

interface DeviceWindows {
  rings: Map<string, Ring>;
  known: Map<string, Known>;
  /** The day whose distinct-destination set storage reported full. */
  destCappedDay: string;
}

/** What one flush writes. */
export interface AnalyticsUnit {
  accs: DeviceAcc[];
  alerts: { alert: OpsAlert; feed: Omit<NotifyFeedEvent, 'seq'> }[];
  known: { tmid: string; field: string; since: number; values: string[] }[];
}

export interface StreamingAnalyticsOptions {
  store: HotStore;
  clock: Clock;
  /**
   * Threat intelligence (engine/intel): an endpoint event whose destination IP,
   * DNS name or file hash is a listed indicator raises one `intel.endpoint`
   * alert per device and indicator a day, with or without an antivirus detection.
   */
  intel?: ThreatIntel;
}

/** How long one device's hit on one indicator stays one alert. */
const INTEL_REPEAT_MS = 24 * 3600_000;
/** Remembered device + indicator hits per shard; past it the oldest are forgotten (a repeat may then alert again). */
const INTEL_SEEN_MAX = 50_000;

/** One shard's analytics: accumulators, windows and rules of the devices it owns. */
export class StreamingAnalytics {
  private readonly store: HotStore;
  private readonly clock: Clock;
  /** day → tmid → accumulator of this flush. */
  private pending = new Map<string, Map<string, DeviceAcc>>();
  private pendingAlerts: AnalyticsUnit['alerts'] = [];
  private readonly tenantOf = new Map<string, string>();
  private readonly rulesOf = new Map<string, ReadonlyMap<string, CompiledRule[]>>();
  private defaultRules: ReadonlyMap<string, CompiledRule[]> = compileRules(DEFAULT_THRESHOLD_RULES);
  private readonly windows = new Map<string, DeviceWindows>();
  private lastDayStart = -1;
  private lastDay = '';
  private lastKnownWriteAt = Number.NEGATIVE_INFINITY;
  /** Per device, the accumulator of this flush that shares the shard's kind counts. */
  private sharing = new Map<string, DeviceAcc>();
  private readonly intel: ThreatIntel | undefined;
  /** `tmid|kind|value` → time until which a repeat raises nothing. */
  private readonly intelSeen = new Map<string, number>();
  /** Alerts raised since the start, for the shard's stats. */
  alertsRaised = 0;

  constructor(options: StreamingAnalyticsOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.intel = options.intel;
    this.refreshRules();
  }

  /** Reloads every tenant's rules from storage (the shard calls it every few seconds). */
  refreshRules(): void {
    this.rulesOf.clear();
    for (const set of this.store.analytics.allRules()) this.rulesOf.set(set.supportId, compileRules(set.rules));
  }

  /**
   * Starts a batch of `tmid` received at `recvAt` (server ms: the day it
   * counts on) with log position `lsn`. Returns the accumulator to hand to
   * `observe`, or undefined for a device storage does not know.
   * `shardKinds`: the shard's per-kind counts of this device for this flush,
   * which it updates for every event anyway; the day's kind counts reuse them
   * while the device has one day in the flush (at midnight the first day
   * keeps a copy and the next counts its own).
   */
  beginBatch(tmid: string, lsn: number, recvAt: number, shardKinds?: Map<string, number>): DeviceAcc | undefined {
    let supportId = this.tenantOf.get(tmid);
    if (supportId === undefined) {
      const stored = this.store.devices.get(tmid)?.supportId;
      if (stored === undefined) return undefined;
      supportId = internString(stored);
      this.tenantOf.set(tmid, supportId);
    }
    if (recvAt < this.lastDayStart || recvAt >= this.lastDayStart + DAY_MS) {
      this.lastDayStart = Math.floor((recvAt + JST_OFFSET_MS) / DAY_MS) * DAY_MS - JST_OFFSET_MS;
      this.lastDay = jstDay(recvAt);
    }
    const day = this.lastDay;
    let byDevice = this.pending.get(day);
    if (byDevice === undefined) this.pending.set(day, (byDevice = new Map()));
    let acc = byDevice.get(tmid);
    if (acc === undefined) {
      const other = this.sharing.get(tmid);
      if (other !== undefined) {
        other.kinds = new Map(other.kinds);
        other.ownKinds = true;
        this.sharing.delete(tmid);
      }
      const share = shardKinds !== undefined && other === undefined;
      acc = {
        tmid,
        supportId,
        day,
        events: 0,
        kinds: share ? shardKinds : new Map(),
        ownKinds: !share,
        procStarts: 0,
        failedLogons: 0,
        usbInsertions: 0,
        fileDeletes: 0,
        destinations: new Set(),
        thresholdAlerts: 0,
        rules: undefined,
        lsn,
        destCapped: this.windows.get(tmid)?.destCappedDay === day,
      };
      byDevice.set(tmid, acc);
      if (share) this.sharing.set(tmid, acc);
    }
    acc.rules = this.rulesOf.get(supportId) ?? this.defaultRules;
    acc.lsn = lsn;
    return acc;
  }

  /** Counts one event of a batch (`index` is its position in the batch) and runs the tenant's rules of its kind. */
  observe(acc: DeviceAcc, event: object, kind: string, index: number): void {
    const e = event as Record<string, unknown>;
    acc.events++;
    if (acc.ownKinds) acc.kinds.set(kind, (acc.kinds.get(kind) ?? 0) + 1);
    switch (kind) {
      case 'proc.start':
        acc.procStarts++;
        break;
      case 'logon':
        if (e.ok === false) acc.failedLogons++;
        break;
      case 'usb.connect':
        acc.usbInsertions++;
        break;
      case 'file.delete':
        acc.fileDeletes++;
        break;
      case 'net.conn':
        if (!acc.destCapped && typeof e.rip === 'string' && acc.destinations.size < FLUSH_DESTS_MAX) acc.destinations.add(e.rip);
        break;
    }
    if (this.intel !== undefined) this.matchIntel(acc, e, kind, index);
    const rules = acc.rules?.get(kind);
    if (rules === undefined) return;
    for (let i = 0; i < rules.length; i++) {
      const c = rules[i]!;
      let match = true;
      for (let j = 0; j < c.whereKeys.length; j++) {
        if (e[c.whereKeys[j]!] !== c.whereValues[j]) {
          match = false;
          break;
        }
      }
      if (!match) continue;
      const ts = typeof e.ts === 'number' ? e.ts : this.clock.now();
      if (c.rule.firstSeen !== undefined) this.firstSeen(acc, c.rule, e, ts, index);
      else this.slide(acc, c.rule, ts, index);
    }
  }

  /** Endpoint events against intel: destination IPs, DNS names and hashes of started, written or loaded files. */
  private matchIntel(acc: DeviceAcc, e: Record<string, unknown>, kind: string, index: number): void {
    const intel = this.intel!;
    let hitKind: 'ip' | 'domain' | 'sha256' | undefined;
    let value: string | undefined;
    if (kind === 'net.conn') {
      if (typeof e.rip === 'string' && intel.has('ip', e.rip)) [hitKind, value] = ['ip', e.rip];
      else if (typeof e.rhost === 'string' && e.rhost !== '' && intel.has('domain', e.rhost)) [hitKind, value] = ['domain', e.rhost];
    } else if (kind === 'net.dns') {
      if (typeof e.qname === 'string' && intel.has('domain', e.qname)) [hitKind, value] = ['domain', e.qname];
    } else if (typeof e.sha256 === 'string' && (kind === 'proc.start' || kind === 'img.load' || kind.startsWith('file.'))) {
      if (intel.has('sha256', e.sha256)) [hitKind, value] = ['sha256', e.sha256];
    }
    if (hitKind === undefined || value === undefined) return;
    const ts = typeof e.ts === 'number' ? e.ts : this.clock.now();
    const key = `${acc.tmid}|${hitKind}|${value.toLowerCase()}`;
    const quietUntil = this.intelSeen.get(key);
    if (quietUntil !== undefined && ts < quietUntil) return;
    if (this.intelSeen.size >= INTEL_SEEN_MAX) this.intelSeen.delete(this.intelSeen.keys().next().value!);
    this.intelSeen.delete(key);
    this.intelSeen.set(key, ts + INTEL_REPEAT_MS);
    const now = this.clock.now();
    const id = `int_${acc.tmid}_${acc.lsn}_${index}`;
    const what = hitKind === 'ip' ? 'IP address' : hitKind === 'domain' ? 'domain' : 'file hash';
    const title = `Threat intelligence: ${what} ${value}`;
    const details: Record<string, unknown> = { indicator: hitKind, value, event: kind, ts };
    for (const f of ['seq', 'pg', 'pid', 'image', 'path', 'rport', 'qname'] as const) if (e[f] !== undefined) details[f] = e[f];
    const alert: OpsAlert = { id, kind: 'intel.endpoint', supportId: acc.supportId, tmid: acc.tmid, createdAt: now, state: 'resolved', resolvedAt: now, title, details };
    this.pendingAlerts.push({ alert, feed: { kind: 'intel.endpoint', supportId: acc.supportId, at: now, tmid: acc.tmid, opsAlertId: id, title, by: 'system:intel' } });
    this.alertsRaised++;
  }

  private windowsOf(tmid: string): DeviceWindows {
    let w = this.windows.get(tmid);
    if (w === undefined) this.windows.set(tmid, (w = { rings: new Map(), known: new Map(), destCappedDay: '' }));
    return w;
  }

  private slide(acc: DeviceAcc, rule: ThresholdRule, ts: number, index: number): void {
    const threshold = rule.threshold ?? 1;
    const windowMs = rule.windowMs ?? 60_000;
    const w = this.windowsOf(acc.tmid);
    let ring = w.rings.get(rule.id);
    if (ring === undefined || ring.ts.length !== threshold) w.rings.set(rule.id, (ring = { ts: new Float64Array(threshold), head: 0, n: 0, quietUntil: 0 }));
    ring.ts[ring.head] = ts;
    ring.head = (ring.head + 1) % threshold;
    if (ring.n < threshold) ring.n++;
    if (ring.n < threshold || ts < ring.quietUntil) return;
    // The ring is full: its oldest timestamp sits where the next one goes.
    const oldest = ring.ts[ring.head]!;
    if (ts - oldest > windowMs) return;
    ring.n = 0;
    ring.quietUntil = ts + windowMs;
    this.raise(acc, rule, index, { count: threshold, windowMs, firstAt: oldest, lastAt: ts });
  }

  private firstSeen(acc: DeviceAcc, rule: ThresholdRule, e: Record<string, unknown>, ts: number, index: number): void {
    const field = rule.firstSeen!;
    const raw = field === 'net16' ? e.rip : e.rhost;
    if (typeof raw !== 'string') return;
    const w = this.windowsOf(acc.tmid);
    let known = w.known.get(field);
    if (known === undefined) {
      const stored = this.store.analytics.known(acc.tmid, field);
      const values = new Set<number | string>();
      for (const v of stored?.values ?? []) {
        const key = field === 'net16' ? net16Key(v) : v;
        if (key !== undefined) values.add(key);
      }
      known = { since: stored?.since ?? ts, values, dirty: stored === undefined };
      w.known.set(field, known);
    }
    if (known.values.size >= KNOWN_CAP) return;
    // Most connections go to networks already known: a number parsed in place and one Set lookup, no allocation.
    const value = field === 'net16' ? net16Key(raw) : domainOf(raw);
    if (value === undefined || known.values.has(value)) return;
    known.values.add(value);
    known.dirty = true;
    if (ts - known.since >= (rule.learnDays ?? 7) * DAY_MS) {
      const label = typeof value === 'number' ? net16Label(value) : value;
      this.raise(acc, rule, index, { [field]: label, destination: raw, learningSince: known.since });
    }
  }

  private raise(acc: DeviceAcc, rule: ThresholdRule, index: number, details: Record<string, unknown>): void {
    const now = this.clock.now();
    const id = `thr_${acc.tmid}_${rule.id}_${acc.lsn}_${index}`;
    const alert: OpsAlert = {
      id,
      kind: 'analytics.threshold',
      supportId: acc.supportId,
      tmid: acc.tmid,
      createdAt: now,
      // A threshold alert reports something that happened: nothing to wait for.
      state: 'resolved',
      resolvedAt: now,
      title: rule.title,
      details: { ruleId: rule.id, ...details },
    };
    this.pendingAlerts.push({ alert, feed: { kind: 'analytics.threshold', supportId: acc.supportId, at: now, tmid: acc.tmid, opsAlertId: id, title: rule.title, by: 'system:analytics' } });
    acc.thresholdAlerts++;
    this.alertsRaised++;
  }

  /** True when counters or alerts wait for the next flush. */
  hasPending(): boolean {
    return this.pending.size > 0 || this.pendingAlerts.length > 0;
  }

  /** True when an alert waits: worth a flush now rather than at the next tick. */
  hasAlerts(): boolean {
    return this.pendingAlerts.length > 0;
  }

  /** Takes what the next flush writes (outside the write lock); `final` (a shard's last flush) includes every learnt value. */
  capture(final = false): AnalyticsUnit {
    const accs: DeviceAcc[] = [];
    for (const byDevice of this.pending.values()) for (const acc of byDevice.values()) accs.push(acc);
    this.pending = new Map();
    this.sharing = new Map();
    const alerts = this.pendingAlerts;
    this.pendingAlerts = [];
    const known: AnalyticsUnit['known'] = [];
    const now = this.clock.now();
    if (final || now - this.lastKnownWriteAt >= KNOWN_WRITE_INTERVAL_MS) {
      this.lastKnownWriteAt = now;
      for (const [tmid, w] of this.windows) {
        for (const [field, k] of w.known) {
          if (!k.dirty) continue;
          k.dirty = false;
          const values: string[] = [];
          for (const v of k.values) values.push(typeof v === 'number' ? net16Label(v) : v);
          known.push({ tmid, field, since: k.since, values });
        }
      }
    }
    return { accs, alerts, known };
  }

  /** Inside the shard's checkpoint transaction: counters, alerts (with their feed entries) and learnt values. */
  writeSync(unit: AnalyticsUnit): void {
    const { analytics, opsAlerts } = this.store;
    for (const acc of unit.accs) {
      if (analytics.addDailySync(acc.day, acc.supportId, acc.tmid, acc)) this.windowsOf(acc.tmid).destCappedDay = acc.day;
    }
    for (const { alert, feed } of unit.alerts) opsAlerts.raiseSync(alert, feed);
    for (const k of unit.known) analytics.putKnownSync(k.tmid, k.field, { since: k.since, values: k.values });
  }
}

function compileRules(rules: readonly ThresholdRule[]): ReadonlyMap<string, CompiledRule[]> {
  const byKind = new Map<string, CompiledRule[]>();
  for (const rule of rules) {
    if (!rule.enabled) continue;
    const where = Object.entries(rule.where ?? {});
    let list = byKind.get(rule.kind);
    if (list === undefined) byKind.set(rule.kind, (list = []));
    list.push({ rule, whereKeys: where.map(([k]) => k), whereValues: where.map(([, v]) => v) });
  }
  return byKind;
}

/**
 * The /16 of an IPv4 address (`a.b.c.d` or the `a.b.0.0/16` label) as the
 * number a × 256 + b, read in place without allocating; undefined for
 * anything else (IPv6 is left out: a /16 means nothing there).
 */
export function net16Key(ip: string): number | undefined {
  let a = -1;
  let n = 0;
  let digits = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      n = n * 10 + c - 48;
      if (++digits > 3 || n > 255) return undefined;
    } else if (c === 46 && digits > 0) {
      if (a >= 0) return a * 256 + n;
      a = n;
      n = 0;
      digits = 0;
    } else return undefined;
  }
  return undefined;
}

/** The label of a /16 key: `a.b.0.0/16`. */
export function net16Label(key: number): string {
  return `${key >> 8}.${key & 255}.0.0/16`;
}

/** `a.b.0.0/16` of an IPv4 address; undefined for anything else. */
export function net16(ip: string): string | undefined {
  const key = net16Key(ip);
  return key === undefined ? undefined : net16Label(key);
}

/** The last two labels of a host name, lower case (`cdn.example.net` → `example.net`). */
export function domainOf(host: string): string | undefined {
  const labels = host.toLowerCase().split('.').filter((l) => l.length > 0);
  if (labels.length < 2) return undefined;
  return labels.slice(-2).join('.');
}

/**
 * The retention sweep (SPEC §5: daily statistics 90 days): counters of days
 * older than `retentionDays` and destination sets of days before yesterday
 * (JST), which only the days still counting need.
 */
export function sweepAnalytics(store: HotStore, now: number, retentionDays: number): Promise<{ daily: number; dests: number }> {
  return store.analytics.sweep(jstDay(now - retentionDays * DAY_MS), jstDay(now - DAY_MS));
}
