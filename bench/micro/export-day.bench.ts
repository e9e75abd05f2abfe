/**
 * A day close at scale, end to end through the product code: a temporary hot
 * store holding one collection day of `agents` simulated PCs (seeded trail
 * generator, batches of 200 events, MessagePack + zstd as ingest stores
 * them), then, in a fresh child process so its peak RSS is the build's own:
 *
 *   1. buildDayArchive on one thread (decode, JSON lines, deflate-6 inner zips,
 *      the daily zip, the Parquet file): events/s, zip MB/s, Parquet MB;
 *   2. a 30-day log spot of that day, copied out of the cold archive
 *      (STORE of already-compressed inner zips): outer zip MB/s.
 *
 * Then, for the breakdown, one pass with only decode + Parquet and one with only
 * decode + JSON lines + inner zips.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/micro/export-day.bench.js [agents=1000] [eventsPerAgent=1000] [rowGroupRows]
 */
import { encode } from '@msgpack/msgpack';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compress } from 'zstd-napi';
import { dayWindow } from '../../export/collection-day.js';
import { EXPORT_DEFAULTS } from '../../export/config.js';
import { batchInWindow, decodeEvents, deviceLsns, innerZipOf, lsnWindow, tenantDevices } from '../../export/hot-source.js';
import { ParquetDayWriter } from '../../export/parquet-writer.js';
import { buildDayArchive } from '../../export/day-archive.js';
import { buildSpot30 } from '../../export/spot-jobs.js';
import { jobFilesDir } from '../../export/jobs.js';
import { openHotStore, type BatchToCommit, type HotStore } from '../../storage/index.js';
import { createTrailGenerator } from '../../agent/index.js';
import { isMain } from './micro-fixtures.js';

const DAY = '2026-01-05';
const BATCH = 200;
const MAP_SIZE = 8 * 1024 * 1024 * 1024;

async function fill(dir: string, agents: number, perAgent: number): Promise<{ events: number; batches: number; lmdbBytes: number }> {
  const store = openHotStore({ dataDir: dir, mapSizeBytes: MAP_SIZE });
  await store.tenants.save({ supportId: 'BENCH01', name: 'bench', enrollKeyHash: '0'.repeat(64), createdAt: 0 });
  const { fromMs } = dayWindow(DAY);
  const gens = Array.from({ length: agents }, (_, a) => createTrailGenerator({ seed: a + 1, computer: `PC-${String(a).padStart(4, '0')}` }));
  const tmids = gens.map((_, a) => `${a.toString(16).padStart(8, '0').toUpperCase()}-0000-4000-8000-000000000000`);
  for (let a = 0; a < agents; a++) {
    await store.devices.save({ tmid: tmids[a]!, supportId: 'BENCH01', computer: `PC-${String(a).padStart(4, '0')}`, agentVersion: '1', os: 'Windows 11', ips: [], macs: [], tokenHash: '0'.repeat(64), firstSeen: 0, lastSeen: 0, connected: false });
  }
  const rounds = Math.ceil(perAgent / BATCH);
  // Spread the batches over the collection day, round by round across agents (as they arrive).
  const stepMs = Math.floor((86_400_000 - 60_000) / (rounds * agents));
  let lsn = 1;
  let events = 0;
  for (let r = 0; r < rounds; r++) {
    let group: BatchToCommit[] = [];
    for (let a = 0; a < agents; a++) {
      const at = fromMs + 30_000 + (r * agents + a) * stepMs;
      const first = r * BATCH + 1;
      const evs = gens[a]!.next(BATCH, first, at - 1000);
      const tmid = tmids[a]!;
      group.push({ lsn: lsn++, record: { tmid, id: lsn.toString(16).padStart(32, '0'), sentAt: at - 800, recvAt: at, first, last: first + BATCH - 1, n: BATCH, z: compress(encode(evs), { compressionLevel: 1 }) } });
      events += BATCH;
      if (group.length === 250) {
        await store.log.commitBatches(group);
        group = [];
      }
    }
    if (group.length > 0) await store.log.commitBatches(group);
  }
  await store.close();
  return { events, batches: lsn - 1, lmdbBytes: statSync(join(dir, 'kiseki.lmdb')).size + statSync(join(dir, 'log.lmdb')).size };
}

/** One pass over the day's batches with only part of the work: decode + Parquet, or decode + inner zips. */
async function partial(store: HotStore, dir: string, part: 'parquet' | 'inner', rowGroupRows: number): Promise<number> {
  const { fromMs, toMs } = dayWindow(DAY);
  const window = lsnWindow(store, fromMs, toMs);
  const w = part === 'parquet' ? new ParquetDayWriter(join(dir, 'partial.parquet'), { rowGroupRows }) : undefined;
  let events = 0;
  const t0 = performance.now();
  for (const d of tenantDevices(store, 'BENCH01')) {
    for (const lsn of deviceLsns(store, d.tmid, window)) {
      const b = batchInWindow(store, lsn, fromMs, toMs)!;
      const decoded = decodeEvents(b.z);
      events += decoded.length;
      if (w !== undefined) {
        w.append({ tmid: b.tmid, computer: d.computer, batchId: b.id, sentAt: b.sentAt, recvAt: b.recvAt }, decoded);
        await w.drain();
      } else innerZipOf(b, decoded, 6);
    }
  }
  await w?.finish();
  return events / ((performance.now() - t0) / 1000);
}

