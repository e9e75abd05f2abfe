/**
 * Sigma in the shards: every trail event a shard processes in full is
 * matched against the compiled rules (engine/sigma/), inline with
 * correlation; each hit becomes a stored detection (storage/detections.ts).
 *
 * Like alerts, nothing here writes to LMDB: writes are handed to the
 * correlator's queue and commit in the shard's flush transaction, with the
 * checkpoint, so a replay after a crash neither loses nor duplicates a
 * detection (ids derive from device, event seq and rule). Detections of the
 * same device, rule and process within 72 h count as repeats of the first.
 *
 * The process table of the device being processed answers the matcher's
 * parent and actor fields (the `ProcessResolver` port); the resolver object
 * is reused and remembers its last answers for the event, so an event no
 * rule matches allocates nothing here either and asks the table once per process.
 */
import { createHash } from 'node:crypto';
import type { EvidenceRef, SigmaDetection, SigmaReportHit, TrailEvent } from '../core/contracts.js';
import type { Clock } from '../core/clock.js';
import type { HotStore, SigmaDedupEntry } from '../storage/index.js';
import { foldKey, type DeviceState } from './device-state.js';
import type { ProcessFacts, ProcessResolver, SigmaMatcher, SigmaRuleInfo } from './sigma/index.js';

/** Same device, rule and process within this (endpoint ms) is a repeat of the first detection. */
export const SIGMA_DEDUP_WINDOW_MS = 72 * 3600 * 1000;

/** Committed detections (and dedup entries) a shard keeps in memory for the repeats that follow (about 1 KB each). */
const RECENT_ENTRIES = 8192;

/** A write for the shard's flush transaction. */
export type StoreWrite = (store: HotStore) => void;

/** The device an event belongs to, as the correlator knows it. */
export interface SigmaDeviceContext {
  tmid: string;
  supportId: string;
  computer: string;
  state: DeviceState;
}

/** Overlays a flush captured: dropped once the transaction committed, unless changed since. */
export interface SigmaFlushUnit {
  detections: Map<string, SigmaDetection>;
  dedup: Map<string, SigmaDedupEntry>;
}

interface TenantRules {
  enabled: boolean;
  disabled: ReadonlySet<string>;
}

/** Counters (monotonic). */
export interface SigmaStageStats {
  detections: number;
  repeats: number;
  /** Hits dropped because the tenant turned the rule off. */
  disabled: number;
}

/** The detection id of a rule matching one event of one device: the same on replay. */
export function sigmaDetectionIdFor(tmid: string, seq: number, ruleId: string): string {
  return `sd_${createHash('sha256').update(`${tmid}:${seq}:${ruleId}`).digest('hex').slice(0, 24)}`;
}

class DeviceResolver implements ProcessResolver {
  private state: DeviceState | undefined;
  // The last two answers of this event: an event's actor is asked for once per actor field of each
  // candidate rule and scanner (Image, CommandLine, User…), its parent once per parent field.
  private pg1: string | undefined;
  private facts1: ProcessFacts | undefined;
  private pg2: string | undefined;
  private facts2: ProcessFacts | undefined;

  /** The device whose table answers, for one event (undefined: none); forgets the previous event's answers. */
  use(state: DeviceState | undefined): void {
    this.state = state;
    this.pg1 = undefined;
    this.facts1 = undefined;
    this.pg2 = undefined;
    this.facts2 = undefined;
  }

  process(pg: string): ProcessFacts | undefined {
    if (pg === this.pg1) return this.facts1;
    if (pg === this.pg2) return this.facts2;
    // ProcNode carries the proc.start fields under their trail names (image, cmd, user, ppg, pimage…).
    const facts = this.state?.proc(pg) as ProcessFacts | undefined;
    this.pg2 = this.pg1;
    this.facts2 = this.facts1;
    this.pg1 = pg;
    this.facts1 = facts;
    return facts;
  }
}

export interface SigmaStageOptions {
  store: HotStore;
  clock: Clock;
  /** The compiled rules; replace with `setMatcher` on reload. Undefined: Sigma off. */
  matcher?: SigmaMatcher;
}

