/**
 * Shard throughput with streaming analytics on and off (issue 16: "analytics
 * on keeps ≥ 90 % of the same run with it off"), in one process: 8 devices'
 * generated trails (seed 42) in batches of 500 through the real ShardCore +
 * Correlator (Sigma off in both, so only analytics differs) over a temporary
 * LMDB store, flushed every 20 batches, runs alternating on / off. Events per
 * CPU second of the process (the machine is shared; wall time would count
 * other work), median of the runs with every run listed. The default rules
 * run (failed logons, deletion bursts, first-seen /16 — still learning, as
 * for a new fleet). Run: node --expose-gc dist/bench/micro/analytics-shard.bench.js [events] [runs]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManualClock } from '../../core/clock.js';
import { StreamingAnalytics } from '../../engine/analytics.js';
import { Correlator } from '../../engine/correlator.js';
import { ShardCore } from '../../engine/shard-core.js';
import { createThreatIntel } from '../../engine/intel/index.js';
import { openHotStore } from '../../storage/index.js';
import { commitShardBatches, fixtureEvents, isMain } from './micro-fixtures.js';
import { median } from '../spread.js';

const DEVICES = 8;
const RECV_AT = Date.UTC(2024, 2, 12, 10);

async function once(analyticsOn: boolean, events: ReturnType<typeof fixtureEvents>): Promise<{ cpuEps: number; wallEps: number; counted: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-analytics-shard-'));
  const store = openHotStore({ dataDir: dir, mapSizeBytes: 512 * 1024 * 1024 });
  try {
    const { tenant } = await store.tenants.create({ supportId: 'B1', name: 'bench', now: 0 });
    const tmids: string[] = [];
    for (let c = 0; c < DEVICES; c++) tmids.push((await store.devices.enroll(tenant, { computer: `BENCH-PC-${c}`, agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, 0)).device.tmid);
    const clock = createManualClock(RECV_AT);
    const correlator = new Correlator({ store, intel: createThreatIntel(undefined), clock });
    const analytics = analyticsOn ? new StreamingAnalytics({ store, clock }) : undefined;
    const core = new ShardCore({ store, index: 0, workers: 1, correlator, clock, ...(analytics === undefined ? {} : { analytics }) });
    core.recover();
    // Batches prepared (encoded, committed to the log, interleaved) before the clock starts: the shard's work only is measured.
    const ordered = await commitShardBatches(store, tmids, events, RECV_AT);
    (globalThis as { gc?: () => void }).gc?.();
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    let n = 0;
    for (const b of ordered) {
      core.processBatch(b.lsn, b.tmid, b.bytes, RECV_AT);
      if (++n % 20 === 0) await core.flush();
    }
    await core.flush();
    const cpu = process.cpuUsage(cpu0);
    const wall = (performance.now() - wall0) / 1000;
    const secs = (cpu.user + cpu.system) / 1e6;
    // The counters must hold every event when on (a benchmark that counts nothing proves nothing).
    let counted = 0;
    for (const t of tmids) counted += store.analytics.series('B1', t, 'events', ['2024-03-12'])[0]!;
    if (analyticsOn && counted !== events.length) throw new Error(`analytics counted ${counted} of ${events.length} events`);
    return { cpuEps: Math.round(events.length / secs), wallEps: Math.round(events.length / wall), counted };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const count = Number(process.argv[2] ?? 100_000);
  const runs = Number(process.argv[3] ?? 3);
  const events = fixtureEvents(count);
  const on: number[] = [];
  const off: number[] = [];
  const onWall: number[] = [];
  const offWall: number[] = [];
  await once(true, events.slice(0, 5000)); // warm-up
  for (let r = 0; r < runs; r++) {
    const a = await once(true, events);
    on.push(a.cpuEps);
    onWall.push(a.wallEps);
    const b = await once(false, events);
    off.push(b.cpuEps);
    offWall.push(b.wallEps);
  }
  const mOn = median(on);
  const mOff = median(off);
  process.stdout.write(
    `${JSON.stringify({ events: count, runs, analyticsOnEventsPerCpuSec: on, analyticsOffEventsPerCpuSec: off, analyticsOnEventsPerWallSec: onWall, analyticsOffEventsPerWallSec: offWall, medianOn: mOn, medianOff: mOff, ratio: Math.round((1000 * mOn) / mOff) / 1000 })}\n`,
  );
}
