/**
 * Runs baseline (1) in the same benchmark run: starts the bare uWS server
 * (uws-baseline-server.ts) and drives it with the same load generator and
 * the same frames as kiseki. Two modes:
 * - `throughput`: closed loop (a new batch for every ack, `maxUnacked` in
 *   flight per agent) at the batch size kiseki saw, i.e. the most events/s the
 *   transport and this generator reach on this machine;
 * - `idle`: the scenario's fleet connects and sits idle; the result is the
 *   server's user-space memory per connection and the connect rate.
 */
import { spawn } from 'node:child_process';
import type { BenchPaths } from '../bench-paths.js';
import type { ProcessTracker } from '../kiseki-server.js';
import { waitExit } from '../kiseki-server.js';
import { diffCounters, startFleet } from '../load-generator.js';
import type { LatencyPercentiles } from '../latency-histogram.js';
import { coresBetween, readProcSample } from '../proc-stats.js';
import { KisekiError } from '../../../core/errors.js';

export type UwsBaselineResult =
  | { skipped: string }
  | {
      mode: 'throughput';
      agents: number;
      batchEvents: number;
      seconds: number;
      eventsPerSec: number;
      batchesPerSec: number;
      ackLatencyMs: LatencyPercentiles;
      serverCores: number;
      clientCores: number;
      serverRssMB: number;
    }
  | {
      mode: 'idle';
      agents: number;
      connected: number;
      connectPerSec: number;
      memoryPerAgentBytes: number;
      serverRssMB: number;
    };

export interface UwsBaselineOptions {
  paths: BenchPaths;
  tracker: ProcessTracker;
  mode: 'throughput' | 'idle';
  agents: number;
  agentsPerProcess: number;
  /** Events per batch (throughput mode). */
  batchEvents: number;
  maxUnacked: number;
  warmupSec: number;
  seconds: number;
  seed: number;
  connectConcurrency: number;
  log: (line: string) => void;
}

function startServer(paths: BenchPaths, tracker: ProcessTracker): Promise<{ pid: number; port: number; stop: () => Promise<void> }> {
  const child = tracker.track(spawn(process.execPath, [paths.uwsBaselineJs], { stdio: ['pipe', 'pipe', 'inherit'] }));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new KisekiError('ERR_BENCH_FAILED', { reason: 'the uWS baseline server did not start in time', timeoutMs: 15_000 }));
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new KisekiError('ERR_BENCH_FAILED', { reason: 'the uWS baseline server exited', code }));
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const { port } = JSON.parse(line) as { port: number };
      resolve({
        pid: child.pid ?? 0,
        port,
        stop: async () => {
          child.kill('SIGTERM');
          await waitExit(child, 5000);
        },
      });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the uWS baseline; never throws for an environment problem (the result says `skipped`). */
export async function runUwsBaseline(o: UwsBaselineOptions): Promise<UwsBaselineResult> {
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(o.paths, o.tracker);
  } catch (err) {
    return { skipped: `uWS baseline server: ${(err as Error).message}` };
  }
  const before = readProcSample(server.pid);
  const fleet = await startFleet({
    host: '127.0.0.1',
    port: server.port,
    path: '/agent/v1',
    enrollKey: 'baseline',
    seed: o.seed,
    mode: o.mode === 'throughput' ? 'closed' : 'open',
    eventsPerAgentPerSec: 0,
    batchIntervalMs: 1000,
    maxBatchEvents: Math.max(5000, o.batchEvents),
    closedBatchEvents: o.batchEvents,
    maxUnackedBatches: o.maxUnacked,
    maxBufferedBatches: 600,
    detectionRate: 0,
    connectConcurrency: o.connectConcurrency,
    inventoryOnEnroll: false,
    poolEvents: 16_384,
    helloTimeoutMs: 30_000,
    agents: o.agents,
    agentsPerProcess: o.agentsPerProcess,
    clientJs: o.paths.clientJs,
  });
  try {
    const connect = await Promise.race([fleet.connect(180_000), fleet.failed]);
    if (o.mode === 'idle') {
      await sleep(o.seconds * 1000);
      const after = readProcSample(server.pid);
      const n = connect.welcomed;
      return {
        mode: 'idle',
        agents: o.agents,
        connected: n,
        connectPerSec: connect.perSec,
        memoryPerAgentBytes: before && after && n > 0 ? Math.round((after.rssAnonBytes - before.rssAnonBytes) / n) : 0,
        serverRssMB: after ? Math.round(after.rssBytes / 1e6) : 0,
      };
    }
    fleet.generate(true);
    await sleep(o.warmupSec * 1000);
    const s0 = await fleet.snapshot();
    const p0 = readProcSample(server.pid);
    const c0 = s0.clientCpuSec;
    for (let t = 0; t < o.seconds; t++) {
      await sleep(1000);
      const p = fleet.progress();
      o.log(`[baseline uws] ${t + 1}/${o.seconds} s  ack p99 ${p.recentAck.percentiles().p99} ms`);
    }
    const s1 = await fleet.snapshot();
    const p1 = readProcSample(server.pid);
    fleet.generate(false);
    const d = diffCounters(s0.counters, s1.counters);
    const secs = (s1.atMs - s0.atMs) / 1000;
    return {
      mode: 'throughput',
      agents: o.agents,
      batchEvents: o.batchEvents,
      seconds: Math.round(secs * 100) / 100,
      eventsPerSec: Math.round(d.eventsAcked / secs),
      batchesPerSec: Math.round(d.batchesAcked / secs),
      ackLatencyMs: s1.ack.percentiles(),
      serverCores: Math.round(coresBetween(p0, p1) * 100) / 100,
      clientCores: Math.round(((s1.clientCpuSec - c0) / secs) * 100) / 100,
      serverRssMB: p1 ? Math.round(p1.rssBytes / 1e6) : 0,
    };
  } finally {
    await fleet.close();
    await server.stop();
  }
}
