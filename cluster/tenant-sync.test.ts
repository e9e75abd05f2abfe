/**
 * Tenants on a running cluster, against a real nats-server (skipped with an
 * install hint where it is missing). An ingest node started without any
 * tenant and an API node in this process: a tenant created through the API
 * node's HTTP API enrolls an agent on the ingest node, its fleet policy
 * reaches the agent (a `policy` frame now, `welcome` later) and its tenant
 * policy the ingest node's store; a taken support ID is refused, and every
 * change answers 503 and changes nothing while NATS is down. Then the bucket
 * rules without nodes: a support ID another node holds, concurrent fleet
 * changes on two API nodes, what an ingest node publishes at start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { connectAgent, helloFacts, type ReceivedFrame, type TestAgent } from '../test/support/agent-client.js';
import { eventually } from '../test/support/cli.js';
import { operatorCall, type ApiCall } from '../test/support/api-operator.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { fleetKey, parseFleetPolicy, parseTenant, tenantKey } from './directory-layout.js';
import { startIngestNode, type RunningIngestNode } from './ingest-node.js';
import { openClusterLink, type ClusterLink } from './nats.js';
import { createTenantSharing, publishLocalTenant, watchTenants } from './tenant-sync.js';

if (NATS_SERVER === undefined) console.warn(`cluster/tenant-sync.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();
const MAP_SIZE_BYTES = 64 * 1024 * 1024;


describe.skipIf(NATS_SERVER === undefined)('tenants created and changed on an API node', () => {
  let dir = '';
  let nats: NatsServer;
  let ingest: RunningIngestNode | undefined;
  let api: RunningApiNode | undefined;
  const agents: TestAgent[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-tenant-sync-'));
    nats = await startNats(dir, 'n1', await freePort());
    const cluster = { nats: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1 };
    // No tenant on the ingest node's directory: it learns them from the bucket while it runs.
    ingest = await startIngestNode({ config: loadConfig({ dataDir: join(dir, 'ingest'), ingest: { host: '127.0.0.1', port: 0 }, cluster: { ...cluster, role: 'ingest', nodeId: 'i1' } }), logger });
    api = await startApiNode({ config: loadConfig({ dataDir: join(dir, 'api'), http: { host: '127.0.0.1', port: 0 }, cluster: { ...cluster, role: 'api', nodeId: 'a1' } }), logger, rewatchDelayMs: 100 });
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) a.close();
    await api?.close().catch(() => undefined);
    await ingest?.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  async function hello(frame: Record<string, unknown>): Promise<{ agent: TestAgent; welcome: ReceivedFrame }> {
    const agent = await connectAgent(`ws://127.0.0.1:${ingest!.ingestPort}/agent/v1`);
    agents.push(agent);
    agent.send({ t: 'hello', ...helloFacts, ...frame });
    return { agent, welcome: await agent.next() };
  }

  const operator = (): Promise<ApiCall> => operatorCall(api!);

  it('enrolls on the ingest node a tenant created on the API node, and brings its policies to the agents and the ingest node', async () => {
    const call = await operator();
    const created = await call('POST', '/api/v1/tenants', { supportId: 'EX0001', name: 'Example Corp' });
    expect(created.status).toBe(201);
    const enrollKey = created.body.enrollKey as string;
    // The same support ID again: refused, and the first tenant's enrollment key still works.
    expect(await call('POST', '/api/v1/tenants', { supportId: 'EX0001', name: 'Other Corp' })).toMatchObject({ status: 409, body: { code: 'ERR_TENANT_EXISTS' } });

    // The ingest node started before the tenant existed; no restart.
    const { agent, welcome } = await hello({ enrollKey });
    expect(welcome).toMatchObject({ t: 'welcome', policy: { fleet: { version: 0, mode: 'block' } } });
    const tmid = welcome.tmid as string;
    const token = welcome.token as string;
    expect(ingest!.store.tenants.get('EX0001')).toMatchObject({ name: 'Example Corp' });

    // A fleet policy changed on the API node: the connected agent gets it at once from its ingest node.
    const changed = await call('PUT', '/api/v1/tenants/EX0001/fleet-policy', { mode: 'non-block', usb: { control: true } });
    expect(changed).toMatchObject({ status: 200, body: { version: 1, mode: 'non-block' } });
    let frame = await agent.next(10_000);
    while (frame.t !== 'policy') frame = await agent.next(10_000);
    expect(frame).toMatchObject({ fleet: { version: 1, mode: 'non-block', usb: { control: true } } });
    agent.close();
    await agent.closed;
    // And the next welcome carries it.
    const back = await hello({ tmid, token });
    expect(back.welcome).toMatchObject({ t: 'welcome', policy: { fleet: { version: 1, mode: 'non-block' } } });

    // The tenant policy (what shard nodes apply) reaches the ingest node's store as well.
    const policy = await call('PUT', '/api/v1/tenants/EX0001/policy', { isolateOnBlack: true });
    expect(policy).toMatchObject({ status: 200, body: { isolateOnBlack: true } });
    await eventually(async () => (ingest!.store.tenants.policy('EX0001').isolateOnBlack ? true : undefined), 100, 100);
    expect((await call('GET', '/api/v1/tenants/EX0001')).body).toMatchObject({ policy: { isolateOnBlack: true } });
  });

  it('answers 503 and changes nothing while NATS is down', async () => {
    const call = await operator();
    expect((await call('POST', '/api/v1/tenants', { supportId: 'EX0001', name: 'Example Corp' })).status).toBe(201);
    await eventually(async () => (ingest!.store.tenants.get('EX0001') !== undefined ? true : undefined), 100, 100);
    nats.child.kill('SIGKILL');
    await nats.exited;

    expect(await call('POST', '/api/v1/tenants', { supportId: 'EX0002', name: 'Second Corp' })).toMatchObject({ status: 503, body: { code: 'ERR_CLUSTER_UNAVAILABLE' } });
    expect((await call('GET', '/api/v1/tenants/EX0002')).status).toBe(404);
    expect(await call('PUT', '/api/v1/tenants/EX0001/policy', { isolateOnBlack: true })).toMatchObject({ status: 503, body: { code: 'ERR_CLUSTER_UNAVAILABLE' } });
    expect(api!.store.tenants.policy('EX0001').isolateOnBlack).toBe(false);
    expect(await call('PUT', '/api/v1/tenants/EX0001/fleet-policy', { mode: 'non-block' })).toMatchObject({ status: 503, body: { code: 'ERR_CLUSTER_UNAVAILABLE' } });
    expect(api!.store.fleet.policy('EX0001').version).toBe(0);
  });
});

describe.skipIf(NATS_SERVER === undefined)('the tenant records of kiseki-directory', () => {
  let dir = '';
  let nats: NatsServer;
  let link: ClusterLink;
  const stores: HotStore[] = [];
  const open = (name: string): HotStore => {
    const s = openHotStore({ dataDir: join(dir, name), mapSizeBytes: MAP_SIZE_BYTES });
    stores.push(s);
    return s;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-tenant-bucket-'));
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

  async function sharedTenant(key: string) {
    const e = await link.directory.get(key);
    return e === null ? undefined : e.string();
  }

  it('refuses a support ID the bucket holds, and keeps versions apart when two API nodes change a fleet policy at once', async () => {
    const a = open('a');
    const b = open('b');
    const sharingA = createTenantSharing({ kv: link.directory, store: a });
    const sharingB = createTenantSharing({ kv: link.directory, store: b });
    await sharingA.create(a.tenants.prepare({ supportId: 'EX0001', name: 'Example Corp', now: 1000 }).tenant);
    // B's store does not know EX0001 (no watcher here): the bucket refuses it.
    await expect(sharingB.create(b.tenants.prepare({ supportId: 'EX0001', name: 'Other Corp', now: 2000 }).tenant)).rejects.toMatchObject({ code: 'ERR_TENANT_EXISTS' });
    expect(b.tenants.get('EX0001')).toBeUndefined();
    expect(parseTenant((await sharedTenant(tenantKey('EX0001')))!, 'EX0001')).toMatchObject({ name: 'Example Corp' });

    await b.tenants.mirror(a.tenants.get('EX0001')!);
    const [fromA, fromB] = await Promise.all([
      sharingA.setFleetPolicy('EX0001', { mode: 'non-block' }, 'op.a', 3000),
      sharingB.setFleetPolicy('EX0001', { usb: { control: true } }, 'op.b', 3000),
    ]);
    // Read-modify-write with a revision check: one of them was made over the other, nothing was lost.
    expect([fromA.version, fromB.version].sort()).toEqual([1, 2]);
    const last = parseFleetPolicy((await sharedTenant(fleetKey('EX0001')))!, 'EX0001')!;
    expect(last).toMatchObject({ version: 2, mode: 'non-block', usb: { control: true } });

    // A node whose clock is behind still moves the tenant's stamp forward, so every copy takes its change.
    const policyA = await sharingA.setPolicy('EX0001', { isolateOnBlack: true }, 5000);
    expect(policyA.isolateOnBlack).toBe(true);
    await sharingB.setPolicy('EX0001', { isolateOnBlack: false }, 4000);
    const shared = parseTenant((await sharedTenant(tenantKey('EX0001')))!, 'EX0001')!;
    expect(shared).toMatchObject({ updatedAt: 5001, policy: { isolateOnBlack: false } });
    expect(await a.tenants.mirror(shared)).toBe(true);
    expect(a.tenants.policy('EX0001').isolateOnBlack).toBe(false);
    // An older copy arriving late changes nothing.
    expect(await a.tenants.mirror({ ...shared, updatedAt: 4500, policy: { ...shared.policy!, isolateOnBlack: true } })).toBe(false);
  });

  it("publishes an ingest node's local tenant only where the bucket holds none or an older one, and a watcher copies the newest", async () => {
    const ingestStore = open('ingest');
    const api = open('api');
    const { tenant, enrollKey } = await ingestStore.tenants.create({ supportId: 'EX0001', name: 'Example Corp', now: 1000 });
    expect(await publishLocalTenant(link.directory, ingestStore, 'EX0001')).toBe('published');
    expect(await publishLocalTenant(link.directory, ingestStore, 'EX0001')).toBe('current');

    // Changed on an API node later: the ingest node's older local copy does not overwrite it at its next start.
    await api.tenants.mirror(tenant);
    await createTenantSharing({ kv: link.directory, store: api }).setPolicy('EX0001', { isolateOnBlack: true }, 2000);
    expect(await publishLocalTenant(link.directory, ingestStore, 'EX0001')).toBe('current');
    expect(parseTenant((await sharedTenant(tenantKey('EX0001')))!, 'EX0001')!.policy).toMatchObject({ isolateOnBlack: true });

    // A watcher (an ingest or shard node's) copies it, and a fleet policy with it.
    await createTenantSharing({ kv: link.directory, store: api }).setFleetPolicy('EX0001', { mode: 'non-block' }, 'op', 3000);
    const pushed: string[] = [];
    const watch = watchTenants({ kv: link.directory, store: ingestStore, logger, retryMs: 100, onFleetPolicy: (s) => pushed.push(s) });
    try {
      await eventually(async () => (ingestStore.fleet.policy('EX0001').version === 1 && ingestStore.tenants.policy('EX0001').isolateOnBlack ? true : undefined), 100, 100);
      expect(pushed).toEqual(['EX0001']);
      expect(ingestStore.tenants.forEnrollKey(enrollKey)?.supportId).toBe('EX0001');
    } finally {
      await watch.stop();
    }

    // A tenant made on another directory under the same support ID: the bucket's stands.
    const other = open('other');
    await other.tenants.create({ supportId: 'EX0001', name: 'Other Corp', now: 9000 });
    expect(await publishLocalTenant(link.directory, other, 'EX0001')).toBe('conflict');
    expect(parseTenant((await sharedTenant(tenantKey('EX0001')))!, 'EX0001')).toMatchObject({ name: 'Example Corp' });
    // Its watcher then replaces the local record, enrollment key included.
    const shared = parseTenant((await sharedTenant(tenantKey('EX0001')))!, 'EX0001')!;
    expect(await other.tenants.mirror(shared)).toBe(true);
    expect(other.tenants.forEnrollKey(enrollKey)?.name).toBe('Example Corp');
  });
});
