/**
 * One server per data directory. LMDB itself lets several processes open an
 * environment, but two `kiseki start`s on one directory would each hand out
 * the same log sequence numbers and overwrite each other's batches (issue 11,
 * item 3). `DATA/kiseki.lock` names the process that runs the server: its
 * pid, the host name and the process's start time.
 *
 * Node has no flock without a native addon, so the lock is a file created
 * atomically (link(2) of a private file: it fails when the lock exists) plus
 * a liveness check that makes a lock left by a killed process (kill -9, power
 * loss) harmless: on the same host, a lock whose pid is dead, or whose pid now
 * belongs to a process started at another time (pid reuse, read from
 * /proc/PID/stat), is stale and taken over. A lock written on another host
 * (a second container sharing the volume) cannot be checked: it is refused,
 * and the message says which file to remove once that server is gone.
 */
import { hostname } from 'node:os';
import { linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KisekiError } from '../core/errors.js';
import { isProcessAlive } from '../core/process-alive.js';

/** The lock file's name inside the data directory. */
export const DATA_DIR_LOCK_FILE = 'kiseki.lock';

/** What a lock file holds. */
export interface DataDirLockOwner {
  pid: number;
  host: string;
  /** The owner's start time as /proc/PID/stat field 22 (clock ticks since boot), when known. */
  startTicks?: number;
  /** When the lock was taken, ms since the epoch. */
  at: number;
}

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), undefined off Linux or for a dead pid. */
function startTicksOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}


function readOwner(path: string): { text: string; owner: DataDirLockOwner | undefined } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const o = JSON.parse(text) as Partial<DataDirLockOwner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string') return { text, owner: o as DataDirLockOwner };
  } catch {
    // A lock half written by a process killed between create and write: judged below as unreadable.
  }
  return { text, owner: undefined };
}

/** Why a lock held by `owner` is stale, or undefined when its process may still run. */
function staleReason(owner: DataDirLockOwner | undefined, text: string): string | undefined {
  if (owner === undefined) return text.trim() === '' ? 'empty lock file' : undefined;
  if (owner.host !== hostname()) return undefined;
  if (owner.pid === process.pid) return undefined;
  if (!isProcessAlive(owner.pid)) return `process ${owner.pid} is gone`;
  if (owner.startTicks !== undefined) {
    const now = startTicksOf(owner.pid);
    if (now !== undefined && now !== owner.startTicks) return `pid ${owner.pid} now belongs to another process`;
  }
  return undefined;
}

/**
 * Takes the data directory's lock for this process.
 * @returns the lock, and `stale` when a lock left by a dead process was taken over (for a log line).
 * @throws KisekiError ERR_DATA_DIR_LOCKED when another live server holds it (or one on another host).
 */
export function lockDataDir(dataDir: string): DataDirLock & { stale?: string } {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, DATA_DIR_LOCK_FILE);
  const ticks = startTicksOf(process.pid);
  const mine: DataDirLockOwner = { pid: process.pid, host: hostname(), ...(ticks === undefined ? {} : { startTicks: ticks }), at: Date.now() };
  const text = `${JSON.stringify(mine)}\n`;
  // Written in full under a private name first, then linked: the lock is never seen half written.
  const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(candidate, text);
  let stale: string | undefined;
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(candidate, path);
        let released = false;
        return {
          path,
          ...(stale === undefined ? {} : { stale }),
          release() {
            if (released) return;
            released = true;
            // Only our own lock: a lock file replaced by hand must not be removed by us.
            if (readOwner(path)?.text === text) rmSync(path, { force: true });
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = readOwner(path);
      if (held === undefined) continue;
      const reason = staleReason(held.owner, held.text);
      if (reason === undefined) {
        const owner = held.owner;
        const sameHost = owner === undefined || owner.host === hostname();
        throw new KisekiError('ERR_DATA_DIR_LOCKED', {
          dataDir,
          lockFile: path,
          ...(owner === undefined ? {} : { pid: owner.pid, host: owner.host }),
          reason: sameHost
            ? `another kiseki server (pid ${owner?.pid ?? 'unknown'}) is running on ${dataDir}: stop it first, or start this one with another --data`
            : `${path} was written by pid ${owner.pid} on host ${owner.host}, which this host cannot check: if no server runs there any more, remove the file and start again`,
        });
      }
      // Stale: remove it only if it is still the very lock judged stale (another starter may have replaced it).
      if (readOwner(path)?.text === held.text) {
        try {
          unlinkSync(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      stale = reason;
    }
    throw new KisekiError('ERR_DATA_DIR_LOCKED', { dataDir, lockFile: path, reason: `the lock ${path} keeps changing: another kiseki server is starting on ${dataDir}` });
  } finally {
    rmSync(candidate, { force: true });
  }
}
