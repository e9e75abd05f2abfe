/**
 * What every cluster node opens first, whatever its role: its id, the lock
 * on its data directory (one process per directory, as in the embedded
 * mode), its local hot store and its metrics registry.
 */
import { hostname } from 'node:os';
import { createHealthCheck, createHttpApp, freeDiskBytes, startHttpServer, type HealthProbes, type HttpServer } from '../api/index.js';
import { systemClock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { lockDataDir, openHotStore, type HotStore } from '../storage/index.js';

export interface NodeBase {
  readonly nodeId: string;
  readonly store: HotStore;
  readonly metrics: Metrics;
  /** Closes the store and releases the data directory. */
  release(): Promise<void>;
}

/** Opens the node's data directory; `--node-id` or hostname-pid names it. */
export function openNodeBase(config: Readonly<Config>): NodeBase {
  const nodeId = config.cluster.nodeId === '' ? `${hostname()}-${process.pid}` : config.cluster.nodeId;
  const lock = lockDataDir(config.dataDir);
  let store: HotStore;
  try {
    store = openHotStore({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes });
  } catch (err) {
    lock.release();
    throw err;
  }
  return {
    nodeId,
    store,
    metrics: createMetrics({ defaultMetrics: false }),
    async release() {
      await store.close().catch(() => undefined);
      lock.release();
    },
  };
}

/** What an ingest or shard node reports beyond the disk and its LMDB (api/health.ts). */
export interface NodeHealthSource {
  /** Set while the node's batches cannot be stored (JetStream for an ingest node, the local log for a shard node). */
  storageFailure(): { since: number; reason: string; failures: number } | undefined;
  /** A shard node's positions; an ingest node has none. */
  shardPositions?: HealthProbes['shardPositions'];
  /** Figures shown with the status (role, node, connections, virtual shards…). */
  details(): Record<string, unknown>;
}

/**
 * An ingest or shard node's `/healthz` and `/metrics` (the embedded mode's, without the API) on
 * `cluster.nodeHttpPort`; undefined when that is not set.
 */
export async function startNodeHttp(config: Readonly<Config>, base: NodeBase, source: NodeHealthSource): Promise<HttpServer | undefined> {
  if (config.cluster.nodeHttpPort === undefined) return undefined;
  const check = createHealthCheck({
    thresholds: config.health,
    clock: systemClock,
    probes: {
      freeDiskBytes: () => freeDiskBytes(config.dataDir),
      lmdbMapUse: () => base.store.mapUse(),
      shardPositions: source.shardPositions ?? (() => ({ lagLsn: 0, committedLsn: 0, slowestCheckpointLsn: 0 })),
      exportFailures: () => [],
      storageFailure: () => source.storageFailure(),
    },
  });
  const app = createHttpApp({ metrics: base.metrics, health: { problems: () => check.problems(), details: () => source.details() } });
  return startHttpServer(app, { ...config.http, port: config.cluster.nodeHttpPort });
}
