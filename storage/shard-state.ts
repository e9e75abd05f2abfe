/**
 * What the shards derive and persist besides alerts: the two checkpoints of
 * every virtual shard, event counts per kind per device, and device-state
 * snapshots (already MessagePack-encoded by the engine, outside the write lock).
 *
 * Key layouts (kiseki.lmdb):
 *   checkpoints        virtual shard (0..255) -> last lsn whose counts and alerts are stored
 *   state-checkpoints  virtual shard (0..255) -> last lsn the device snapshots include
 *   kind-counts        tmid                   -> { kind: events } (one record per device, one write per flush)
 *   device-state       tmid                   -> snapshot bytes (binary encoding)
 *
 * The `...Sync` writers run inside `store.transaction()`, so a shard's
 * counts, alerts and checkpoints commit together.
 */
import { VIRTUAL_SHARDS } from '../core/vshard.js';
import type { Tables } from './tables.js';

export interface ShardStateRepository {
  /** The virtual shard's checkpoint, 0 when it has none. */
  checkpoint(vshard: number): number;
  /** The virtual shard's state checkpoint, 0 when it has none. */
  stateCheckpoint(vshard: number): number;
  /** Inside `store.transaction()`. */
  setCheckpointSync(vshard: number, lsn: number): void;
  /** Inside `store.transaction()`. */
  setStateCheckpointSync(vshard: number, lsn: number): void;
  /** Inside `store.transaction()`: adds per-kind deltas to a device's totals. */
  addKindCountsSync(tmid: string, deltas: ReadonlyMap<string, number>): void;
  kindCounts(tmid: string): Record<string, number> | undefined;
  /** Every device's counts. */
  allKindCounts(): Iterable<Record<string, number>>;
  /** The lowest checkpoint of any virtual shard that has one, 0 when none has. */
  minCheckpoint(): number;
  /**
   * The highest lsn that no shard will read again on recovery: the lowest of
   * every virtual shard's checkpoint and state checkpoint (a missing one
   * counts as 0, exactly as a recovering shard reads it).
   */
  lsnSafeToDrop(): number;
  /** A device's stored snapshot bytes. */
  snapshot(tmid: string): Buffer | undefined;
  /** Writes snapshots in one short transaction of their own. */
  putSnapshots(entries: readonly (readonly [string, Buffer])[]): Promise<void>;
}

/** The shard-state repository over the hot store's tables (called by openHotStore). */
export function createShardStateRepository(t: Tables): ShardStateRepository {
  const { checkpoints, stateCheckpoints, kindCounts, deviceState } = t;
  return {
    checkpoint: (v) => checkpoints.get(v) ?? 0,
    stateCheckpoint: (v) => stateCheckpoints.get(v) ?? 0,
    setCheckpointSync(v, lsn) {
      checkpoints.putSync(v, lsn);
    },
    setStateCheckpointSync(v, lsn) {
      stateCheckpoints.putSync(v, lsn);
    },
    addKindCountsSync(tmid, deltas) {
      const totals = { ...kindCounts.get(tmid) };
      for (const [kind, delta] of deltas) totals[kind] = (totals[kind] ?? 0) + delta;
      kindCounts.putSync(tmid, totals);
    },
    kindCounts: (tmid) => kindCounts.get(tmid),
    *allKindCounts() {
      for (const { value } of kindCounts.getRange()) yield value;
    },
    minCheckpoint() {
      let min = Number.POSITIVE_INFINITY;
      for (const { value } of checkpoints.getRange()) if (value < min) min = value;
      return min === Number.POSITIVE_INFINITY ? 0 : min;
    },
    lsnSafeToDrop() {
      let min = Number.POSITIVE_INFINITY;
      for (let v = 0; v < VIRTUAL_SHARDS; v++) min = Math.min(min, checkpoints.get(v) ?? 0, stateCheckpoints.get(v) ?? 0);
      return min;
    },
    snapshot: (tmid) => deviceState.get(tmid),
    async putSnapshots(entries) {
      await deviceState.transaction(() => {
        for (const [tmid, bytes] of entries) deviceState.putSync(tmid, bytes);
      });
    },
  };
}
