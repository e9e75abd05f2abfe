/**
 * Shard throughput with fleet prevalence (engine/prevalence-stage.ts) on and
 * off, in one process: 8 devices' generated trails (seed 42; about 7 % of
 * events carry a file hash) in batches of 500 through the real ShardCore +
 * Correlator (Sigma off in both, so only prevalence differs) over a
 * temporary LMDB store, flushed every 20 batches, runs alternating on / off.
 * Events per CPU second of the process (the machine is shared), median of
 * the runs and the on / off ratio of each back-to-back pair, with the
 * sightings recorded and the records written in the on runs.
 * Run: node --expose-gc dist/bench/micro/prevalence-shard.bench.js [events] [runs ≥ 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManualClock } from '../../core/clock.js';
import { Correlator } from '../../engine/correlator.js';
import { PrevalenceStage } from '../../engine/prevalence-stage.js';
import { ShardCore } from '../../engine/shard-core.js';
import { createThreatIntel } from '../../engine/intel/index.js';
import { openHotStore } from '../../storage/index.js';
import { commitShardBatches, fixtureEvents, isMain } from './micro-fixtures.js';
import { median } from '../spread.js';

const DEVICES = 8;
const RECV_AT = Date.UTC(2024, 2, 12, 10);

async function once(on: boolean, events: ReturnType<typeof fixtureEvents>): Promise<{ cpuEps: number; sightings: number; writes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-prevalence-shard-'));
  const store = openHotStore({ dataDir: dir, mapSizeBytes: 512 * 1024 * 1024 });
  try {
    const { tenant } = await store.tenants.create({ supportId: 'B1', name: 'bench', now: 0 });
    const tmids: string[] = [];
    for (let c = 0; c < DEVICES; c++) tmids.push((await store.devices.enroll(tenant, { computer: `BENCH-PC-${c}`, agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, 0)).device.tmid);
    const clock = createManualClock(RECV_AT);
    const prevalence = on ? new PrevalenceStage({ store }) : undefined;
    const correlator = new Correlator({ store, intel: createThreatIntel(undefined), clock, prevalence: prevalence ?? 'off' });
    const core = new ShardCore({ store, index: 0, workers: 1, correlator, clock });
    core.recover();
    // Batches prepared (encoded, committed to the log, interleaved) before the clock starts: the shard's work only is measured.
    const ordered = await commitShardBatches(store, tmids, events, RECV_AT);
    (globalThis as { gc?: () => void }).gc?.();
    const cpu0 = process.cpuUsage();
    let n = 0;
    for (const b of ordered) {
      core.processBatch(b.lsn, b.tmid, b.bytes, RECV_AT);
      if (++n % 20 === 0) await core.flush();
    }
    await core.flush();
    const cpu = process.cpuUsage(cpu0);
    const secs = (cpu.user + cpu.system) / 1e6;
    // A benchmark that records nothing proves nothing.
    if (prevalence !== undefined && prevalence.stats.writes === 0) throw new Error('prevalence recorded nothing');
    return { cpuEps: Math.round(events.length / secs), sightings: prevalence?.stats.sightings ?? 0, writes: prevalence?.stats.writes ?? 0 };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const count = Number(process.argv[2] ?? 100_000);
  const runs = Math.max(3, Number(process.argv[3] ?? 3));
  const events = fixtureEvents(count);
  const withHash = events.filter((e) => typeof e.sha256 === 'string').length;
  const on: number[] = [];
  const off: number[] = [];
  const ratios: number[] = [];
  let last = { sightings: 0, writes: 0 };
  const loadAtStart = loadavg()[0]!;
  await once(true, events.slice(0, 5000)); // warm-up
  for (let r = 0; r < runs; r++) {
    const a = await once(true, events);
    last = a;
    on.push(a.cpuEps);
    const b = await once(false, events);
    off.push(b.cpuEps);
    ratios.push(Math.round((1000 * a.cpuEps) / b.cpuEps) / 1000);
  }
  process.stdout.write(
    `${JSON.stringify({ events: count, eventsWithHash: withHash, runs, onEventsPerCpuSec: on, offEventsPerCpuSec: off, ratioPerPair: ratios, medianOn: median(on), medianOff: median(off), medianRatio: median(ratios), sightingsPerRun: last.sightings, recordWritesPerRun: last.writes, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg()[0] })}\n`,
  );
}
