/**
 * Entry point of the notifier's worker thread: opens the LMDB environment
 * (shared with the main thread and the shards, safe across threads), then
 * runs what startNotifications runs (feed → outbox → SMTP and webhooks, the
 * gray → white rule) on an event loop of its own. On the main thread the
 * feed read waited behind ingest at 50k events/s (alert → queued p99 95-110 s
 * measured); here it runs beside it. The quick-report PDF is asked of the
 * main thread, which owns Chromium.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/logger.js';
import { openHotStore } from '../storage/index.js';
import { startNotifications } from './runtime.js';
import type { FromNotifyWorker, NotifyWorkerData, ToNotifyWorker } from './thread-messages.js';

const port = parentPort;
if (port === null) throw new Error('notify-worker must run in a worker thread');
const data = workerData as NotifyWorkerData;

function send(msg: FromNotifyWorker): void {
  port!.postMessage(msg);
}

/** PDF requests waiting for the main thread's answer. */
const pending = new Map<number, { resolve: (b: Buffer | undefined) => void; reject: (err: unknown) => void }>();
let nextId = 1;

function renderAlertPdf(alertId: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ type: 'pdf', id, alertId });
    signal?.addEventListener(
      'abort',
      () => {
        if (!pending.delete(id)) return;
        send({ type: 'pdf-abort', id });
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

try {
  const store = openHotStore({ dataDir: data.dataDir, mapSizeBytes: data.mapSizeBytes });
  const runtime = startNotifications({
    store,
    clock: systemClock,
    logger: createLogger(data.logLevel),
    config: data.config,
    ...(data.siem === undefined ? {} : { siem: data.siem }),
    ...(data.pdf ? { renderAlertPdf } : {}),
  });
  port.on('message', (msg: ToNotifyWorker) => {
    switch (msg.type) {
      case 'wake':
        void runtime.notifier.wake();
        return;
      case 'pdf': {
        const p = pending.get(msg.id);
        if (p === undefined) return;
        pending.delete(msg.id);
        if (msg.error !== undefined) p.reject(new Error(msg.error));
        else p.resolve(msg.bytes === undefined ? undefined : Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength));
        return;
      }
      case 'stop':
        void (async () => {
          await runtime.stop();
          await store.close();
          send({ type: 'stopped' });
          port.close();
        })().catch((err: unknown) => {
          send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
          process.exit(1);
        });
        return;
    }
  });
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
