import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { createSilentLogger } from '../core/logger.js';
import { addDays, dayWindow } from './collection-day.js';
import { exportConfig } from './config.js';
import { applyRetention, closeFinishedDays, lastClosableDay, withColdLock } from './day-closer.js';
import { createExportRunner } from './export-pool.js';
import { listJobs, readJob } from './jobs.js';
import { coldDayPaths, coldRoot, readLedger } from './layout.js';
import { createExportScheduler } from './scheduler.js';
import { addBatch, addDevice, addTenant, openTestStore, simpleEvents, type TestStore } from './test-support.js';

const A = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const DAY = '2026-01-05';
const GRACE = 15 * 60_000;
const config = exportConfig({ workerThreads: 0, closeGraceMs: GRACE });

describe('day close and retention', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = openTestStore();
    await addTenant(t, 'EX0001');
    await addDevice(t, 'EX0001', A, 'PC-A');
  });
  afterEach(async () => t.close());

  const close = (now: number) => closeFinishedDays({ store: t.store, dataDir: t.dir, runner: createExportRunner({ store: t.store, threads: 0 }), config, now });

  it('closes a day only once D+1 05:00 JST plus the grace period has passed, then offers it for download', async () => {
    const { fromMs, toMs } = dayWindow(DAY);
    await addBatch(t, A, simpleEvents(1, 5), { recvAt: fromMs + 1000 });
    await addBatch(t, A, simpleEvents(6, 5), { recvAt: toMs + 1000 });
    expect(lastClosableDay(toMs + GRACE - 1, GRACE)).toBe(addDays(DAY, -1));
    expect(await close(toMs + GRACE - 1)).toEqual([]);
    expect(existsSync(coldDayPaths(t.dir, 'EX0001', DAY).zip)).toBe(false);

    const closed = await close(toMs + GRACE);
    expect(closed).toEqual([{ supportId: 'EX0001', day: DAY, status: 'archived', batches: 1, events: 5, zipBytes: expect.any(Number) }]);
    expect(readLedger(t.dir, 'EX0001').closedThrough).toBe(DAY);
    const job = readJob(t.dir, `daily-ex0001-${DAY}`)!;
    expect(job).toMatchObject({ kind: 'daily', status: 'done', expiresAt: toMs + GRACE + 30 * 86_400_000 });
    const download = join(t.dir, 'exports', job.id, job.files[0]!.path);
    // A hard link: the download costs no space and the cold archive outlives it.
    expect(statSync(download).ino).toBe(statSync(coldDayPaths(t.dir, 'EX0001', DAY).zip).ino);

    // Next day: an empty day closes without a file.
    const next = await close(dayWindow(addDays(DAY, 2)).toMs + GRACE);
    expect(next.map((d) => [d.day, d.status])).toEqual([
      ['2026-01-06', 'archived'],
      ['2026-01-07', 'empty'],
    ]);
    expect(readdirSync(coldDayPaths(t.dir, 'EX0001', DAY).dir).filter((f) => f.startsWith('2026-01-07'))).toEqual([]);
    // Running again does nothing.
    expect(await close(dayWindow(addDays(DAY, 2)).toMs + GRACE)).toEqual([]);
  });

  it('rolls raw batches of archived days out of LMDB after the hot retention, keeping batch-ids; then expires exports and cold archives', async () => {
    const { fromMs, toMs } = dayWindow(DAY);
    const old = await addBatch(t, A, simpleEvents(1, 5), { recvAt: fromMs + 1000 });
    const newer = await addBatch(t, A, simpleEvents(6, 5), { recvAt: toMs + 1000 });
    await close(toMs + GRACE);
    // Shards have checkpointed everything (recovery would not read these batches again).
    await t.store.transaction(() => {
      for (let v = 0; v < 256; v++) {
        t.store.shardState.setCheckpointSync(v, newer.lsn);
        t.store.shardState.setStateCheckpointSync(v, newer.lsn);
      }
    });
    // Within the hot retention (8 days after the day ended) nothing moves.
    const beforeEdge = toMs + 8 * 86_400_000 - 1;
    await close(beforeEdge);
    let r = await applyRetention({ store: t.store, dataDir: t.dir, config, now: beforeEdge });
    expect(r.rolled.reduce((n, x) => n + x.batches, 0)).toBe(0);
    expect(t.store.log.batch(old.lsn)).toBeDefined();

    const afterEdge = toMs + 8 * 86_400_000;
    await close(afterEdge);
    r = await applyRetention({ store: t.store, dataDir: t.dir, config, now: afterEdge });
    expect(r.rolled).toEqual([{ supportId: 'EX0001', through: DAY, batches: 1, events: 5, complete: true }]);
    expect(t.store.log.batch(old.lsn)).toBeUndefined();
    expect(t.store.log.deviceLsns(A, 0, Number.MAX_SAFE_INTEGER)).not.toContain(old.lsn);
    expect(t.store.log.batchIdOwner(old.id)).toEqual([old.lsn, A]);
    expect(t.store.log.batch(newer.lsn)).toBeDefined();
    expect(readLedger(t.dir, 'EX0001').rolledThrough).toBe(DAY);
    // Exports made at the close (toMs + GRACE) expire 30 days later; the cold archive stays.
    expect(r.exportsExpired).toEqual([]);
    r = await applyRetention({ store: t.store, dataDir: t.dir, config, now: toMs + GRACE + 30 * 86_400_000 });
    expect(r.exportsExpired).toEqual([`daily-ex0001-${DAY}`]);
    // 2026-01-06 was closed (and offered) later, at beforeEdge: its 30 days are not over.
    expect(listJobs(t.dir).map((j) => j.id)).toEqual(['daily-ex0001-2026-01-06']);
    expect(existsSync(coldDayPaths(t.dir, 'EX0001', DAY).zip)).toBe(true);
    // A year on, the cold archives go too.
    r = await applyRetention({ store: t.store, dataDir: t.dir, config, now: dayWindow(addDays(DAY, 365)).fromMs });
    expect(r.coldDeleted).toEqual([]);
    r = await applyRetention({ store: t.store, dataDir: t.dir, config, now: dayWindow(addDays(DAY, 366)).fromMs });
    expect(r.coldDeleted).toEqual([{ supportId: 'EX0001', day: DAY }]);
    expect(readdirSync(coldDayPaths(t.dir, 'EX0001', DAY).dir).filter((f) => f.startsWith(DAY))).toEqual([]);
  });

  it('keeps raw batches a shard could still replay', async () => {
    const { fromMs, toMs } = dayWindow(DAY);
    const old = await addBatch(t, A, simpleEvents(1, 5), { recvAt: fromMs + 1000 });
    const now = toMs + 9 * 86_400_000;
    await close(now);
    // No checkpoints at all: shards would replay from the start.
    const r = await applyRetention({ store: t.store, dataDir: t.dir, config, now });
    expect(r.rolled).toEqual([{ supportId: 'EX0001', through: addDays(DAY, 1), batches: 0, events: 0, complete: false }]);
    expect(t.store.log.batch(old.lsn)).toBeDefined();
    expect(readLedger(t.dir, 'EX0001').rolledThrough).toBeNull();
  });

  it('lets one process close days at a time', async () => {
    const inner = await withColdLock(t.dir, 0, async () => {
      // A lock file left by a process that no longer exists is taken over; a live holder is respected.
      return withColdLock(t.dir, 0, async () => 'nested');
    });
    expect(inner).toEqual({ busy: false, value: { busy: true } });
    writeFileSync(join(coldRoot(t.dir), '.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, at: 0 }));
    expect(await withColdLock(t.dir, 0, async () => 'taken over')).toEqual({ busy: false, value: 'taken over' });
  });

  it('the scheduler closes finished days and applies retention on its ticks, and stops cleanly', async () => {
    const { fromMs, toMs } = dayWindow(DAY);
    await addBatch(t, A, simpleEvents(1, 5), { recvAt: fromMs + 1000 });
    const clock = createManualClock(toMs);
    const scheduler = createExportScheduler({ store: t.store, dataDir: t.dir, logger: createSilentLogger(), clock, config: { workerThreads: 0, closeGraceMs: GRACE } });
    let r = await scheduler.runOnce();
    expect(r).toMatchObject({ busy: false, closed: [] });
    clock.advance(GRACE);
    r = await scheduler.runOnce();
    expect(r).toMatchObject({ busy: false, closed: [{ day: DAY, status: 'archived' }] });
    scheduler.start();
    await scheduler.stop();
    expect(readdirSync(coldDayPaths(t.dir, 'EX0001', DAY).dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('the scheduler keeps the failed runs that /healthz reports', async () => {
    const { fromMs, toMs } = dayWindow(DAY);
    await addBatch(t, A, simpleEvents(1, 5), { recvAt: fromMs + 1000 });
    const clock = createManualClock(toMs + GRACE);
    const failing = { mode: 'inline' as const, run: () => Promise.reject(new Error('ENOSPC: no space left on device')), close: async () => undefined };
    const scheduler = createExportScheduler({ store: t.store, dataDir: t.dir, logger: createSilentLogger(), clock, config: { workerThreads: 0, closeGraceMs: GRACE }, runner: failing });
    expect(scheduler.failures()).toEqual([]);
    await expect(scheduler.runOnce()).rejects.toThrow('ENOSPC');
    expect(scheduler.failures()).toEqual([{ at: toMs + GRACE, reason: 'ENOSPC: no space left on device' }]);
    // The lock was released: the next run tries again (and fails again, recorded once more).
    clock.advance(60_000);
    await expect(scheduler.runOnce()).rejects.toThrow('ENOSPC');
    expect(scheduler.failures().map((f) => f.at)).toEqual([toMs + GRACE, toMs + GRACE + 60_000]);
  });
});
