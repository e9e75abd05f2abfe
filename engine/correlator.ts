/**
 * The correlation side of a shard: folds every event into its device's state,
 * turns each `av.detect` into an alert with a quick report and a verdict, and
 * revises open reports as the detected process tree keeps acting (default 10
 * minutes of endpoint time). Applies dedup (same device and file within 72 h),
 * the tenant's exception list and policy (tuning period, isolation on black,
 * automatic exceptions for whites).
 *
 * Nothing here writes to LMDB directly: writes are queued and the shard
 * commits them in the same transaction as its checkpoint, so replaying the log
 * after a crash neither loses nor duplicates an alert. Alert ids derive from
 * the device and the detection's seq, so a replay produces the same ids.
 */
import { createHash } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import { decompress } from 'zstd-napi';
import type { AlertRecord, ExceptionEntry, QuickReport, TenantPolicy, TrailEvent, VerdictChange } from '../core/contracts.js';
import type { Clock } from '../core/clock.js';
import { internString } from '../core/intern.js';
import { autoExceptionId, dedupApplies, dedupFileKey, matchException, type DedupEntry, type HotStore, type NetConnEntry } from '../storage/index.js';
import { DEFAULT_DEVICE_LIMITS, DeviceState, foldKey, type DeviceSnapshot, type DeviceStateLimits } from './device-state.js';
import { buildQuickReport, reportFingerprint, reportProcessSet, type DetectionContext, type SigmaHitsReader } from './report-builder.js';
import { compileRules, type CompiledRuleSet } from './rules/evaluate.js';
import { DEFAULT_RULES } from './rules/default-rules.js';
import type { RuleSet } from './rules/rule-types.js';
import type { SigmaFlushUnit, SigmaStage, StoreWrite } from './sigma-stage.js';
import type { ThreatIntel } from './intel/index.js';
import { PrevalenceStage, type PrevalenceFlushUnit } from './prevalence-stage.js';

export const DEDUP_WINDOW_MS = 72 * 3600 * 1000;

export interface CorrelatorOptions {
  store: HotStore;
  intel: ThreatIntel;
  clock: Clock;
  rules?: RuleSet;
  /** How long (endpoint ms) after a detection later events revise its report. */
  revisionWindowMs?: number;
  /** Devices whose state stays in memory; the least recently used are snapshotted and dropped. */
  maxDevicesInMemory?: number;
  /** Approximate bytes of device state kept in memory (DeviceState.approxBytes); beyond it the least recently used are dropped too. */
  deviceStateBudgetBytes?: number;
  deviceLimits?: DeviceStateLimits;
  /** Called for each alert created, after its write is queued (for latency metrics). */
  onAlert?: (alert: AlertRecord, batchRecvAt: number | undefined) => void;
  /** Called when a command for a device is queued (delivered once the flush stored it). */
  onCommand?: (tmid: string) => void;
  /** Sigma rules matched on every event processed in full (engine/sigma-stage.ts); absent: none. */
  sigma?: SigmaStage;
  /** Fleet prevalence of files (engine/prevalence-stage.ts): recorded from every batch, weighed by the verdict; default on with the default thresholds, 'off' for none. */
  prevalence?: PrevalenceStage | 'off';
}

interface OpenAlert {
  alertId: string;
  openUntil: number;
  fingerprint: string;
  pgs: Set<string>;
  detection: TrailEvent;
  detectionLsn: number;
  revision: number;
  verdict: AlertRecord['verdict'];
}

interface DeviceEntry {
  state: DeviceState;
  /** The state's approxBytes() when last counted into the correlator's total. */
  bytes: number;
  dirty: boolean;
  supportId: string;
  computer: string;
  open: OpenAlert[];
}

/** A write queued for the next flush, run inside the shard's transaction; alert records need no closure. */
type Write = { db: 'alerts'; value: AlertRecord } | { db: 'other'; put: (store: HotStore) => void };

