/**
 * The CPU-heavy export builds as plain, structured-clonable tasks, so the same
 * code runs on a piscina worker thread (export-worker.ts) or, when no worker is
 * available, on the calling thread (export-pool.ts).
 */
import type { HotStore } from '../storage/index.js';
import { buildDayArchive, type DayArchiveResult, type ExportProgress } from './day-archive.js';
import type { ParquetCompression } from './parquet-writer.js';
import { buildSpot1y, buildSpot30, type SpotResult } from './spot-jobs.js';

interface TaskBase {
  dataDir: string;
  /** LMDB map size of the environment, as the main thread opened it. */
  mapSizeBytes?: number;
  supportId: string;
  now: number;
  deflateLevel: number;
}

export interface CloseDayTask extends TaskBase {
  type: 'close-day';
  day: string;
  parquetRowGroupRows: number;
  parquetCompression: ParquetCompression;
  /** A partial archive of an open day: batches received before this (ms), written to `outDir`. */
  partialAsOf?: number;
  outDir?: string;
}

export interface Spot30Task extends TaskBase {
  type: 'spot30';
  jobId: string;
  coldRetentionDays: number;
  from: string;
  to: string;
}

export interface Spot1yTask extends TaskBase {
  type: 'spot1y';
  jobId: string;
  coldRetentionDays: number;
  tmid: string;
}

export type ExportTask = CloseDayTask | Spot30Task | Spot1yTask;

export type ExportTaskResult<T extends ExportTask> = T extends CloseDayTask ? DayArchiveResult : T extends Spot1yTask ? SpotResult & { days: string[] } : SpotResult;

/** Runs `task` against an open store. */
export async function runExportTask<T extends ExportTask>(store: HotStore, task: T, onProgress?: (p: ExportProgress) => void, signal?: AbortSignal): Promise<ExportTaskResult<T>> {
  const common = { ...(onProgress === undefined ? {} : { onProgress }), ...(signal === undefined ? {} : { signal }) };
  switch (task.type) {
    case 'close-day':
      return (await buildDayArchive(store, {
        dataDir: task.dataDir,
        supportId: task.supportId,
        day: task.day,
        deflateLevel: task.deflateLevel,
        parquetRowGroupRows: task.parquetRowGroupRows,
        parquetCompression: task.parquetCompression,
        now: task.now,
        ...(task.partialAsOf === undefined ? {} : { partialAsOf: task.partialAsOf }),
        ...(task.outDir === undefined ? {} : { outDir: task.outDir }),
        ...common,
      })) as ExportTaskResult<T>;
    case 'spot30':
      return (await buildSpot30(store, { ...task, ...common })) as ExportTaskResult<T>;
    case 'spot1y':
      return (await buildSpot1y(store, { ...task, ...common })) as ExportTaskResult<T>;
  }
}
