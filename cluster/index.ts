/** Public surface of cluster/: the NATS JetStream transport of the `ingest` and `shard` node roles (docs/CLUSTER.md). */
export { startIngestNode } from './ingest-node.js';
export type { IngestNodeOptions, RunningIngestNode } from './ingest-node.js';
export { startShardNode } from './shard-node.js';
export type { RunningShardNode, ShardNodeOptions } from './shard-node.js';
export { openClusterLink, natsServers, batchSubject, vshardBatchSubjects, BATCH_STREAM, LEASE_BUCKET, CHECKPOINT_BUCKET, DIRECTORY_BUCKET } from './nats.js';
export type { ClusterLink, ClusterLinkOptions } from './nats.js';
export { createJetStreamCommitter } from './jetstream-committer.js';
export type { JetStreamCommitterOptions } from './jetstream-committer.js';
export { createVshardLeases } from './vshard-leases.js';
export type { VshardLeases, VshardLeasesOptions } from './vshard-leases.js';
