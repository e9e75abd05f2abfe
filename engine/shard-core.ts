/**
 * What one shard does with the batches of the devices it owns, independent of
 * the thread it runs on: decode the events, derive state (for now, events per
 * kind per device), and persist that state together with the checkpoint of
 * every virtual shard it owns in one LMDB transaction. Because state and
 * checkpoint move together, a crash at any moment is repaired by replaying
 * the raw batch log from the checkpoint: nothing is counted twice or lost.
 */
import { Unpackr } from 'msgpackr';
import { decompress } from 'zstd-napi';
import type { TrailEvent } from '../core/contracts.js';
import type { HotStore } from '../storage/index.js';
import { VIRTUAL_SHARDS, virtualShardOf, workerOfVirtualShard } from './vshard.js';

/** Kind recorded for events that are not maps or lack a string `k`. */
export const INVALID_KIND = '_invalid';

/** Plain MessagePack maps decode to objects; the wire stays standard MessagePack (docs/PROTOCOL.md). */
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });

/** Receives every decoded batch after the shard's own bookkeeping; the correlation engine plugs in here. */
export type BatchSink = (tmid: string, lsn: number, events: readonly TrailEvent[]) => void;

export interface ShardCoreOptions {
  store: HotStore;
  index: number;
  workers: number;
  sink?: BatchSink;
}

export interface ShardStats {
  batches: number;
  events: number;
  invalidEvents: number;
  undecodableBatches: number;
}

export class ShardCore {
  /** Highest lsn this shard has accounted for (processed, or skipped as not its own). */
  lastLsn = 0;
  readonly stats: ShardStats = { batches: 0, events: 0, invalidEvents: 0, undecodableBatches: 0 };
  private readonly store: HotStore;
  private readonly owned: boolean[] = [];
  private readonly checkpointOf = new Map<number, number>();
  /** Count deltas not yet persisted: tmid -> kind -> delta. */
  private readonly pendingCounts = new Map<string, Map<string, number>>();
  private dirty = false;
  private readonly sink: BatchSink | undefined;

  constructor(options: ShardCoreOptions) {
    this.store = options.store;
    this.sink = options.sink;
    for (let v = 0; v < VIRTUAL_SHARDS; v++) this.owned.push(workerOfVirtualShard(v, options.workers) === options.index);
  }

  ownsDevice(tmid: string): boolean {
    return this.owned[virtualShardOf(tmid)] === true;
  }

  /**
   * Reads the checkpoints of the owned virtual shards and replays every batch
   * committed after them. Returns the number of batches replayed.
   */
  recover(): number {
    let from = Number.POSITIVE_INFINITY;
    for (let v = 0; v < VIRTUAL_SHARDS; v++) {
      if (!this.owned[v]) continue;
      const cp = this.store.checkpoints.get(v) ?? 0;
      this.checkpointOf.set(v, cp);
      if (cp < from) from = cp;
    }
    this.lastLsn = from === Number.POSITIVE_INFINITY ? 0 : from;
    return this.catchUp(this.store.lastLsn());
  }

  /** Processes, from the log, every owned batch in (lastLsn, upTo]. Returns how many it processed. */
  catchUp(upTo: number): number {
    if (upTo <= this.lastLsn) return 0;
    let processed = 0;
    for (const { key, value } of this.store.batches.getRange({ start: this.lastLsn + 1, end: upTo + 1 })) {
      const vshard = virtualShardOf(value.tmid);
      if (this.owned[vshard] && key > (this.checkpointOf.get(vshard) ?? 0)) {
        this.processEvents(value.tmid, key, decompress(value.z));
        processed++;
      }
    }
    this.lastLsn = upTo;
    return processed;
  }

  /** Processes one batch handed over by ingest; batches at or below lastLsn were already seen. */
  processBatch(lsn: number, tmid: string, events: Uint8Array): boolean {
    if (lsn <= this.lastLsn) return false;
    this.processEvents(tmid, lsn, events);
    this.lastLsn = lsn;
    return true;
  }

  private processEvents(tmid: string, lsn: number, bytes: Uint8Array): void {
    let events: unknown;
    try {
      events = unpackr.unpack(bytes);
    } catch {
      // Ingest validated the structure, so this means a corrupt log entry: count it and move on.
      this.stats.undecodableBatches++;
      this.dirty = true;
      return;
    }
    if (!Array.isArray(events)) {
      this.stats.undecodableBatches++;
      this.dirty = true;
      return;
    }
    let counts = this.pendingCounts.get(tmid);
    if (counts === undefined) {
      counts = new Map();
      this.pendingCounts.set(tmid, counts);
    }
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as { k?: unknown } | null;
      let kind: string;
      if (typeof e === 'object' && e !== null && typeof e.k === 'string' && e.k.length > 0 && e.k.length <= 64) kind = e.k;
      else {
        kind = INVALID_KIND;
        this.stats.invalidEvents++;
      }
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    this.stats.batches++;
    this.stats.events += events.length;
    this.dirty = true;
    if (this.sink !== undefined) this.sink(tmid, lsn, events as TrailEvent[]);
  }

  /** True when there is state or checkpoint progress not yet persisted. */
  needsFlush(): boolean {
    return this.dirty || this.pendingCounts.size > 0;
  }

  /** Persists count deltas and the checkpoints of all owned virtual shards in one transaction. */
  async flush(): Promise<void> {
    const counts = new Map(this.pendingCounts);
    this.pendingCounts.clear();
    this.dirty = false;
    const lsn = this.lastLsn;
    const { kindCounts, checkpoints } = this.store;
    await this.store.checkpoints.transaction(() => {
      for (const [tmid, kinds] of counts) {
        for (const [kind, delta] of kinds) {
          const key: [string, string] = [tmid, kind];
          kindCounts.putSync(key, (kindCounts.get(key) ?? 0) + delta);
        }
      }
      for (let v = 0; v < VIRTUAL_SHARDS; v++) {
        if (this.owned[v] && (this.checkpointOf.get(v) ?? 0) < lsn) {
          checkpoints.putSync(v, lsn);
          this.checkpointOf.set(v, lsn);
        }
      }
    });
    await this.store.flushed();
  }
}