async function measure(dir: string, rowGroupRows: number): Promise<Record<string, number>> {
  const store = openHotStore({ dataDir: dir, mapSizeBytes: MAP_SIZE });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await buildDayArchive(store, { dataDir: dir, supportId: 'BENCH01', day: DAY, deflateLevel: 6, parquetRowGroupRows: rowGroupRows, parquetCompression: 'zstd', now: Date.now() });
  const closeMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (r.status !== 'archived') throw new Error('nothing archived');
  const closeRss = process.resourceUsage().maxRSS / 1024;
  const t1 = performance.now();
  const spot = await buildSpot30(store, { dataDir: dir, supportId: 'BENCH01', jobId: 'bench-spot30', now: dayWindow(DAY).toMs + 3600_000, deflateLevel: 6, coldRetentionDays: 365, from: DAY, to: DAY });
  const spotMs = performance.now() - t1;
  const spotBytes = statSync(join(jobFilesDir(dir, { id: 'bench-spot30', supportId: 'BENCH01' }), spot.files[0]!.name)).size;
  const spotRss = process.resourceUsage().maxRSS / 1024;
  const parquetOnly = await partial(store, dir, 'parquet', rowGroupRows);
  const innerOnly = await partial(store, dir, 'inner', rowGroupRows);
  await store.close();
  const m = r.manifest;
  return {
    events: m.events,
    batches: m.batches,
    closeSeconds: closeMs / 1000,
    closeCpuSeconds: (cpu.user + cpu.system) / 1e6,
    eventsPerSec: m.events / (closeMs / 1000),
    eventsPerCpuSec: m.events / ((cpu.user + cpu.system) / 1e6),
    dailyZipMB: m.zip.bytes / 1e6,
    dailyZipMBps: m.zip.bytes / 1e6 / (closeMs / 1000),
    parquetMB: m.parquet.bytes / 1e6,
    peakRssMBAfterClose: closeRss,
    spotSeconds: spotMs / 1000,
    spotZipMB: spotBytes / 1e6,
    spotZipMBps: spotBytes / 1e6 / (spotMs / 1000),
    peakRssMB: spotRss,
    decodeParquetEventsPerSec: parquetOnly,
    decodeInnerZipEventsPerSec: innerOnly,
  };
}

if (isMain(import.meta.url)) {
  if (process.argv[2] === '--measure') {
    process.stdout.write(`${JSON.stringify(await measure(process.argv[3]!, Number(process.argv[4])))}\n`);
  } else {
    const agents = Number(process.argv[2] ?? 1000);
    const perAgent = Number(process.argv[3] ?? 1000);
    const rowGroupRows = Number(process.argv[4] ?? EXPORT_DEFAULTS.parquetRowGroupRows);
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-export-day-'));
    try {
      const t0 = performance.now();
      const filled = await fill(dir, agents, perAgent);
      process.stdout.write(`hot store: ${agents} agents, ${filled.batches} batches, ${filled.events} events, LMDB ${(filled.lmdbBytes / 1e6).toFixed(0)} MB (filled in ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', dir, String(rowGroupRows)], { encoding: 'utf8', maxBuffer: 1 << 20 });
      const m = JSON.parse(out) as Record<string, number>;
      const f = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
      process.stdout.write(
        [
          `day close (1 thread): ${f(m.events!)} events in ${f(m.closeSeconds!, 1)} s = ${f(m.eventsPerSec!)} events/s (${f(m.eventsPerCpuSec!)} per CPU-second)`,
          `  daily zip ${f(m.dailyZipMB!, 1)} MB at ${f(m.dailyZipMBps!, 1)} MB/s; Parquet ${f(m.parquetMB!, 1)} MB; peak RSS ${f(m.peakRssMBAfterClose!)} MB`,
          `  row groups of ${f(rowGroupRows)} rows`,
          `30-day spot from the cold archive: ${f(m.spotZipMB!, 1)} MB in ${f(m.spotSeconds!, 2)} s = ${f(m.spotZipMBps!, 0)} MB/s (STORE copy); peak RSS ${f(m.peakRssMB!)} MB`,
          `parts, one thread: decode + Parquet ${f(m.decodeParquetEventsPerSec!)} rows/s; decode + JSON lines + deflate-6 inner zips ${f(m.decodeInnerZipEventsPerSec!)} events/s`,
          `node ${process.version}`,
        ].join('\n') + '\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
