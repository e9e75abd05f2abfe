/**
 * `kiseki export …`: the daily archive of one collection day, the two log-spot
 * jobs, and `close-days` (close every finished day, then apply retention).
 * On a terminal it draws a progress bar on stderr and prints a short summary;
 * otherwise it prints one JSON object on stdout. Bad input gets a one-line
 * reason and exit code 64, a day that is still open 75 (try again later, or
 * ask for `--partial`), a failure exit code 1: never a stack trace.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { COMMON_FLAGS, parseFlags, type FlagValues } from '../core/cli-flags.js';
import { describeError, isKisekiError, KisekiError } from '../core/errors.js';
import { count } from '../core/plural.js';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { collectionDayOf, dayWindow, isValidDay } from './collection-day.js';
import { exportConfig, type ExportConfig } from './config.js';
import type { ExportProgress } from './day-archive.js';
import { applyRetention, closeFinishedDays, closeOneDay, isDayClosable, withColdLock } from './day-closer.js';
import { createExportRunner, type ExportRunner } from './export-pool.js';
import { dailyJobId, jobDir, jobFilesDir, newJobId, offerDailyDownload, readJob, writeJob, type ExportJob } from './jobs.js';
import { coldDayPaths, readLedger, SUPPORT_ID_RE } from './layout.js';
import { spot30Problem } from './spot-jobs.js';
import { startSpotJob, type SpotRequest } from './spot-runner.js';

export const EXPORT_USAGE = `Usage:
  kiseki export daily --tenant S --date YYYY-MM-DD [--rebuild]   daily archive of one finished collection day
  kiseki export daily --tenant S --date YYYY-MM-DD --partial     what an open day holds so far (marked partial)
  kiseki export spot30 --tenant S --from YYYY-MM-DD --to YYYY-MM-DD   log spot, all devices, <= 30 days
  kiseki export spot1y --tenant S --tmid T [--computer NAME]     log spot, one device, everything held
  kiseki export close-days                                       close finished days, apply retention
Options: --json (JSON even on a terminal), --data DIR. Collection days run 05:00-05:00 Asia/Tokyo;
a day can be archived once it is over (05:00 JST the next day plus a 15-minute grace).
Exit codes: 0 done, 1 failed, 64 bad command line, 75 the day is still open (use --partial or wait).
`;

/** Exit code of a refusal that a later run will not get (EX_TEMPFAIL): the day is still open. */
export const EXIT_DAY_OPEN = 75;

export interface ExportCommandIo {
  dataDir: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  isTTY: boolean;
  /** Time source (core/clock.ts); default the system clock. */
  clock?: Clock;
  /** Overrides of the export configuration. */
  config?: Partial<ExportConfig>;
  /** LMDB map size to open the store with. */
  mapSizeBytes?: number;
}

