/**
 * What one shard does with the batches of the devices it owns, independent of
 * the thread it runs on: decode the events, count them per kind per device,
 * correlate them (correlator.ts), and persist all of it together with the
 * checkpoint of every virtual shard it owns in one LMDB transaction.
 *
 * Two checkpoints per virtual shard:
 * - `checkpoint`: counts and alerts include every batch up to here;
 * - `stateCheckpoint` (older): device state snapshots include every batch up
 *   to here. Snapshots are large, so they are written every
 *   `stateSnapshotIntervalMs` rather than on every flush, encoded outside
 *   LMDB's write lock and committed in short transactions of their own.
 * Recovery replays the log from the state checkpoint: batches up to the
 * checkpoint only rebuild state, later ones are processed in full. A crash at
 * any moment therefore neither loses nor duplicates anything.
 */
import { Unpackr } from 'msgpackr';
import { decompress } from 'zstd-napi';
import { systemClock, type Clock } from '../core/clock.js';
import type { TrailEvent } from '../core/contracts.js';
import { decodeArrayBounded, MAX_EVENT_DEPTH, QUARANTINED_KIND } from '../core/msgpack-bounds.js';
import { internString } from '../core/intern.js';
import type { HotStore, QuarantineRecord } from '../storage/index.js';
import type { StreamingAnalytics } from './analytics.js';
import type { Correlator } from './correlator.js';
import type { FleetStage } from './fleet-stage.js';
import { VIRTUAL_SHARDS, virtualShardOf, workerOfVirtualShard } from '../core/vshard.js';

/** Most device snapshots written per flush while a snapshot round runs. */
const SNAPSHOTS_PER_FLUSH = 100;
/**
 * Time one flush may spend encoding and writing snapshots: the shard processes
 * no batch meanwhile, and an alert waits for the flush. A 7-day state costs
 * about 1 ms (measured: 50 of them held a flush for 60–70 ms, the report
 * latency's p99), an idle device's far less, so the slice size follows the
 * measured cost per snapshot.
 */
const SNAPSHOT_BUDGET_MS = 8;

/** Kind recorded for events that are not maps or lack a string `k`. */
export const INVALID_KIND = '_invalid';

/** Plain MessagePack maps decode to objects; the wire stays standard MessagePack (docs/PROTOCOL.md). */
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });

export interface ShardCoreOptions {
  store: HotStore;
  index: number;
  workers: number;
  correlator?: Correlator;
  /** Log tuning and USB control (fleet-stage.ts), applied before counting and correlation. */
  fleet?: FleetStage;
  /** Device state snapshots at most this often (ms of the injected `now`). */
  stateSnapshotIntervalMs?: number;
  /** Time source (core/clock.ts); default the system clock. */
  clock?: Clock;
  /** Daily counters and threshold rules (engine/analytics.ts); absent: off. */
  analytics?: StreamingAnalytics;
}

export interface ShardStats {
  batches: number;
  events: number;
  invalidEvents: number;
  undecodableBatches: number;
  /** Poison events set aside (storage/quarantine.ts), per reason: running totals. */
  quarantined: Record<string, number>;
}

export class ShardCore {
  /** Highest lsn this shard has accounted for (processed, or skipped as not its own). */
  lastLsn = 0;
  readonly stats: ShardStats = { batches: 0, events: 0, invalidEvents: 0, undecodableBatches: 0, quarantined: {} };
  private readonly store: HotStore;
  private readonly owned: boolean[] = [];
  private readonly checkpointOf = new Map<number, number>();
  private readonly stateCheckpointOf = new Map<number, number>();
  /** Count deltas not yet persisted: tmid -> kind -> delta. */
  private readonly pendingCounts = new Map<string, Map<string, number>>();
  /** Poison events found since the last flush, recorded with it. */
  private pendingQuarantine: QuarantineRecord[] = [];
  private dirty = false;
  private readonly correlator: Correlator | undefined;
  private readonly analytics: StreamingAnalytics | undefined;
  private readonly fleet: FleetStage | undefined;
  private readonly snapshotEveryMs: number;
  private readonly clock: Clock;
  private lastSnapshotAt: number;
  /** Measured ms per snapshot written (moving average): sizes the next slice. */
  private snapshotCostMs = 1;

  constructor(options: ShardCoreOptions) {
    this.store = options.store;
    this.correlator = options.correlator;
    this.analytics = options.analytics;
    this.fleet = options.fleet;
    this.snapshotEveryMs = options.stateSnapshotIntervalMs ?? 30_000;
    this.clock = options.clock ?? systemClock;
    this.lastSnapshotAt = this.clock.now();
    for (let v = 0; v < VIRTUAL_SHARDS; v++) this.owned.push(workerOfVirtualShard(v, options.workers) === options.index);
  }