const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
/** Snapshots use msgpackr records: process and file entries share a shape, so keys are written once. */
const snapshotPackr = new Packr({ useRecords: true, mapsAsObjects: true });
/**
 * Decoded batches kept for reports, bounded by events rather than batches:
 * agents that send small batches often (20 events a second) spread a process
 * tree over many of them, and a report re-reads all of them at each revision.
 */
const BATCH_CACHE_EVENTS = 32_768;
/**
 * And by age (the correlator's clock): at an idle fleet's rate the event bound
 * alone kept half a minute of one-event batches, about 42 MB of a shard's heap
 * for 19,000 agents (fanin-19k); the shard has time to spare at such rates to
 * read an older batch back from the log. Under load the event bound is the
 * tighter one (32,768 events are half a second at 60,000 a second).
 */
const BATCH_CACHE_MAX_AGE_MS = 10_000;

/** A decoded batch in the cache and when it was put there. */
interface CachedBatch {
  events: readonly TrailEvent[];
  at: number;
}
/**
 * Device states kept in memory per shard: as many as fit the byte budget, so
 * an idle fleet of tens of thousands stays loaded (an idle device's state is
 * about 1–2 KB; reloading and evicting one per batch cost more CPU and
 * garbage than keeping it, fanin-19k) while full ones (150–350 KB) are held
 * to a few thousand. The count is a backstop.
 */
export const DEFAULT_MAX_DEVICES_IN_MEMORY = 100_000;
export const DEFAULT_DEVICE_STATE_BUDGET_BYTES = 1024 * 1024 * 1024;

export function alertIdFor(tmid: string, seq: number): string {
  return `al_${createHash('sha256').update(`${tmid}:${seq}`).digest('hex').slice(0, 24)}`;
}

/**
 * The id of the alert a detection is counted on: its own (`alertIdFor`), or,
 * when the 72 h dedup folds it into an earlier alert of the same device and
 * file, that alert's id. What `kiseki detect` prints, so `kiseki report`
 * finds the alert either way. Reads only what is stored.
 */
export function alertIdForDetection(store: HotStore, tmid: string, detection: TrailEvent): string {
  const own = alertIdFor(tmid, detection.seq);
  if (store.alerts.get(own) !== undefined) return own;
  const path = typeof detection.path === 'string' ? detection.path : '';
  const sha256 = typeof detection.sha256 === 'string' ? detection.sha256.toLowerCase() : undefined;
  const prior = store.alerts.dedup(tmid, dedupFileKey(sha256, path));
  if (prior !== undefined && dedupApplies(prior, detection.ts, DEDUP_WINDOW_MS) && store.alerts.get(prior.alertId) !== undefined) return prior.alertId;
  return own;
}

export class Correlator {
  private readonly store: HotStore;
  private readonly intel: ThreatIntel;
  private readonly clock: Clock;
  private readonly rules: CompiledRuleSet;
  private readonly windowMs: number;
  private readonly maxDevices: number;
  private readonly stateBudget: number;
  /** Sum of the in-memory entries' `bytes`. */
  private stateBytes = 0;
  private readonly limits: DeviceStateLimits;
  private readonly onAlert: CorrelatorOptions['onAlert'];
  private readonly onCommand: CorrelatorOptions['onCommand'];
  private readonly devices = new Map<string, DeviceEntry>();
  /** Snapshots of devices dropped from memory, written at the next flush. */
  private readonly evicted = new Map<string, DeviceSnapshot>();
  /** Oldest first (a batch read again is moved to the end). */
  private readonly batchCache = new Map<number, CachedBatch>();
  private batchCacheEvents = 0;
  private writes: Write[] = [];
  /** Snapshots captured by a flush and not yet committed: a device reloaded meanwhile must see them. */
  private snapshotsInFlight: Map<string, DeviceSnapshot> | undefined;
  /** The running snapshot round: devices to snapshot and the lsn they will all be at least as new as. */
  private round: { lsn: number; tmids: string[]; next: number } | undefined;
  /** Alerts changed since the last flush: later reads must see them before LMDB does. */
  private readonly pendingAlerts = new Map<string, AlertRecord>();
  private readonly pendingDedup = new Map<string, { alertId: string; at: number }>();
  private readonly pendingExceptions = new Map<string, ExceptionEntry[]>();
  readonly stats = { alerts: 0, suppressed: 0, deduplicated: 0, revisions: 0 };
  private readonly sigma: SigmaStage | undefined;
  private readonly prevalence: PrevalenceStage | undefined;
  private readonly queueWrite = (put: StoreWrite): void => {
    this.writes.push({ db: 'other', put });
  };

