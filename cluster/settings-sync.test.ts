/**
 * The per-tenant settings the engine reads, shared through `kiseki-directory`,
 * against a real nats-server (skipped with an install hint where it is
 * missing). An API node and a shard node in this process: an exception, Sigma
 * settings and threshold rules changed through the API node's HTTP API reach
 * the shard node's store, a detection there afterwards is suppressed by the
 * exception, the exception the shard node's engine adds for a confident white
 * is listed on the API node, and a removal reaches the shard node. Two API
 * nodes adding exceptions at once keep both; every change answers 503 and
 * changes nothing while NATS is down. Then the bucket rules without nodes.
 */
import { encode } from '@msgpack/msgpack';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import type { ExceptionEntry } from '../core/contracts.js';
import { alertIdFor } from '../engine/index.js';
import { createSilentLogger } from '../core/logger.js';
import { virtualShardOf } from '../core/vshard.js';
import { autoExceptionId, openHotStore, type HotStore } from '../storage/index.js';
import { eventually } from '../test/support/cli.js';
import { operatorCall, type ApiCall } from '../test/support/api-operator.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { publishTestDevice } from '../test/support/stream-batches.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { encodeBatchMessage } from './batch-message.js';
import { exceptionKey, parseException } from './directory-layout.js';
import { batchSubject, openClusterLink, type ClusterLink } from './nats.js';
import { createSettingsSharing, publishEngineException } from './settings-sync.js';
import { startShardNode, type RunningShardNode } from './shard-node.js';
import { watchTenants } from './tenant-sync.js';

