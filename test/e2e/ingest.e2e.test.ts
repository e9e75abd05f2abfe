/**
 * End to end as a new user would run it: `kiseki start`, `kiseki tenant
 * create`, `kiseki simulate`, `kiseki inspect --json`; then the same with the
 * server killed with SIGKILL in the middle of the simulation.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import type { SimulationSummary } from '../../agent/index.js';
import { sampleValue, scrapeMetrics } from '../../bench/load/kiseki-server.js';
import type { InspectReport } from '../../storage/index.js';
import { CLI, eventually, runCli, startServer, useServerFixture } from '../support/cli.js';
import { startTcpRelay } from '../support/tcp-relay.js';

type Inspect = InspectReport;

type Summary = SimulationSummary;

async function inspect(dir: string): Promise<Inspect> {
  const r = await runCli(['inspect', '--json', '--data', dir]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Inspect;
}

async function createTenant(dir: string): Promise<string> {
  const r = await runCli(['tenant', 'create', '--name', 'Example Corp', '--support-id', 'EX0001', '--json', '--data', dir]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { enrollKey: string }).enrollKey;
}

function simulateArgs(port: number, key: string, dir: string, extra: string[]): string[] {
  return ['simulate', '--url', `ws://127.0.0.1:${port}/agent/v1`, '--enroll-key', key, '--state', join(dir, 'sim-state.json'), '--seed', '7', ...extra];
}

/** Batches the running server has stored since it started, from its /metrics. */
async function storedBatches(httpPort: number): Promise<number> {
  return sampleValue(await scrapeMetrics(httpPort), 'kiseki_ingest_batches_total', { result: 'stored' }) ?? 0;
}

/** Waits until the shards have counted every stored event, then returns the census. */
async function settled(dir: string): Promise<Inspect> {
  return eventually(async () => {
    const r = await inspect(dir);
    return r.eventsProcessed === r.events ? r : undefined;
  });
}

