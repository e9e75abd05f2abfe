import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dayWindow } from './collection-day.js';
import { exportConfig } from './config.js';
import type { ExportProgress } from './day-archive.js';
import { closeFinishedDays } from './day-closer.js';
import { createExportRunner } from './export-pool.js';
import { expireJobs, jobFilePath, jobFilesDir, listJobs, readJob } from './jobs.js';
import { coldDayPaths, readLedger } from './layout.js';
import { buildSpot1y, buildSpot30, spot30Problem } from './spot-jobs.js';
import { startSpotJob } from './spot-runner.js';
import { addBatch, addDevice, addTenant, openTestStore, pythonZip, simpleEvents, unzipNames, unzipTest, type TestStore } from './test-support.js';

const A = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const B = '0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D';
const FOREIGN = 'FFFFFFFF-0000-4000-8000-000000000000';
const JST = 9 * 3600_000;
/** 2026-01-08 12:00 JST: days up to 01-06 are closed, 01-07 has ended but is not closed yet, 01-08 is running. */
const NOW = Date.parse('2026-01-08T12:00:00Z') - JST;

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('log spot jobs', () => {
  let t: TestStore;
  const ids: Record<string, string> = {};
  beforeEach(async () => {
    t = openTestStore();
    await addTenant(t, 'EX0001');
    await addTenant(t, 'OTHER1');
    await addDevice(t, 'EX0001', A, 'PC-A');
    await addDevice(t, 'EX0001', B, 'PC-B');
    await addDevice(t, 'OTHER1', FOREIGN, 'PC-A');
    let seqA = 1;
    let seqB = 1;
    for (const day of ['2026-01-05', '2026-01-07', '2026-01-08']) {
      const { fromMs } = dayWindow(day);
      for (let i = 0; i < 3; i++) {
        const at = fromMs + 3600_000 * (i + 1);
        ids[`${day}/A${i}`] = (await addBatch(t, A, simpleEvents(seqA, 4), { recvAt: at, sentAt: at - 700 })).id;
        seqA += 4;
      }
      ids[`${day}/B`] = (await addBatch(t, B, simpleEvents(seqB, 2), { recvAt: fromMs + 7200_500, sentAt: fromMs + 7200_000 })).id;
      seqB += 2;
      await addBatch(t, FOREIGN, simpleEvents(1, 1), { recvAt: fromMs + 10 });
    }
    // Close the days up to 2026-01-06 (the scheduler's job), as it would have on 2026-01-07 at 06:00 JST.
    const runner = createExportRunner({ store: t.store, threads: 0 });
    await closeFinishedDays({ store: t.store, dataDir: t.dir, runner, config: exportConfig({ workerThreads: 0 }), now: Date.parse('2026-01-07T06:00:00Z') - JST, supportIds: ['EX0001'] });
    expect(readLedger(t.dir, 'EX0001').closedThrough).toBe('2026-01-06');
  });
  afterEach(async () => t.close());

  const base = () => ({ dataDir: t.dir, supportId: 'EX0001', now: NOW, deflateLevel: 6, coldRetentionDays: 365 });

  it('30 days: one YYYY-MM-DD_SP.zip per day with logs, <computer>/<inner zips>, from cold and hot', async () => {
    const progress: ExportProgress[] = [];
    const r = await buildSpot30(t.store, { ...base(), jobId: 'spot30-test', from: '2026-01-04', to: '2026-01-08', onProgress: (p) => progress.push(p) });
    expect(r.files.map((f) => f.name)).toEqual(['2026-01-05_SP.zip', '2026-01-07_SP.zip', '2026-01-08_SP.zip']);
    expect(r.emptyDays).toEqual(['2026-01-04', '2026-01-06']);
    expect(r.partialDays).toEqual(['2026-01-08']);
    expect(progress.at(-1)).toMatchObject({ done: 12, total: 12 });

    const dir = jobFilesDir(t.dir, { id: 'spot30-test', supportId: 'EX0001' });
    for (const f of r.files) {
      const path = join(dir, f.name);
      expect(unzipTest(path).ok).toBe(true);
      const day = f.day!;
      const s15 = (ms: number) => {
        const d = new Date(ms + JST);
        return d.toISOString().slice(2, 23).replace(/[-T:.]/g, '');
      };
      const { fromMs } = dayWindow(day);
      expect(unzipNames(path)).toEqual([
        'PC-A/',
        ...[0, 1, 2].map((i) => `PC-A/${A}_${s15(fromMs + 3600_000 * (i + 1) - 700)}-${ids[`${day}/A${i}`]}.zip`),
        'PC-B/',
        `PC-B/${B}_${s15(fromMs + 7200_000)}-${ids[`${day}/B`]}.zip`,
      ]);
      const py = pythonZip(path);
      expect(py.bad).toBeNull();
      expect(Object.values(py.nested).map((n) => Object.values(n.text).join('').split('\r\n').length - 1)).toEqual([4, 4, 4, 2]);
    }
    // Closed days are copied byte for byte out of the cold daily archive.
    const { openZipReader } = await import('./zip-reader.js');
    const cold = openZipReader(coldDayPaths(t.dir, 'EX0001', '2026-01-05').zip);
    const spot = openZipReader(join(dir, '2026-01-05_SP.zip'));
    const coldInner = cold.entries.filter((e) => !e.name.endsWith('/')).map((e) => sha(cold.readRaw(e)));
    const spotInner = spot.entries.filter((e) => !e.name.endsWith('/')).map((e) => sha(spot.readRaw(e)));
    expect(spotInner).toEqual(coldInner);
    cold.close();
    spot.close();
  });

  it('1 year: one <TMID>_AllData_<delivery date>.zip with <collection day>/<inner zips> of that device only', async () => {
    const r = await buildSpot1y(t.store, { ...base(), jobId: 'spot1y-test', tmid: A });
    expect(r.days).toEqual(['2026-01-05', '2026-01-07', '2026-01-08']);
    expect(r.partialDays).toEqual(['2026-01-08']);
    expect(r.files.map((f) => f.name)).toEqual([`${A}_AllData_2026-01-08.zip`]);
    const path = join(jobFilesDir(t.dir, { id: 'spot1y-test', supportId: 'EX0001' }), r.files[0]!.name);
    expect(unzipTest(path).ok).toBe(true);
    const names = unzipNames(path);
    expect(names.filter((n) => n.endsWith('/'))).toEqual(['2026-01-05/', '2026-01-07/', '2026-01-08/']);
    expect(names.filter((n) => !n.endsWith('/'))).toHaveLength(9);
    for (const n of names.filter((x) => !x.endsWith('/'))) expect(n).toMatch(new RegExp(`^2026-01-0[578]/${A}_\\d{15}-[0-9a-f]{32}\\.zip$`));
    expect(pythonZip(path).bad).toBeNull();
    await expect(buildSpot1y(t.store, { ...base(), jobId: 'spot1y-x', tmid: FOREIGN })).rejects.toThrow(/no such device/);
  });

  it('runs as a job: running, then done with its files; downloads only for its tenant and only until it expires', async () => {
    const config = exportConfig({ workerThreads: 0 });
    const runner = createExportRunner({ store: t.store, threads: 0 });
    const started = startSpotJob({ store: t.store, dataDir: t.dir, runner, config, now: NOW, supportId: 'EX0001', request: { kind: 'spot30', from: '2026-01-05', to: '2026-01-05' } });
    expect(readJob(t.dir, started.job.id)).toMatchObject({ status: 'running', kind: 'spot30', params: { from: '2026-01-05', to: '2026-01-05' } });
    const job = await started.done;
    expect(job).toMatchObject({ status: 'done', files: [{ name: '2026-01-05_SP.zip', entries: 6 }], expiresAt: NOW + 30 * 86_400_000 });
    expect(readJob(t.dir, job.id)).toEqual(job);
    expect(listJobs(t.dir, 'OTHER1')).toEqual([]);
    expect(listJobs(t.dir, 'EX0001').map((j) => j.id)).toContain(job.id);
    expect(jobFilePath(t.dir, 'EX0001', job.id, '2026-01-05_SP.zip', NOW)).toMatch(/2026-01-05_SP\.zip$/);
    expect(jobFilePath(t.dir, 'OTHER1', job.id, '2026-01-05_SP.zip', NOW)).toBeUndefined();
    expect(jobFilePath(t.dir, 'EX0001', job.id, '2026-01-05_SP.zip', job.expiresAt)).toBeUndefined();
    expect(expireJobs(t.dir, job.expiresAt)).toContain(job.id);
    expect(readJob(t.dir, job.id)).toBeUndefined();
    expect(() => startSpotJob({ store: t.store, dataDir: t.dir, runner, config, now: NOW, supportId: 'EX0001', request: { kind: 'spot1y', tmid: FOREIGN } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT' }),
    );
  });

  it.each([
    ['2026-01-05', '2026-01-04', '--to is before --from'],
    ['2025-12-01', '2025-12-31', 'at most 30 consecutive days'],
    ['2025-12-02', '2025-12-31', undefined],
    ['2026-01-08', '2026-01-09', '--to is in the future'],
    ['2026-1-5', '2026-01-06', '--from must be a date like 2026-01-05'],
  ])('checks a 30-day request %s..%s', (from, to, problem) => {
    expect(spot30Problem(from, to, NOW)).toBe(problem);
  });
});
