/**
 * A shard node's own log against a real nats-server (skipped with an install
 * hint where it is missing): raw batches leave it once past the hot retention
 * and checkpointed by the local shards (the archive node keeps the cold tier),
 * and its `/healthz` and metrics show how far its consumers are behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { eventually } from '../test/support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { publishTestBatch, publishTestDevice } from '../test/support/stream-batches.js';
import { alertIdFor } from '../engine/index.js';
import { decodeAlertEntry } from './alert-publisher.js';
import { alertKey, openClusterLink, type ClusterLink } from './nats.js';
import { startShardNode, type RunningShardNode } from './shard-node.js';

if (NATS_SERVER === undefined) console.warn(`cluster/shard-node.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();
const DAY_MS = 86_400_000;

describe.skipIf(NATS_SERVER === undefined)('shard node log retention', () => {
  let dir = '';
  let nats: NatsServer;
  let source: HotStore;
  let link: ClusterLink | undefined;
  let node: RunningShardNode | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-shard-node-'));
    nats = await startNats(dir, 'n1', await freePort());
    source = openHotStore({ dataDir: join(dir, 'ingest'), mapSizeBytes: 64 * 1024 * 1024 });
    link = await openClusterLink({ servers: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
  });
  afterEach(async () => {
    await node?.close().catch(() => undefined);
    node = undefined;
    await link?.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops raw batches past the hot retention once checkpointed, keeping their batch-ids', async () => {
    const start = Date.UTC(2026, 10, 20, 3, 0, 0);
    const clock = createManualClock(start);
    await publishTestDevice(link!, source, 'EX0001', 'TMID-A', 'PC-A');
    await publishTestBatch(link!, 'TMID-A', 'b1', 1, 3, start);
    await publishTestBatch(link!, 'TMID-A', 'b2', 4, 2, start);
    const config = loadConfig({
      dataDir: join(dir, 'shard'),
      // State snapshots often: the log may drop a batch only once the shards' state checkpoints passed it too.
      engine: { shards: 1, stateSnapshotIntervalMs: 100 },
      export: { hotRetentionDays: 8 },
      http: { host: '127.0.0.1' },
      cluster: { role: 'shard', nats: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, nodeId: 's1', nodeHttpPort: 0 },
    });
    const n = await startShardNode({ config, logger, clock });
    node = n;
    // Stored (received now, by the node's clock) and checkpointed by the local shards.
    await eventually(async () => (n.store.log.lastLsn() === 2 && n.store.shardState.lsnSafeToDrop() >= 2 ? true : undefined), 300, 100);

    // Everything read: no stream lag in /healthz's figures, nor in the metric.
    const health = (await (await fetch(`http://127.0.0.1:${n.httpPort!}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ role: 'shard', streamLag: { messages: 0, maxVshard: null, maxMessages: 0 } });
    expect(await (await fetch(`http://127.0.0.1:${n.httpPort!}/metrics`)).text()).toMatch(/^kiseki_cluster_stream_lag_messages 0$/m);

    // Within the hot retention nothing leaves.
    clock.set(start + 8 * DAY_MS);
    expect(await n.sweepLog()).toEqual({ batches: 0, events: 0, complete: true });
    expect(n.store.log.batch(1)).toBeDefined();

    // Past it (the end of the collection day 9 days back), both go; their ids stay known.
    clock.set(start + 10 * DAY_MS);
    expect(await n.sweepLog()).toEqual({ batches: 2, events: 5, complete: true });
    expect(n.store.log.batch(1)).toBeUndefined();
    expect(n.store.log.batch(2)).toBeUndefined();
    expect(n.store.log.batchIdOwner('b1')).toEqual([1, 'TMID-A']);
  });

  it("counts a repeat replayed after a takeover on the alert the first node made, not as a second alert", async () => {
    const at = Date.now();
    const detection = (ts: number) => ({ t: ts, ts, k: 'av.detect', engine: 'Defender', threat: 'Trojan:Win32/Test', path: 'C:\\Users\\u\\evil.exe', sha256: 'b'.repeat(64), action: 'quarantined' });
    await publishTestDevice(link!, source, 'EX0001', 'TMID-A', 'PC-A');
    await publishTestBatch(link!, 'TMID-A', 'b1', 1, 0, at, [detection(at - 1000)]);
    const config = (name: string) =>
      loadConfig({ dataDir: join(dir, name), engine: { shards: 1, stateSnapshotIntervalMs: 100 }, cluster: { role: 'shard', nats: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, nodeId: name } });
    const first = alertKey(alertIdFor('TMID-A', 1));
    const entry = async (key: string) => {
      const e = await link!.alerts.get(key);
      return e === null || e.operation !== 'PUT' ? undefined : decodeAlertEntry(e.value).alert;
    };

    // Node A makes the alert and publishes it; it stops (its checkpoints written, its leases released).
    node = await startShardNode({ config: config('shard-a'), logger });
    await eventually(async () => ((await entry(first)) !== undefined ? true : undefined), 300, 100);
    await node.close();
    // Node B takes the virtual shards over with none of A's store (a lost disk), and the device repeats the file.
    node = await startShardNode({ config: config('shard-b'), logger });
    await publishTestBatch(link!, 'TMID-A', 'b2', 2, 0, at + 1000, [detection(at)]);
    await eventually(async () => ((await entry(first))?.repeats === 1 ? true : undefined), 300, 100);
    expect(await entry(alertKey(alertIdFor('TMID-A', 2)))).toBeUndefined();
    expect(node.store.alerts.get(alertIdFor('TMID-A', 1))).toMatchObject({ repeats: 1 });
  });
});