describe('kiseki end to end', () => {
  const fx = useServerFixture('kiseki-e2e-', { beforeEach, afterEach });

  it('stores every acked batch once, counts every event, and shuts down cleanly', async () => {
    const key = await createTenant(fx.dir);
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0']);
    const sim = await runCli(simulateArgs(fx.server.ingestPort, key, fx.dir, ['--agents', '20', '--eps', '50', '--duration', '3', '--batch-ms', '250', '--detect-rate', '0.003']));
    expect(sim.code, sim.stderr).toBe(0);
    const summary = JSON.parse(sim.stdout) as Summary;
    expect(summary.batchesAcked).toBeGreaterThan(0);
    expect(summary.batchesUnacked).toBe(0);
    expect(summary.batchesAcked).toBe(summary.batchesSent);

    const report = await settled(fx.dir);
    expect(report).toMatchObject({ tenants: 1, devices: 20, batches: summary.batchesAcked, batchIds: summary.batchesAcked, events: summary.eventsAcked, seqGaps: 0 });
    expect(Object.values(report.eventsByKind).reduce((a, b) => a + b, 0)).toBe(summary.eventsAcked);
    expect(report.eventsByKind['proc.start']).toBeGreaterThan(0);

    // Every simulated detection became an alert with a quick report, or was counted on one (72 h dedup).
    expect(summary.detectionsSent).toBeGreaterThan(0);
    const alerts = await eventually(async () => {
      const r = await runCli(['alerts', '--support-id', 'EX0001', '--limit', '1000', '--json', '--data', fx.dir]);
      const list = JSON.parse(r.stdout) as { id: string; repeats: number; state: string; verdict: string }[];
      return list.reduce((n, a) => n + 1 + a.repeats, 0) === summary.detectionsSent ? list : undefined;
    });
    const shown = await runCli(['report', '--alert', alerts[0]!.id, '--json', '--data', fx.dir]);
    const quick = (JSON.parse(shown.stdout) as { report: { sections: { id: string }[]; verdict: string } }).report;
    expect(quick.sections.map((x) => x.id)).toEqual(['origin', 'chain', 'descendants', 'filesWritten', 'registry', 'filesRead', 'network', 'attributes', 'processAccess', 'imageLoads', 'pipes']);
    expect(['black', 'gray', 'white']).toContain(quick.verdict);
    const text = await runCli(['report', '--alert', alerts[0]!.id, '--data', fx.dir]);
    expect(text.stdout).toContain('1. How the file came to be');
    expect(text.stdout).toContain('8. File attributes');

    const health = await fetch(`http://127.0.0.1:${fx.server.httpPort}/healthz`);
    const healthBody = await health.text();
    expect(health.status, healthBody).toBe(200);
    expect(JSON.parse(healthBody)).toMatchObject({ status: 'ok' });
    const metrics = await (await fetch(`http://127.0.0.1:${fx.server.httpPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`kiseki_ingest_batches_total\\{result="stored"\\} ${summary.batchesAcked}\\b`));

    // A second run reuses the identities in the state file: no new devices, seq continues without gaps.
    const again = await runCli(simulateArgs(fx.server.ingestPort, key, fx.dir, ['--agents', '20', '--eps', '50', '--duration', '1', '--batch-ms', '250']));
    const second = JSON.parse(again.stdout) as Summary;
    const after = await settled(fx.dir);
    expect(after).toMatchObject({ devices: 20, batches: summary.batchesAcked + second.batchesAcked, seqGaps: 0 });

    fx.server.child.kill('SIGTERM');
    expect(await fx.server.exited).toBe(0);
    expect(await inspect(fx.dir)).toMatchObject({ batches: after.batches, events: after.events, eventsProcessed: after.events });
  });

  it('loses no acked batch and stores none twice when the fx.server is killed with SIGKILL mid-stream', async () => {
    const key = await createTenant(fx.dir);
    // The simulator talks to a relay on an OS-chosen port that outlives the server, so the restarted
    // server can take any port (0) and no client is ever left connecting to a dead port of its own.
    const relay = await startTcpRelay();
    onTestFinished(() => relay.close());
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0']);
    relay.setTarget(fx.server.ingestPort);
    const port = relay.port;
    const sim = spawn(process.execPath, [CLI, ...simulateArgs(port, key, fx.dir, ['--agents', '10', '--eps', '200', '--duration', '600', '--batch-ms', '100', '--drain-timeout', '60', '--detect-rate', '0.001'])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let simOut = '';
    let simErr = '';
    sim.stdout.on('data', (d: Buffer) => (simOut += d.toString()));
    sim.stderr.on('data', (d: Buffer) => (simErr += d.toString()));
    const simDone = new Promise<number | null>((resolve) => sim.on('exit', (code) => resolve(code)));

    // Let batches flow, then kill the fx.server without warning. Progress is read from /metrics: a
    // process opening the data directory while the server writes can cost it a commit (docs/ARCHITECTURE.md).
    await eventually(async () => ((await storedBatches(fx.server!.httpPort)) >= 20 ? true : undefined));
    relay.setTarget(undefined);
    fx.server.child.kill('SIGKILL');
    await fx.server.exited;
    const atCrash = await inspect(fx.dir);
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0']);
    relay.setTarget(fx.server.ingestPort);
    // Generation runs until told to stop (no race with a fixed duration): once the restarted server
    // has stored new batches, a SIGTERM ends generation and the simulator drains what is unacked.
    await eventually(async () => ((await storedBatches(fx.server!.httpPort)) > 0 ? true : undefined));
    sim.kill('SIGTERM');

    expect(await simDone, simErr).toBe(0);
    const summary = JSON.parse(simOut) as Summary;
    expect(summary.reconnects).toBeGreaterThan(0);
    expect(summary.batchesUnacked).toBe(0);

    const report = await settled(fx.dir);
    expect(report.batches).toBeGreaterThan(atCrash.batches);
    expect(report).toMatchObject({ batches: summary.batchesAcked, batchIds: summary.batchesAcked, events: summary.eventsAcked, seqGaps: 0 });
    expect(report.eventsProcessed).toBe(summary.eventsAcked);
    // Alerts were replayed from the checkpoint too: each detection once, none twice.
    expect(summary.detectionsSent).toBeGreaterThan(0);
    await eventually(async () => {
      const r = await runCli(['alerts', '--support-id', 'EX0001', '--limit', '1000', '--json', '--data', fx.dir]);
      const list = JSON.parse(r.stdout) as { repeats: number }[];
      return list.reduce((n, a) => n + 1 + a.repeats, 0) === summary.detectionsSent ? true : undefined;
    });
  });
});