  constructor(options: CorrelatorOptions) {
    this.store = options.store;
    this.intel = options.intel;
    this.clock = options.clock;
    this.rules = compileRules(options.rules ?? DEFAULT_RULES);
    this.windowMs = options.revisionWindowMs ?? 10 * 60 * 1000;
    this.maxDevices = options.maxDevicesInMemory ?? DEFAULT_MAX_DEVICES_IN_MEMORY;
    this.stateBudget = options.deviceStateBudgetBytes ?? DEFAULT_DEVICE_STATE_BUDGET_BYTES;
    this.limits = options.deviceLimits ?? DEFAULT_DEVICE_LIMITS;
    this.onAlert = options.onAlert;
    this.onCommand = options.onCommand;
    this.sigma = options.sigma;
    this.prevalence = options.prevalence === 'off' ? undefined : (options.prevalence ?? new PrevalenceStage({ store: options.store }));
  }

  devicesInMemory(): number {
    return this.devices.size;
  }

  /** True when alert writes or state snapshots wait for the next flush. */
  hasPendingWrites(): boolean {
    return this.writes.length > 0 || this.evicted.size > 0;
  }

  private entry(tmid: string): DeviceEntry | undefined {
    let e = this.devices.get(tmid);
    if (e !== undefined) {
      // Re-insert: Map order is the LRU order.
      this.devices.delete(tmid);
      this.devices.set(tmid, e);
      return e;
    }
    const device = this.store.devices.get(tmid);
    if (device === undefined) return undefined;
    const snapshot = this.evicted.get(tmid) ?? this.snapshotsInFlight?.get(tmid) ?? this.storedSnapshot(tmid);
    this.evicted.delete(tmid);
    const state = new DeviceState(this.limits, snapshot);
    // Interned: a decoded record's strings can be slices that keep the whole record's text alive.
    e = { state, bytes: state.approxBytes(), dirty: false, supportId: internString(device.supportId), computer: internString(device.computer), open: [] };
    for (const a of this.openAlertsFromStore(tmid)) e.open.push(a);
    this.devices.set(tmid, e);
    this.stateBytes += e.bytes;
    this.evictOverBounds(tmid);
    return e;
  }

  /** Drops the least recently used devices (never `keep`) while over the count or the byte budget. */
  private evictOverBounds(keep: string): void {
    while (this.devices.size > this.maxDevices || (this.stateBytes > this.stateBudget && this.devices.size > 1)) {
      const [oldest, victim] = this.devices.entries().next().value as [string, DeviceEntry];
      if (oldest === keep) return;
      this.devices.delete(oldest);
      this.stateBytes -= victim.bytes;
      if (victim.dirty) this.evicted.set(oldest, victim.state.snapshot());
    }
  }

  /** Open alerts of a device, from LMDB, when its state is loaded again. */
  private openAlertsFromStore(tmid: string): OpenAlert[] {
    const out: OpenAlert[] = [];
    // Only alerts whose window can still be open: detected within the revision window of the newest one.
    const recent = this.store.alerts.recentOfDevice(tmid, 64);
    const newest = recent[0]?.detectedAt ?? 0;
    for (const { alertId, detectedAt } of recent) {
      if (detectedAt < newest - this.windowMs) break;
      const latest = this.alert(alertId);
      if (latest === undefined || latest.state === 'suppressed') continue;
      const report = this.store.alerts.revision(latest.id, latest.revision);
      if (report === undefined) continue;
      out.push({
        alertId: latest.id,
        openUntil: latest.openUntil,
        fingerprint: reportFingerprint(report),
        pgs: reportProcessSet(report),
        detection: report.detection.event as TrailEvent,
        detectionLsn: 0,
        revision: latest.revision,
        verdict: latest.verdict,
      });
    }
    return out;
  }

