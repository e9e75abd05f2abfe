/**
 * End to end over NATS JetStream (issue 19, first slice): nats-server, one
 * `kiseki start --role ingest` and one `--role shard` node as child
 * processes, the simulator against the ingest node. Every acked batch must be
 * stored and processed exactly once on the shard node and every detection
 * give exactly one alert, also when the shard node is killed with SIGKILL in
 * the middle of the run and restarted. Then the same on a 3-server NATS
 * cluster with 3 replicas. Then two ingest nodes: the agents, given both
 * URLs, enroll on the one without the tenant and move to the other when it
 * is killed with SIGKILL; exactly once again. Skips with an install hint
 * without nats-server.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimulationSummary } from '../../agent/index.js';
import type { InspectReport } from '../../storage/index.js';
import { eventually, runCli, startServer, type RunningServer } from '../support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats } from '../support/nats-server.js';

if (NATS_SERVER === undefined) console.warn(`cluster e2e ${NATS_SKIP_MESSAGE}`);

// Short leases so that a restarted or replacing shard node takes over within seconds.
process.env.KISEKI_LEASE_TTL_MS = '3000';

async function inspect(dir: string): Promise<InspectReport> {
  const r = await runCli(['inspect', '--json', '--data', dir]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as InspectReport;
}

async function alertCount(dir: string): Promise<number> {
  const r = await runCli(['alerts', '--support-id', 'EX0001', '--limit', '1000', '--json', '--data', dir]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { repeats: number }[]).reduce((n, a) => n + 1 + a.repeats, 0);
}

function agentUrl(port: number): string {
  return `ws://127.0.0.1:${port}/agent/v1`;
}

/** `urls`: one endpoint, or several comma-separated (the agents start on the first). */
function simulate(urls: string, key: string, dir: string, seconds: number): Promise<SimulationSummary> {
  return runCli(['simulate', '--url', urls, '--enroll-key', key, '--state', join(dir, 'sim-state.json'), '--seed', '11',
    '--agents', '10', '--eps', '40', '--duration', String(seconds), '--batch-ms', '250', '--detect-rate', '0.004']).then((r) => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as SimulationSummary;
  });
}

function node(role: 'ingest' | 'shard', nats: string, dir: string, id: string, replicas: number): Promise<RunningServer> {
  const args = ['--role', role, '--nats', nats, '--nats-replicas', String(replicas), '--data', dir, '--node-id', id, '--shards', '2'];
  return startServer(role === 'ingest' ? [...args, '--host', '127.0.0.1', '--ingest-port', '0'] : args, 180_000);
}

async function kill9(p: { child: ChildProcess; exited: Promise<unknown> }): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
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
  afterEach(async () => {
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

    await expectExactlyOnce(shardDir, [first, secondSummary]);
  }

  /** Every acked batch stored once (no second copy, no gap), every event counted once, one alert per detection. */
  async function expectExactlyOnce(shardDir: string, runs: SimulationSummary[]): Promise<void> {
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
    const running = simulate(`${agentUrl(b.ingestPort)},${agentUrl(a.ingestPort)}`, key, dir, 6);
    await eventually(async () => ((await inspect(shardDir)).batches >= 40 ? true : undefined), 600, 100);
    await kill9(b);
    const summary = await running;
    expect(summary.enrolled).toBe(10);
    expect(summary.reconnects).toBeGreaterThanOrEqual(10);
    expect(summary.batchesUnacked).toBe(0);
    expect(summary.fatalAgents).toBe(0);
    // A knows the ten devices, none of which enrolled there.
    expect((await inspect(dirA)).devices).toBe(10);
    await expectExactlyOnce(shardDir, [summary]);
  }, 600_000);
});
