/**
 * What every cluster node opens first, whatever its role: its id, the lock
 * on its data directory (one process per directory, as in the embedded
 * mode), its local hot store and its metrics registry.
 */
import { hostname } from 'node:os';
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
