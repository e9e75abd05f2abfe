/**
 * Where a detection's report time goes in the shard, in one process: 50
 * devices' generated trails (seed 42, one detection per 100 events) in
 * batches of 20 per device, interleaved as the `report-latency` load scenario
 * delivers them, through the real ShardCore + Correlator (+ Sigma default
 * pack, fleet prevalence, analytics) over a temporary LMDB store, flushed
 * after every batch that created an alert (as the shard worker does) and
 * every 20 batches otherwise. Prints, median of the runs with min–max:
 * processBatch time of batches that create an alert and of those that do
 * not (mean and p99, µs: the difference is the alert's cost, mostly its
 * report), and the flush time. A shard-level stand-in for the load benchmark's
 * detection → report p99 that a shared machine's noise cannot swamp.
 * REPORT_BENCH_PROFILE=DIR writes a CPU profile of each measured run.
 * Run: node --expose-gc dist/bench/micro/report-build.bench.js [events] [runs ≥ 3]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from '@msgpack/msgpack';
import { compress } from 'zstd-napi';
import { createManualClock } from '../../core/clock.js';
import type { TrailEvent } from '../../core/contracts.js';
import { StreamingAnalytics } from '../../engine/analytics.js';
import { Correlator } from '../../engine/correlator.js';
import { createThreatIntel } from '../../engine/intel/index.js';
import { ShardCore } from '../../engine/shard-core.js';
import { createSigmaRuleSource } from '../../engine/sigma-rules.js';
import { SigmaStage } from '../../engine/sigma-stage.js';
import { openHotStore } from '../../storage/index.js';
import { benchPaths } from '../load/bench-paths.js';
import { machineNote } from '../load/runner.js';
import { fixtureEvents, isMain } from './micro-fixtures.js';
import { median } from '../spread.js';

const DEVICES = 50;
const BATCH = 20;

/** One run's figures, µs. */
export interface ReportBuildRun {
  alerts: number;
  alertBatchMeanUs: number;
  alertBatchP99Us: number;
  plainBatchMeanUs: number;
  plainBatchP99Us: number;
  flushMeanUs: number;
  flushP99Us: number;
}

