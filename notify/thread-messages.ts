/**
 * The messages between `kiseki start`'s main thread and the notifier's own
 * worker thread (notify-worker.ts, started by notify-thread.ts). Only plain,
 * structured-clonable data crosses: the worker opens its own HotStore, and
 * the quick-report PDF is rendered by the main thread's Chromium on request,
 * so notify/ still never imports reports/.
 */
import type { Config } from '../core/config.js';

/** What the worker starts with. */
export interface NotifyWorkerData {
  dataDir: string;
  mapSizeBytes: number;
  logLevel: Config['logLevel'];
  config: Config['notify'];
  siem?: Config['siem'];
  /** False: no quick-report PDF is asked for (mails carry the console link only). */
  pdf: boolean;
}

/** Main thread → notifier worker. */
export type ToNotifyWorker =
  /** A shard stored an alert: read the feed now. */
  | { type: 'wake' }
  /** The answer to a `pdf` request: the bytes, none (no such alert), or why it failed. */
  | { type: 'pdf'; id: number; bytes?: Uint8Array; error?: string }
  | { type: 'stop' };

/** Notifier worker → main thread. */
export type FromNotifyWorker =
  | { type: 'ready' }
  /** Render this alert's quick report as PDF. */
  | { type: 'pdf'; id: number; alertId: string }
  /** Nobody waits for that PDF any more: drop the render if it has not started. */
  | { type: 'pdf-abort'; id: number }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };
