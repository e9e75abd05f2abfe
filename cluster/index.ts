/** Public surface of cluster/: the NATS JetStream transport of the `ingest`, `shard` and `api` node roles (docs/CLUSTER.md). */
export { startIngestNode } from './ingest-node.js';
export type { IngestNodeOptions, RunningIngestNode } from './ingest-node.js';
export { startShardNode } from './shard-node.js';
export { startApiNode } from './api-node.js';
export type { ApiNodeOptions, MirrorStats, RunningApiNode } from './api-node.js';
export type { RunningShardNode, ShardNodeOptions } from './shard-node.js';
export { openClusterLink, natsServers, batchSubject, vshardBatchSubjects, alertKey, BATCH_STREAM, LEASE_BUCKET, CHECKPOINT_BUCKET, DIRECTORY_BUCKET, ALERT_BUCKET } from './nats.js';
export type { ClusterLink, ClusterLinkOptions } from './nats.js';
export { createJetStreamCommitter } from './jetstream-committer.js';
export type { JetStreamCommitterOptions } from './jetstream-committer.js';
export { createVshardLeases } from './vshard-leases.js';
export type { VshardLeases, VshardLeasesOptions } from './vshard-leases.js';
export { createAlertPublisher, decodeAlertEntry, ALERT_FEED_READER } from './alert-publisher.js';
export type { AlertBucketEntry, AlertPublisher, AlertPublisherOptions } from './alert-publisher.js';
export { readClusterState } from './cluster-state.js';
export type { ClusterState, ClusterStateOptions, StreamBatch } from './cluster-state.js';
