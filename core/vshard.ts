/**
 * Device → virtual shard → worker. A fixed 256 virtual shards sit between
 * devices and workers, so changing the worker count moves whole virtual
 * shards (and their checkpoints) instead of rehashing devices.
 */

export const VIRTUAL_SHARDS = 256;

/** FNV-1a over the TMID's UTF-16 code units: stable across processes and versions. */
export function virtualShardOf(tmid: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < tmid.length; i++) {
    h ^= tmid.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % VIRTUAL_SHARDS;
}

/** The worker that owns a virtual shard, for `workers` workers. */
export function workerOfVirtualShard(vshard: number, workers: number): number {
  return vshard % workers;
}

export function workerOf(tmid: string, workers: number): number {
  return workerOfVirtualShard(virtualShardOf(tmid), workers);
}
