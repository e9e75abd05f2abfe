/**
 * End to end over NATS JetStream (issue 19, first slice): nats-server, one
 * `kiseki start --role ingest` and one `--role shard` node as child
 * processes, the simulator against the ingest node. Every acked batch must be
 * stored and processed exactly once on the shard node and every detection
 * give exactly one alert, also when the shard node is killed with SIGKILL in
 * the middle of the run and restarted. Then the same on a 3-server NATS
 * cluster with 3 replicas. Then two ingest nodes: the agents, given both
 * URLs, enroll on the one without the tenant and move to the other when it
 * is killed with SIGKILL; exactly once again. Then the issue's failure case:
 * a 3-server NATS cluster, two ingest and two shard nodes and an API node,
 * and a SIGKILL of one NATS server, of the agents' ingest node and of a
 * shard node at once, all three restarted; the API node answers throughout
 * and ends with every alert, its archive holds every stream batch once, and
 * its notifier sent one webhook per alert. Every case also reads NATS itself: the stream holds
 * each acked batch once, and `kiseki-alerts` one alert per detection. Skips
 * with an install hint without nats-server.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimulationSummary } from '../../agent/index.js';
import { alertKey, readClusterState, type ClusterState } from '../../cluster/index.js';
import { virtualShardOf } from '../../core/vshard.js';
import { openHotStore, type InspectReport } from '../../storage/index.js';
import { eventually, runCli, startServer, type RunningServer } from '../support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats } from '../support/nats-server.js';
import { startTestReceiver } from '../../notify/test-support.js';

if (NATS_SERVER === undefined) console.warn(`cluster e2e ${NATS_SKIP_MESSAGE}`);

// Short leases so that a restarted or replacing shard node takes over within seconds.
process.env.KISEKI_LEASE_TTL_MS = '3000';

async function inspect(dir: string): Promise<InspectReport> {
  const r = await runCli(['inspect', '--json', '--data', dir]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as InspectReport;
}

async function localAlerts(dir: string): Promise<{ id: string; repeats: number }[]> {
  const r = await runCli(['alerts', '--support-id', 'EX0001', '--limit', '1000', '--json', '--data', dir]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { id: string; repeats: number }[];
}

async function alertCount(dir: string): Promise<number> {
  return (await localAlerts(dir)).reduce((n, a) => n + 1 + a.repeats, 0);
}

/** Detections counted by a list of alerts: each alert, plus the repeats folded into it. */
function detectionsOf(alerts: Iterable<{ repeats: number }>): number {
  let n = 0;
  for (const a of alerts) n += 1 + a.repeats;
  return n;
}

function agentUrl(port: number): string {
  return `ws://127.0.0.1:${port}/agent/v1`;
}

/** `urls`: one endpoint, or several comma-separated (the agents start on the first). */
/**
 * The ten agents enrolled on B and, after B's SIGKILL, every one reconnected and finished on A with nothing
 * unacked; A, where none of them enrolled, knows the ten devices.
 */
async function expectAgentsMovedTo(dirA: string, summary: SimulationSummary): Promise<void> {
  expect(summary.enrolled).toBe(10);
  expect(summary.reconnects).toBeGreaterThanOrEqual(10);
  expect(summary.batchesUnacked).toBe(0);
  expect(summary.fatalAgents).toBe(0);
  expect((await inspect(dirA)).devices).toBe(10);
}

function simulate(urls: string, key: string, dir: string, seconds: number): Promise<SimulationSummary> {
  return runCli(['simulate', '--url', urls, '--enroll-key', key, '--state', join(dir, 'sim-state.json'), '--seed', '11',
    '--agents', '10', '--eps', '40', '--duration', String(seconds), '--batch-ms', '250', '--detect-rate', '0.004']).then((r) => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as SimulationSummary;
  });
}