  private storedSnapshot(tmid: string): DeviceSnapshot | undefined {
    const bytes = this.store.shardState.snapshot(tmid);
    return bytes === undefined ? undefined : (unpackr.unpack(bytes) as DeviceSnapshot);
  }

  private readBatch = (lsn: number): readonly TrailEvent[] | undefined => {
    const cached = this.batchCache.get(lsn);
    if (cached !== undefined) return cached.events;
    let rec = this.store.log.batch(lsn);
    if (rec === undefined) {
      // Committed by the ingest thread after this thread's read snapshot was taken.
      this.store.refreshReads();
      rec = this.store.log.batch(lsn);
    }
    if (rec === undefined) return undefined;
    const events = unpackr.unpack(decompress(rec.z)) as TrailEvent[];
    this.remember(lsn, events);
    return events;
  };

  private remember(lsn: number, events: readonly TrailEvent[]): void {
    const old = this.batchCache.get(lsn);
    if (old !== undefined) {
      this.batchCache.delete(lsn);
      this.batchCacheEvents -= old.events.length;
    }
    const now = this.clock.now();
    this.batchCache.set(lsn, { events, at: now });
    this.batchCacheEvents += events.length;
    this.evictBatches(now, lsn);
  }

  /** Drops the oldest batches while the cache is over its event bound or they are over its age; `keep` stays even when it alone is over the bound. */
  private evictBatches(now: number, keep?: number): void {
    for (const [lsn, c] of this.batchCache) {
      if (lsn === keep || (this.batchCacheEvents <= BATCH_CACHE_EVENTS && now - c.at <= BATCH_CACHE_MAX_AGE_MS)) break;
      this.batchCache.delete(lsn);
      this.batchCacheEvents -= c.events.length;
    }
  }

  /** Decoded events in the batch cache (tests). */
  cachedBatchEvents(): number {
    return this.batchCacheEvents;
  }

  private alert(id: string): AlertRecord | undefined {
    return this.pendingAlerts.get(id) ?? this.store.alerts.get(id);
  }

  private putAlert(a: AlertRecord): void {
    this.pendingAlerts.set(a.id, a);
    this.writes.push({ db: 'alerts', value: a });
  }

  private exceptionsOf(supportId: string): ExceptionEntry[] {
    return [...this.store.exceptions.list(supportId), ...(this.pendingExceptions.get(supportId) ?? [])];
  }

  /**
   * Folds a batch into its device's state. In `state` mode (replay of batches
   * whose alerts are already stored) no alert is created or revised.
   */
  processBatch(tmid: string, lsn: number, events: readonly TrailEvent[], mode: 'full' | 'state', batchRecvAt?: number): void {
    const entry = this.entry(tmid);
    if (entry === undefined) return;
    this.remember(lsn, events);
    const detections: TrailEvent[] = [];
    let lastTs = 0;
    // Sigma runs on events processed in full only: a state replay's detections are already stored.
    const sigma = mode === 'full' ? this.sigma : undefined;
    const device = sigma === undefined ? undefined : { tmid, supportId: entry.supportId, computer: entry.computer, state: entry.state };
    // Before the events: a detection in this batch sees the batch's own sightings.
    if (mode === 'full') this.prevalence?.observeBatch(entry.supportId, tmid, events);
    for (const e of events) {
      if (typeof e !== 'object' || e === null || typeof e.k !== 'string') continue;
      entry.state.apply(e, lsn);
      if (device !== undefined) sigma!.onEvent(device, e, lsn, this.queueWrite);
      if (typeof e.ts === 'number' && e.ts > lastTs) lastTs = e.ts;
      if (e.k === 'av.detect' && mode === 'full') detections.push(e);
      else if (e.k === 'net.conn' && mode === 'full') this.indexConnection(tmid, entry, e, lsn);
    }
    entry.dirty = true;
    const bytes = entry.state.approxBytes();
    if (bytes !== entry.bytes) {
      this.stateBytes += bytes - entry.bytes;
      entry.bytes = bytes;
      this.evictOverBounds(tmid);
    }
    if (mode === 'state') return;
    if (entry.open.length > 0) this.reviseOpenAlerts(tmid, entry, events, lastTs);
    for (const d of detections) this.onDetection(tmid, entry, d, lsn, batchRecvAt);
  }

