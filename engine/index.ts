/** Public surface of engine/: shard pool and workers, virtual-shard mapping. */
export { createShardPool } from './shard-pool.js';
export type { ShardPool, ShardPoolOptions, ShardPoolStats } from './shard-pool.js';
export { ShardCore, INVALID_KIND } from './shard-core.js';
export type { BatchSink, ShardStats } from './shard-core.js';
export { VIRTUAL_SHARDS, virtualShardOf, workerOf } from './vshard.js';