function node(role: 'ingest' | 'shard' | 'api', nats: string, dir: string, id: string, replicas: number, shards = 2, extra: string[] = []): Promise<RunningServer> {
  const args = ['--role', role, '--nats', nats, '--nats-replicas', String(replicas), '--data', dir, '--node-id', id, '--shards', String(shards), ...extra];
  const listen = role === 'ingest' ? ['--host', '127.0.0.1', '--ingest-port', '0'] : role === 'api' ? ['--host', '127.0.0.1', '--http-port', '0'] : [];
  return startServer([...args, ...listen], 180_000);
}

/** An operator's bearer token on an API node (the user was created on its data directory; first password changed). */
async function operatorToken(base: string): Promise<string> {
  const login = (await (await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'op.api', password: 'first-pass' }) })).json()) as { token: string };
  const changed = await fetch(`${base}/api/v1/auth/password`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` },
    body: JSON.stringify({ currentPassword: 'first-pass', newPassword: 'second-pass' }),
  });
  expect(changed.status).toBe(204);
  return login.token;
}

/**
 * Asks the API node for the tenant's alerts and for its health every 250 ms
 * until stopped; resolves with every status it got (a request that failed or
 * took over 10 s counts as 0).
 */
function pollApi(base: string, token: string): { stop(): Promise<number[]> } {
  const statuses: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const path of ['/api/v1/alerts?supportId=EX0001&limit=1000', '/healthz']) {
        const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
        statuses.push(r?.status ?? 0);
        await r?.arrayBuffer().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return statuses;
    },
  };
}

async function kill9(p: { child: ChildProcess; exited: Promise<unknown> }): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

/**
 * The stream is the store of record of raw batches: it holds each acked batch
 * exactly once (as many messages as distinct batch ids as acked batches), and
 * `kiseki-alerts` holds one alert per detection sent. Waits (bounded) until
 * the bucket has caught up with the detections.
 */
async function expectStreamAndBucket(natsUrl: string, runs: SimulationSummary[], nodes: RunningServer[] = []): Promise<ClusterState> {
  const acked = runs.reduce((n, r) => n + r.batchesAcked, 0);
  const detections = runs.reduce((n, r) => n + r.detectionsSent, 0);
  let seen = 0;
  await eventually(async () => {
    const st = await readClusterState({ servers: natsUrl, parts: ['alerts'] });
    seen = detectionsOf([...st.alerts.values()].map((e) => e.alert));
    return seen >= detections ? true : undefined;
  }, 600, 200).catch((err: unknown) => {
    // What the shard nodes logged says why (a publisher failing, a checkpoint waiting, a batch refused).
    const logs = nodes.map((n, i) => `--- node ${i} stderr (last 4000 chars):\n${n.stderr().slice(-4000)}`).join('\n');
    throw new Error(`kiseki-alerts counts ${seen} of ${detections} detections (${String(err)})\n${logs}`);
  });
  const state = await readClusterState({ servers: natsUrl });
  expect(state.streamMessages).toBe(acked);
  expect(state.batches).toHaveLength(acked);
  expect(new Set(state.batches.map((b) => b.id)).size).toBe(acked);
  expect(state.batches.reduce((n, b) => n + b.eventCount, 0)).toBe(runs.reduce((n, r) => n + r.eventsAcked, 0));
  // One key per alert id, and every detection counted once over the bucket.
  for (const [key, entry] of state.alerts) expect(key).toBe(alertKey(entry.alert.id));
  expect(detectionsOf([...state.alerts.values()].map((e) => e.alert))).toBe(detections);
  return state;
}

/**
 * Waits (bounded) until the stream holds `messages` batches, read from NATS
 * itself so that a slow shard node does not delay the kill that follows; the
 * kill must land while the simulation still runs (else no agent reconnects).
 */
async function untilStreamHolds(natsUrl: string, messages: number, simulation: Promise<unknown>): Promise<void> {
  let ended = false;
  void simulation.finally(() => (ended = true)).catch(() => undefined);
  await eventually(async () => ((await readClusterState({ servers: natsUrl, parts: [] })).streamMessages >= messages ? true : undefined), 600, 100);
  if (ended) throw new Error(`the simulation ended before the stream held ${messages} batches: this machine is too slow for the case's timing`);
}

