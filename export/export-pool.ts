/**
 * Where export builds run: a piscina pool of worker threads, so deflating,
 * Parquet encoding and zip writing never block the event loop of the server
 * (ingest acks, API). Tasks are whole jobs (a tenant's day, a log spot), far
 * above piscina's ~35 µs per-task cost (perf-anchors). Progress comes back over
 * a MessagePort; aborting a task ends its worker, and the half-written
 * temporary files are swept by the next day close.
 *
 * When the compiled worker is missing (running from TypeScript sources without
 * a build) or `threads` is 0, tasks run on the calling thread instead.
 */
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { compiledScript } from '../core/compiled-script.js';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import type { ExportProgress } from './day-archive.js';
import { runExportTask, type ExportTask, type ExportTaskResult } from './export-tasks.js';

export interface ExportRunner {
  /** `pool` when tasks run on worker threads, `inline` when on the caller's. */
  readonly mode: 'pool' | 'inline';
  run<T extends ExportTask>(task: T, options?: { onProgress?: (p: ExportProgress) => void; signal?: AbortSignal }): Promise<ExportTaskResult<T>>;
  /** Waits for running tasks to end (or cancels them with `force`) and stops the workers. */
  close(options?: { force?: boolean }): Promise<void>;
}

export interface ExportRunnerOptions {
  store: HotStore;
  /** Worker threads; 0 runs tasks inline. */
  threads: number;
  mapSizeBytes?: number;
  logger?: Logger;
  /** How long a worker may stay idle before it exits (default 30 s). */
  idleTimeoutMs?: number;
}

/** The compiled worker: next to this file when running from dist/, else in dist/ of the sources. */
export function exportWorkerUrl(): URL | undefined {
  return compiledScript('export-worker.js', import.meta.url);
}

export function createExportRunner(options: ExportRunnerOptions): ExportRunner {
  const log = options.logger?.child({ component: 'export-pool' });
  const workerUrl = options.threads > 0 ? exportWorkerUrl() : undefined;
  if (options.threads > 0 && workerUrl === undefined) log?.warn('The export worker is not built (npm run build); exports run on the main thread.');
  if (workerUrl === undefined) {
    return {
      mode: 'inline',
      run: (task, o) => runExportTask(options.store, task, o?.onProgress, o?.signal),
      close: async () => undefined,
    };
  }
  const pool = new Piscina({
    filename: workerUrl.href,
    minThreads: 0,
    maxThreads: options.threads,
    idleTimeout: options.idleTimeoutMs ?? 30_000,
  });
  return {
    mode: 'pool',
    async run(task, o) {
      const channel = new MessageChannel();
      if (o?.onProgress !== undefined) {
        const onProgress = o.onProgress;
        channel.port2.on('message', (p: ExportProgress) => onProgress(p));
      }
      try {
        const withMap = options.mapSizeBytes === undefined || task.mapSizeBytes !== undefined ? task : { ...task, mapSizeBytes: options.mapSizeBytes };
        return (await pool.run({ task: withMap, port: channel.port1 }, { transferList: [channel.port1], ...(o?.signal === undefined ? {} : { signal: o.signal }) })) as ExportTaskResult<typeof task>;
      } finally {
        channel.port2.close();
      }
    },
    async close(o) {
      await pool.close({ force: o?.force ?? false });
    },
  };
}
