/**
 * Log-spot exports (SPEC §6, seed 004 §3-3):
 *
 * - 30 days: every device of the tenant, up to 30 consecutive collection days,
 *   one `YYYY-MM-DD_SP.zip` per day holding `<computer>/<inner zips>`;
 * - 1 year: one device (TMID), every day still held, one
 *   `<TMID>_AllData_<delivery date>.zip` holding `<collection day>/<inner zips>`.
 *
 * A closed day is copied from its cold daily archive: inner zips move byte for
 * byte (no decompression, no recompression, CRCs taken from the central
 * directory). A day not closed yet is built from the raw batches still in the
 * hot store; if its window has not ended, the job says the day is partial.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HotStore } from '../storage/index.js';
import { addDays, collectionDayOf, dayWindow, daysBetween, daysFrom, isValidDay } from './collection-day.js';
import type { ExportProgress } from './day-archive.js';
import { batchInWindow, decodeEvents, deviceLsns, innerZipOf, lsnWindow, tenantDevices, type TenantDevice } from './hot-source.js';
import { jobFilesDir, deliveryDate, type ExportJobFile } from './jobs.js';
import { archivedDays, coldDayPaths, readLedger, readManifest, safeFolderName } from './layout.js';
import { openZipReader, dosToMs } from './zip-reader.js';
import { ZipFileWriter } from './zip-writer.js';

/** Longest log spot of the 30-day kind, in collection days. */
export const SPOT30_MAX_DAYS = 30;

export interface SpotOptions {
  dataDir: string;
  supportId: string;
  jobId: string;
  now: number;
  /** Deflate level for inner zips built from the hot store. */
  deflateLevel: number;
  /** Days before today still held in the cold tier. */
  coldRetentionDays: number;
  onProgress?: (p: ExportProgress) => void;
  signal?: AbortSignal;
}

export interface SpotResult {
  files: ExportJobFile[];
  emptyDays: string[];
  partialDays: string[];
}

type DaySource =
  | { kind: 'cold'; day: string; zipPath: string; units: number }
  | { kind: 'hot'; day: string; partial: boolean; plan: { device: TenantDevice; lsns: number[] }[]; units: number }
  | { kind: 'empty'; day: string };

const YIELD_EVERY = 64;

function abortError(): Error {
  const err = new Error('The export was cancelled.');
  err.name = 'AbortError';
  return err;
}

/** Validates a 30-day request; returns a reason when it is not acceptable. */
export function spot30Problem(from: string, to: string, now: number): string | undefined {
  if (!isValidDay(from)) return '--from must be a date like 2026-01-05';
  if (!isValidDay(to)) return '--to must be a date like 2026-01-05';
  if (to < from) return '--to is before --from';
  if (daysBetween(from, to) + 1 > SPOT30_MAX_DAYS) return `at most ${SPOT30_MAX_DAYS} consecutive days`;
  if (to > collectionDayOf(now)) return '--to is in the future';
  return undefined;
}

/** Where a collection day's inner zips come from for `devices` (all of the tenant's, or one). */
function daySource(store: HotStore, options: SpotOptions, day: string, devices: TenantDevice[], tmid?: string): DaySource {
  const manifest = readManifest(options.dataDir, options.supportId, day);
  if (manifest !== undefined) {
    const units = tmid === undefined ? manifest.batches : (manifest.devices.find((d) => d.tmid === tmid)?.batches ?? 0);
    if (units === 0) return { kind: 'empty', day };
    return { kind: 'cold', day, zipPath: coldDayPaths(options.dataDir, options.supportId, day).zip, units };
  }
  const ledger = readLedger(options.dataDir, options.supportId);
  if (ledger.closedThrough !== null && day <= ledger.closedThrough) return { kind: 'empty', day };
  const { fromMs, toMs } = dayWindow(day);
  const window = lsnWindow(store, fromMs, toMs);
  const plan = devices.map((device) => ({ device, lsns: deviceLsns(store, device.tmid, window) })).filter((p) => p.lsns.length > 0);
  const units = plan.reduce((n, p) => n + p.lsns.length, 0);
  if (units === 0) return { kind: 'empty', day };
  return { kind: 'hot', day, partial: options.now < toMs, plan, units };
}

/** Streams one day's inner zips into `zip`; `place` maps (folder, inner zip name) to the entry path. */
class DayCopier {
  private done = 0;
  /** Directory entries already in each archive. */
  private readonly dirs = new WeakMap<ZipFileWriter, Set<string>>();
  constructor(
    private readonly store: HotStore,
    private readonly options: SpotOptions,
    private readonly total: number,
  ) {}

  private dir(zip: ZipFileWriter, path: string, mtimeMs: number): void {
    let seen = this.dirs.get(zip);
    if (seen === undefined) this.dirs.set(zip, (seen = new Set()));
    if (seen.has(path)) return;
    seen.add(path);
    zip.addDirectory(path, mtimeMs);
  }

  private async tick(zip: ZipFileWriter, phase: string): Promise<void> {
    this.done++;
    if (this.done % YIELD_EVERY !== 0) return;
    if (this.options.signal?.aborted) throw abortError();
    this.store.refreshReads();
    this.options.onProgress?.({ phase, done: this.done, total: this.total, bytes: zip.bytesWritten });
    await new Promise<void>((r) => setImmediate(r));
  }

  /** Copies a cold day; `tmid` limits it to one device. Returns entries added. */
  async copyCold(zip: ZipFileWriter, src: Extract<DaySource, { kind: 'cold' }>, place: (folder: string, inner: string) => { dirs: string[]; name: string }, tmid?: string): Promise<number> {
    const reader = openZipReader(src.zipPath);
    const dirTime = dayWindow(src.day).fromMs;
    let added = 0;
    try {
      const prefix = `${src.day}/`;
      for (const entry of reader.entries) {
        if (!entry.name.startsWith(prefix) || entry.name.endsWith('/')) continue;
        const rest = entry.name.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash < 0) continue;
        const folder = rest.slice(0, slash);
        const inner = rest.slice(slash + 1);
        if (tmid !== undefined && !inner.startsWith(`${tmid}_`)) continue;
        const target = place(folder, inner);
        for (const d of target.dirs) this.dir(zip, d, dirTime);
        zip.addRawFromFile(
          target.name,
          { fd: reader.fd, position: reader.dataOffset(entry), length: entry.compressedSize, method: entry.method, crc32: entry.crc32, uncompressedSize: entry.uncompressedSize },
          dosToMs(entry.dosDate, entry.dosTime),
        );
        added++;
        await this.tick(zip, src.day);
      }
    } finally {
      reader.close();
    }
    return added;
  }

  /** Builds a day from the hot store. Returns entries added. */
  async copyHot(zip: ZipFileWriter, src: Extract<DaySource, { kind: 'hot' }>, place: (folder: string, inner: string) => { dirs: string[]; name: string }): Promise<number> {
    const { fromMs, toMs } = dayWindow(src.day);
    let added = 0;
    for (const { device, lsns } of src.plan) {
      for (const lsn of lsns) {
        const batch = batchInWindow(this.store, lsn, fromMs, toMs);
        if (batch !== undefined) {
          const inner = innerZipOf(batch, decodeEvents(batch.z, batch.first), this.options.deflateLevel);
          const target = place(device.folder, inner.name);
          for (const d of target.dirs) this.dir(zip, d, fromMs);
          zip.addStored(target.name, inner.data, { mtimeMs: batch.sentAt });
          added++;
        }
        await this.tick(zip, src.day);
      }
    }
    return added;
  }
}

function fileOf(zip: ReturnType<ZipFileWriter['finish']>, supportId: string, name: string, day?: string): ExportJobFile {
  return { name, path: join('it360-log', supportId, name), bytes: zip.bytes, sha256: zip.sha256, entries: zip.entries, ...(day === undefined ? {} : { day }) };
}

/** Builds a 30-day log spot: one `YYYY-MM-DD_SP.zip` per day with logs. */
export async function buildSpot30(store: HotStore, options: SpotOptions & { from: string; to: string }): Promise<SpotResult> {
  const problem = spot30Problem(options.from, options.to, options.now);
  if (problem !== undefined) throw new RangeError(problem);
  const devices = tenantDevices(store, options.supportId);
  const sources = daysFrom(options.from, options.to).map((day) => daySource(store, options, day, devices));
  const total = sources.reduce((n, s) => n + (s.kind === 'empty' ? 0 : s.units), 0);
  const outDir = jobFilesDir(options.dataDir, { id: options.jobId, supportId: options.supportId });
  mkdirSync(outDir, { recursive: true });
  const copier = new DayCopier(store, options, total);
  const result: SpotResult = { files: [], emptyDays: [], partialDays: [] };
  const place = (folder: string, inner: string) => ({ dirs: [`${folder}/`], name: `${folder}/${inner}` });
  for (const src of sources) {
    if (src.kind === 'empty') {
      result.emptyDays.push(src.day);
      continue;
    }
    const name = `${src.day}_SP.zip`;
    const zip = new ZipFileWriter(join(outDir, name));
    try {
      const added = src.kind === 'cold' ? await copier.copyCold(zip, src, place) : await copier.copyHot(zip, src, place);
      if (added === 0) {
        zip.abort();
        result.emptyDays.push(src.day);
        continue;
      }
      result.files.push(fileOf(zip.finish(), options.supportId, name, src.day));
      if (src.kind === 'hot' && src.partial) result.partialDays.push(src.day);
    } catch (err) {
      zip.abort();
      throw err;
    }
  }
  options.onProgress?.({ phase: 'done', done: total, total, bytes: result.files.reduce((n, f) => n + f.bytes, 0) });
  return result;
}

/**
 * Builds a 1-year log spot of one device: every collection day still held
 * (cold archives of the last `coldRetentionDays` days, then days not closed
 * yet from the hot store), in one `<TMID>_AllData_<delivery date>.zip`.
 */
export async function buildSpot1y(store: HotStore, options: SpotOptions & { tmid: string }): Promise<SpotResult & { days: string[] }> {
  const device = store.devices.get(options.tmid);
  if (device === undefined || device.supportId !== options.supportId) throw new RangeError('no such device in this tenant');
  const me: TenantDevice = { tmid: device.tmid, computer: device.computer, folder: safeFolderName(device.computer, device.tmid) };
  const today = collectionDayOf(options.now);
  const oldest = addDays(today, -options.coldRetentionDays);
  const candidate = new Set<string>();
  for (const day of archivedDays(options.dataDir, options.supportId)) if (day >= oldest) candidate.add(day);
  // Days not closed yet live only in the hot store: from the day after the last closed one
  // (or this device's oldest hot batch) to today, those where it sent something.
  const ledger = readLedger(options.dataDir, options.supportId);
  let start = ledger.closedThrough === null ? undefined : addDays(ledger.closedThrough, 1);
  if (start === undefined) {
    const oldest = store.log.oldestBatchOf(device.tmid);
    if (oldest !== undefined) start = collectionDayOf(oldest.recvAt);
  }
  if (start !== undefined) {
    for (let day = start < oldest ? oldest : start; day <= today; day = addDays(day, 1)) {
      const { fromMs, toMs } = dayWindow(day);
      if (deviceLsns(store, device.tmid, lsnWindow(store, fromMs, toMs)).some((lsn) => batchInWindow(store, lsn, fromMs, toMs) !== undefined)) candidate.add(day);
    }
  }
  const sources = [...candidate].sort().map((day) => daySource(store, options, day, [me], device.tmid));
  const total = sources.reduce((n, s) => n + (s.kind === 'empty' ? 0 : s.units), 0);
  const outDir = jobFilesDir(options.dataDir, { id: options.jobId, supportId: options.supportId });
  mkdirSync(outDir, { recursive: true });
  const name = `${device.tmid}_AllData_${deliveryDate(options.now)}.zip`;
  const zip = new ZipFileWriter(join(outDir, name));
  const copier = new DayCopier(store, options, total);
  const result: SpotResult & { days: string[] } = { files: [], emptyDays: [], partialDays: [], days: [] };
  try {
    for (const src of sources) {
      if (src.kind === 'empty') continue;
      const place = (_folder: string, inner: string) => ({ dirs: [`${src.day}/`], name: `${src.day}/${inner}` });
      const added = src.kind === 'cold' ? await copier.copyCold(zip, src, place, device.tmid) : await copier.copyHot(zip, src, place);
      if (added > 0) result.days.push(src.day);
      if (added > 0 && src.kind === 'hot' && src.partial) result.partialDays.push(src.day);
    }
    if (zip.entries === 0) {
      zip.abort();
      return result;
    }
    result.files.push(fileOf(zip.finish(), options.supportId, name));
  } catch (err) {
    zip.abort();
    throw err;
  }
  options.onProgress?.({ phase: 'done', done: total, total, bytes: result.files[0]?.bytes ?? 0 });
  return result;
}