  /**
   * Queues a net.conn event for the connection index (storage/net-conns.ts),
   * with its process image, so a network log's 5-tuple finds the process.
   */
  private indexConnection(tmid: string, entry: DeviceEntry, e: TrailEvent, lsn: number): void {
    const { lip, lport, rip, rport } = e;
    if (typeof lip !== 'string' || typeof lport !== 'number' || typeof rip !== 'string' || typeof rport !== 'number' || typeof e.ts !== 'number') return;
    const pg = typeof e.pg === 'string' ? e.pg : '';
    const image = entry.state.proc(pg)?.image;
    const conn: NetConnEntry = {
      supportId: entry.supportId,
      tmid,
      ts: e.ts,
      seq: e.seq,
      lsn,
      pg,
      lip,
      lport,
      rip,
      rport,
      ...(typeof e.pid === 'number' ? { pid: e.pid } : {}),
      ...(typeof image === 'string' && image !== '' ? { image } : {}),
      ...(typeof e.user === 'string' ? { user: e.user } : {}),
      ...(typeof e.proto === 'string' ? { proto: e.proto } : {}),
      ...(typeof e.dir === 'string' ? { dir: e.dir } : {}),
      ...(typeof e.rhost === 'string' ? { rhost: e.rhost } : {}),
    };
    this.writes.push({ db: 'other', put: (s) => s.netConns.recordSync(conn) });
  }

  private onDetection(tmid: string, entry: DeviceEntry, detection: TrailEvent, lsn: number, batchRecvAt: number | undefined): void {
    const now = this.clock.now();
    const path = typeof detection.path === 'string' ? detection.path : '';
    const sha256 = typeof detection.sha256 === 'string' ? detection.sha256.toLowerCase() : undefined;
    const alertId = alertIdFor(tmid, detection.seq);
    if (this.alert(alertId) !== undefined) return; // Already stored: a replay.

    // Dedup: the same file on the same device within 72 h is counted on the first alert.
    const fileKey = dedupFileKey(sha256, path);
    const dedupMapKey = `${tmid}\u0000${fileKey}`;
    const prior = this.pendingDedup.get(dedupMapKey) ?? this.store.alerts.dedup(tmid, fileKey);
    if (prior !== undefined && dedupApplies(prior, detection.ts, DEDUP_WINDOW_MS)) {
      const first = this.alert(prior.alertId);
      if (first !== undefined) {
        this.putAlert({ ...first, repeats: first.repeats + 1, lastRepeatAt: detection.ts });
        this.stats.deduplicated++;
        return;
      }
    }

    const signer = entry.state.latestProcessOfImage(path)?.signer ?? (typeof detection.signer === 'string' ? detection.signer : undefined);
    const policy = this.store.tenants.policy(entry.supportId);
    const base: AlertRecord = {
      id: alertId,
      tmid,
      supportId: entry.supportId,
      computer: entry.computer,
      sha256: sha256 ?? '',
      path,
      threat: typeof detection.threat === 'string' ? detection.threat : '',
      engine: typeof detection.engine === 'string' ? detection.engine : '',
      action: typeof detection.action === 'string' ? detection.action : '',
      detectedAt: detection.ts,
      createdAt: now,
      state: 'reported',
      verdict: 'gray',
      score: 0,
      revision: 0,
      repeats: 0,
      openUntil: detection.ts + this.windowMs,
      isolationRequested: false,
    };
    const dedupValue: DedupEntry = { alertId, at: detection.ts };
    this.pendingDedup.set(dedupMapKey, dedupValue);
    this.writes.push({ db: 'other', put: (s) => s.alerts.putDedupSync(tmid, fileKey, dedupValue) });

    const exception = matchException(this.exceptionsOf(entry.supportId), { sha256, path, signer }, detection.ts);
    if (exception !== undefined) {
      // On the exception list: recorded as suppressed, no report.
      this.putAlert({ ...base, state: 'suppressed', suppressedBy: exception.id, verdict: 'white', openUntil: detection.ts });
      this.indexAlert(base);
      this.stats.suppressed++;
      return;
    }

    const report = buildQuickReport({
      alertId,
      revision: 1,
      now,
      tmid,
      supportId: entry.supportId,
      computer: entry.computer,
      detection,
      detectionLsn: lsn,
      state: entry.state,
      readBatch: this.readBatch,
      rules: this.rules,
      intel: this.intel,
      ...this.sigmaHitsOf(tmid),
      ...this.prevalenceOf(entry.supportId),
    });
    const tuning = policy.tuningUntil !== null && now < policy.tuningUntil;
    const alert: AlertRecord = { ...base, state: tuning ? 'tuning' : 'reported', verdict: report.verdict, score: report.score, revision: 1 };
    this.storeRevision(alert, report, null);
    this.indexAlert(base);
    this.afterVerdict(alert, report, policy);
    entry.open.push({
      alertId,
      openUntil: alert.openUntil,
      fingerprint: reportFingerprint(report),
      pgs: reportProcessSet(report),
      detection,
      detectionLsn: lsn,
      revision: 1,
      verdict: report.verdict,
    });
    this.stats.alerts++;
    this.onAlert?.(this.alert(alertId)!, batchRecvAt);
  }

