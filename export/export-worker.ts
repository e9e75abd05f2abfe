/**
 * Entry of the piscina export workers: opens the hot store (LMDB shares the
 * environment with the main thread), runs one export task, reports progress
 * through the MessagePort it was given, and closes the store.
 */
import type { MessagePort } from 'node:worker_threads';
import { openHotStore } from '../storage/index.js';
import { runExportTask, type ExportTask } from './export-tasks.js';

export default async function runInWorker({ task, port }: { task: ExportTask; port?: MessagePort }): Promise<unknown> {
  const store = openHotStore({ dataDir: task.dataDir, ...(task.mapSizeBytes === undefined ? {} : { mapSizeBytes: task.mapSizeBytes }) });
  try {
    return await runExportTask(store, task, port === undefined ? undefined : (p) => port.postMessage(p));
  } finally {
    port?.close();
    await store.close();
  }
}