if (NATS_SERVER === undefined) console.warn(`cluster/settings-sync.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();
const MAP_SIZE_BYTES = 64 * 1024 * 1024;
const TMID = 'TMID-SETTINGS-1';
const EXPLORER = '{11111111-0000-0000-0000-000000000001}';
const CHROME = '{11111111-0000-0000-0000-000000000002}';


/** An operator's HTTP client for an API node. */
const operator = (api: RunningApiNode): Promise<ApiCall> => operatorCall(api);

/**
 * Publishes, as an ingest node does, a batch in which the antivirus blocks a downloaded installer signed by a
 * trusted vendor before it runs (the engine's confident white, engine/correlator.test.ts): the alert is the
 * batch's third event, seq `first + 2`.
 */
async function publishBlockedInstaller(link: ClusterLink, id: string, first: number, sha256: string, at: number): Promise<void> {
  const path = `C:\\Users\\taro\\Downloads\\Setup-${sha256.slice(0, 4)}.exe`;
  const base = { user: 'CORP\\taro' };
  const events = [
    { ...base, seq: first, ts: at, k: 'proc.start', pg: CHROME, image: 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', cmd: 'chrome.exe', sig: 'trusted', signer: 'Google LLC' },
    { ...base, seq: first + 1, ts: at + 1000, k: 'file.create', pg: CHROME, path, sha256, size: 9_000_000, vol: 'fixed', originUrl: 'https://download.vendor.example/Setup.exe', zone: 3 },
    { ...base, seq: first + 2, ts: at + 2000, k: 'av.detect', pg: EXPLORER, engine: 'Microsoft Defender Antivirus', threat: 'PUA:Win32/Bundler', path, sha256, action: 'blocked', signer: 'Vendor Software Inc.', sig: 'trusted' },
  ];
  const body = encodeBatchMessage({ tmid: TMID, id, sentAt: at + 2500, recvAt: at + 3000, first, last: first + 2, eventCount: 3, events: encode(events) }, 3);
  await link.js.publish(batchSubject(virtualShardOf(TMID), TMID), body, { msgID: id });
}

describe.skipIf(NATS_SERVER === undefined)('per-tenant settings changed on an API node', () => {
  let dir = '';
  let nats: NatsServer;
  let natsUrl = '';
  let link: ClusterLink | undefined;
  let source: HotStore | undefined;
  const apis: RunningApiNode[] = [];
  let shard: RunningShardNode | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-settings-sync-'));
    nats = await startNats(dir, 'n1', await freePort());
    natsUrl = `nats://127.0.0.1:${nats.clientPort}`;
  });
  afterEach(async () => {
    await shard?.close().catch(() => undefined);
    shard = undefined;
    for (const a of apis.splice(0)) await a.close().catch(() => undefined);
    await link?.close().catch(() => undefined);
    link = undefined;
    await source?.close();
    source = undefined;
    nats.child.kill('SIGKILL');
    await nats.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  async function apiNode(name: string): Promise<RunningApiNode> {
    const config = loadConfig({ dataDir: join(dir, name), http: { host: '127.0.0.1', port: 0 }, cluster: { nats: natsUrl, replicas: 1, role: 'api', nodeId: name } });
    const api = await startApiNode({ config, logger, rewatchDelayMs: 100 });
    apis.push(api);
    return api;
  }

  it("brings exceptions, Sigma settings and threshold rules to the shard node's engine, and its automatic exceptions back", async () => {
    const api = await apiNode('a1');
    const call = await operator(api);
    expect((await call('POST', '/api/v1/tenants', { supportId: 'EX0001', name: 'Example Corp' })).status).toBe(201);
    // The shard node's engine adds an exception for a confident white (what it publishes is checked below).
    expect((await call('PUT', '/api/v1/tenants/EX0001/policy', { autoExceptWhite: true })).status).toBe(200);
    shard = await startShardNode({
      config: loadConfig({ dataDir: join(dir, 's1'), engine: { shards: 1 }, cluster: { role: 'shard', nats: natsUrl, replicas: 1, nodeId: 's1' } }),
      logger,
    });
    const s = shard;

    const excepted = 'c'.repeat(64);
    const added = await call('POST', '/api/v1/tenants/EX0001/exceptions', { sha256: excepted.toUpperCase(), reason: 'known installer' });
    expect(added).toMatchObject({ status: 201, body: { sha256: excepted, createdBy: 'op.api' } });
    const exceptionId = added.body.id as string;
    const sigma = await call('PUT', '/api/v1/tenants/EX0001/sigma', { enabled: false, disabledRules: ['rule-b', 'rule-a'] });
    expect(sigma).toMatchObject({ status: 200, body: { enabled: false, disabledRules: ['rule-a', 'rule-b'] } });
    const rules = [{ id: 'many-logons', title: 'Many logons', kind: 'auth.logon', threshold: 5, windowMs: 600_000 }];
    const analytics = await call('PUT', '/api/v1/tenants/EX0001/analytics/rules', { rules });
    expect(analytics.status).toBe(200);

    // All three reach the shard node's store, which its shard workers read (exceptions on each detection).
    await eventually(
      async () =>
        s.store.exceptions.get('EX0001', exceptionId) !== undefined && !s.store.detections.settings('EX0001').enabled && s.store.analytics.rules('EX0001') !== undefined ? true : undefined,
      200,
      100,
    );
    expect(s.store.exceptions.get('EX0001', exceptionId)).toMatchObject({ sha256: excepted, reason: 'known installer' });
    expect(s.store.detections.settings('EX0001')).toMatchObject({ enabled: false, disabledRules: ['rule-a', 'rule-b'] });
    expect(s.store.analytics.rules('EX0001')).toMatchObject({ rules: [{ id: 'many-logons' }], updatedBy: 'op.api' });

    // A detection of the excepted file on the shard node afterwards is suppressed by that exception.
    link = await openClusterLink({ servers: natsUrl, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
    source = openHotStore({ dataDir: join(dir, 'ingest'), mapSizeBytes: MAP_SIZE_BYTES });
    await publishTestDevice(link, source, 'EX0001', TMID, 'PC-1');
    const now = Date.now();
    await publishBlockedInstaller(link, 'b1', 1, excepted, now - 60_000);
    await eventually(async () => s.store.alerts.get(alertIdFor(TMID, 3)), 300, 100);
    expect(s.store.alerts.get(alertIdFor(TMID, 3))).toMatchObject({ state: 'suppressed', suppressedBy: exceptionId });

    // Another installer, not excepted: white, and the engine's automatic exception reaches the API node's list.
    const white = 'd'.repeat(64);
    await publishBlockedInstaller(link, 'b2', 4, white, now - 30_000);
    await eventually(async () => s.store.alerts.get(alertIdFor(TMID, 6)), 300, 100);
    expect(s.store.alerts.get(alertIdFor(TMID, 6))).toMatchObject({ state: 'reported', verdict: 'white' });
    const autoId = autoExceptionId(white);
    await eventually(async () => api.store.exceptions.get('EX0001', autoId), 300, 100);
    const listed = await call('GET', '/api/v1/tenants/EX0001/exceptions');
    expect((listed.body.items as ExceptionEntry[]).map((e) => [e.id, e.createdBy]).sort()).toEqual([[autoId, 'engine'], [exceptionId, 'op.api']].sort());

    // Removed on the API node: gone from the shard node's list as well.
    expect((await call('DELETE', `/api/v1/tenants/EX0001/exceptions/${exceptionId}`)).status).toBe(204);
    expect((await call('DELETE', `/api/v1/tenants/EX0001/exceptions/${exceptionId}`)).status).toBe(404);
    await eventually(async () => (s.store.exceptions.get('EX0001', exceptionId) === undefined ? true : undefined), 200, 100);
    expect(s.store.exceptions.get('EX0001', autoId)).toBeDefined();
  });

  it('keeps both exceptions two API nodes add at once, and shows one liveness change on both', async () => {
    const a = await apiNode('a1');
    const b = await apiNode('a2');
    const callA = await operator(a);
    const callB = await operator(b);
    expect((await callA('POST', '/api/v1/tenants', { supportId: 'EX0001', name: 'Example Corp' })).status).toBe(201);
    await eventually(async () => b.store.tenants.get('EX0001'), 100, 100);

    const adds = await Promise.all(
      Array.from({ length: 5 }, (_, i) => [
        callA('POST', '/api/v1/tenants/EX0001/exceptions', { pathPattern: `C:\\Tools\\a${i}\\*.exe`, reason: `from A ${i}` }),
        callB('POST', '/api/v1/tenants/EX0001/exceptions', { pathPattern: `C:\\Tools\\b${i}\\*.exe`, reason: `from B ${i}` }),
      ]).flat(),
    );
    expect(adds.map((r) => r.status)).toEqual(Array(10).fill(201));
    const ids = adds.map((r) => r.body.id as string).sort();
    const listOf = async (call: ApiCall) => ((await call('GET', '/api/v1/tenants/EX0001/exceptions')).body.items as ExceptionEntry[]).map((e) => e.id).sort();
    await eventually(async () => ((await listOf(callA)).length === 10 && (await listOf(callB)).length === 10 ? true : undefined), 200, 100);
    expect(await listOf(callA)).toEqual(ids);
    expect(await listOf(callB)).toEqual(ids);

    const liveness = await callA('PUT', '/api/v1/tenants/EX0001/liveness', { offlineAfterMs: 7_200_000, windows: [] });
    expect(liveness).toMatchObject({ status: 200, body: { offlineAfterMs: 7_200_000, updatedBy: 'op.api' } });
    await eventually(async () => (b.store.liveness.settings('EX0001')?.offlineAfterMs === 7_200_000 ? true : undefined), 200, 100);
    expect((await callB('GET', '/api/v1/tenants/EX0001/liveness')).body).toMatchObject({ offlineAfterMs: 7_200_000 });
  });

  it('answers 503 and changes nothing while NATS is down', async () => {
    const api = await apiNode('a1');
    const call = await operator(api);
    expect((await call('POST', '/api/v1/tenants', { supportId: 'EX0001', name: 'Example Corp' })).status).toBe(201);
    const added = await call('POST', '/api/v1/tenants/EX0001/exceptions', { signer: 'Vendor Software Inc.', reason: 'known vendor' });
    expect(added.status).toBe(201);
    nats.child.kill('SIGKILL');
    await nats.exited;

    const unavailable = { status: 503, body: { code: 'ERR_CLUSTER_UNAVAILABLE' } };
    expect(await call('POST', '/api/v1/tenants/EX0001/exceptions', { sha256: 'e'.repeat(64), reason: 'x' })).toMatchObject(unavailable);
    expect(await call('DELETE', `/api/v1/tenants/EX0001/exceptions/${added.body.id as string}`)).toMatchObject(unavailable);
    expect(api.store.exceptions.list('EX0001').map((e) => e.id)).toEqual([added.body.id]);
    expect(await call('PUT', '/api/v1/tenants/EX0001/sigma', { enabled: false })).toMatchObject(unavailable);
    expect(api.store.detections.settings('EX0001').enabled).toBe(true);
    expect(await call('PUT', '/api/v1/tenants/EX0001/analytics/rules', { rules: [] })).toMatchObject(unavailable);
    expect(api.store.analytics.rules('EX0001')).toBeUndefined();
    expect(await call('PUT', '/api/v1/tenants/EX0001/liveness', { windows: [] })).toMatchObject(unavailable);
    expect(api.store.liveness.settings('EX0001')).toBeUndefined();
  });
});

describe.skipIf(NATS_SERVER === undefined)('the settings records of kiseki-directory', () => {
  let dir = '';
  let nats: NatsServer;
  let link: ClusterLink;
  const stores: HotStore[] = [];
  const open = async (name: string): Promise<HotStore> => {
    const s = openHotStore({ dataDir: join(dir, name), mapSizeBytes: MAP_SIZE_BYTES });
    stores.push(s);
    await s.tenants.save({ supportId: 'EX0001', name: 'Example Corp', enrollKeyHash: 'x'.repeat(64), createdAt: 1 });
    return s;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-settings-bucket-'));
    nats = await startNats(dir, 'n1', await freePort());
    link = await openClusterLink({ servers: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
  });
  afterEach(async () => {
    await link.close();
    for (const s of stores.splice(0)) await s.close();
    nats.child.kill('SIGKILL');
    await nats.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps a removal made on an API node over the engine's later republish, and a shard node's watcher copies it", async () => {
    const shardStore = await open('shard');
    const api = await open('api');
    const engineEntry: ExceptionEntry = { id: autoExceptionId('f'.repeat(64)), supportId: 'EX0001', sha256: 'f'.repeat(64), reason: 'automatic', createdAt: 1000, createdBy: 'engine' };
    await shardStore.transaction(() => shardStore.exceptions.saveSync(engineEntry));
    expect(await publishEngineException(link.directory, engineEntry)).toBe(true);
    expect(await publishEngineException(link.directory, engineEntry)).toBe(false);

    // Removed on an API node that had copied it; a republish of the alert (a replay) does not bring it back.
    await api.exceptions.mirror(engineEntry);
    const sharing = createSettingsSharing({ kv: link.directory, store: api });
    expect(await sharing.removeException('EX0001', engineEntry.id, 'op.api', 900)).toBe(true);
    expect(api.exceptions.get('EX0001', engineEntry.id)).toBeUndefined();
    expect(await publishEngineException(link.directory, engineEntry)).toBe(false);
    const held = parseException((await link.directory.get(exceptionKey('EX0001', engineEntry.id)))!.string(), 'EX0001', engineEntry.id);
    // Stamped past the entry although the API node's clock was behind.
    expect(held).toMatchObject({ removedAt: 1001, removedBy: 'op.api' });
    expect(await sharing.removeException('EX0001', engineEntry.id, 'op.api', 2000)).toBe(false);

    // A shard node's watcher removes its own copy; the same file white again later is added again.
    const watch = watchTenants({ kv: link.directory, store: shardStore, logger, retryMs: 100, settings: true });
    try {
      await eventually(async () => (shardStore.exceptions.get('EX0001', engineEntry.id) === undefined ? true : undefined), 100, 100);
      const again = { ...engineEntry, createdAt: 5000 };
      await shardStore.transaction(() => shardStore.exceptions.saveSync(again));
      expect(await publishEngineException(link.directory, again)).toBe(true);
      await api.exceptions.mirror(again);
      expect(api.exceptions.get('EX0001', engineEntry.id)?.createdAt).toBe(5000);
      expect(watch.stats().exceptions).toBe(1);
    } finally {
      await watch.stop();
    }
  });

  it('changes Sigma settings on two API nodes at once without losing either change', async () => {
    const a = await open('a');
    const b = await open('b');
    const [fromA, fromB] = await Promise.all([
      createSettingsSharing({ kv: link.directory, store: a }).setSigmaSettings('EX0001', { enabled: false }, 3000),
      createSettingsSharing({ kv: link.directory, store: b }).setSigmaSettings('EX0001', { disabledRules: ['r1'] }, 3000),
    ]);
    // Read-modify-write with a revision check: one was made over the other.
    const last = [fromA, fromB].sort((x, y) => (x.updatedAt ?? 0) - (y.updatedAt ?? 0))[1]!;
    expect(last).toMatchObject({ enabled: false, disabledRules: ['r1'], updatedAt: 3001 });
  });
});
