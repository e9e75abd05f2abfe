/**
 * A device's live state across nodes, against a real nats-server (skipped
 * with an install hint where it is missing): an agent on an ingest node shows
 * connected, with its hello's facts, on an API node's `GET /devices`, and
 * disconnected once it leaves; a late disconnect from the node an agent left
 * does not hide its connection on the node it moved to; a node that died with
 * agents connected marks them disconnected at its next start, unless they
 * moved on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { connectAgent, helloFacts, type ReceivedFrame, type TestAgent } from '../test/support/agent-client.js';
import { eventually } from '../test/support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { createTenantIn } from '../test/support/temp-store.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { createDeviceStatePublisher, parseDeviceState, type DeviceState } from './device-state.js';
import { stateKey } from './directory-layout.js';
import { startIngestNode, type RunningIngestNode } from './ingest-node.js';
import { openClusterLink } from './nats.js';

if (NATS_SERVER === undefined) console.warn(`cluster/device-state.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

describe.skipIf(NATS_SERVER === undefined)('device state across nodes', () => {
  let dir = '';
  let nats: NatsServer;
  let enrollKey = '';
  let ingest: RunningIngestNode | undefined;
  let api: RunningApiNode | undefined;
  const agents: TestAgent[] = [];
  const servers = (): string => `nats://127.0.0.1:${nats.clientPort}`;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-device-state-'));
    nats = await startNats(dir, 'n1', await freePort());
    enrollKey = await createTenantIn(join(dir, 'ingest'));
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) a.close();
    await api?.close().catch(() => undefined);
    api = undefined;
    await ingest?.close().catch(() => undefined);
    ingest = undefined;
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

  it("shows on the API node an agent's connection and facts as its ingest node sees them", async () => {
    const cluster = { nats: servers(), replicas: 1 };
    ingest = await startIngestNode({ config: loadConfig({ dataDir: join(dir, 'ingest'), ingest: { host: '127.0.0.1', port: 0 }, cluster: { ...cluster, role: 'ingest', nodeId: 'i1' } }), logger });
    api = await startApiNode({ config: loadConfig({ dataDir: join(dir, 'api'), http: { host: '127.0.0.1', port: 0 }, cluster: { ...cluster, role: 'api', nodeId: 'a1' } }), logger, rewatchDelayMs: 100 });
    await api.store.identity.createUser({ id: 'op.api', role: 'operator', supportId: null, password: 'pass-pass-pass', now: Date.now(), mustChangePassword: false });
    const bearer = await api.store.identity.createSession('op.api', 'token', Date.now(), 3_600_000);
    const device = async (tmid: string): Promise<Record<string, unknown> | undefined> => {
      const r = await fetch(`http://127.0.0.1:${api!.httpPort}/api/v1/devices?supportId=EX0001`, { headers: { authorization: `Bearer ${bearer}` } });
      return ((await r.json()) as { items: Record<string, unknown>[] }).items.find((d) => d.tmid === tmid);
    };

    const first = await hello({ enrollKey });
    const tmid = first.welcome.tmid as string;
    const token = first.welcome.token as string;
    await eventually(async () => ((await device(tmid))?.connected === true ? true : undefined), 100, 100);
    first.agent.close();
    await first.agent.closed;
    await eventually(async () => ((await device(tmid))?.connected === false ? true : undefined), 100, 100);

    // Back with an upgraded agent and a new address: the facts of this hello reach the API node.
    await hello({ tmid, token, agentVersion: '3.2.0', ips: ['10.0.0.9'] });
    const shown = await eventually(async () => {
      const d = await device(tmid);
      return d?.connected === true && d.agentVersion === '3.2.0' ? d : undefined;
    }, 100, 100);
    expect(shown).toMatchObject({ computer: helloFacts.computer, agentVersion: '3.2.0' });
    expect(api.store.devices.get(tmid)).toMatchObject({ connected: true, agentVersion: '3.2.0', ips: ['10.0.0.9'] });
    expect(api.mirror().deviceStates).toBeGreaterThanOrEqual(3);
  });

  it('keeps a device connected through the node it moved to when the node it left reports the disconnect late, and clears a dead node\'s leftovers', async () => {
    const link = await openClusterLink({ servers: servers(), replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
    const onA = createDeviceStatePublisher({ kv: link.directory, nodeId: 'A', logger, retryMs: 100 });
    const onB = createDeviceStatePublisher({ kv: link.directory, nodeId: 'B', logger, retryMs: 100 });
    const read = async (tmid: string): Promise<DeviceState | undefined> => {
      const e = await link.directory.get(stateKey(tmid));
      return e === null ? undefined : parseDeviceState(e.string(), tmid);
    };
    try {
      const facts = { computer: 'PC-1', agentVersion: '3.1.0', os: 'W', ips: [], macs: [] };
      onB.publish({ tmid: 'T1', supportId: 'EX0001', connected: true, at: 1000, facts });
      await eventually(async () => ((await read('T1'))?.node === 'B' ? true : undefined), 100, 100);
      onA.publish({ tmid: 'T1', supportId: 'EX0001', connected: true, at: 2000, facts });
      await eventually(async () => ((await read('T1'))?.node === 'A' ? true : undefined), 100, 100);
      // B notices the closed socket only now.
      await onB.disconnectLeftovers([{ tmid: 'T1', supportId: 'EX0001' }], 3000);
      expect(await read('T1')).toMatchObject({ node: 'A', connected: true, at: 2000 });

      // A dies with T1 connected; at its next start it marks T1 disconnected, the hello's facts kept.
      await onA.disconnectLeftovers([{ tmid: 'T1', supportId: 'EX0001' }], 4000);
      expect(await read('T1')).toMatchObject({ node: 'A', connected: false, at: 4000, facts });
      expect(onA.stats()).toMatchObject({ pending: 0 });
    } finally {
      await onA.stop();
      await onB.stop();
      await link.close();
    }
  });
});
