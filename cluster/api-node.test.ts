/**
 * The API node against a real nats-server (skipped with an install hint
 * where it is missing): what the buckets hold (tenants, devices, alerts with
 * their reports) is served by its HTTP API, updates follow, values of another
 * shape are skipped, a queued command is in `kiseki-commands` when the request
 * is answered, and it keeps answering while NATS is down, then catches up
 * once it is back; a command asked for meanwhile answers 503.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import type { AlertRecord, QuickReport } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, sha256Hex, type DeviceRecord, type HotStore } from '../storage/index.js';
import { eventually } from '../test/support/cli.js';
import { operatorCall } from '../test/support/api-operator.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import type { AlertBucketEntry } from './alert-publisher.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { createIngestDirectory } from './directory.js';
import { decodeCommandEntry } from './commands-sync.js';
import { alertKey, commandKey, detectionKey, openClusterLink, type ClusterLink } from './nats.js';

if (NATS_SERVER === undefined) console.warn(`cluster/api-node.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

function alertOf(id: string, revision: number, verdict: AlertRecord['verdict'] = 'gray'): AlertRecord {
  return {
    id, tmid: 'TMID-1', supportId: 'EX0001', computer: 'PC-1', sha256: 'a'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked',
    detectedAt: 995, createdAt: 1000, state: 'reported', verdict, score: 0, revision, repeats: 0, openUntil: 1000, isolationRequested: false,
  };
}

function entryOf(alert: AlertRecord): string {
  const report = { alertId: alert.id, revision: alert.revision, createdAt: 1000 + alert.revision, tmid: alert.tmid, supportId: alert.supportId, verdict: alert.verdict } as unknown as QuickReport;
  return JSON.stringify({ alert, report, node: 's1', publishedAt: 1 } satisfies AlertBucketEntry);
}

describe.skipIf(NATS_SERVER === undefined)('API node', () => {
  let dir = '';
  let nats: NatsServer;
  let port = 0;
  let source: HotStore;
  let node: RunningApiNode | undefined;
  let link: ClusterLink | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-api-node-'));
    port = await freePort();
    nats = await startNats(dir, 'n1', port);
    source = openHotStore({ dataDir: join(dir, 'ingest'), mapSizeBytes: 64 * 1024 * 1024 });
  });
  afterEach(async () => {
    await node?.close().catch(() => undefined);
    node = undefined;
    await link?.close().catch(() => undefined);
    link = undefined;
    nats.child.kill('SIGKILL');
    await nats.exited;
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<{ get: (path: string) => Promise<{ status: number; body: Record<string, unknown> }>; post: (path: string, body: unknown) => Promise<{ status: number; body: Record<string, unknown> }> }> {
    const config = loadConfig({
      dataDir: join(dir, 'api'),
      http: { host: '127.0.0.1', port: 0 },
      cluster: { role: 'api', nats: `nats://127.0.0.1:${port}`, replicas: 1, nodeId: 'api1' },
    });
    node = await startApiNode({ config, logger, rewatchDelayMs: 100 });
    const call = await operatorCall(node);
    return { get: (path) => call('GET', path), post: (path, body) => call('POST', path, body) };
  }

  async function publisherLink(): Promise<ClusterLink> {
    link = await openClusterLink({ servers: `nats://127.0.0.1:${port}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
    return link;
  }

  const listed = async (api: Awaited<ReturnType<typeof start>>): Promise<{ id: string; verdict: string }[]> =>
    (await api.get('/api/v1/alerts?supportId=EX0001')).body.items as { id: string; verdict: string }[];

  /** What an ingest node publishes: the tenant and an enrolled device. */
  async function publishDevice(l: ClusterLink): Promise<void> {
    await source.tenants.save({ supportId: 'EX0001', name: 'Example Corp', enrollKeyHash: sha256Hex('kek_test'), createdAt: 1 });
    const directory = createIngestDirectory({ directory: l.directory, jsm: l.jsm, store: source });
    const device: DeviceRecord = { tmid: 'TMID-1', supportId: 'EX0001', computer: 'PC-1', agentVersion: '1.0.0', os: 'Windows 11', ips: [], macs: [], tokenHash: sha256Hex('tok'), firstSeen: 1, lastSeen: 1, connected: false };
    await directory.publishDevice(device);
  }

  it('serves the tenants, devices and alerts of the buckets, follows updates and skips foreign values', async () => {
    const l = await publisherLink();
    await publishDevice(l);
    // What shard nodes publish: two alerts, and a value that is not a kiseki alert.
    await l.alerts.put(alertKey('al_1'), entryOf(alertOf('al_1', 1)));
    await l.alerts.put(alertKey('al_2'), entryOf(alertOf('al_2', 1)));
    await l.alerts.put('alert.foreign', '{"not":"an alert"}');

    const api = await start();
    await eventually(async () => ((await listed(api)).length === 2 ? true : undefined), 100, 100);
    expect(node!.mirror()).toMatchObject({ alerts: 2, tenants: 1, devices: 1, skipped: 1 });
    await eventually(async () => (node!.mirror().caughtUp ? true : undefined), 100, 100);
    const view = await api.get('/api/v1/alerts/al_1');
    expect(view.status).toBe(200);
    expect((view.body.revisions as { revision: number }[]).map((r) => r.revision)).toEqual([1]);
    const devices = await api.get('/api/v1/devices');
    expect((devices.body.items as { tmid: string }[]).map((d) => d.tmid)).toEqual(['TMID-1']);

    // A later revision of an alert replaces it.
    await l.alerts.put(alertKey('al_1'), entryOf(alertOf('al_1', 2, 'black')));
    await eventually(async () => ((await listed(api)).find((a) => a.id === 'al_1')?.verdict === 'black' ? true : undefined), 100, 100);

    // A shard node's Sigma detection is listed too.
    const detection = {
      id: 'sd_1', supportId: 'EX0001', tmid: 'TMID-1', computer: 'PC-1', ruleId: 'r1', title: 'Rule', level: 'high', severity: 'Serious', tags: [], author: 'a',
      lsn: 1, event: { tmid: 'TMID-1', seq: 5, ts: 900, k: 'proc.start' }, pg: '{P1}', image: 'C:\\x.exe', at: 900, createdAt: Date.now(), repeats: 0,
    };
    await l.detections.put(detectionKey('sd_1'), JSON.stringify({ detection, node: 's1', publishedAt: 1 }));
    const listedDetections = await eventually(async () => {
      const items = (await api.get('/api/v1/detections?supportId=EX0001')).body.items as { id: string }[] | undefined;
      return items !== undefined && items.length === 1 ? items : undefined;
    }, 100, 100);
    expect(listedDetections.map((d) => d.id)).toEqual(['sd_1']);

    // A command is answered once kiseki-commands holds it (for the ingest nodes: commands-sync.test.ts).
    const queued = await api.post('/api/v1/devices/TMID-1/commands', { kind: 'isolate', args: { allow: [] } });
    expect(queued.status).toBe(202);
    const shared = await l.commands.get(commandKey(queued.body.id as string));
    expect(decodeCommandEntry(shared!.value)).toMatchObject({ id: queued.body.id, tmid: 'TMID-1', state: 'queued' });
  });

  it('answers from its copy while NATS is down, and copies what was published meanwhile once it is back', async () => {
    const l = await publisherLink();
    await publishDevice(l);
    await l.alerts.put(alertKey('al_1'), entryOf(alertOf('al_1', 1)));
    const api = await start();
    await eventually(async () => ((await listed(api)).length === 1 && (await api.get('/api/v1/devices/TMID-1')).status === 200 ? true : undefined), 100, 100);
    await l.close();
    link = undefined;

    nats.child.kill('SIGKILL');
    await nats.exited;
    const during = await api.get('/api/v1/alerts?supportId=EX0001');
    expect(during.status).toBe(200);
    expect((during.body.items as unknown[]).length).toBe(1);
    expect((await fetch(`http://127.0.0.1:${node!.httpPort}/healthz`)).status).toBe(200);
    // A command cannot reach the ingest nodes now: 503 within the put's bound, and failed rather than left queued.
    const refused = await api.post('/api/v1/devices/TMID-1/commands', { kind: 'isolate', args: { allow: [] } });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ code: 'ERR_CLUSTER_UNAVAILABLE' });
    const local = (await api.get('/api/v1/devices/TMID-1/commands')).body.items as { id: string; state: string; error?: string }[];
    expect(local).toMatchObject([{ state: 'failed', error: 'cluster_unavailable' }]);

    // The same server (same store directory and port) comes back; an alert published now reaches the API node.
    nats = await startNats(dir, 'n1', port);
    const back = await publisherLink();
    await back.alerts.put(alertKey('al_2'), entryOf(alertOf('al_2', 1)));
    await eventually(async () => ((await listed(api)).length === 2 ? true : undefined), 300, 100);
    // The refused command's failed state reaches the bucket too (retried), so no ingest node sends it later.
    await eventually(async () => {
      const e = await back.commands.get(commandKey(local[0]!.id));
      return e !== null && decodeCommandEntry(e.value)?.state === 'failed' ? true : undefined;
    }, 300, 100);
  });
});