  ownsDevice(tmid: string): boolean {
    return this.owned[virtualShardOf(tmid)] === true;
  }

  /**
   * Reads the checkpoints of the owned virtual shards and replays every batch
   * committed after the state checkpoint. Returns the number of batches
   * processed in full (state-only replays are not counted).
   */
  recover(): number {
    let from = Number.POSITIVE_INFINITY;
    for (let v = 0; v < VIRTUAL_SHARDS; v++) {
      if (!this.owned[v]) continue;
      const cp = this.store.shardState.checkpoint(v);
      // Without a correlator no state is derived, so the state checkpoint follows the checkpoint.
      const scp = this.correlator === undefined ? cp : Math.min(cp, this.store.shardState.stateCheckpoint(v));
      this.checkpointOf.set(v, cp);
      this.stateCheckpointOf.set(v, scp);
      if (scp < from) from = scp;
    }
    this.lastLsn = from === Number.POSITIVE_INFINITY ? 0 : from;
    return this.catchUp(this.store.log.lastLsn());
  }

  /** Processes, from the log, every owned batch in (lastLsn, upTo]. Returns how many it processed in full. */
  catchUp(upTo: number): number {
    if (upTo <= this.lastLsn) return 0;
    // The batches were committed by the ingest thread: make sure this thread's snapshot includes them,
    // or the scan would end early and lastLsn would skip them for good.
    this.store.refreshReads();
    let processed = 0;
    for (const { key, value } of this.store.log.range(this.lastLsn + 1, upTo + 1)) {
      const vshard = virtualShardOf(value.tmid);
      if (!this.owned[vshard] || key <= (this.stateCheckpointOf.get(vshard) ?? 0)) continue;
      const full = key > (this.checkpointOf.get(vshard) ?? 0);
      if (!full && this.correlator === undefined) continue;
      this.processEvents(value.tmid, key, decompress(value.z), full ? 'full' : 'state', value.recvAt);
      if (full) processed++;
    }
    this.lastLsn = upTo;
    // Checkpoint progress alone is worth a flush: a shard that owns none of these batches must still
    // persist that it has seen them, or drained() waits for its next snapshot round.
    this.dirty = true;
    return processed;
  }

  /** Processes one batch handed over by ingest; batches at or below lastLsn were already seen. */
  processBatch(lsn: number, tmid: string, events: Uint8Array, recvAt?: number): boolean {
    if (lsn <= this.lastLsn) return false;
    this.processEvents(tmid, lsn, events, 'full', recvAt);
    this.lastLsn = lsn;
    return true;
  }