/** The resolver a matcher for this stage must be created with (`createSigmaMatcher(rules, { resolver })`). */
export class SigmaStage {
  readonly resolver: DeviceResolver = new DeviceResolver();
  readonly stats: SigmaStageStats = { detections: 0, repeats: 0, disabled: 0 };
  private matcher: SigmaMatcher | undefined;
  private readonly store: HotStore;
  private readonly clock: Clock;
  private readonly tenants = new Map<string, TenantRules>();
  private readonly pending = new Map<string, SigmaDetection>();
  private readonly pendingByDevice = new Map<string, Map<string, SigmaDetection>>();
  private readonly pendingDedup = new Map<string, SigmaDedupEntry>();
  /** Detections changed since the last capture: written by one queued write, at the flush that captures them. */
  private unsaved = new Map<string, SigmaDetection>();
  /**
   * The last committed version of recent detections and dedup entries (bounded, see RECENT_ENTRIES):
   * a repeat of a detection flushed a second ago read both back from LMDB and decoded the detection,
   * two reads per hit of a rule firing on every event of a process. This shard is their only writer
   * (no other code writes or removes detections), so what it committed last is what LMDB holds.
   */
  private recent = new Map<string, SigmaDetection>();
  private recentDedup = new Map<string, SigmaDedupEntry>();

  constructor(options: SigmaStageOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.matcher = options.matcher;
  }

  /** Swaps the rule set (a reload); the matcher must use `this.resolver`. */
  setMatcher(matcher: SigmaMatcher | undefined): void {
    this.matcher = matcher;
  }

  get rules(): number {
    return this.matcher?.rules.length ?? 0;
  }

  /** Forgets the cached tenant settings: the next event of each tenant reads them again. */
  refreshSettings(): void {
    this.tenants.clear();
  }

  private tenantRules(supportId: string): TenantRules {
    let t = this.tenants.get(supportId);
    if (t === undefined) {
      const s = this.store.detections.settings(supportId);
      t = { enabled: s.enabled, disabled: new Set(s.disabledRules) };
      this.tenants.set(supportId, t);
    }
    return t;
  }

  /** Matches one event (already folded into `dev.state`); hits are queued through `queue`. */
  onEvent(dev: SigmaDeviceContext, e: TrailEvent, lsn: number, queue: (w: StoreWrite) => void): void {
    const matcher = this.matcher;
    if (matcher === undefined) return;
    const tenant = this.tenantRules(dev.supportId);
    if (!tenant.enabled) return;
    this.resolver.use(dev.state);
    const hits = matcher.match(e, dev.supportId);
    this.resolver.use(undefined);
    if (hits.length === 0) return;
    for (const rule of hits) {
      if (tenant.disabled.has(rule.id)) {
        this.stats.disabled++;
        continue;
      }
      this.record(dev, e, lsn, rule, queue);
    }
  }

  private detection(id: string): SigmaDetection | undefined {
    return this.pending.get(id) ?? this.recent.get(id) ?? this.store.detections.get(id);
  }

  private put(d: SigmaDetection, queue: (w: StoreWrite) => void): void {
    this.pending.set(d.id, d);
    let dev = this.pendingByDevice.get(d.tmid);
    if (dev === undefined) {
      dev = new Map();
      this.pendingByDevice.set(d.tmid, dev);
    }
    dev.set(d.id, d);
    // One write per detection per flush, of its last version: a rule firing on every event of a process
    // queued (and the flush encoded and wrote) one record per hit.
    if (this.unsaved.size === 0) {
      const batch = this.unsaved;
      queue((s) => {
        for (const x of batch.values()) s.detections.saveSync(x);
      });
    }
    this.unsaved.set(d.id, d);
  }

  /**
   * A repeat of `first`: counted on the same object while no flush captured it
   * (it is then only in `unsaved`), on a copy otherwise, so a captured
   * version never changes under its flush.
   */
  private repeat(first: SigmaDetection, at: number, queue: (w: StoreWrite) => void): void {
    if (this.unsaved.get(first.id) === first) {
      first.repeats++;
      first.lastRepeatAt = at;
      return;
    }
    this.put({ ...first, repeats: first.repeats + 1, lastRepeatAt: at }, queue);
  }

