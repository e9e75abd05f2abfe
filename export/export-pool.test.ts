import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dayWindow } from './collection-day.js';
import type { ExportProgress } from './day-archive.js';
import { createExportRunner, exportWorkerUrl } from './export-pool.js';
import { coldDayPaths } from './layout.js';
import { addBatch, addDevice, addTenant, duckdb, openTestStore, simpleEvents, unzipTest, type TestStore } from './test-support.js';

const A = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const DAY = '2026-01-05';

// The pool runs the compiled worker (dist/export/export-worker.js), which test/global-setup.ts keeps current.
describe('export worker pool', () => {
  it('finds the compiled worker', () => {
    expect(exportWorkerUrl()?.pathname).toMatch(/export-worker\.js$/);
  });

  let t: TestStore;
  beforeEach(async () => {
    t = openTestStore();
    await addTenant(t, 'EX0001');
    await addDevice(t, 'EX0001', A, 'PC-A');
    const { fromMs } = dayWindow(DAY);
    for (let i = 0; i < 130; i++) await addBatch(t, A, simpleEvents(1 + 10 * i, 10), { recvAt: fromMs + 1000 * (i + 1) });
  });
  afterEach(async () => t.close());

  const task = () => ({ type: 'close-day' as const, dataDir: t.dir, mapSizeBytes: 64 * 1024 * 1024, supportId: 'EX0001', day: DAY, now: 0, deflateLevel: 6, parquetRowGroupRows: 1024, parquetCompression: 'zstd' as const });

  it('builds a day on a worker thread and reports progress back', async () => {
    const runner = createExportRunner({ store: t.store, threads: 1, mapSizeBytes: 64 * 1024 * 1024 });
    expect(runner.mode).toBe('pool');
    const progress: ExportProgress[] = [];
    try {
      const r = await runner.run(task(), { onProgress: (p) => progress.push(p) });
      expect(r.status).toBe('archived');
      if (r.status === 'archived') expect(r.manifest).toMatchObject({ batches: 130, events: 1300 });
    } finally {
      await runner.close();
    }
    expect(progress.some((p) => p.done === 64 && p.total === 130)).toBe(true);
    const paths = coldDayPaths(t.dir, 'EX0001', DAY);
    expect(unzipTest(paths.zip).ok).toBe(true);
    expect(await duckdb(`SELECT count(*)::INTEGER AS n FROM read_parquet('${paths.parquet}')`)).toEqual([{ n: 1300 }]);
  });

  it('cancels a running build without leaving an archive behind', async () => {
    const runner = createExportRunner({ store: t.store, threads: 1, mapSizeBytes: 64 * 1024 * 1024 });
    const abort = new AbortController();
    try {
      const running = runner.run(task(), { signal: abort.signal, onProgress: () => abort.abort() });
      await expect(running).rejects.toThrow();
    } finally {
      await runner.close({ force: true });
    }
    const dir = coldDayPaths(t.dir, 'EX0001', DAY).dir;
    expect(readdirSync(dir).filter((f) => !f.endsWith('.tmp') && !f.endsWith('.tmp.cd'))).toEqual([]);
  });
});