  private processEvents(messageTmid: string, lsn: number, bytes: Uint8Array, mode: 'full' | 'state', recvAt: number | undefined): void {
    // Each message brings its own copy of the TMID; the stages key their per-device maps by one shared copy.
    const tmid = internString(messageTmid);
    // One poison event (say, nested 100,000 deep) must not make its whole batch unreadable:
    // the bounded decode sets it aside and decodes the others (core/msgpack-bounds.ts).
    const decoded = decodeArrayBounded(bytes, (b) => unpackr.unpack(b), MAX_EVENT_DEPTH, false);
    let events: unknown[] | undefined = decoded?.values;
    // Tuning filters drop events before anything counts or correlates them (fleet-stage.ts).
    const dropped = decoded === undefined ? undefined : this.fleet?.inspect(tmid, decoded.values, bytes, mode === 'full', recvAt);
    if (decoded !== undefined && (decoded.poison.length > 0 || dropped !== undefined)) {
      const kept: unknown[] = [];
      // Left out of `events`: the poison ones and those the tuning filters dropped.
      const poisoned = new Set<number>(dropped);
      const at = this.clock.now();
      for (const p of decoded.poison) {
        poisoned.add(p.index);
        if (mode === 'full') {
          this.pendingQuarantine.push({ tmid, lsn, index: p.index, reason: p.reason, bytes: p.bytes, at });
          this.stats.quarantined[p.reason] = (this.stats.quarantined[p.reason] ?? 0) + 1;
          this.countKind(tmid, QUARANTINED_KIND);
        }
      }
      for (let i = 0; i < decoded.values.length; i++) if (!poisoned.has(i)) kept.push(decoded.values[i]);
      events = kept;
    }
    if (!Array.isArray(events)) {
      // Ingest validated the structure, so this means a corrupt log entry: count it and move on.
      if (mode === 'full') this.stats.undecodableBatches++;
      this.dirty = true;
      return;
    }
    if (mode === 'full') {
      let counts = this.pendingCounts.get(tmid);
      if (counts === undefined) {
        counts = new Map();
        this.pendingCounts.set(tmid, counts);
      }
      // Analytics counts on the day the batch was received: the same day again on replay.
      const acc = this.analytics?.beginBatch(tmid, lsn, recvAt ?? this.clock.now(), counts);
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as { k?: unknown } | null;
        let kind: string;
        if (typeof e === 'object' && e !== null && typeof e.k === 'string' && e.k.length > 0 && e.k.length <= 64) kind = e.k;
        else {
          kind = INVALID_KIND;
          this.stats.invalidEvents++;
        }
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
        if (acc !== undefined && e !== null && typeof e === 'object') this.analytics!.observe(acc, e, kind, i);
      }
      this.stats.batches++;
      this.stats.events += events.length;
    }
    this.dirty = true;
    this.correlator?.processBatch(tmid, lsn, events as TrailEvent[], mode, recvAt);
  }

  private countKind(tmid: string, kind: string): void {
    let counts = this.pendingCounts.get(tmid);
    if (counts === undefined) {
      counts = new Map();
      this.pendingCounts.set(tmid, counts);
    }
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }

  /** True when there is state or checkpoint progress not yet persisted. */
  needsFlush(): boolean {
    return this.dirty || this.pendingCounts.size > 0 || (this.analytics?.hasPending() ?? false) || (this.fleet?.hasPendingWrites() ?? false) || (this.correlator?.hasPendingWrites() ?? false) || (this.correlator?.snapshotRoundActive() ?? false);
  }

  /** True when alerts wait to be stored: the worker flushes at once rather than on its timer. */
  hasUrgentWrites(): boolean {
    return (this.correlator?.hasPendingWrites() ?? false) || (this.analytics?.hasAlerts() ?? false) || (this.fleet?.hasUrgentWrites() ?? false);
  }

  /** Inside a write transaction: state checkpoints of the owned virtual shards up to `lsn`. */
  private advanceStateCheckpoints(lsn: number): void {
    for (let v = 0; v < VIRTUAL_SHARDS; v++) {
      if (this.owned[v] && (this.stateCheckpointOf.get(v) ?? 0) < lsn) {
        this.store.shardState.setStateCheckpointSync(v, lsn);
        this.stateCheckpointOf.set(v, lsn);
      }
    }
  }

  /**
   * Persists count deltas, correlation writes and the checkpoints of all owned
   * virtual shards in one transaction; device snapshots and the state
   * checkpoint in rounds: every `stateSnapshotIntervalMs` a round starts and
   * each flush writes a slice of it; `snapshot` finishes the round at once.
   */
  async flush(snapshot = false): Promise<void> {
    const counts = new Map(this.pendingCounts);
    this.pendingCounts.clear();
    const quarantine = this.pendingQuarantine;
    this.pendingQuarantine = [];
    this.dirty = false;
    const lsn = this.lastLsn;
    const now = this.clock.now();
    const correlator = this.correlator;
    if (correlator !== undefined && !correlator.snapshotRoundActive() && (snapshot || now - this.lastSnapshotAt >= this.snapshotEveryMs)) {
      this.lastSnapshotAt = now;
      correlator.startSnapshotRound(lsn);
    }
    // A final flush (snapshot) takes the whole round at once; otherwise a slice per flush.
    const slice = Math.max(1, Math.min(SNAPSHOTS_PER_FLUSH, Math.floor(SNAPSHOT_BUDGET_MS / this.snapshotCostMs)));
    const unit = correlator?.capture(snapshot ? Number.POSITIVE_INFINITY : slice);
    const analyticsUnit = this.analytics?.capture(snapshot);
    const { shardState } = this.store;
    await this.store.transaction(() => {
      for (const [tmid, kinds] of counts) shardState.addKindCountsSync(tmid, kinds);
      if (analyticsUnit !== undefined) this.analytics!.writeSync(analyticsUnit);
      for (const r of quarantine) this.store.quarantine.recordSync(r);
      this.fleet?.writeSync();
      if (unit !== undefined) this.correlator!.write(unit);
      for (let v = 0; v < VIRTUAL_SHARDS; v++) {
        if (this.owned[v] && (this.checkpointOf.get(v) ?? 0) < lsn) {
          shardState.setCheckpointSync(v, lsn);
          this.checkpointOf.set(v, lsn);
        }
      }
      // Without correlation there is no state to snapshot: the state checkpoint moves with the checkpoint.
      if (this.correlator === undefined) this.advanceStateCheckpoints(lsn);
    });
    // Snapshots go in short transactions of their own, then the state checkpoint that they make safe.
    if (unit !== undefined && unit.snapshots.size > 0) {
      const t0 = performance.now();
      await this.correlator!.writeSnapshots(unit);
      this.snapshotCostMs = 0.7 * this.snapshotCostMs + (0.3 * (performance.now() - t0)) / unit.snapshots.size;
    }
    const safe = correlator?.takeFinishedRound();
    if (safe !== undefined) await this.store.transaction(() => this.advanceStateCheckpoints(safe));
    await this.store.flushed();
    if (unit !== undefined) this.correlator!.release(unit);
  }
}