  private record(dev: SigmaDeviceContext, e: TrailEvent, lsn: number, rule: SigmaRuleInfo, queue: (w: StoreWrite) => void): void {
    const { tmid } = dev;
    const pg = typeof e.pg === 'string' ? e.pg : '';
    const pgKey = foldKey(pg);
    const at = typeof e.ts === 'number' ? e.ts : 0;
    const dedupKey = `${tmid}\u0000${rule.id}\u0000${pgKey}`;
    // The dedup entry first: most hits are repeats (a rule firing on every event of one process), and a
    // repeat needs neither this event's detection id (a hash) nor the look-up of it in LMDB.
    let prior = this.pendingDedup.get(dedupKey) ?? this.recentDedup.get(dedupKey);
    if (prior === undefined) {
      prior = this.store.detections.dedup(tmid, rule.id, pgKey);
      if (prior !== undefined) this.rememberDedup(dedupKey, prior);
    }
    if (prior !== undefined && at >= prior.at && at - prior.at < SIGMA_DEDUP_WINDOW_MS) {
      const first = this.detection(prior.detectionId);
      if (first !== undefined) {
        if (first.event.seq === e.seq) return; // This event made the first detection: a replay.
        this.repeat(first, at, queue);
        this.stats.repeats++;
        return;
      }
    }
    const id = sigmaDetectionIdFor(tmid, e.seq, rule.id);
    if (this.detection(id) !== undefined) return; // Already stored: a replay.
    const image = e.k === 'proc.start' && typeof e.image === 'string' ? e.image : (dev.state.proc(pg === '' ? undefined : pg)?.image ?? '');
    const event: EvidenceRef = { tmid, seq: e.seq, ts: at, k: e.k };
    const d: SigmaDetection = {
      id,
      supportId: dev.supportId,
      tmid,
      computer: dev.computer,
      ruleId: rule.id,
      title: rule.title,
      level: rule.level,
      severity: rule.severity,
      tags: [...rule.tags],
      author: rule.author,
      lsn,
      event,
      pg,
      image,
      at,
      createdAt: this.clock.now(),
      repeats: 0,
    };
    const entry: SigmaDedupEntry = { detectionId: id, at };
    this.pendingDedup.set(dedupKey, entry);
    this.put(d, queue);
    queue((s) => {
      s.detections.indexSync(d);
      s.detections.putDedupSync(tmid, rule.id, pgKey, entry);
    });
    this.stats.detections++;
  }

  /**
   * The detections of a device whose process is in `pgs` (folded GUIDs) with
   * event time in [from, to]: the quick report's "rules that fired".
   */
  hitsFor(tmid: string, pgs: ReadonlySet<string>, from: number, to: number): SigmaReportHit[] {
    if (pgs.size === 0) return [];
    const byId = new Map<string, SigmaDetection>();
    for (const d of this.store.detections.ofDeviceProcesses(tmid, pgs, from, to)) byId.set(d.id, d);
    for (const d of this.pendingByDevice.get(tmid)?.values() ?? []) if (d.at >= from && d.at <= to) byId.set(d.id, d);
    const out: SigmaReportHit[] = [];
    for (const d of byId.values()) {
      if (!pgs.has(foldKey(d.pg))) continue;
      out.push({ detectionId: d.id, ruleId: d.ruleId, title: d.title, level: d.level, severity: d.severity, tags: d.tags, pg: d.pg, image: d.image, event: d.event });
    }
    return out.sort((a, b) => a.event.ts - b.event.ts || a.event.seq - b.event.seq || (a.ruleId < b.ruleId ? -1 : 1));
  }

  /** Overlays the next flush commits (called with the correlator's capture). */
  capture(): SigmaFlushUnit {
    // The write queued for `unsaved` belongs to this flush: later changes start a new map (and a new write).
    if (this.unsaved.size > 0) this.unsaved = new Map();
    return { detections: new Map(this.pending), dedup: new Map(this.pendingDedup) };
  }

  /** After the flush committed: LMDB now answers for what it wrote, and the recent maps keep it at hand. */
  release(unit: SigmaFlushUnit): void {
    if (this.recent.size + unit.detections.size > RECENT_ENTRIES) this.recent.clear();
    if (this.recentDedup.size + unit.dedup.size > RECENT_ENTRIES) this.recentDedup.clear();
    for (const [k, v] of unit.detections) {
      if (this.pending.get(k) !== v) continue;
      this.pending.delete(k);
      this.recent.set(k, v);
      const dev = this.pendingByDevice.get(v.tmid);
      if (dev?.get(k) === v) dev.delete(k);
      if (dev?.size === 0) this.pendingByDevice.delete(v.tmid);
    }
    for (const [k, v] of unit.dedup) {
      if (this.pendingDedup.get(k) !== v) continue;
      this.pendingDedup.delete(k);
      this.recentDedup.set(k, v);
    }
  }

  /** A dedup entry read from LMDB, kept for the next hits (after a restart, or past the recent bound). */
  private rememberDedup(key: string, entry: SigmaDedupEntry): void {
    if (this.recentDedup.size >= RECENT_ENTRIES) this.recentDedup.clear();
    this.recentDedup.set(key, entry);
  }
}