  /** The report's fleet prevalence reader and thresholds, unless prevalence is off. */
  private prevalenceOf(supportId: string): Pick<DetectionContext, 'prevalence'> {
    const p = this.prevalence;
    return p === undefined ? {} : { prevalence: { read: (sha256) => p.lookup(supportId, sha256), policy: p.policy } };
  }

  /** The report's "rules that fired" reader, when Sigma runs. */
  private sigmaHitsOf(tmid: string): { sigmaHits?: SigmaHitsReader } {
    const sigma = this.sigma;
    return sigma === undefined ? {} : { sigmaHits: (pgs, from, to) => sigma.hitsFor(tmid, pgs, from, to) };
  }

  private indexAlert(a: AlertRecord): void {
    this.writes.push({ db: 'other', put: (s) => s.alerts.indexSync(a) });
  }

  private storeRevision(alert: AlertRecord, report: QuickReport, from: AlertRecord['verdict'] | null): void {
    this.putAlert(alert);
    this.writes.push({ db: 'other', put: (s) => s.alerts.putRevisionSync(report) });
    if (from !== report.verdict) {
      const change: VerdictChange = { alertId: alert.id, at: report.createdAt, revision: report.revision, from, to: report.verdict, by: 'engine' };
      this.writes.push({ db: 'other', put: (s) => s.alerts.putVerdictChangeSync(change) });
    }
  }

