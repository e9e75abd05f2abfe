/**
 * Several ingest nodes serving one fleet, against a real nats-server (skipped
 * with an install hint where it is missing): two ingest nodes in this process,
 * real WebSocket agents. A tenant created on one node's data directory enrolls
 * on the other; a device enrolled on one says hello on the other with its
 * token, and is told the next seq from the batches either node stored; a NATS
 * outage answers hellos with the retryable `storage_unavailable`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { connectAgent, helloFacts, makeBatch, type ReceivedFrame, type TestAgent } from '../test/support/agent-client.js';
import { createTenantIn } from '../test/support/temp-store.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { startIngestNode, type RunningIngestNode } from './ingest-node.js';

if (NATS_SERVER === undefined) console.warn(`cluster/directory.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

describe.skipIf(NATS_SERVER === undefined)('ingest nodes sharing a fleet through the directory bucket', () => {
  let dir = '';
  let nats: NatsServer;
  let enrollKey = '';
  const nodes: RunningIngestNode[] = [];
  const agents: TestAgent[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-directory-'));
    nats = await startNats(dir, 'n1', await freePort());
    // The tenant exists only in node A's data directory, as `kiseki tenant create --data A` leaves it.
    enrollKey = await createTenantIn(join(dir, 'a'));
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) a.close();
    for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  async function node(name: string): Promise<RunningIngestNode> {
    const config = loadConfig({
      dataDir: join(dir, name),
      ingest: { host: '127.0.0.1', port: 0 },
      cluster: { role: 'ingest', nats: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, nodeId: name },
    });
    const n = await startIngestNode({ config, logger, directoryLookupTimeoutMs: 1000 });
    nodes.push(n);
    return n;
  }

  async function hello(n: RunningIngestNode, frame: Record<string, unknown>): Promise<ReceivedFrame> {
    const agent = await connectAgent(`ws://127.0.0.1:${n.ingestPort}/agent/v1`);
    agents.push(agent);
    agent.send({ t: 'hello', ...helloFacts, ...frame });
    return agent.next();
  }

  /** The TMID and token of an enrollment welcome. */
  function credentials(welcome: ReceivedFrame): { tmid: string; token: string } {
    expect(welcome).toMatchObject({ t: 'welcome', tmid: expect.any(String), token: expect.any(String) });
    return { tmid: welcome.tmid as string, token: welcome.token as string };
  }

  it('enrolls on a node without the tenant, from the tenant another node published', async () => {
    await node('a');
    const b = await node('b');
    expect(b.store.tenants.get('EX0001')).toBeUndefined();
    const welcome = await hello(b, { enrollKey });
    expect(welcome).toMatchObject({ t: 'welcome', nextSeq: 1, token: expect.any(String) });
    expect(b.store.tenants.get('EX0001')?.name).toBe('Example Corp');
    expect(b.store.devices.get(welcome.tmid as string)?.supportId).toBe('EX0001');
    expect(await hello(b, { enrollKey: 'kek_not-a-key' })).toMatchObject({ t: 'error', code: 'enroll_key_invalid' });
  });

  it('authenticates on every node a device enrolled on one, and continues its seqs from the stream', async () => {
    const a = await node('a');
    const b = await node('b');
    const { tmid, token } = credentials(await hello(a, { enrollKey }));
    // Straight to B, before any batch: known there from the enrollment's publish.
    const onB = await connectAgent(`ws://127.0.0.1:${b.ingestPort}/agent/v1`);
    agents.push(onB);
    onB.send({ t: 'hello', tmid, token, ...helloFacts });
    expect(await onB.next()).toMatchObject({ t: 'welcome', tmid, nextSeq: 1 });
    expect(b.store.devices.get(tmid)?.tokenHash).toBe(a.store.devices.get(tmid)?.tokenHash);
    const batch = makeBatch(1, 5);
    onB.send(batch);
    expect(await onB.next()).toEqual({ t: 'ack', id: batch.id });
    // Back on A, which stored none of its batches: nextSeq comes from what B stored.
    expect(await hello(a, { tmid, token })).toMatchObject({ t: 'welcome', tmid, nextSeq: 6 });
    expect(await hello(b, { tmid, token: 'kdt_wrong' })).toMatchObject({ t: 'error', code: 'auth_failed' });
    expect(await hello(b, { tmid: '00000000-0000-0000-0000-000000000000', token })).toMatchObject({ t: 'error', code: 'auth_failed' });
  });

  it('answers hellos storage_unavailable while NATS is down, and serves them again once it is back', async () => {
    const a = await node('a');
    const b = await node('b');
    const { tmid, token } = credentials(await hello(a, { enrollKey }));
    const port = nats.clientPort;
    nats.child.kill('SIGKILL');
    await nats.exited;
    // Unknown on B, and its nextSeq unknown anywhere: both need NATS. The retryable code, the node still up.
    expect(await hello(b, { tmid, token })).toMatchObject({ t: 'error', code: 'storage_unavailable' });
    expect(await hello(b, { enrollKey })).toMatchObject({ t: 'error', code: 'storage_unavailable' });
    expect(await hello(a, { tmid, token })).toMatchObject({ t: 'error', code: 'storage_unavailable' });
    // The same server back on its port and store: the nodes reconnect and the agent's next hello is welcomed.
    nats = await startNats(dir, 'n1', port);
    const welcome = await (async () => {
      for (let i = 0; i < 100; i++) {
        const f = await hello(b, { tmid, token });
        if (f.t === 'welcome') return f;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error('no welcome within the bound');
    })();
    expect(welcome).toMatchObject({ t: 'welcome', tmid, nextSeq: 1 });
  });
});
