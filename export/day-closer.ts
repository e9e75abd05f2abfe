/**
 * Closing finished collection days and the retention that follows them
 * (SPEC §5 hot → cold, §6 expiry). Both run under one lock file
 * (`DATA/cold/.lock`) so the server's scheduler and `kiseki export` never
 * build or sweep at the same time; a per-tenant ledger remembers how far days
 * are closed and rolled out of the hot store, so an interrupted run resumes
 * where it stopped.
 *
 * Retention is mark-then-sweep: the ledger marks what may go (closed days past
 * the hot retention), the sweep deletes, and a tenant's mark advances only
 * once every raw batch before it is gone.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import { addDays, collectionDayOf, dayWindow, isValidDay } from './collection-day.js';
import type { ExportConfig } from './config.js';
import type { ExportProgress } from './day-archive.js';
import type { ExportRunner } from './export-pool.js';
import { devicesByTenant, LSN_WINDOW_SLACK_MS, type TenantDevice } from './hot-source.js';
import { expireJobs, offerDailyDownload } from './jobs.js';
import { coldDayPaths, coldRoot, readLedger, readManifest, tryLock, writeLedger, type DayManifest } from './layout.js';

/** The last collection day whose window ended at least `graceMs` before `now`. */
export function lastClosableDay(now: number, graceMs: number): string {
  return addDays(collectionDayOf(now - graceMs), -1);
}

/** True when collection day `day` may be closed at `now`. */
export function isDayClosable(day: string, now: number, graceMs: number): boolean {
  return dayWindow(day).toMs + graceMs <= now;
}

/**
 * Runs `fn` holding the cold-tier lock. Returns `{ busy: true }` without
 * running it when another live process holds the lock.
 */
export async function withColdLock<T>(dataDir: string, now: number, fn: () => Promise<T>): Promise<{ busy: false; value: T } | { busy: true }> {
  const release = tryLock(join(coldRoot(dataDir), '.lock'), now);
  if (release === undefined) return { busy: true };
  try {
    return { busy: false, value: await fn() };
  } finally {
    release();
  }
}

export interface ClosedDay {
  supportId: string;
  day: string;
  /** archived: written now; exists: archived before (e.g. by `kiseki export daily`); empty: no logs, no file. */
  status: 'archived' | 'exists' | 'empty';
  batches: number;
  events: number;
  zipBytes: number;
}

export interface CloseDaysOptions {
  store: HotStore;
  dataDir: string;
  runner: ExportRunner;
  config: Readonly<ExportConfig>;
  now: number;
  logger?: Logger;
  /** Only these tenants (default: all). */
  supportIds?: string[];
  /**
   * Receipt time (ms) up to which the store holds every batch, when it is not
   * `now`: a cluster's archive node copies the stream and may lag behind it.
   * A day closes only once its window and the grace period end before it.
   */
  completeThrough?: number;
  signal?: AbortSignal;
  onProgress?: (supportId: string, p: ExportProgress) => void;
}

/** The collection day of the oldest batch of `devices` still in the hot store, if any. */
function oldestHotDay(store: HotStore, devices: readonly TenantDevice[]): string | undefined {
  let oldest = Number.POSITIVE_INFINITY;
  for (const d of devices) {
    const rec = store.log.oldestBatchOf(d.tmid);
    if (rec !== undefined && rec.recvAt < oldest) oldest = rec.recvAt;
  }
  return oldest === Number.POSITIVE_INFINITY ? undefined : collectionDayOf(oldest);
}

