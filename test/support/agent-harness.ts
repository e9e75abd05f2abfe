/**
 * A real agent endpoint for tests: a temporary LMDB store with one tenant
 * (T001), a group committer whose committed batches are recorded instead of
 * going to shards, and the uWS server on a loopback port.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics, type Metrics } from '../../core/metrics.js';
import { createBatchCommitter } from '../../ingest/batch-committer.js';
import { startAgentServer, type AgentServer } from '../../ingest/agent-server.js';
import { openHotStore, type HotStore, type TenantRecord } from '../../storage/index.js';

export interface AgentHarness {
  dir: string;
  store: HotStore;
  server: AgentServer;
  url: string;
  tenant: TenantRecord;
  enrollKey: string;
  /** Batches the committer handed on after their commit, in order. */
  dispatched: { lsn: number; tmid: string; bytes: number }[];
  metrics: Metrics;
  /** Resolves once every acked batch is in LMDB and handed on (an ack only waits for the ack log). */
  settled(): Promise<void>;
}

export type HarnessIngestOverrides = {
  maxFrameBytes?: number;
  helloTimeoutMs?: number;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  maxFrameDepth?: number;
  maxConnections?: number;
};

export async function startAgentHarness(overrides: HarnessIngestOverrides = {}): Promise<AgentHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-ingest-'));
  const config = loadConfig({ dataDir: dir, ingest: { host: '127.0.0.1', port: 0, ...overrides }, http: { port: 0 } });
  const store = openHotStore({ dataDir: dir });
  const { tenant, enrollKey } = await store.tenants.create({ supportId: 'T001', name: 'Test Co', now: Date.now() });
  const dispatched: AgentHarness['dispatched'] = [];
  const logger = createSilentLogger();
  const metrics = createMetrics({ defaultMetrics: false });
  const committer = createBatchCommitter({
    store,
    sink: { dispatch: (lsn, tmid, events) => dispatched.push({ lsn, tmid, bytes: events.byteLength }) },
    clock: systemClock,
    logger,
    metrics,
    zstdLevel: 1,
  });
  const server = await startAgentServer({ config: config.ingest, store, committer, clock: systemClock, logger, metrics });
  const scheme = overrides.tlsCertFile === undefined ? 'ws' : 'wss';
  return { dir, store, server, url: `${scheme}://127.0.0.1:${server.port}/agent/v1`, tenant, enrollKey, dispatched, metrics, settled: () => committer.idle() };
}

export async function stopAgentHarness(h: AgentHarness): Promise<void> {
  await h.server.close();
  await h.store.close();
  rmSync(h.dir, { recursive: true, force: true });
}
