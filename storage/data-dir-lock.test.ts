import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isKisekiError } from '../core/errors.js';
import { DATA_DIR_LOCK_FILE, lockDataDir } from './data-dir-lock.js';

/** A pid that certainly ran and is gone: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('lockDataDir', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-lock-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the pid and host, refuses a second holder, and releases', () => {
    const lock = lockDataDir(dir);
    const owner = JSON.parse(readFileSync(join(dir, DATA_DIR_LOCK_FILE), 'utf8')) as { pid: number; host: string };
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    // A live process on this host (the parent of this test runner is alive, and so is this one).
    writeFileSync(join(dir, DATA_DIR_LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), at: 0 }));
    let err: unknown;
    try {
      lockDataDir(dir);
    } catch (e) {
      err = e;
    }
    expect(isKisekiError(err, 'ERR_DATA_DIR_LOCKED')).toBe(true);
    expect((err as { details: { reason: string } }).details.reason).toContain(`pid ${process.ppid}`);
    // release() removes only its own lock: this one was replaced by hand.
    lock.release();
    expect(existsSync(join(dir, DATA_DIR_LOCK_FILE))).toBe(true);
  });

  it.each([
    ['a dead pid', () => ({ pid: deadPid(), host: hostname(), at: 0 })],
    ['a pid reused by a process started at another time', () => ({ pid: process.ppid, host: hostname(), startTicks: 1, at: 0 })],
  ])('takes over a lock left by %s (kill -9)', (_name, owner) => {
    writeFileSync(join(dir, DATA_DIR_LOCK_FILE), JSON.stringify(owner()));
    const lock = lockDataDir(dir);
    expect(lock.stale).toBeDefined();
    expect((JSON.parse(readFileSync(lock.path, 'utf8')) as { pid: number }).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
  });

  it('refuses a lock written on another host, saying which file to remove', () => {
    writeFileSync(join(dir, DATA_DIR_LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere.example', at: 0 }));
    expect(() => lockDataDir(dir)).toThrow(expect.objectContaining({ code: 'ERR_DATA_DIR_LOCKED', details: expect.objectContaining({ host: 'elsewhere.example' }) }));
  });
});
