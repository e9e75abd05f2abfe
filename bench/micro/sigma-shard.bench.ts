/**
 * Shard throughput with the Sigma default pack on and off, in one process:
 * 8 devices' generated trails (seed 42) in batches of 500 through the real
 * ShardCore + Correlator + SigmaStage over a temporary LMDB store, flushed
 * every 20 batches, runs alternating on / off. Events per CPU second of the
 * process (the machine is shared; wall time would count other work), median
 * of the runs. The shard-level stand-in for the load benchmark's "Sigma on
 * ≥ 80 % of Sigma off" when the machine is too loaded for `--scenario
 * saturate` to mean anything. Prints on, off (median, min–max) and the
 * on / off ratio of each back-to-back pair; writes bench/results/sigma-shard-<time>.json.
 * Run: node --expose-gc dist/bench/micro/sigma-shard.bench.js [events] [runs ≥ 3]
 * (SIGMA_BENCH_DEVICES, SIGMA_BENCH_BATCH: devices and events per batch, default 8 and 500).
 */
import { encode } from '@msgpack/msgpack';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManualClock } from '../../core/clock.js';
import { Correlator } from '../../engine/correlator.js';
import { ShardCore } from '../../engine/shard-core.js';
import { createSigmaRuleSource } from '../../engine/sigma-rules.js';
import { SigmaStage } from '../../engine/sigma-stage.js';
import { createThreatIntel } from '../../engine/intel/index.js';
import { openHotStore } from '../../storage/index.js';
import { benchPaths } from '../load/bench-paths.js';
import { mainThreadCpuSeconds } from '../load/proc-stats.js';
import { machineNote } from '../load/runner.js';
import { commitShardBatches, fixtureEvents, isMain } from './micro-fixtures.js';
import { spread } from '../spread.js';

/**
 * Devices and events per batch: 8 and 500 by default; SIGMA_BENCH_DEVICES=1000 SIGMA_BENCH_BATCH=50 is
 * closer to the load benchmark's fleet (each device's values are its own, its trail younger).
 */
const DEVICES = positiveIntEnv('SIGMA_BENCH_DEVICES', 8);
const BATCH_EVENTS = positiveIntEnv('SIGMA_BENCH_BATCH', 500);

function positiveIntEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return n;
}

/** One shard run over `events` with the default pack on or off: events per CPU and wall second, detections stored. */

