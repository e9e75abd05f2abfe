/**
 * `/healthz` and `/metrics` of ingest and shard nodes (`cluster.nodeHttpPort`),
 * against a real nats-server (skipped with an install hint where it is
 * missing): both nodes answer healthy with their figures; an ingest node whose
 * batch JetStream did not take reports `storage_unavailable` (503); without
 * the setting a node opens no HTTP port.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { connectAgent, helloFacts, makeBatch, type TestAgent } from '../test/support/agent-client.js';
import { createTenantIn } from '../test/support/temp-store.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { startIngestNode, type RunningIngestNode } from './ingest-node.js';
import { startShardNode, type RunningShardNode } from './shard-node.js';

if (NATS_SERVER === undefined) console.warn(`cluster/node-http.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

async function health(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe.skipIf(NATS_SERVER === undefined)('health and metrics of ingest and shard nodes', () => {
  let dir = '';
  let nats: NatsServer;
  let enrollKey = '';
  const nodes: (RunningIngestNode | RunningShardNode)[] = [];
  const agents: TestAgent[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-node-http-'));
    nats = await startNats(dir, 'n1', await freePort());
    enrollKey = await createTenantIn(join(dir, 'ingest'));
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) a.close();
    for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  function config(role: 'ingest' | 'shard', nodeHttpPort: number | undefined) {
    return loadConfig({
      dataDir: join(dir, role),
      ingest: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1' },
      engine: { shards: 1 },
      cluster: { role, nats: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, nodeId: role, ...(nodeHttpPort === undefined ? {} : { nodeHttpPort }) },
    });
  }

  it('answers healthy with each role figures, and serves metrics', async () => {
    const ingest = await startIngestNode({ config: config('ingest', 0), logger });
    nodes.push(ingest);
    const shard = await startShardNode({ config: config('shard', 0), logger });
    nodes.push(shard);
    expect(await health(ingest.httpPort!)).toMatchObject({ status: 200, body: { status: 'ok', role: 'ingest', node: 'ingest', connections: 0 } });
    expect(await health(shard.httpPort!)).toMatchObject({ status: 200, body: { status: 'ok', role: 'shard', node: 'shard', vshards: 256, checkpointsWaitForAlerts: false } });
    const metrics = await fetch(`http://127.0.0.1:${ingest.httpPort!}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# HELP kiseki_/m);
    // Without the setting, no port.
    const quiet = await startIngestNode({ config: { ...config('ingest', undefined), dataDir: join(dir, 'ingest-quiet') }, logger });
    nodes.push(quiet);
    expect(quiet.httpPort).toBeUndefined();
  });

  it('reports storage_unavailable once JetStream did not take a batch', async () => {
    const ingest = await startIngestNode({ config: config('ingest', 0), logger });
    nodes.push(ingest);
    const agent = await connectAgent(`ws://127.0.0.1:${ingest.ingestPort}/agent/v1`);
    agents.push(agent);
    agent.send({ t: 'hello', enrollKey, ...helloFacts });
    expect(await agent.next()).toMatchObject({ t: 'welcome' });
    nats.child.kill('SIGKILL');
    await nats.exited;
    agent.send(makeBatch(1, 3));
    expect(await agent.next(30_000)).toMatchObject({ t: 'error', code: 'storage_unavailable' });
    const h = await health(ingest.httpPort!);
    expect(h.status).toBe(503);
    expect(h.body).toMatchObject({ status: 'degraded', problems: [{ code: 'storage_unavailable' }] });
  });
});