/** Waits until the shard node stored `batches` batches and processed all their events (bounded). */
function settled(dir: string, batches: number): Promise<InspectReport> {
  return eventually(async () => {
    const r = await inspect(dir);
    return r.batches >= batches && r.eventsProcessed === r.events ? r : undefined;
  }, 600, 200);
}

describe.skipIf(NATS_SERVER === undefined)('cluster over NATS JetStream', () => {
  let dir = '';
  const procs: { child: ChildProcess; exited: Promise<unknown> }[] = [];
  /** Pollers of an API node: stopped after each case, also one that failed before stopping its own. */
  const pollers: { stop(): Promise<number[]> }[] = [];
  const receivers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const p of pollers.splice(0)) await p.stop();
    for (const r of receivers.splice(0)) await r.close();
    for (const p of procs.splice(0)) await kill9(p);
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  async function run(natsUrl: string, replicas: number): Promise<void> {
    const ingestDir = join(dir, 'ingest');
    const shardDir = join(dir, 'shard');
    const t = await runCli(['tenant', 'create', '--name', 'Example Corp', '--support-id', 'EX0001', '--json', '--data', ingestDir]);
    expect(t.code, t.stderr).toBe(0);
    const key = (JSON.parse(t.stdout) as { enrollKey: string }).enrollKey;
    const ingest = await node('ingest', natsUrl, ingestDir, 'i1', replicas);
    procs.push(ingest);
    let shard = await node('shard', natsUrl, shardDir, 's1', replicas);
    procs.push(shard);

    // A run, then SIGKILL of the shard node while a second run is acked by ingest alone, then its restart.
    const first = await simulate(agentUrl(ingest.ingestPort), key, dir, 3);
    expect(first.batchesUnacked).toBe(0);
    const second = simulate(agentUrl(ingest.ingestPort), key, dir, 3);
    await eventually(async () => ((await inspect(shardDir)).batches > first.batchesAcked ? true : undefined), 600, 100);
    await kill9(shard);
    const secondSummary = await second;
    expect(secondSummary.batchesUnacked).toBe(0);
    shard = await node('shard', natsUrl, shardDir, 's1', replicas);
    procs.push(shard);

    await expectExactlyOnce(shardDir, [first, secondSummary], natsUrl);
  }

  /** Every acked batch stored once (no second copy, no gap), every event counted once, one alert per detection. */
  async function expectExactlyOnce(shardDir: string, runs: SimulationSummary[], natsUrl: string): Promise<void> {
    const acked = runs.reduce((n, r) => n + r.batchesAcked, 0);
    const events = runs.reduce((n, r) => n + r.eventsAcked, 0);
    const report = await settled(shardDir, acked);
    expect(report).toMatchObject({ devices: 10, batches: acked, batchIds: acked, events, seqGaps: 0, eventsProcessed: events });
    expect(Object.values(report.eventsByKind).reduce((a, b) => a + b, 0)).toBe(events);
    const detections = runs.reduce((n, r) => n + r.detectionsSent, 0);
    expect(detections).toBeGreaterThan(0);
    // Every detection gives exactly one alert (or is counted on one): never two.
    const alerts = await eventually(async () => {
      const n = await alertCount(shardDir);
      return n >= detections ? n : undefined;
    }, 300, 200);
    expect(alerts).toBe(detections);
    // The same alerts, once each, in the shared bucket.
    const state = await expectStreamAndBucket(natsUrl, runs);
    expect([...state.alerts.values()].map((e) => e.alert.id).sort()).toEqual((await localAlerts(shardDir)).map((a) => a.id).sort());
  }

  it('stores and processes every acked batch once across a SIGKILL of the shard node (one NATS server)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-cluster-'));
    const nats = await startNats(dir, 'n1', await freePort());
    procs.push(nats);
    await run(`nats://127.0.0.1:${nats.clientPort}`, 1);
  }, 600_000);

  it('does the same on a 3-server NATS cluster with 3 replicas', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-cluster3-'));
    const client = [await freePort(), await freePort(), await freePort()];
    const route = [await freePort(), await freePort(), await freePort()];
    const servers = await Promise.all([0, 1, 2].map((i) => startNats(dir, `n${i + 1}`, client[i]!, { port: route[i]!, routes: route.filter((_, j) => j !== i) })));
    procs.push(...servers);
    await run(client.map((p) => `nats://127.0.0.1:${p}`).join(','), 3);
  }, 600_000);

  it('moves the agents to the surviving ingest node across a SIGKILL of theirs, storing every acked batch once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-cluster2i-'));
    const nats = await startNats(dir, 'n1', await freePort());
    procs.push(nats);
    const natsUrl = `nats://127.0.0.1:${nats.clientPort}`;
    const [dirA, dirB, shardDir] = [join(dir, 'ingest-a'), join(dir, 'ingest-b'), join(dir, 'shard')];
    // The tenant exists on A's data directory only; A publishes it to the directory bucket at start.
    const t = await runCli(['tenant', 'create', '--name', 'Example Corp', '--support-id', 'EX0001', '--json', '--data', dirA]);
    expect(t.code, t.stderr).toBe(0);
    const key = (JSON.parse(t.stdout) as { enrollKey: string }).enrollKey;
    const a = await node('ingest', natsUrl, dirA, 'ia', 1);
    procs.push(a);
    const b = await node('ingest', natsUrl, dirB, 'ib', 1);
    procs.push(b);
    procs.push(await node('shard', natsUrl, shardDir, 's1', 1));

    // B first: the agents enroll on B (the tenant from the bucket) and stream there until B is killed, then say
    // hello to A with the token B gave them (the device from the bucket) and resend what B had not acked.
    const running = simulate(`${agentUrl(b.ingestPort)},${agentUrl(a.ingestPort)}`, key, dir, 12);
    await untilStreamHolds(natsUrl, 40, running);
    await kill9(b);
    const summary = await running;
    await expectAgentsMovedTo(dirA, summary);
    await expectExactlyOnce(shardDir, [summary], natsUrl);
  }, 600_000);

  it('loses nothing and doubles nothing across a SIGKILL of a NATS server, the agents\' ingest node and a shard node (3 servers, 2 ingest, 2 shard nodes)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-cluster-fail-'));
    const client = [await freePort(), await freePort(), await freePort()];
    const route = [await freePort(), await freePort(), await freePort()];
    const startMember = (i: number) => startNats(dir, `n${i + 1}`, client[i]!, { port: route[i]!, routes: route.filter((_, j) => j !== i) });
    const servers = await Promise.all([0, 1, 2].map(startMember));
    procs.push(...servers);
    const natsUrl = client.map((p) => `nats://127.0.0.1:${p}`).join(',');
    const [dirA, dirB, dirS1, dirS2, dirApi] = [join(dir, 'ingest-a'), join(dir, 'ingest-b'), join(dir, 'shard-1'), join(dir, 'shard-2'), join(dir, 'api')];
    const t = await runCli(['tenant', 'create', '--name', 'Example Corp', '--support-id', 'EX0001', '--json', '--data', dirA]);
    expect(t.code, t.stderr).toBe(0);
    const key = (JSON.parse(t.stdout) as { enrollKey: string }).enrollKey;
    // A user made in the API node's directory before its start (shared at start through kiseki-identity); the tenant,
    // devices and alerts come from the buckets.
    const u = await runCli(['user', 'create', '--id', 'op.api', '--role', 'operator', '--password', 'first-pass', '--data', dirApi]);
    expect(u.code, u.stderr).toBe(0);
    const started = async (p: Promise<RunningServer>): Promise<RunningServer> => {
      const r = await p;
      procs.push(r);
      return r;
    };
    // One shard worker per node: seven processes share two cores.
    // allSettled: when one fails to start, the others are in `procs` before afterEach kills them.
    const starts = await Promise.allSettled([
      started(node('ingest', natsUrl, dirA, 'ia', 3, 1)),
      started(node('ingest', natsUrl, dirB, 'ib', 3, 1)),
      started(node('shard', natsUrl, dirS1, 's1', 3, 1)),
      // The cluster's archive too: it copies the whole stream into its own log for the cold tier.
      started(node('api', natsUrl, dirApi, 'api1', 3, 1, ['--archive'])),
    ]);
    const [a, b, s1, apiNode] = starts.map((r) => {
      if (r.status === 'rejected') throw r.reason;
      return r.value;
    }) as [RunningServer, RunningServer, RunningServer, RunningServer];
    const apiBase = `http://127.0.0.1:${apiNode.httpPort}`;
    const token = await operatorToken(apiBase);
    const poller = pollApi(apiBase, token);
    pollers.push(poller);
    // People are told: a webhook for every new alert, set on the API node once it has copied the tenant.
    const hook = await startTestReceiver();
    receivers.push(hook);
    await eventually(async () => {
      const r = await fetch(`${apiBase}/api/v1/tenants/EX0001/notifications`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ recipients: [{ id: 'soc', channel: 'webhook', to: hook.url, events: ['alert.new'], verdicts: ['black', 'gray', 'white'] }], maxPerHour: 10_000 }),
      });
      return r.status === 200 ? true : undefined;
    }, 300, 200);
    let s2 = await started(node('shard', natsUrl, dirS2, 's2', 3, 1));
    const leases = (): Promise<Record<string, number>> => readClusterState({ servers: natsUrl, parts: ['leases'] }).then((st) => st.leases);
    // The second shard node takes half the virtual shards from the first through the leases.
    const halves = async (): Promise<true | undefined> => {
      const l = await leases();
      return l.s1 === 128 && l.s2 === 128 ? true : undefined;
    };
    await eventually(halves, 300, 200);

    // The agents start on B and move to A when B dies.
    const running = simulate(`${agentUrl(b.ingestPort)},${agentUrl(a.ingestPort)}`, key, dir, 20);
    await untilStreamHolds(natsUrl, 60, running);
    await eventually(async () => ((await inspect(dirS2)).batches >= 10 ? true : undefined), 600, 100);
    await Promise.all([kill9(servers[1]!), kill9(b), kill9(s2)]);
    // NATS member and ingest node back at once; the shard node only after the first one took its virtual shards
    // over (a crash takeover: s1 replays from s2's last checkpoints what s2 had processed after them).
    procs.push(await startMember(1));
    await started(node('ingest', natsUrl, dirB, 'ib', 3, 1));
    await eventually(async () => ((await leases()).s1 === 256 ? true : undefined), 300, 200);
    s2 = await started(node('shard', natsUrl, dirS2, 's2', 3, 1));
    const summary = await running;
    await expectAgentsMovedTo(dirA, summary);
    await eventually(halves, 300, 200);

    // Both shard nodes have processed everything they stored; together they cover every acked event.
    const reports = await eventually(async () => {
      const r = [await inspect(dirS1), await inspect(dirS2)];
      return r.every((x) => x.eventsProcessed === x.events) && r[0]!.batches + r[1]!.batches >= summary.batchesAcked ? r : undefined;
    }, 600, 200);
    expect(reports[0]!.eventsProcessed + reports[1]!.eventsProcessed).toBeGreaterThanOrEqual(summary.eventsAcked);
    // The stream holds each acked batch once; the bucket one alert per detection.
    const state = await expectStreamAndBucket(natsUrl, [summary], [s1, s2]);
    // Stopped (SIGTERM: checkpoints, last flush, last publish) so that their stores are read at rest.
    for (const p of [s1, s2]) p.child.kill('SIGTERM');
    expect(await Promise.all([s1.exited, s2.exited])).toEqual([0, 0]);
    const stores = [dirS1, dirS2].map((d) => openHotStore({ dataDir: d, mapSizeBytes: 1024 * 1024 * 1024 }));
    try {
      // Every batch of the stream stored and processed (its virtual shard's checkpoint passed it) on at least one node.
      const unprocessed = state.batches.filter(
        (batch) =>
          !stores.some((st) => {
            const owner = st.log.batchIdOwner(batch.id);
            return owner !== undefined && owner[0] <= st.shardState.checkpoint(virtualShardOf(batch.tmid));
          }),
      );
      expect(unprocessed).toEqual([]);
      // Every alert either node committed is in the bucket, under the one key of its id; nothing else is.
      const local = new Set<string>();
      for (const st of stores) for (const al of st.alerts.scanAll()) local.add(al.id);
      const after = await readClusterState({ servers: natsUrl });
      expect([...after.alerts.values()].map((e) => e.alert.id).sort()).toEqual([...local].sort());
      expect(detectionsOf([...after.alerts.values()].map((e) => e.alert))).toBe(summary.detectionsSent);
    } finally {
      for (const st of stores) await st.close();
    }

    // The API node answered every request throughout, and lists the bucket's alerts: one per detection.
    const statuses = await poller.stop();
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const get = (path: string): Promise<Response> => fetch(`${apiBase}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const listed = await eventually(async () => {
      const body = (await (await get('/api/v1/alerts?supportId=EX0001&limit=1000')).json()) as { items: { id: string; repeats: number }[] };
      return detectionsOf(body.items) === summary.detectionsSent ? body.items : undefined;
    }, 300, 200);
    expect(listed.map((x) => x.id).sort()).toEqual([...state.alerts.values()].map((e) => e.alert.id).sort());
    // An alert's report came with it; the devices and the tenant too.
    const reported = [...state.alerts.values()].find((e) => e.report !== undefined);
    if (reported !== undefined) {
      const view = (await (await get(`/api/v1/alerts/${reported.alert.id}`)).json()) as { revisions: { revision: number }[] };
      expect(view.revisions.map((r) => r.revision)).toContain(reported.report!.revision);
    }
    const devices = (await (await get('/api/v1/devices?limit=100')).json()) as { items: unknown[] };
    expect(devices.items).toHaveLength(10);
    // A command for a device that went away: accepted once kiseki-commands holds it, queued for its next hello
    // (delivery to a connected agent: cluster/commands-sync.test.ts).
    const tmid = (devices.items[0] as { tmid: string }).tmid;
    const isolate = await fetch(`${apiBase}/api/v1/devices/${encodeURIComponent(tmid)}/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ kind: 'isolate', args: { allow: [] } }),
    });
    expect(isolate.status).toBe(202);
    const commandId = ((await isolate.json()) as { id: string }).id;
    expect(((await (await get(`/api/v1/commands/${commandId}`)).json()) as { state: string }).state).toBe('queued');

    // One webhook per alert, none twice: takeover replays re-create alert ids the bucket and the copy already hold.
    const notified = (): string[] =>
      hook.hooks.flatMap((h) => (JSON.parse(h.body) as { events: { kind: string; alertId?: string }[] }).events.filter((e) => e.kind === 'alert.new').map((e) => e.alertId ?? ''));
    const bucketIds = [...state.alerts.values()].map((e) => e.alert.id).sort();
    expect(bucketIds.length).toBeGreaterThan(0);
    await eventually(async () => (new Set(notified()).size >= bucketIds.length ? true : undefined), 600, 200);
    expect(notified().sort()).toEqual(bucketIds);

    // The archive copied every batch of the stream through the SIGKILLs, once each: what its day close archives.
    await eventually(async () => {
      const health = (await (await fetch(`${apiBase}/healthz`)).json()) as { archive: { streamSeq: number; pendingBatches: number } };
      return health.archive.streamSeq >= state.streamMessages && health.archive.pendingBatches === 0 ? true : undefined;
    }, 600, 200);
    apiNode.child.kill('SIGTERM');
    expect(await apiNode.exited).toBe(0);
    const archive = openHotStore({ dataDir: dirApi, mapSizeBytes: 1024 * 1024 * 1024 });
    try {
      expect(archive.log.lastLsn()).toBe(state.batches.length);
      expect(state.batches.filter((batch) => archive.log.batchIdOwner(batch.id)?.[1] !== batch.tmid)).toEqual([]);
    } finally {
      await archive.close();
    }
  }, 600_000);
});
