/**
 * CPU time and memory of another process, read from /proc (Linux): what the
 * benchmark reports for the server under test and the baselines, including
 * all of their threads (shard workers, LMDB's writer, libuv's pool).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
export const CLOCK_TICKS_PER_SEC = 100;

/** One reading of a process. */
export interface ProcSample {
  /** performance.now() of the reading, ms. */
  atMs: number;
  /** User + system CPU time of all threads, seconds. */
  cpuSec: number;
  /** Resident set, bytes. */
  rssBytes: number;
  /** Anonymous resident memory (heap, native allocations), bytes: user-space memory without mapped files. */
  rssAnonBytes: number;
  /** File-backed resident memory (code, the LMDB map), bytes. */
  rssFileBytes: number;
  /** Peak resident set, bytes. */
  hwmBytes: number;
  threads: number;
}

function kb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Reads /proc/PID/stat and /proc/PID/status; undefined when the process is gone. */
export function readProcSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const threads = /^Threads:\s+(\d+)/m.exec(status);
    return {
      atMs: performance.now(),
      cpuSec: (utime + stime) / CLOCK_TICKS_PER_SEC,
      rssBytes: kb(status, 'VmRSS'),
      rssAnonBytes: kb(status, 'RssAnon'),
      rssFileBytes: kb(status, 'RssFile'),
      hwmBytes: kb(status, 'VmHWM'),
      threads: threads ? Number(threads[1]) : 0,
    };
  } catch {
    return undefined;
  }
}

/** CPU used between two readings, in cores (1.0 = one core busy). */
export function coresBetween(a: ProcSample | undefined, b: ProcSample | undefined): number {
  if (!a || !b || b.atMs <= a.atMs) return 0;
  return (b.cpuSec - a.cpuSec) / ((b.atMs - a.atMs) / 1000);
}

/** The soft limit on open files of this process (children inherit it). */
export function openFilesLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') return Number(m[1]);
  } catch {
    // Not Linux: fall through.
  }
  return 1024;
}

/**
 * CPU seconds (user + system) of a process's main thread and of all its
 * other threads together (V8's GC helpers, LMDB's writer, libuv's pool);
 * undefined off Linux.
 */
export function mainThreadCpuSeconds(pid: number = process.pid): { main: number; others: number } | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let main = 0;
  let others = 0;
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const sec = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
      if (Number(tid) === pid) main += sec;
      else others += sec;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return { main, others };
}