const OPTIONS = {
  ...COMMON_FLAGS,
  tenant: { type: 'string' },
  date: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  tmid: { type: 'string' },
  computer: { type: 'string' },
  rebuild: { type: 'boolean' },
  partial: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Values = FlagValues<typeof OPTIONS>;

function usage(reason: string): KisekiError {
  return new KisekiError('ERR_USAGE', { reason });
}

function requireTenant(store: HotStore, v: Values): string {
  const s = v.tenant;
  if (s === undefined || s === '') throw usage('--tenant is required');
  if (!SUPPORT_ID_RE.test(s)) throw usage('--tenant is not a valid support ID');
  if (store.tenants.get(s) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId: s });
  return s;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A one-line progress bar redrawn in place (terminals only), at most every 100 ms. */
function progressBar(io: ExportCommandIo, label: string): { update(p: ExportProgress): void; end(): void } {
  let last = 0;
  let drawn = false;
  return {
    update(p) {
      if (!io.isTTY) return;
      const t = Date.now();
      if (t - last < 100 && p.done < p.total) return;
      last = t;
      const ratio = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
      const width = 28;
      const fill = Math.round(ratio * width);
      io.stderr.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.round(ratio * 100)).padStart(3)}% ${p.phase} ${p.done}/${p.total} ${formatBytes(p.bytes)}\u001b[K`);
      drawn = true;
    },
    end() {
      if (drawn) io.stderr.write('\n');
    },
  };
}

function print(io: ExportCommandIo, v: Values, result: Record<string, unknown>, human: string[]): void {
  if (io.isTTY && v.json !== true) io.stdout.write(`${human.join('\n')}\n`);
  else io.stdout.write(`${JSON.stringify(result)}\n`);
}

interface Ctx {
  io: ExportCommandIo;
  v: Values;
  store: HotStore;
  config: Readonly<ExportConfig>;
  runner: ExportRunner;
  now: number;
}

async function cmdDaily(c: Ctx): Promise<void> {
  const supportId = requireTenant(c.store, c.v);
  const day = c.v.date;
  if (day === undefined || !isValidDay(day)) throw usage('--date must be a date like 2026-01-05');
  if (!isDayClosable(day, c.now, c.config.closeGraceMs)) {
    if (dayWindow(day).fromMs > c.now) throw usage(`collection day ${day} has not started yet (today's is ${collectionDayOf(c.now)})`);
    if (c.v.partial === true) return cmdDailyPartial(c, supportId, day);
    const closesAt = dayWindow(day).toMs + c.config.closeGraceMs;
    throw new KisekiError('ERR_DAY_OPEN', {
      day,
      closesAt: new Date(closesAt).toISOString(),
      reason: `collection day ${day} is still open: its archive can be made from ${jstTime(closesAt)} JST; for what it holds so far, add --partial`,
    });
  }
  const ledger = readLedger(c.io.dataDir, supportId);
  if (c.v.rebuild === true && ledger.rolledThrough !== null && day <= ledger.rolledThrough) {
    throw usage(`the raw batches of ${day} have left the hot store; the archive cannot be rebuilt`);
  }
  const bar = progressBar(c.io, 'daily');
  const outcome = await withColdLock(c.io.dataDir, c.now, () =>
    closeOneDay({ store: c.store, dataDir: c.io.dataDir, runner: c.runner, config: c.config, now: c.now, supportId, day, rebuild: c.v.rebuild === true, onProgress: (_s, p) => bar.update(p) }),
  );
  bar.end();
  if (outcome.busy) throw new KisekiError('ERR_STORAGE', { reason: 'another export process is closing days; try again later' });
  const r = outcome.value;
  const paths = coldDayPaths(c.io.dataDir, supportId, day);
  let download: ExportJob | undefined;
  if (r.status !== 'empty' && r.manifest !== undefined) {
    // Re-offer the download when it has expired or was never made (the archive itself stays for a year).
    download = readJob(c.io.dataDir, dailyJobId(supportId, day));
    if (download === undefined || download.expiresAt <= c.now) {
      download = offerDailyDownload(c.io.dataDir, { supportId, day, zipPath: paths.zip, bytes: r.manifest.zip.bytes, sha256: r.manifest.zip.sha256, entries: r.manifest.zip.entries, now: c.now, retentionDays: c.config.exportRetentionDays });
    }
  }
  const result = {
    command: 'daily',
    supportId,
    day,
    status: r.status,
    batches: r.batches,
    events: r.events,
    ...(r.status === 'empty' ? {} : { zip: paths.zip, parquet: paths.parquet, manifest: paths.manifest, zipBytes: r.zipBytes, sha256: r.manifest?.zip.sha256 }),
    ...(download === undefined ? {} : { downloadJob: download.id, download: `${jobDir(c.io.dataDir, download.id)}/${download.files[0]!.path}`, expiresAt: new Date(download.expiresAt).toISOString() }),
  };
  print(c.io, c.v, result, r.status === 'empty'
    ? [`No logs were received on collection day ${day} for ${supportId}: no archive (as SPEC §6 requires).`]
    : [`${r.status === 'exists' ? 'Already archived' : 'Archived'}: ${paths.zip} (${formatBytes(r.zipBytes)}, ${count(r.batches, 'batch')}, ${count(r.events, 'event')})`, `Parquet:  ${paths.parquet}`, `Download: ${result.download ?? '-'} (until ${result.expiresAt ?? '-'})`]);
}

/** `HH:MM on YYYY-MM-DD` in JST. */
function jstTime(ms: number): string {
  const t = new Date(ms + 9 * 3600_000).toISOString();
  return `${t.slice(11, 16)} on ${t.slice(0, 10)}`;
}

/**
 * A partial archive of an open day: what was received until now, built into
 * an export job of its own (the cold tier gets the full archive once the day
 * is over), with `partial` in its manifest and the job.
 */
async function cmdDailyPartial(c: Ctx, supportId: string, day: string): Promise<void> {
  const id = newJobId('daily', supportId, c.now);
  const job: ExportJob = {
    id,
    kind: 'daily',
    supportId,
    params: { date: day, partial: 'true', asOf: new Date(c.now).toISOString() },
    status: 'running',
    createdAt: c.now,
    expiresAt: c.now + c.config.exportRetentionDays * 86_400_000,
    files: [],
    partialDays: [day],
  };
  writeJob(c.io.dataDir, job);
  const outDir = jobFilesDir(c.io.dataDir, job);
  const bar = progressBar(c.io, 'daily (partial)');
  let r;
  try {
    r = await c.runner.run(
      { type: 'close-day', dataDir: c.io.dataDir, supportId, day, now: c.now, deflateLevel: c.config.deflateLevel, parquetRowGroupRows: c.config.parquetRowGroupRows, parquetCompression: c.config.parquetCompression, partialAsOf: c.now, outDir },
      { onProgress: (p) => bar.update(p) },
    );
  } catch (err) {
    writeJob(c.io.dataDir, { ...job, status: 'failed', finishedAt: c.now, error: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    bar.end();
  }
  const files =
    r.status === 'empty'
      ? []
      : [{ name: `${day}.zip`, path: `it360-log/${supportId}/${day}.zip`, bytes: r.manifest.zip.bytes, sha256: r.manifest.zip.sha256, entries: r.manifest.zip.entries, day }];
  writeJob(c.io.dataDir, { ...job, status: 'done', finishedAt: c.now, files, ...(r.status === 'empty' ? { emptyDays: [day] } : {}) });
  const dir = jobDir(c.io.dataDir, id);
  const result = {
    command: 'daily',
    supportId,
    day,
    status: r.status === 'empty' ? 'empty' : 'partial',
    partial: true,
    asOf: new Date(c.now).toISOString(),
    batches: r.status === 'empty' ? 0 : r.manifest.batches,
    events: r.status === 'empty' ? 0 : r.manifest.events,
    downloadJob: id,
    ...(r.status === 'empty' ? {} : { download: `${dir}/${files[0]!.path}`, manifest: `${outDir}/${day}.manifest.json`, zipBytes: r.manifest.zip.bytes, sha256: r.manifest.zip.sha256 }),
    expiresAt: new Date(job.expiresAt).toISOString(),
  };
  print(c.io, c.v, result, r.status === 'empty'
    ? [`No logs received so far on collection day ${day} for ${supportId} (still open): no archive.`]
    : [`Partial archive of open collection day ${day} (received until ${jstTime(c.now)} JST): ${result.download} (${formatBytes(r.manifest.zip.bytes)}, ${count(r.manifest.batches, 'batch')}, ${count(r.manifest.events, 'event')})`, `The full archive is made once the day is over.`]);
}

async function runSpot(c: Ctx, supportId: string, request: SpotRequest): Promise<void> {
  const bar = progressBar(c.io, request.kind);
  const started = startSpotJob({ store: c.store, dataDir: c.io.dataDir, runner: c.runner, config: c.config, now: c.now, supportId, request, onProgress: (p) => bar.update(p) });
  const job = await started.done;
  bar.end();
  if (job.status === 'failed') throw new KisekiError('ERR_STORAGE', { reason: `export job ${job.id} failed: ${job.error ?? 'unknown error'}` });
  const kind = request.kind;
  const params = job.params;
  const dir = jobDir(c.io.dataDir, job.id);
  const result = {
    command: kind,
    jobId: job.id,
    supportId,
    ...params,
    files: job.files.map((f) => ({ ...f, path: `${dir}/${f.path}` })),
    emptyDays: job.emptyDays,
    partialDays: job.partialDays,
    expiresAt: new Date(job.expiresAt).toISOString(),
  };
  const lines = job.files.length === 0 ? ['No logs held for this request: no file.'] : job.files.map((f) => `${dir}/${f.path}  ${formatBytes(f.bytes)}  ${f.entries} entries`);
  if ((job.partialDays ?? []).length > 0) lines.push(`Still being collected (partial): ${job.partialDays!.join(', ')}`);
  lines.push(`Job ${job.id}, available until ${result.expiresAt}.`);
  print(c.io, c.v, result, lines);
}

async function cmdSpot30(c: Ctx): Promise<void> {
  const supportId = requireTenant(c.store, c.v);
  if (c.v.from === undefined || c.v.to === undefined) throw usage('--from and --to are required');
  const problem = spot30Problem(c.v.from, c.v.to, c.now);
  if (problem !== undefined) throw usage(problem);
  await runSpot(c, supportId, { kind: 'spot30', from: c.v.from, to: c.v.to });
}

async function cmdSpot1y(c: Ctx): Promise<void> {
  const supportId = requireTenant(c.store, c.v);
  const tmid = c.v.tmid;
  if (tmid === undefined || tmid === '') throw usage('--tmid is required');
  const device = c.store.devices.get(tmid);
  // Another tenant's device is reported exactly like a missing one.
  if (device === undefined || device.supportId !== supportId) throw usage(`no device ${tmid} in tenant ${supportId}`);
  if (c.v.computer !== undefined && c.v.computer !== device.computer) throw usage(`device ${tmid} is named ${device.computer}, not ${c.v.computer}`);
  await runSpot(c, supportId, { kind: 'spot1y', tmid, computer: device.computer });
}

async function cmdCloseDays(c: Ctx): Promise<void> {
  const bar = progressBar(c.io, 'close-days');
  const outcome = await withColdLock(c.io.dataDir, c.now, async () => {
    const closed = await closeFinishedDays({ store: c.store, dataDir: c.io.dataDir, runner: c.runner, config: c.config, now: c.now, onProgress: (s, p) => bar.update({ ...p, phase: `${s} ${p.phase}` }) });
    const retention = await applyRetention({ store: c.store, dataDir: c.io.dataDir, config: c.config, now: c.now });
    return { closed, retention };
  });
  bar.end();
  if (outcome.busy) throw new KisekiError('ERR_STORAGE', { reason: 'another export process is closing days; try again later' });
  const { closed, retention } = outcome.value;
  const archived = closed.filter((d) => d.status === 'archived');
  print(c.io, c.v, { command: 'close-days', today: collectionDayOf(c.now), closed, retention }, [
    `Closed ${count(closed.length, 'tenant-day')} (${archived.length} archived, ${closed.filter((d) => d.status === 'empty').length} without logs).`,
    ...archived.map((d) => `  ${d.supportId} ${d.day}: ${count(d.batches, 'batch')}, ${count(d.events, 'event')}, ${formatBytes(d.zipBytes)}`),
    `Hot store: ${count(retention.rolled.reduce((n, r) => n + r.batches, 0), 'raw batch')} rolled out; cold: ${count(retention.coldDeleted.length, 'day')} deleted; exports: ${retention.exportsExpired.length} expired.`,
  ]);
}

/**
 * Runs `kiseki export <sub> …` with `args` (after the word `export`).
 * Returns the process exit code: 0 done, 64 bad usage, 1 failure.
 */
export async function runExportCommand(args: string[], io: ExportCommandIo): Promise<number> {
  const [sub, ...rest] = args;
  let v: Values;
  try {
    if (sub === undefined) {
      io.stderr.write(EXPORT_USAGE);
      return 64;
    }
    if (sub === 'help' || sub === '--help' || sub === '-h') {
      io.stdout.write(EXPORT_USAGE);
      return 0;
    }
    if (!['daily', 'spot30', 'spot1y', 'close-days'].includes(sub)) throw usage(`unknown export command ${sub}`);
    v = parseFlags(rest, OPTIONS).values;
    if (v.help === true) {
      io.stdout.write(EXPORT_USAGE);
      return 0;
    }
  } catch (err) {
    return fail(io, err);
  }
  let store: HotStore | undefined;
  let runner: ExportRunner | undefined;
  try {
    const config = exportConfig(io.config);
    store = openHotStore({ dataDir: io.dataDir, ...(io.mapSizeBytes === undefined ? {} : { mapSizeBytes: io.mapSizeBytes }) });
    runner = createExportRunner({ store, threads: config.workerThreads, logger: createSilentLogger(), ...(io.mapSizeBytes === undefined ? {} : { mapSizeBytes: io.mapSizeBytes }) });
    const c: Ctx = { io, v, store, config, runner, now: (io.clock ?? systemClock).now() };
    if (sub === 'daily') await cmdDaily(c);
    else if (sub === 'spot30') await cmdSpot30(c);
    else if (sub === 'spot1y') await cmdSpot1y(c);
    else await cmdCloseDays(c);
    return 0;
  } catch (err) {
    return fail(io, err);
  } finally {
    await runner?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
  }
}

function fail(io: ExportCommandIo, err: unknown): number {
  if (isKisekiError(err)) {
    io.stderr.write(`kiseki export: ${describeError(err)}\n`);
    if (err.code === 'ERR_USAGE') {
      io.stderr.write(`\n${EXPORT_USAGE}`);
      return 64;
    }
    return err.code === 'ERR_DAY_OPEN' ? EXIT_DAY_OPEN : 1;
  }
  io.stderr.write(`kiseki export: the export failed: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}
