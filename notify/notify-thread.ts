/**
 * What `kiseki start` runs of notify/ in production: the notifier and the
 * gray → white rule in a worker thread of their own (notify-worker.ts), so
 * that reading the feed and sending mails never waits behind ingest on the
 * main thread's event loop (measured: alert → queued p99 95-110 s there under
 * the steady 50k events/s load). The main thread wakes it when a shard stored
 * an alert and renders quick-report PDFs for it (Chromium stays one, owned
 * by the main thread). A worker that dies is started again after a second:
 * the outbox and the feed cursor are in LMDB, so it resumes where it was.
 */
import { Worker } from 'node:worker_threads';
import { compiledScript } from '../core/compiled-script.js';
import type { Config } from '../core/config.js';
import { KisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { FromNotifyWorker, NotifyWorkerData, ToNotifyWorker } from './thread-messages.js';

/** A dead worker is started again after this long. */
const RESTART_DELAY_MS = 1000;

/** The notifier running in its worker thread. */
export interface NotificationsThread {
  /** A shard stored an alert: the worker reads the feed now rather than at its next interval. */
  wake(): void;
  /** Stops the worker once its running round and deliveries finished (the rest resumes from the outbox). */
  stop(): Promise<void>;
}

export interface NotificationsThreadOptions {
  dataDir: string;
  mapSizeBytes: number;
  logger: Logger;
  logLevel: Config['logLevel'];
  config: Readonly<Config['notify']>;
  siem?: Readonly<Config['siem']>;
  /** Renders an alert's quick report as PDF on this thread (absent: mails carry the console link only). */
  renderAlertPdf?: (alertId: string, signal?: AbortSignal) => Promise<Buffer | undefined>;
}

/**
 * The compiled worker lives next to this file as notify-worker.js; from the
 * TypeScript sources (vitest) it is taken from dist/, which test/global-setup.ts
 * keeps up to date (Node 20 cannot load a TypeScript worker).
 */
function workerUrl(): URL {
  const url = compiledScript('notify-worker.js', import.meta.url);
  if (url === undefined) throw new KisekiError('ERR_NOTIFY_THREAD', { reason: 'notify-worker.js not found; run npm run build' });
  return url;
}

/** Starts the notifier's worker thread; resolves once it opened the store and started. */
export async function startNotificationsThread(options: NotificationsThreadOptions): Promise<NotificationsThread> {
  const log = options.logger.child({ component: 'notify-thread' });
  const data: NotifyWorkerData = {
    dataDir: options.dataDir,
    mapSizeBytes: options.mapSizeBytes,
    logLevel: options.logLevel,
    config: { ...options.config },
    ...(options.siem === undefined ? {} : { siem: { ...options.siem } }),
    pdf: options.renderAlertPdf !== undefined,
  };
  let worker: Worker | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  /** Renders asked for by the worker, by request id: aborted when it stops waiting. */
  const renders = new Map<number, AbortController>();

  const post = (msg: ToNotifyWorker, transfer?: ArrayBuffer[]): void => worker?.postMessage(msg, transfer);

  const render = (w: Worker, id: number, alertId: string): void => {
    const controller = new AbortController();
    renders.set(id, controller);
    options.renderAlertPdf!(alertId, controller.signal).then(
      (bytes) => {
        if (!renders.delete(id) || w !== worker) return;
        // A copy of its own, so the buffer can be handed over rather than cloned.
        const copy = bytes === undefined ? undefined : new Uint8Array(bytes);
        post({ type: 'pdf', id, ...(copy === undefined ? {} : { bytes: copy }) }, copy === undefined ? [] : [copy.buffer as ArrayBuffer]);
      },
      (err: unknown) => {
        if (!renders.delete(id) || w !== worker) return;
        post({ type: 'pdf', id, error: err instanceof Error ? err.message : String(err) });
      },
    );
  };

  const spawn = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(workerUrl(), { workerData: data, name: 'kiseki-notify' });
      worker = w;
      let ready = false;
      w.on('message', (msg: FromNotifyWorker) => {
        switch (msg.type) {
          case 'ready':
            ready = true;
            resolve();
            return;
          case 'pdf':
            render(w, msg.id, msg.alertId);
            return;
          case 'pdf-abort':
            renders.get(msg.id)?.abort();
            renders.delete(msg.id);
            return;
          case 'failed':
            log.error({ reason: msg.message }, 'The notifier thread failed.');
            if (!ready) reject(new KisekiError('ERR_NOTIFY_THREAD', { reason: msg.message }));
            return;
          case 'stopped':
            return;
        }
      });
      w.on('error', (err) => {
        log.error({ err }, 'The notifier thread crashed.');
        if (!ready) reject(new KisekiError('ERR_NOTIFY_THREAD', { reason: err.message }));
      });
      w.on('exit', (code) => {
        if (worker === w) worker = undefined;
        for (const c of renders.values()) c.abort();
        renders.clear();
        if (!ready) {
          reject(new KisekiError('ERR_NOTIFY_THREAD', { reason: `the worker exited with code ${code} before it started` }));
          return;
        }
        if (stopping) return;
        // Nothing is lost: queued notifications and the feed cursor are in LMDB.
        log.error({ code }, 'The notifier thread stopped unexpectedly; starting it again.');
        restartTimer = setTimeout(() => {
          restartTimer = undefined;
          if (!stopping) spawn().catch((err: unknown) => log.error({ err }, 'The notifier thread could not be started again.'));
        }, RESTART_DELAY_MS);
      });
    });

  await spawn();
  return {
    wake() {
      post({ type: 'wake' });
    },
    async stop() {
      stopping = true;
      if (restartTimer !== undefined) clearTimeout(restartTimer);
      const w = worker;
      if (w === undefined) return;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      post({ type: 'stop' });
      await exited;
    },
  };
}
