/**
 * Day close for one tenant (SPEC §5, §6): every raw batch the tenant's devices
 * sent that the server received in the collection day's window becomes
 *
 *   - one inner zip `<TMID>_<send15>-<id32>.zip` (holding `<send15>.log`) in the
 *     daily archive `YYYY-MM-DD.zip`, under `YYYY-MM-DD/<computer>/`;
 *   - its events' rows in `YYYY-MM-DD.parquet`;
 *
 * and the tenant's network logs received in the window (ingest/syslog) go to
 * `netlog/<format>-NNNN.jsonl` in the same zip (docs/EXPORTS.md);
 *
 * and a manifest records devices, counts, seq ranges and gaps, and the
 * archives' SHA-256. A day without logs produces no file at all.
 *
 * One pass over the batches feeds both writers, which stream to disk: memory
 * holds one batch, one Parquet row group and the zip's central directory (which
 * spills to disk past 16 MiB). Runs on an export worker thread (export-pool.ts).
 */
import { mkdirSync } from 'node:fs';
import { compileTuning, type TuningMatcher } from '../core/fleet-policy.js';
import { basename, join } from 'node:path';
import { seqGaps, addSeqRange, type HotStore } from '../storage/index.js';
import { dayWindow } from './collection-day.js';
import { batchInWindow, decodeEvents, deviceLsns, innerZipOf, lsnWindow, tenantDevices } from './hot-source.js';
import { coldDayPaths, removeStaleTemporaries, writeFileAtomic, type DayManifest, type ManifestDevice, type ManifestNetlog } from './layout.js';
import { ParquetDayWriter, type ParquetCompression } from './parquet-writer.js';
import { ZipFileWriter } from './zip-writer.js';

/** Progress of a running export, reported every few dozen batches. */
export interface ExportProgress {
  /** What is being done, e.g. "2026-01-05" or "copying". */
  phase: string;
  /** Units done and expected (batches for a day close, inner zips for a log spot). */
  done: number;
  total: number;
  /** Archive bytes written so far. */
  bytes: number;
}

export interface DayArchiveOptions {
  dataDir: string;
  supportId: string;
  day: string;
  /** Deflate level of the `.log` inside each inner zip (1-9). */
  deflateLevel: number;
  parquetRowGroupRows: number;
  parquetCompression: ParquetCompression;
  /** Creation time written in the manifest (ms). */
  now: number;
  /**
   * Builds a partial archive of a day still being collected: only batches
   * received before this time (ms), marked `partial` in the manifest.
   */
  partialAsOf?: number;
  /** Directory of the zip, Parquet and manifest instead of the cold tier (partial archives go to an export job). */
  outDir?: string;
  onProgress?: (p: ExportProgress) => void;
  signal?: AbortSignal;
}

export type DayArchiveResult =
  | { status: 'archived'; supportId: string; day: string; manifest: DayManifest }
  | { status: 'empty'; supportId: string; day: string };

/** Batches between yields (drain the Parquet writer, renew the LMDB read transaction, report progress). */
const YIELD_EVERY = 64;

/** Network-log records per `netlog/<format>-NNNN.jsonl` entry: bounds the memory one entry takes (~30 MB). */
export const NETLOG_RECORDS_PER_FILE = 100_000;

const NETLOG_FORMATS = ['squid', 'suricata', 'cef', 'fortigate'] as const;

function abortError(): Error {
  const err = new Error('The export was cancelled.');
  err.name = 'AbortError';
  return err;
}

interface DeviceAcc {
  tmid: string;
  computer: string;
  folder: string;
  batches: number;
  events: number;
  ranges: [number, number][];
}

/**
 * Builds the cold archives of `supportId`'s collection day `day` from the hot
 * store, replacing any earlier ones atomically. The caller makes sure the day's
 * window has closed.
 */
export async function buildDayArchive(store: HotStore, options: DayArchiveOptions): Promise<DayArchiveResult> {
  const { dataDir, supportId, day } = options;
  const { fromMs, toMs: dayEndMs } = dayWindow(day);
  const toMs = options.partialAsOf === undefined ? dayEndMs : Math.max(fromMs, Math.min(dayEndMs, options.partialAsOf));
  const paths =
    options.outDir === undefined
      ? coldDayPaths(dataDir, supportId, day)
      : { dir: options.outDir, zip: join(options.outDir, `${day}.zip`), parquet: join(options.outDir, `${day}.parquet`), manifest: join(options.outDir, `${day}.manifest.json`) };
  const window = lsnWindow(store, fromMs, toMs);
  const plan = tenantDevices(store, supportId)
    .map((device) => ({ device, lsns: deviceLsns(store, device.tmid, window) }))
    .filter((p) => p.lsns.length > 0);
  const total = plan.reduce((n, p) => n + p.lsns.length, 0);

  let zip: ZipFileWriter | undefined;
  let parquet: ParquetDayWriter | undefined;
  const devices: DeviceAcc[] = [];
  const eventsByKind: Record<string, number> = {};
  let batches = 0;
  let events = 0;
  let seen = 0;
  const folders = new Set<string>();
  const open = (): ZipFileWriter => {
    if (zip === undefined) {
      mkdirSync(paths.dir, { recursive: true });
      removeStaleTemporaries(paths.dir);
      zip = new ZipFileWriter(paths.zip);
      parquet = new ParquetDayWriter(paths.parquet, {
        rowGroupRows: options.parquetRowGroupRows,
        compression: options.parquetCompression,
        metadata: { 'kiseki.supportId': supportId, 'kiseki.day': day },
      });
      zip.addDirectory(`${day}/`, fromMs);
    }
    return zip;
  };
  // Tuning filters in force when the day closes keep their events out of the archives too (docs/FLEET.md).
  const tuning = compileTuning(store.fleet.policy(supportId).tuning);
  try {
    for (const { device, lsns } of plan) {
      let acc: DeviceAcc | undefined;
      const images = new Map<string, string>();
      for (const lsn of lsns) {
        seen++;
        if (seen % YIELD_EVERY === 0) {
          if (options.signal?.aborted) throw abortError();
          await parquet?.drain();
          store.refreshReads();
          options.onProgress?.({ phase: day, done: seen, total, bytes: zip?.bytesWritten ?? 0 });
        }
        const batch = batchInWindow(store, lsn, fromMs, toMs);
        if (batch === undefined) continue;
        open();
        if (!folders.has(device.folder)) {
          folders.add(device.folder);
          zip!.addDirectory(`${day}/${device.folder}/`, fromMs);
        }
        if (acc === undefined) {
          acc = { tmid: device.tmid, computer: device.computer, folder: device.folder, batches: 0, events: 0, ranges: [] };
          devices.push(acc);
        }
        const decoded = withoutTuned(decodeEvents(batch.z, batch.first), tuning, images);
        // A batch that held only tuned-out events gets no inner zip; its seqs still count as held (no false gap).
        if (decoded.length > 0 || tuning === undefined) {
          const inner = innerZipOf(batch, decoded, options.deflateLevel);
          zip!.addStored(`${day}/${device.folder}/${inner.name}`, inner.data, { mtimeMs: batch.sentAt });
          parquet!.append({ tmid: batch.tmid, computer: device.computer, batchId: batch.id, sentAt: batch.sentAt, recvAt: batch.recvAt }, decoded);
        }
        for (const e of decoded) {
          const k = typeof e === 'object' && e !== null && typeof (e as { k?: unknown }).k === 'string' ? (e as { k: string }).k : '_invalid';
          eventsByKind[k] = (eventsByKind[k] ?? 0) + 1;
        }
        acc.batches++;
        acc.events += decoded.length;
        if (batch.n > 0 && batch.last >= batch.first) acc.ranges = addSeqRange(acc.ranges, batch.first, batch.last);
        batches++;
        events += decoded.length;
      }
    }
    const netlog = addNetlogs(store, supportId, fromMs, toMs, open, options.deflateLevel);
    if (zip === undefined || parquet === undefined) return { status: 'empty', supportId, day };
    const zipResult = (zip as ZipFileWriter).finish();
    const parquetResult = await (parquet as ParquetDayWriter).finish();
    const manifest: DayManifest = {
      format: 'kiseki.cold-day.v1',
      supportId,
      day,
      window: { fromMs, toMs, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() },
      createdAt: options.now,
      ...(options.partialAsOf === undefined ? {} : { partial: { asOfMs: toMs, asOf: new Date(toMs).toISOString() } }),
      batches,
      events,
      eventsByKind,
      devices: devices.map((d) => manifestDevice(store, d)),
      zip: {
        file: basename(paths.zip),
        bytes: zipResult.bytes,
        sha256: zipResult.sha256,
        entries: zipResult.entries,
        zip64: zipResult.zip64,
        deflateLevel: options.deflateLevel,
        lineEnding: 'CRLF',
      },
      parquet: {
        file: basename(paths.parquet),
        bytes: parquetResult.bytes,
        sha256: parquetResult.sha256,
        rows: parquetResult.rows,
        rowGroupRows: parquetResult.rowGroupRows,
        compression: options.parquetCompression,
      },
      ...(netlog === undefined ? {} : { netlog }),
    };
    writeFileAtomic(paths.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    options.onProgress?.({ phase: day, done: total, total, bytes: zipResult.bytes });
    return { status: 'archived', supportId, day, manifest };
  } catch (err) {
    zip?.abort();
    parquet?.abort();
    throw err;
  }
}

/**
 * Writes the tenant's network logs received in [fromMs, toMs) as
 * `netlog/<format>-NNNN.jsonl` (one record per line, receive order, LF,
 * deflated), opening the archive when the day has no agent batch.
 */
function addNetlogs(store: HotStore, supportId: string, fromMs: number, toMs: number, open: () => ZipFileWriter, level: number): ManifestNetlog | undefined {
  const byFormat: Record<string, number> = {};
  const files: string[] = [];
  let records = 0;
  for (const format of NETLOG_FORMATS) {
    let lines: string[] = [];
    let part = 0;
    const flush = (): void => {
      if (lines.length === 0) return;
      const zip = open();
      if (files.length === 0) zip.addDirectory('netlog/', fromMs);
      const name = `netlog/${format}-${String(++part).padStart(4, '0')}.jsonl`;
      zip.addDeflated(name, Buffer.from(lines.join('')), { mtimeMs: toMs - 1, level });
      files.push(name);
      lines = [];
    };
    for (const r of store.netlog.range(supportId, fromMs, toMs)) {
      if (r.format !== format) continue;
      lines.push(`${JSON.stringify(r)}\n`);
      byFormat[format] = (byFormat[format] ?? 0) + 1;
      records++;
      if (lines.length >= NETLOG_RECORDS_PER_FILE) flush();
    }
    flush();
  }
  return records === 0 ? undefined : { records, byFormat, files };
}

function manifestDevice(store: HotStore, d: DeviceAcc): ManifestDevice {
  const firstSeq = d.ranges[0]?.[0] ?? 0;
  const lastSeq = d.ranges[d.ranges.length - 1]?.[1] ?? 0;
  const gaps: [number, number][] = [];
  for (let i = 1; i < d.ranges.length; i++) gaps.push([d.ranges[i - 1]![1] + 1, d.ranges[i]![0] - 1]);
  const trail = store.log.trail(d.tmid);
  const trailGapsBefore = trail === undefined ? [] : seqGaps(trail.ranges).filter(([from]) => from <= lastSeq).map(([from, to]): [number, number] => [from, Math.min(to, lastSeq)]);
  return { tmid: d.tmid, computer: d.computer, folder: d.folder, batches: d.batches, events: d.events, firstSeq, lastSeq, ranges: d.ranges, gaps, trailGapsBefore };
}

/** The events a tenant's tuning filters keep (all of them without filters); `images` maps the device's process GUIDs to their images. */
function withoutTuned(events: unknown[], tuning: TuningMatcher | undefined, images: Map<string, string>): unknown[] {
  if (tuning === undefined) return events;
  const imageOf = (pg: string): string | undefined => images.get(pg);
  const kept: unknown[] = [];
  for (const e of events) {
    if (typeof e === 'object' && e !== null) {
      const ev = e as Record<string, unknown>;
      if (ev.k === 'proc.start' && typeof ev.pg === 'string' && typeof ev.image === 'string') images.set(ev.pg, ev.image);
      if (tuning.match(ev, imageOf) !== undefined) continue;
    }
    kept.push(e);
  }
  return kept;
}
