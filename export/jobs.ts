/**
 * Export jobs on disk: every customer download (a daily archive offered for
 * download, a 30-day or a 1-year log spot) is a job directory under
 * `DATA/exports/<jobId>/` with its `job.json` and its files under
 * `it360-log/<supportId>/`, as the customer receives them. Every job expires
 * `exportRetentionDays` (30) after it was made and is then removed (SPEC §6).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DAY_MS, jstDateOf } from './collection-day.js';
import { exportsRoot, readJson, removeStaleTemporaries, writeFileAtomic } from './layout.js';
import { isProcessAlive } from '../core/process-alive.js';

export type ExportKind = 'daily' | 'spot30' | 'spot1y';
export type ExportStatus = 'running' | 'done' | 'failed';

export interface ExportJobFile {
  /** File name as the customer sees it, e.g. 2026-01-05_SP.zip. */
  name: string;
  /** Path relative to the job directory. */
  path: string;
  bytes: number;
  sha256: string;
  entries: number;
  /** The collection day, for per-day files. */
  day?: string;
}

export interface ExportJob {
  id: string;
  kind: ExportKind;
  supportId: string;
  params: Record<string, string>;
  status: ExportStatus;
  createdAt: number;
  finishedAt?: number;
  /** After this (ms) the job and its files are removed. */
  expiresAt: number;
  files: ExportJobFile[];
  /** Days asked for that had no logs, or whose data was still being collected. */
  emptyDays?: string[];
  partialDays?: string[];
  /** While running: the latest progress written (every few seconds). */
  progress?: { phase: string; done: number; total: number; bytes: number; at: number };
  error?: string;
  /** The process building a `running` job, so a restart can tell a live build from an interrupted one. */
  owner?: { pid: number; host: string };
}

const JOB_ID_RE = /^[a-z0-9][a-z0-9-]{0,120}$/i;

export function jobDir(dataDir: string, id: string): string {
  if (!JOB_ID_RE.test(id)) throw new RangeError('bad export job id');
  return join(exportsRoot(dataDir), id);
}

/** Directory of a job's files, `it360-log/<supportId>/` inside the job directory. */
export function jobFilesDir(dataDir: string, job: Pick<ExportJob, 'id' | 'supportId'>): string {
  return join(jobDir(dataDir, job.id), 'it360-log', job.supportId);
}