  /** Policy effects of a verdict: isolation request on black, automatic exception on a confident white. */
  private afterVerdict(alert: AlertRecord, report: QuickReport, policy: TenantPolicy): void {
    // Non-block mode (docs/FLEET.md): kiseki records and reports but never isolates on its own.
    if (report.verdict === 'black' && policy.isolateOnBlack && !alert.isolationRequested && this.store.fleet.policy(alert.supportId).mode !== 'non-block') {
      // The id derives from the alert, so a replay queues the same command again, not a second one.
      const command = this.store.commands.create({
        id: `cmd_${alert.id.slice(3)}`,
        tmid: alert.tmid,
        supportId: alert.supportId,
        kind: 'isolate',
        args: { allow: [] },
        requestedBy: 'engine',
        requestedAt: report.createdAt,
        reason: `black verdict on alert ${alert.id}`,
      });
      this.putAlert({ ...this.alert(alert.id)!, isolationRequested: true });
      this.writes.push({ db: 'other', put: (s) => s.commands.queueSync(command) });
      this.onCommand?.(alert.tmid);
    }
    // High confidence: a decisive white, or a score past the confident threshold; and a hash to pin it to.
    const confident = report.score <= this.rules.thresholds.confidentWhite || report.rules.some((h) => h.outcome === 'white');
    if (report.verdict === 'white' && policy.autoExceptWhite && alert.sha256 !== '' && confident) {
      const entry: ExceptionEntry = {
        id: autoExceptionId(alert.sha256),
        supportId: alert.supportId,
        sha256: alert.sha256,
        reason: `automatic: white verdict on alert ${alert.id}`,
        createdAt: report.createdAt,
        createdBy: 'engine',
      };
      this.pendingExceptions.set(alert.supportId, [...(this.pendingExceptions.get(alert.supportId) ?? []), entry]);
      this.writes.push({ db: 'other', put: (s) => s.exceptions.saveSync(entry) });
    }
  }

  private reviseOpenAlerts(tmid: string, entry: DeviceEntry, events: readonly TrailEvent[], lastTs: number): void {
    const still: OpenAlert[] = [];
    for (const open of entry.open) {
      let touched = false;
      for (const e of events) {
        const pg = typeof e.pg === 'string' ? foldKey(e.pg) : undefined;
        const ppg = typeof e.ppg === 'string' ? foldKey(e.ppg) : undefined;
        if ((pg !== undefined && open.pgs.has(pg)) || (ppg !== undefined && open.pgs.has(ppg))) {
          if (e.ts <= open.openUntil) {
            touched = true;
            break;
          }
        }
      }
      if (touched) this.revise(tmid, entry, open);
      if (lastTs <= open.openUntil) still.push(open);
    }
    entry.open = still;
  }

  private revise(tmid: string, entry: DeviceEntry, open: OpenAlert): void {
    const current = this.alert(open.alertId);
    if (current === undefined) return;
    const report = buildQuickReport({
      alertId: open.alertId,
      revision: current.revision + 1,
      now: this.clock.now(),
      tmid,
      supportId: entry.supportId,
      computer: entry.computer,
      detection: open.detection,
      detectionLsn: open.detectionLsn,
      state: entry.state,
      readBatch: this.readBatch,
      rules: this.rules,
      intel: this.intel,
      ...this.sigmaHitsOf(tmid),
      ...this.prevalenceOf(entry.supportId),
    });
    const fingerprint = reportFingerprint(report);
    open.pgs = reportProcessSet(report);
    if (fingerprint === open.fingerprint) return;
    open.fingerprint = fingerprint;
    // A revision may raise the verdict; later evidence never lowers it automatically (an analyst can).
    const rank = { white: 0, gray: 1, black: 2 } as const;
    const verdict = rank[report.verdict] >= rank[current.verdict] ? report.verdict : current.verdict;
    const revised: QuickReport = { ...report, verdict };
    const alert: AlertRecord = { ...current, verdict, score: report.score, revision: revised.revision };
    this.storeRevision(alert, revised, current.verdict);
    this.afterVerdict(alert, revised, this.store.tenants.policy(entry.supportId));
    open.revision = revised.revision;
    open.verdict = verdict;
    this.stats.revisions++;
  }

  /**
   * Starts a snapshot round: every device dirty now will be snapshotted over
   * the next flushes, a slice at a time, so no single flush blocks the shard
   * for long. When the round ends, the state checkpoint may move to `lsn`.
   */
  startSnapshotRound(lsn: number): void {
    const tmids: string[] = [];
    for (const [tmid, e] of this.devices) {
      if (!e.dirty) continue;
      tmids.push(tmid);
      e.dirty = false;
    }
    this.round = { lsn, tmids, next: 0 };
  }

  /** The lsn a finished round makes safe, once; undefined while a round is running or none ran. */
  takeFinishedRound(): number | undefined {
    if (this.round === undefined || this.round.next < this.round.tmids.length) return undefined;
    const lsn = this.round.lsn;
    this.round = undefined;
    return lsn;
  }