export async function shardRun(sigmaOn: boolean, events: ReturnType<typeof fixtureEvents>): Promise<{ cpuEps: number; wallEps: number; detections: number; rules: number; usPerEventByThread: Record<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-sigma-shard-'));
  const store = openHotStore({ dataDir: dir, mapSizeBytes: 512 * 1024 * 1024 });
  try {
    const { tenant } = await store.tenants.create({ supportId: 'B1', name: 'bench', now: 0 });
    const tmids: string[] = [];
    for (let c = 0; c < DEVICES; c++) tmids.push((await store.devices.enroll(tenant, { computer: `BENCH-PC-${c}`, agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, 0)).device.tmid);
    const clock = createManualClock(Date.UTC(2024, 2, 12, 10));
    const sigma = sigmaOn ? new SigmaStage({ store, clock }) : undefined;
    if (sigma !== undefined) sigma.setMatcher(createSigmaRuleSource({ defaultPack: true }).load(sigma.resolver).matcher);
    // SIGMA_BENCH_HEAP_ONLY=1: the off runs keep a loaded pack alive, unused (what the rules' heap alone costs).
    const idle = !sigmaOn && process.env.SIGMA_BENCH_HEAP_ONLY === '1' ? createSigmaRuleSource({ defaultPack: true }).load({ process: () => undefined }) : undefined;
    const correlator = new Correlator({ store, intel: createThreatIntel(undefined), clock, ...(sigma === undefined ? {} : { sigma }) });
    const core = new ShardCore({ store, index: 0, workers: 1, correlator, clock });
    core.recover();
    // Batches prepared (encoded, committed to the log, interleaved) before the clock starts: the shard's work only is measured.
    const ordered = await commitShardBatches(store, tmids, events, 0, BATCH_EVENTS);
    // The rule load's garbage (YAML trees, 1.5 s of compiling) is a start-up cost, not the shard's per-event
    // one: collect it before the clock starts when run with --expose-gc (both modes alike).
    (globalThis as { gc?: () => void }).gc?.();
    // SIGMA_BENCH_PROFILE=DIR: a CPU profile of the measured loop only (not the rule load), one file per run.
    const profileDir = process.env.SIGMA_BENCH_PROFILE;
    const session = profileDir === undefined || profileDir === '' ? undefined : new Session();
    if (session !== undefined) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
    }
    const threads0 = mainThreadCpuSeconds();
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    let n = 0;
    // A flush per 10,000 events, whatever the batch size.
    const flushEvery = Math.max(1, Math.round(10_000 / BATCH_EVENTS));
    for (const b of ordered) {
      core.processBatch(b.lsn, b.tmid, b.bytes, 0);
      if (++n % flushEvery === 0) await core.flush();
    }
    await core.flush();
    const cpu = process.cpuUsage(cpu0);
    const threads = mainThreadCpuSeconds();
    // µs per event of the main thread (the shard's own work) and of the others (V8's GC helpers, LMDB's writer).
    const perEvent = (sec: number): number => Math.round((sec * 1e7) / events.length) / 10;
    const usPerEventByThread: Record<string, number> =
      threads0 === undefined || threads === undefined ? {} : { main: perEvent(threads.main - threads0.main), others: perEvent(threads.others - threads0.others) };
    const wall = (performance.now() - wall0) / 1000;
    const secs = (cpu.user + cpu.system) / 1e6;
    if (session !== undefined && profileDir !== undefined) {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      mkdirSync(profileDir, { recursive: true });
      writeFileSync(join(profileDir, `sigma-shard-${sigmaOn ? 'on' : 'off'}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    }
    if (idle !== undefined && idle.rules.length === 0) throw new Error('no rules');
    return { cpuEps: Math.round(events.length / secs), wallEps: Math.round(events.length / wall), detections: store.detections.count(), rules: sigma?.rules ?? 0, usPerEventByThread };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const count = Number(process.argv[2] ?? 100_000);
  const runs = Math.max(3, Number(process.argv[3] ?? 3));
  const events = fixtureEvents(count, DEVICES);
  const on: number[] = [];
  const off: number[] = [];
  const onWall: number[] = [];
  const offWall: number[] = [];
  const ratios: number[] = [];
  const threadsOn: Record<string, number>[] = [];
  const threadsOff: Record<string, number>[] = [];
  let last = { detections: 0, rules: 0 };
  const loadAverageAtStart = loadavg()[0]!;
  await shardRun(true, events.slice(0, 5000)); // warm-up (and the pack's first compile)
  for (let r = 0; r < runs; r++) {
    const a = await shardRun(true, events);
    last = a;
    on.push(a.cpuEps);
    onWall.push(a.wallEps);
    const b = await shardRun(false, events);
    process.stdout.write(`  pair ${r + 1}: µs per event by thread, on ${JSON.stringify(a.usPerEventByThread)}, off ${JSON.stringify(b.usPerEventByThread)}\n`);
    threadsOn.push(a.usPerEventByThread);
    threadsOff.push(b.usPerEventByThread);
    off.push(b.cpuEps);
    offWall.push(b.wallEps);
    // Each pair ran back to back, under the same neighbours: its ratio is the least disturbed figure.
    ratios.push(Math.round((1000 * a.cpuEps) / b.cpuEps) / 1000);
  }
  const mOn = spread(on);
  const mOff = spread(off);
  const ratio = spread(ratios);
  const fmt = (x: number): string => x.toLocaleString('en-US');
  process.stdout.write(
    `  shard, Sigma default pack on (${last.rules} rules): median ${fmt(mOn.median)} events/s per CPU second (min ${fmt(mOn.min)}, max ${fmt(mOn.max)}, ${runs} runs)\n` +
      `  shard, Sigma off:                          median ${fmt(mOff.median)} events/s per CPU second (min ${fmt(mOff.min)}, max ${fmt(mOff.max)})\n` +
      `  on / off: ${ratio.median} (median of the ${runs} back-to-back pairs; min ${ratio.min}, max ${ratio.max}); ${last.detections} detections per run; load average ${loadAverageAtStart.toFixed(2)} at start\n`,
  );
  const paths = benchPaths();
  mkdirSync(paths.resultsDir, { recursive: true });
  const startedAt = new Date();
  const file = join(paths.resultsDir, `sigma-shard-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const result = {
    startedAt: startedAt.toISOString(),
    machine: machineNote(),
    loadAverageAtEnd: loadavg()[0],
    events: count,
    runs,
    rules: last.rules,
    detections: last.detections,
    sigmaOnEventsPerCpuSec: on,
    sigmaOffEventsPerCpuSec: off,
    sigmaOnEventsPerWallSec: onWall,
    sigmaOffEventsPerWallSec: offWall,
    on: mOn,
    off: mOff,
    ratioPerPair: ratios,
    usPerEventByThreadOn: threadsOn,
    usPerEventByThreadOff: threadsOff,
    ratio,
  };
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`  ${JSON.stringify({ medianOn: mOn.median, medianOff: mOff.median, ratio: ratio.median, ratioMin: ratio.min, ratioMax: ratio.max })}\n  sigma-shard result: ${file}\n`);
}