function p99(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}
const mean = (xs: number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const round = (x: number): number => Math.round(x * 10) / 10;

export async function reportBuildRun(events: readonly TrailEvent[]): Promise<ReportBuildRun> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-report-build-'));
  const store = openHotStore({ dataDir: dir, mapSizeBytes: 1024 * 1024 * 1024 });
  try {
    const { tenant } = await store.tenants.create({ supportId: 'B1', name: 'bench', now: 0 });
    const tmids: string[] = [];
    for (let c = 0; c < DEVICES; c++) tmids.push((await store.devices.enroll(tenant, { computer: `BENCH-PC-${c}`, agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, 0)).device.tmid);
    const clock = createManualClock(Date.UTC(2024, 2, 12, 10));
    const intel = createThreatIntel(undefined);
    const sigma = new SigmaStage({ store, clock });
    sigma.setMatcher(createSigmaRuleSource({ defaultPack: true }).load(sigma.resolver).matcher);
    let alerts = 0;
    const correlator = new Correlator({ store, intel, clock, sigma, onAlert: () => alerts++ });
    const analytics = new StreamingAnalytics({ store, clock, intel });
    const core = new ShardCore({ store, index: 0, workers: 1, correlator, clock, analytics });
    core.recover();
    // Batches of 20 per device, round-robin over the devices (what 50 agents sending every second look like), committed first.
    const per = Math.ceil(events.length / DEVICES);
    const queues = tmids.map((_, c) => events.slice(c * per, (c + 1) * per));
    const ordered: { lsn: number; tmid: string; bytes: Uint8Array }[] = [];
    for (let offset = 0, lsn = 0; offset < per; offset += BATCH) {
      const round: Parameters<typeof store.log.commitBatches>[0][number][] = [];
      for (let c = 0; c < DEVICES; c++) {
        const chunk = queues[c]!.slice(offset, offset + BATCH);
        if (chunk.length === 0) continue;
        const bytes = encode(chunk);
        lsn++;
        round.push({ lsn, record: { tmid: tmids[c]!, id: lsn.toString(16).padStart(32, '0'), sentAt: 0, recvAt: 0, first: chunk[0]!.seq, last: chunk.at(-1)!.seq, n: chunk.length, z: compress(bytes) } });
        ordered.push({ lsn, tmid: tmids[c]!, bytes });
      }
      await store.log.commitBatches(round);
    }
    (globalThis as { gc?: () => void }).gc?.();
    const profileDir = process.env.REPORT_BENCH_PROFILE;
    const session = profileDir === undefined || profileDir === '' ? undefined : new Session();
    if (session !== undefined) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
    }
    const alertBatches: number[] = [];
    const plainBatches: number[] = [];
    const flushes: number[] = [];
    let n = 0;
    for (const b of ordered) {
      const before = alerts;
      const t0 = performance.now();
      core.processBatch(b.lsn, b.tmid, b.bytes, 0);
      const us = (performance.now() - t0) * 1000;
      (alerts > before ? alertBatches : plainBatches).push(us);
      if (alerts > before || ++n % 20 === 0) {
        const f0 = performance.now();
        await core.flush();
        flushes.push((performance.now() - f0) * 1000);
      }
    }
    await core.flush();
    if (session !== undefined && profileDir !== undefined) {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      mkdirSync(profileDir, { recursive: true });
      writeFileSync(join(profileDir, `report-build-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    }
    return {
      alerts,
      alertBatchMeanUs: round(mean(alertBatches)),
      alertBatchP99Us: round(p99(alertBatches)),
      plainBatchMeanUs: round(mean(plainBatches)),
      plainBatchP99Us: round(p99(plainBatches)),
      flushMeanUs: round(mean(flushes)),
      flushP99Us: round(p99(flushes)),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const count = Number(process.argv[2] ?? 100_000);
  const runs = Math.max(3, Number(process.argv[3] ?? 3));
  const events = fixtureEvents(count, DEVICES, 42, 0.01);
  const loadAverageAtStart = loadavg()[0]!;
  await reportBuildRun(events.slice(0, 5000)); // warm-up (and the pack's first compile)
  const all: ReportBuildRun[] = [];
  for (let r = 0; r < runs; r++) all.push(await reportBuildRun(events));
  const keys = Object.keys(all[0]!) as (keyof ReportBuildRun)[];
  const summary = Object.fromEntries(keys.map((k) => [k, { median: median(all.map((a) => a[k])), min: Math.min(...all.map((a) => a[k])), max: Math.max(...all.map((a) => a[k])) }])) as Record<keyof ReportBuildRun, { median: number; min: number; max: number }>;
  const line = (label: string, k: keyof ReportBuildRun): string => `  ${label.padEnd(34)} ${String(summary[k].median).padStart(9)} µs (min ${summary[k].min}, max ${summary[k].max})\n`;
  process.stdout.write(
    `report build in the shard: ${count.toLocaleString('en-US')} events, ${DEVICES} devices, batches of ${BATCH}, ${summary.alerts.median} alerts per run, ${runs} runs, load average ${loadAverageAtStart.toFixed(2)} at start\n` +
      line('batch that creates an alert, mean', 'alertBatchMeanUs') +
      line('batch that creates an alert, p99', 'alertBatchP99Us') +
      line('other batch, mean', 'plainBatchMeanUs') +
      line('other batch, p99', 'plainBatchP99Us') +
      line('flush, mean', 'flushMeanUs') +
      line('flush, p99', 'flushP99Us'),
  );
  const paths = benchPaths();
  mkdirSync(paths.resultsDir, { recursive: true });
  const startedAt = new Date();
  const file = join(paths.resultsDir, `report-build-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ startedAt: startedAt.toISOString(), machine: machineNote(), loadAverageAtStart, loadAverageAtEnd: loadavg()[0], events: count, devices: DEVICES, batch: BATCH, runs: all, summary }, null, 2)}\n`);
  process.stdout.write(`  report-build result: ${file}\n`);
}
