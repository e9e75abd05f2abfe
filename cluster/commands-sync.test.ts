/**
 * Response commands across nodes, against a real nats-server (skipped with an
 * install hint where it is missing): an ingest node and an API node in this
 * process, a real WebSocket agent on the ingest node. A command an operator
 * queues on the API node reaches the agent through `kiseki-commands`, and the
 * agent's answer comes back to the API node (state and isolation); a command
 * cancelled on the API node while its device is away is cancelled on the
 * ingest node too, so it is never sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { connectAgent, helloFacts, type ReceivedFrame, type TestAgent } from '../test/support/agent-client.js';
import { eventually } from '../test/support/cli.js';
import { operatorCall, type ApiCall } from '../test/support/api-operator.js';
import { createTenantIn } from '../test/support/temp-store.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { decodeCommandEntry } from './commands-sync.js';
import { startIngestNode, type RunningIngestNode } from './ingest-node.js';

if (NATS_SERVER === undefined) console.warn(`cluster/commands-sync.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

describe('decodeCommandEntry', () => {
  it('takes a command record and refuses anything else', () => {
    const record = { id: 'cmd_1', tmid: 'T', supportId: 'S', kind: 'isolate', args: {}, state: 'queued', requestedBy: 'op', requestedAt: 1, expiresAt: 2 };
    expect(decodeCommandEntry(Buffer.from(JSON.stringify(record)))).toEqual(record);
    expect(decodeCommandEntry(Buffer.from(JSON.stringify({ ...record, state: 'lost' })))).toBeUndefined();
    expect(decodeCommandEntry(Buffer.from(JSON.stringify({ ...record, args: null })))).toBeUndefined();
    expect(decodeCommandEntry(Buffer.from('not json'))).toBeUndefined();
  });
});

describe.skipIf(NATS_SERVER === undefined)('commands between an API node and an ingest node', () => {
  let dir = '';
  let nats: NatsServer;
  let enrollKey = '';
  let ingest: RunningIngestNode | undefined;
  let api: RunningApiNode | undefined;
  const agents: TestAgent[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-commands-'));
    nats = await startNats(dir, 'n1', await freePort());
    enrollKey = await createTenantIn(join(dir, 'ingest'));
    const cluster = { nats: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1 };
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

  /** An operator's API on the API node. */
  const operator = (): Promise<ApiCall> => operatorCall(api!);

  it('delivers a command queued on the API node to the agent, and brings its answer back', async () => {
    const { agent, welcome } = await hello({ enrollKey });
    const tmid = welcome.tmid as string;
    const call = await operator();
    // The API node knows the device once its enrollment record reached the directory bucket.
    await eventually(async () => ((await call('GET', `/api/v1/devices/${tmid}`)).status === 200 ? true : undefined), 100, 100);

    const queued = await call('POST', `/api/v1/devices/${tmid}/commands`, { kind: 'isolate', args: { allow: [{ cidr: '10.0.0.0/8', port: 443 }] } });
    expect(queued.status).toBe(202);
    const id = queued.body.id as string;
    // The ingest node holding the socket sends it.
    let frame = await agent.next(10_000);
    while (frame.t !== 'cmd') frame = await agent.next(10_000);
    expect(frame).toMatchObject({ t: 'cmd', id, kind: 'isolate', args: { allow: [{ cidr: '10.0.0.0/8', port: 443 }] } });
    agent.send({ t: 'cmdr', id, status: 'done', result: { isolated: true } });

    // Its state and the isolation it confirmed come back to the API node.
    await eventually(async () => ((await call('GET', `/api/v1/commands/${id}`)).body.state === 'done' ? true : undefined), 100, 100);
    expect((await call('GET', `/api/v1/commands/${id}`)).body).toMatchObject({ state: 'done', result: { isolated: true } });
    expect((await call('GET', `/api/v1/devices/${tmid}`)).body).toMatchObject({ isolation: 'isolated' });
    expect(ingest!.store.commands.get(id)).toMatchObject({ state: 'done' });
  });

  it('cancels on the ingest node a command cancelled on the API node while its device was away', async () => {
    const first = await hello({ enrollKey });
    const tmid = first.welcome.tmid as string;
    const token = first.welcome.token as string;
    first.agent.close();
    await first.agent.closed;
    const call = await operator();
    await eventually(async () => ((await call('GET', `/api/v1/devices/${tmid}`)).status === 200 ? true : undefined), 100, 100);

    const queued = await call('POST', `/api/v1/devices/${tmid}/commands`, { kind: 'collect-file', args: { path: 'C:\\Users\\x\\a.exe' } });
    expect(queued.status).toBe(202);
    const id = queued.body.id as string;
    await eventually(async () => (ingest!.store.commands.get(id)?.state === 'queued' ? true : undefined), 100, 100);
    expect((await call('POST', `/api/v1/commands/${id}/cancel`)).status).toBe(200);
    await eventually(async () => (ingest!.store.commands.get(id)?.state === 'cancelled' ? true : undefined), 100, 100);

    // Back: its welcome, and nothing pending for it on the node that holds its socket.
    const back = await hello({ tmid, token });
    expect(back.welcome.t).toBe('welcome');
    expect(ingest!.store.commands.pendingFor(tmid)).toEqual([]);
  });
});
