/**
 * Refuses LMDB writes before the data directory's file system is full.
 *
 * Why: when a page write fails with ENOSPC, lmdb-js 3.5.6 (the newest)
 * formats its error message into a 100-byte `malloc` in mdb.c
 * (`mdb_page_flush`) that the message can overrun; glibc then aborts the
 * process ("corrupted size vs. prev_size"): one run in 6 to 20 of the
 * disk-full fault test (test/fault/process-storage-full.test.ts) ended so.
 * kiseki therefore never lets LMDB reach ENOSPC when it can see it
 * coming: every write that starts a transaction first checks the free
 * space (statfs, at most once a millisecond per thread) and is refused with
 * ERR_STORAGE_UNAVAILABLE while less than the reserve is left. Writes made
 * inside a transaction that already passed the check are not checked again.
 *
 * What is left: another program taking the last reserve between the check
 * and LMDB's write. The reserve is sized for that window.
 */
import { statfsSync } from 'node:fs';
import { KisekiError } from '../core/errors.js';

/** Free bytes under which writes are refused: a group commit of the log and a shard's flush, many times over. */
export const WRITE_RESERVE_BYTES = 64 * 1024 * 1024;
/** How long one statfs answer is trusted. */
const CHECK_INTERVAL_MS = 1;

export interface DiskGuard {
  /** Throws ERR_STORAGE_UNAVAILABLE while the file system has less than the reserve free. */
  check(): void;
}

export interface DiskGuardOptions {
  dataDir: string;
  reserveBytes?: number;
  /** Free bytes for unprivileged writers (statfs `bavail × bsize` by default; tests inject it). */
  freeBytes?: () => number;
  now?: () => number;
}

export function createDiskGuard(options: DiskGuardOptions): DiskGuard {
  const reserve = options.reserveBytes ?? WRITE_RESERVE_BYTES;
  const freeBytes =
    options.freeBytes ??
    ((): number => {
      const s = statfsSync(options.dataDir);
      return s.bavail * s.bsize;
    });
  const now = options.now ?? Date.now;
  let checkedAt = -Infinity;
  let lastFree = Infinity;
  return {
    check() {
      const t = now();
      if (t - checkedAt >= CHECK_INTERVAL_MS || lastFree < reserve) {
        try {
          lastFree = freeBytes();
        } catch {
          // statfs itself failing says nothing about space: let LMDB try and report its own error.
          lastFree = Infinity;
        }
        checkedAt = t;
      }
      if (lastFree < reserve) {
        throw new KisekiError('ERR_STORAGE_UNAVAILABLE', { op: 'write', dataDir: options.dataDir, reason: `the file system has ${lastFree} bytes free, under the ${reserve}-byte reserve kept so that LMDB never meets ENOSPC`, errno: 'ENOSPC' });
      }
    },
  };
}

/**
 * The lmdb-js methods where a write starts (lmdb-js 3.5's write.js and open.js): the others go through them
 * on the same object. `putSync`, `removeSync`, `clearSync` and `dropSync` call `transactionSync` outside a
 * transaction and `put` / `remove` inside one; `batch` and `ifNoExists` call `ifVersion`. Wrapping only these
 * keeps one wrapper, not two, on each write of a shard's flush.
 */
const ASYNC_WRITES = ['put', 'remove', 'ifVersion', 'transaction', 'childTransaction', 'clearAsync', 'drop'] as const;
const SYNC_WRITES = ['transactionSync'] as const;
/** Callback-taking writers: the callback runs inside the transaction, where nested writes need no check. */
const WITH_CALLBACK = new Set<string>(['transaction', 'transactionSync', 'childTransaction', 'ifVersion']);

/** Per thread: > 0 while a guarded transaction's callback runs. */
let insideTransaction = 0;

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Wraps `db`'s write methods (on the instance; the prototype is lmdb-js's) so that each one called outside a
 * transaction checks `guard` first: async writers return a rejected promise, sync writers throw.
 */
export function guardWrites<T extends object>(db: T, guard: DiskGuard): T {
  const target = db as unknown as Record<string, unknown>;
  const wrap = (name: string, async: boolean): void => {
    const original = target[name];
    if (typeof original !== 'function') return;
    const method = original as Method;
    const takesCallback = WITH_CALLBACK.has(name);
    target[name] = function guarded(this: unknown, ...args: unknown[]): unknown {
      if (insideTransaction === 0) {
        try {
          guard.check();
        } catch (err) {
          if (async) return Promise.reject(err);
          throw err;
        }
      }
      if (takesCallback) {
        const last = args.length - 1;
        const callback = args[last];
        if (typeof callback === 'function') {
          args[last] = function inTransaction(this: unknown, ...inner: unknown[]): unknown {
            insideTransaction++;
            try {
              return (callback as Method).apply(this, inner);
            } finally {
              insideTransaction--;
            }
          };
        }
      }
      return method.apply(this, args);
    };
  };
  for (const name of ASYNC_WRITES) wrap(name, true);
  for (const name of SYNC_WRITES) wrap(name, false);
  return db;
}