export function newJobId(kind: ExportKind, supportId: string, now: number): string {
  const stamp = new Date(now + 9 * 3600_000).toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${kind}-${supportId.toLowerCase().replace(/[^a-z0-9]/g, '')}-${stamp}-${randomBytes(3).toString('hex')}`.slice(0, 120);
}

export function writeJob(dataDir: string, job: ExportJob): void {
  writeFileAtomic(join(jobDir(dataDir, job.id), 'job.json'), `${JSON.stringify(job, null, 2)}\n`);
}

export function readJob(dataDir: string, id: string): ExportJob | undefined {
  if (!JOB_ID_RE.test(id)) return undefined;
  return readJson<ExportJob>(join(jobDir(dataDir, id), 'job.json'));
}

/** Jobs, newest first; only `supportId`'s when given (a customer must never see another tenant's jobs). */
export function listJobs(dataDir: string, supportId?: string): ExportJob[] {
  const root = exportsRoot(dataDir);
  if (!existsSync(root)) return [];
  const jobs: ExportJob[] = [];
  for (const name of readdirSync(root)) {
    if (!JOB_ID_RE.test(name)) continue;
    const job = readJob(dataDir, name);
    if (job !== undefined && (supportId === undefined || job.supportId === supportId)) jobs.push(job);
  }
  return jobs.sort((a, b) => b.createdAt - a.createdAt);
}

/**
 * Absolute path of one of a job's files for a download, checking that the job
 * belongs to `supportId`, is done and has not expired. Undefined otherwise.
 */
export function jobFilePath(dataDir: string, supportId: string, id: string, name: string, now: number): string | undefined {
  const job = readJob(dataDir, id);
  if (job === undefined || job.supportId !== supportId || job.status !== 'done' || job.expiresAt <= now) return undefined;
  const file = job.files.find((f) => f.name === name);
  return file === undefined ? undefined : join(jobDir(dataDir, id), file.path);
}

/** Removes every job whose time is up. Returns the ids removed. */
export function expireJobs(dataDir: string, now: number): string[] {
  const removed: string[] = [];
  for (const job of listJobs(dataDir)) {
    if (job.expiresAt <= now) {
      rmSync(jobDir(dataDir, job.id), { recursive: true, force: true });
      removed.push(job.id);
    }
  }
  return removed;
}

/** Id of the download job of a tenant's daily archive (one per day, renewed when offered again). */
export function dailyJobId(supportId: string, day: string): string {
  return `daily-${supportId.toLowerCase().replace(/[^a-z0-9]/g, '')}-${day}`.slice(0, 120);
}

/**
 * Offers a cold daily archive for download as a `daily` job (id
 * `daily-<supportId>-<day>`), by hard link: no second copy on disk, and the
 * cold archive outlives the download. Re-offering renews the 30 days.
 */
export function offerDailyDownload(
  dataDir: string,
  input: { supportId: string; day: string; zipPath: string; bytes: number; sha256: string; entries: number; now: number; retentionDays: number },
): ExportJob {
  const id = dailyJobId(input.supportId, input.day);
  const job: ExportJob = {
    id,
    kind: 'daily',
    supportId: input.supportId,
    params: { date: input.day },
    status: 'done',
    createdAt: input.now,
    finishedAt: input.now,
    expiresAt: input.now + input.retentionDays * DAY_MS,
    files: [{ name: `${input.day}.zip`, path: join('it360-log', input.supportId, `${input.day}.zip`), bytes: input.bytes, sha256: input.sha256, entries: input.entries, day: input.day }],
  };
  const dir = jobFilesDir(dataDir, job);
  mkdirSync(dir, { recursive: true });
  const target = join(dir, `${input.day}.zip`);
  rmSync(target, { force: true });
  try {
    linkSync(input.zipPath, target);
  } catch {
    copyFileSync(input.zipPath, target);
  }
  writeJob(dataDir, job);
  return job;
}

/** The delivery date of a 1-year log spot made at `now` (JST calendar date). */
export function deliveryDate(now: number): string {
  return jstDateOf(now);
}

/** The owner stamp of a job this process builds. */
export function jobOwner(): { pid: number; host: string } {
  return { pid: process.pid, host: hostname() };
}


/** What `recoverInterruptedJobs` did. */
export interface JobRecovery {
  /** Jobs that were `running` for a process that is gone, now `failed`. */
  failed: string[];
  /** Temporary files removed from those jobs' directories. */
  tempFilesRemoved: number;
}

/**
 * Issue 11, item 10: a job whose building process was killed (kill -9, a
 * crash, power loss) would stay `running` forever with its `.tmp` files.
 * Called when the server starts: every `running` job whose owner process is
 * gone (or that has no owner stamp: written by an older version) is marked
 * `failed` with a reason saying to ask for it again, and the temporary files
 * in its directory are removed. A job owned by a live process on this host
 * (a `kiseki export` command still running) is left alone; one owned by
 * another host cannot be checked and is left alone too.
 * Log spots are not resumed: they are rebuilt from scratch in minutes, and a
 * half-written archive cannot be trusted.
 */
export function recoverInterruptedJobs(dataDir: string, now: number, alive: (pid: number) => boolean = isProcessAlive): JobRecovery {
  const out: JobRecovery = { failed: [], tempFilesRemoved: 0 };
  const host = hostname();
  for (const job of listJobs(dataDir)) {
    if (job.status !== 'running') continue;
    const owner = job.owner;
    if (owner !== undefined && (owner.host !== host || owner.pid === process.pid || alive(owner.pid))) continue;
    out.tempFilesRemoved += removeTemporariesUnder(jobDir(dataDir, job.id));
    writeJob(dataDir, {
      ...job,
      status: 'failed',
      finishedAt: now,
      error: 'interrupted: the process building this export stopped before it finished (killed or crashed); request the export again',
    });
    out.failed.push(job.id);
  }
  return out;
}

function removeTemporariesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  let removed = removeStaleTemporaries(dir);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) removed += removeTemporariesUnder(path);
  }
  return removed;
}