/** Archives one day (unless already archived) and offers the daily download. Call holding the lock. */
export async function closeOneDay(options: CloseDaysOptions & { supportId: string; day: string; rebuild?: boolean }): Promise<ClosedDay & { manifest?: DayManifest }> {
  const { supportId, day, config } = options;
  const existing = readManifest(options.dataDir, supportId, day);
  if (existing !== undefined && options.rebuild !== true) {
    return { supportId, day, status: 'exists', batches: existing.batches, events: existing.events, zipBytes: existing.zip.bytes, manifest: existing };
  }
  const result = await options.runner.run(
    {
      type: 'close-day',
      dataDir: options.dataDir,
      supportId,
      day,
      now: options.now,
      deflateLevel: config.deflateLevel,
      parquetRowGroupRows: config.parquetRowGroupRows,
      parquetCompression: config.parquetCompression,
    },
    {
      ...(options.onProgress === undefined ? {} : { onProgress: (p: ExportProgress) => options.onProgress!(supportId, p) }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    },
  );
  if (result.status === 'empty') return { supportId, day, status: 'empty', batches: 0, events: 0, zipBytes: 0 };
  const m = result.manifest;
  offerDailyDownload(options.dataDir, {
    supportId,
    day,
    zipPath: coldDayPaths(options.dataDir, supportId, day).zip,
    bytes: m.zip.bytes,
    sha256: m.zip.sha256,
    entries: m.zip.entries,
    now: options.now,
    retentionDays: config.exportRetentionDays,
  });
  return { supportId, day, status: 'archived', batches: m.batches, events: m.events, zipBytes: m.zip.bytes, manifest: m };
}

/**
 * Closes, tenant by tenant and day by day, every collection day that has
 * ended (plus the grace period) and is not closed yet. Call holding the lock.
 */
export async function closeFinishedDays(options: CloseDaysOptions): Promise<ClosedDay[]> {
  const { store, dataDir, config, now } = options;
  const last = lastClosableDay(Math.min(now, options.completeThrough ?? now), config.closeGraceMs);
  const oldestKept = addDays(collectionDayOf(now), -config.coldRetentionDays);
  const supportIds = options.supportIds ?? store.tenants.ids();
  const closed: ClosedDay[] = [];
  let devices: Map<string, TenantDevice[]> | undefined;
  for (const supportId of supportIds) {
    const ledger = readLedger(dataDir, supportId);
    if (ledger.closedThrough === null) devices ??= devicesByTenant(store);
    let first = ledger.closedThrough === null ? oldestHotDay(store, devices!.get(supportId) ?? []) : addDays(ledger.closedThrough, 1);
    // Network logs (ingest/syslog) count too: a tenant may send only those.
    const oldestNetlog = ledger.closedThrough === null ? store.netlog.oldestReceivedAt(supportId) : undefined;
    if (oldestNetlog !== undefined && (first === undefined || collectionDayOf(oldestNetlog) < first)) first = collectionDayOf(oldestNetlog);
    if (first === undefined) {
      // Nothing received yet: every day so far is closed (and empty).
      writeLedger(dataDir, { ...ledger, closedThrough: last, updatedAt: now });
      continue;
    }
    if (first < oldestKept) first = oldestKept;
    for (let day = first; day <= last; day = addDays(day, 1)) {
      if (options.signal?.aborted) return closed;
      const r = await closeOneDay({ ...options, supportId, day });
      closed.push({ supportId: r.supportId, day: r.day, status: r.status, batches: r.batches, events: r.events, zipBytes: r.zipBytes });
      writeLedger(dataDir, { ...readLedger(dataDir, supportId), closedThrough: day, updatedAt: now });
      if (r.status !== 'empty') options.logger?.info({ supportId, day, status: r.status, batches: r.batches, events: r.events, zipBytes: r.zipBytes }, 'Collection day closed.');
    }
  }
  return closed;
}

/**
 * Removes the raw batches of `devices` received before `receivedBefore` whose lsn is at most `safeLsn` (batch-ids
 * stay, so late resends are still recognised). `complete` when no batch received before it is left above `safeLsn`.
 */
export async function rollOutRawBatches(
  store: HotStore,
  devices: readonly { tmid: string }[],
  receivedBefore: number,
  safeLsn: number,
): Promise<{ batches: number; events: number; complete: boolean }> {
  // Below this lsn every batch was received more than the slack before the edge: no need to read them.
  const verifyFromLsn = store.log.lsnReceivedAtOrAfter(receivedBefore - LSN_WINDOW_SLACK_MS);
  let batches = 0;
  let events = 0;
  for (const device of devices) {
    const r = await store.log.dropDeviceBatches(device.tmid, { belowLsn: safeLsn + 1, receivedBefore, verifyFromLsn });
    batches += r.batches;
    events += r.events;
  }
  return { batches, events, complete: store.log.lsnReceivedAtOrAfter(receivedBefore) - 1 <= safeLsn };
}

/**
 * The receipt time before which raw batches are past the hot retention at `now`: the end of the collection day
 * `hotRetentionDays + 1` days before today (what retention uses for archived days).
 */
export function hotRetentionEdge(now: number, hotRetentionDays: number): number {
  return dayWindow(addDays(collectionDayOf(now), -hotRetentionDays - 1)).toMs;
}

export interface RetentionReport {
  /** Raw batches removed from the hot store, per tenant. */
  rolled: { supportId: string; through: string; batches: number; events: number; complete: boolean }[];
  /** Cold archives deleted (collection days older than the cold retention). */
  coldDeleted: { supportId: string; day: string }[];
  /** Export jobs removed (30 days after they were made). */
  exportsExpired: string[];
}

/**
 * Applies every retention period: raw batches of closed days past
 * `hotRetentionDays` leave LMDB (`batches`, `device-batches`; `batch-ids`
 * stays so late resends are still recognised), but never batches a shard could
 * still replay; cold archives past `coldRetentionDays` and exports past their
 * expiry are deleted. Call holding the lock.
 */
export async function applyRetention(options: {
  store: HotStore;
  dataDir: string;
  config: Readonly<ExportConfig>;
  now: number;
  logger?: Logger;
  /** Highest lsn no shard can still replay, when no local shards decide it (a cluster's archive node: every committed lsn). */
  safeLsn?: number;
}): Promise<RetentionReport> {
  const { store, dataDir, config, now } = options;
  const today = collectionDayOf(now);
  const report: RetentionReport = { rolled: [], coldDeleted: [], exportsExpired: [] };

  const hotEdge = addDays(today, -config.hotRetentionDays - 1);
  const safeLsn = options.safeLsn ?? store.shardState.lsnSafeToDrop();
  let devices: Map<string, TenantDevice[]> | undefined;
  for (const supportId of store.tenants.ids()) {
    const ledger = readLedger(dataDir, supportId);
    if (ledger.closedThrough === null) continue;
    const through = ledger.closedThrough < hotEdge ? ledger.closedThrough : hotEdge;
    if (ledger.rolledThrough !== null && through <= ledger.rolledThrough) continue;
    const receivedBefore = dayWindow(through).toMs;
    devices ??= devicesByTenant(store);
    const { batches, events, complete } = await rollOutRawBatches(store, devices.get(supportId) ?? [], receivedBefore, safeLsn);
    // Network logs of the same days leave with them (nothing replays them).
    const netlogs = await store.netlog.dropBefore(supportId, receivedBefore);
    if (netlogs > 0) options.logger?.info({ supportId, through, netlogs }, 'Network logs of archived days left the hot store.');
    if (complete) writeLedger(dataDir, { ...readLedger(dataDir, supportId), rolledThrough: through, updatedAt: now });
    report.rolled.push({ supportId, through, batches, events, complete });
    if (batches > 0) options.logger?.info({ supportId, through, batches, events, complete }, 'Raw batches of archived days left the hot store.');
    if (!complete) options.logger?.warn({ supportId, through, safeLsn }, 'Some raw batches stay hot until the shards checkpoint past them.');
  }

  const coldEdge = addDays(today, -config.coldRetentionDays);
  const tenantsDir = join(coldRoot(dataDir), 'it360-log');
  if (existsSync(tenantsDir)) {
    for (const supportId of readdirSync(tenantsDir)) {
      const dir = join(tenantsDir, supportId);
      const old = new Set<string>();
      for (const name of readdirSync(dir)) {
        const m = /^(\d{4}-\d{2}-\d{2})\.(zip|parquet|manifest\.json)$/.exec(name);
        if (m !== null && isValidDay(m[1]!) && m[1]! < coldEdge) old.add(m[1]!);
      }
      for (const day of [...old].sort()) {
        const p = coldDayPaths(dataDir, supportId, day);
        // The manifest goes last: while it exists the day counts as archived.
        rmSync(p.zip, { force: true });
        rmSync(p.parquet, { force: true });
        rmSync(p.manifest, { force: true });
        report.coldDeleted.push({ supportId, day });
      }
    }
  }
  if (report.coldDeleted.length > 0) options.logger?.info({ days: report.coldDeleted.length }, 'Cold archives past their retention were deleted.');

  report.exportsExpired = expireJobs(dataDir, now);
  if (report.exportsExpired.length > 0) options.logger?.info({ jobs: report.exportsExpired.length }, 'Expired exports were removed.');
  return report;
}
