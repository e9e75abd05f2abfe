/**
 * Where the cold tier and the exports live on disk (docs/EXPORTS.md), the
 * manifest of an archived day, the per-tenant close ledger, and the small
 * file helpers that keep every write atomic (write a temporary file, rename).
 *
 *   DATA/cold/it360-log/<supportId>/YYYY-MM-DD.zip            daily log-download archive (SPEC §6)
 *   DATA/cold/it360-log/<supportId>/YYYY-MM-DD.parquet        the same events, typed columns
 *   DATA/cold/it360-log/<supportId>/YYYY-MM-DD.manifest.json  devices, counts, seq ranges and gaps, sha256
 *   DATA/cold/ledger/<supportId>.json                         days closed and rolled out of the hot store
 *   DATA/cold/.lock                                           one day-closer at a time
 *   DATA/exports/<jobId>/job.json                             an export job (daily download or log spot)
 *   DATA/exports/<jobId>/it360-log/<supportId>/<files>        its files, as the customer downloads them
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isValidDay } from './collection-day.js';
import { isProcessAlive } from '../core/process-alive.js';

/** Support IDs are path components here (storage/tenants.ts enforces the same rule at creation). */
export const SUPPORT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function coldRoot(dataDir: string): string {
  return join(dataDir, 'cold');
}

export function coldTenantDir(dataDir: string, supportId: string): string {
  return join(dataDir, 'cold', 'it360-log', supportId);
}

export interface DayPaths {
  dir: string;
  zip: string;
  parquet: string;
  manifest: string;
}

export function coldDayPaths(dataDir: string, supportId: string, day: string): DayPaths {
  const dir = coldTenantDir(dataDir, supportId);
  return { dir, zip: join(dir, `${day}.zip`), parquet: join(dir, `${day}.parquet`), manifest: join(dir, `${day}.manifest.json`) };
}

export function exportsRoot(dataDir: string): string {
  return join(dataDir, 'exports');
}

export function ledgerPath(dataDir: string, supportId: string): string {
  return join(dataDir, 'cold', 'ledger', `${supportId}.json`);
}

/** One device's part of an archived day. */
export interface ManifestDevice {
  tmid: string;
  /** Computer name when the day was archived. */
  computer: string;
  /** Folder of its inner zips in the daily archive (the computer name made safe for file systems). */
  folder: string;
  batches: number;
  events: number;
  /** Lowest and highest seq of the day's events, 0 when it sent only empty batches. */
  firstSeq: number;
  lastSeq: number;
  /** Seq ranges held in this day's batches: sorted, disjoint, inclusive [from, to]. */
  ranges: [number, number][];
  /** Holes between those ranges, inclusive [from, to]. */
  gaps: [number, number][];
  /** Events missing from the device's whole trail (as known when archived), up to this day's last seq. */
  trailGapsBefore: [number, number][];
}

/** What an archived collection day holds; written next to the archives as YYYY-MM-DD.manifest.json. */
export interface DayManifest {
  format: 'kiseki.cold-day.v1';
  supportId: string;
  day: string;
  /** The receive-time window, ms since epoch: [fromMs, toMs). */
  window: { fromMs: number; toMs: number; from: string; to: string };
  createdAt: number;
  /** Present on a partial archive of a day still being collected: it holds batches received before `asOfMs` only. */
  partial?: { asOfMs: number; asOf: string };
  batches: number;
  events: number;
  eventsByKind: Record<string, number>;
  devices: ManifestDevice[];
  zip: { file: string; bytes: number; sha256: string; entries: number; zip64: boolean; deflateLevel: number; lineEnding: 'CRLF' };
  parquet: { file: string; bytes: number; sha256: string; rows: number; rowGroupRows: number; compression: string };
  /** Network logs received in the window (docs/NETLOG.md), under `netlog/` in the zip; absent when there were none. */
  netlog?: ManifestNetlog;
}

/** The network-log part of a daily archive: records per format and the zip entries holding them. */
export interface ManifestNetlog {
  records: number;
  byFormat: Record<string, number>;
  files: string[];
}

/** Per-tenant ledger of the day closer. */
export interface TenantLedger {
  supportId: string;
  /** Every collection day up to and including this one is closed (archived, or had no logs). */
  closedThrough: string | null;
  /** Raw batches received before the end of this day have left the hot store. */
  rolledThrough: string | null;
  updatedAt: number;
}

/** Writes `text` to `path` atomically (temporary file in the same directory, then rename). */
export function writeFileAtomic(path: string, text: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function readManifest(dataDir: string, supportId: string, day: string): DayManifest | undefined {
  return readJson<DayManifest>(coldDayPaths(dataDir, supportId, day).manifest);
}

export function readLedger(dataDir: string, supportId: string): TenantLedger {
  return readJson<TenantLedger>(ledgerPath(dataDir, supportId)) ?? { supportId, closedThrough: null, rolledThrough: null, updatedAt: 0 };
}

export function writeLedger(dataDir: string, ledger: TenantLedger): void {
  writeFileAtomic(ledgerPath(dataDir, ledger.supportId), `${JSON.stringify(ledger, null, 2)}\n`);
}

/** Collection days that have a manifest in the tenant's cold folder, ascending. */
export function archivedDays(dataDir: string, supportId: string): string[] {
  const dir = coldTenantDir(dataDir, supportId);
  if (!existsSync(dir)) return [];
  const days: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = /^(\d{4}-\d{2}-\d{2})\.manifest\.json$/.exec(name);
    if (m !== null && isValidDay(m[1]!)) days.push(m[1]!);
  }
  return days.sort();
}

/** Removes temporary files left by an interrupted writer (names ending in `.tmp`, `.tmp.cd`). */
export function removeStaleTemporaries(dir: string): number {
  if (!existsSync(dir)) return 0;
  let removed = 0;
  for (const name of readdirSync(dir)) {
    if (/\.[0-9a-f]{8}\.tmp(\.cd)?$/.test(name)) {
      rmSync(join(dir, name), { force: true });
      removed++;
    }
  }
  return removed;
}

const RESERVED = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i;

/**
 * A computer name as a folder name every file system and Windows accepts:
 * characters Windows forbids in names (`\ / : * ? " < > |`) and control
 * characters become `_`, trailing dots and spaces go, reserved device names
 * (CON, NUL, COM1 …) get a trailing `_`. An empty result falls back to `fallback`.
 */
export function safeFolderName(name: string, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  let s = name.replace(/[\u0000-\u001f\u007f\\/:*?"<>|]/g, '_').replace(/[. ]+$/, '');
  if (RESERVED.test(s)) s = `${s}_`;
  if (s === '' || s === '.' || s === '..') return fallback;
  return s;
}

/**
 * A lock file held by one process at a time (`wx` create). A lock whose
 * process is gone is taken over. Returns a release function, or undefined when
 * another live process holds the lock.
 */
export function tryLock(path: string, now: number): (() => void) | undefined {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, at: now }));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readJson<{ pid: number }>(path);
      if (holder !== undefined && holder.pid !== process.pid && isProcessAlive(holder.pid)) return undefined;
      if (holder !== undefined && holder.pid === process.pid) return undefined;
      rmSync(path, { force: true });
    }
  }
  return undefined;
}