  snapshotRoundActive(): boolean {
    return this.round !== undefined;
  }

  /**
   * Takes what the next flush must write: queued alert writes, snapshots of
   * evicted devices and up to `maxSnapshots` devices of the running round.
   * Called synchronously with the checkpoint it will be committed with.
   */
  capture(maxSnapshots: number): FlushUnit {
    // A shard that went quiet drops its aged batches here, with no new batch to make room for.
    this.evictBatches(this.clock.now());
    const snapshots = new Map(this.evicted);
    this.evicted.clear();
    const round = this.round;
    if (round !== undefined) {
      while (round.next < round.tmids.length && snapshots.size < maxSnapshots) {
        const tmid = round.tmids[round.next++]!;
        // Devices evicted since the round began were captured above from `evicted`.
        const e = this.devices.get(tmid);
        // Objects are encoded after this point, possibly newer than the round's lsn:
        // harmless, since folding an event twice into the state changes nothing.
        if (e !== undefined && !snapshots.has(tmid)) snapshots.set(tmid, e.state.snapshot());
      }
    }
    this.snapshotsInFlight = snapshots;
    const unit: FlushUnit = {
      writes: this.writes,
      snapshots,
      alerts: new Map(this.pendingAlerts),
      dedup: new Map(this.pendingDedup),
      exceptions: new Map(this.pendingExceptions),
      sigma: this.sigma?.capture(),
      prevalence: this.prevalence?.capture(),
    };
    this.writes = [];
    return unit;
  }

  /** Runs inside the flush transaction: the small writes (alerts, reports, commands...). */
  write(unit: FlushUnit): void {
    if (unit.prevalence !== undefined) this.prevalence!.writeSync(unit.prevalence);
    for (const w of unit.writes) {
      if (w.db === 'alerts') this.store.alerts.saveSync(w.value);
      else w.put(this.store);
    }
  }

  /**
   * Writes the unit's device snapshots, encoded before each transaction and
   * in transactions of about `chunkBytes`, so LMDB's single write lock (shared
   * with ingest's commits) is never held for long.
   */
  async writeSnapshots(unit: FlushUnit, chunkBytes = 1024 * 1024): Promise<void> {
    let chunk: [string, Buffer][] = [];
    let size = 0;
    const commit = async () => {
      const entries = chunk;
      chunk = [];
      size = 0;
      await this.store.shardState.putSnapshots(entries);
    };
    for (const [tmid, snap] of unit.snapshots) {
      const bytes = snapshotPackr.pack(snap);
      chunk.push([tmid, bytes]);
      size += bytes.length;
      if (size >= chunkBytes) await commit();
    }
    if (chunk.length > 0) await commit();
  }

  /** After the transaction committed: drop the overlays LMDB now answers for, unless changed since. */
  release(unit: FlushUnit): void {
    if (this.snapshotsInFlight === unit.snapshots) this.snapshotsInFlight = undefined;
    for (const [k, v] of unit.alerts) if (this.pendingAlerts.get(k) === v) this.pendingAlerts.delete(k);
    for (const [k, v] of unit.dedup) if (this.pendingDedup.get(k) === v) this.pendingDedup.delete(k);
    for (const [k, v] of unit.exceptions) if (this.pendingExceptions.get(k) === v) this.pendingExceptions.delete(k);
    if (unit.sigma !== undefined) this.sigma?.release(unit.sigma);
    if (unit.prevalence !== undefined) this.prevalence?.release(unit.prevalence);
  }
}

export interface FlushUnit {
  writes: Write[];
  snapshots: Map<string, DeviceSnapshot>;
  alerts: Map<string, AlertRecord>;
  dedup: Map<string, { alertId: string; at: number }>;
  exceptions: Map<string, ExceptionEntry[]>;
  sigma: SigmaFlushUnit | undefined;
  prevalence: PrevalenceFlushUnit | undefined;
}
