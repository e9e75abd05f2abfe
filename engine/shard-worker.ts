/**
 * Entry point of a shard worker thread: opens the LMDB environment (shared
 * with the other threads of the process), recovers from its checkpoints, then
 * processes batches as the pool hands them over and persists its state every
 * `flushIntervalMs`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openHotStore } from '../storage/index.js';
import { ShardCore } from './shard-core.js';
import type { FromShard, ShardWorkerData, ToShard } from './shard-messages.js';

const PROGRESS_EVERY = 32;

const port = parentPort;
if (port === null) throw new Error('shard-worker must run in a worker thread');
const data = workerData as ShardWorkerData;
const store = openHotStore({ dataDir: data.dataDir, mapSizeBytes: data.mapSizeBytes });
const core = new ShardCore({ store, index: data.index, workers: data.workers });

function send(msg: FromShard): void {
  port!.postMessage(msg);
}

let handled = 0;
let reportedEvents = 0;
let reportedInvalid = 0;
let flushing: Promise<void> | undefined;

function reportProgress(): void {
  if (handled === 0) return;
  send({
    type: 'progress',
    handled,
    lastLsn: core.lastLsn,
    events: core.stats.events - reportedEvents,
    invalidEvents: core.stats.invalidEvents - reportedInvalid,
  });
  handled = 0;
  reportedEvents = core.stats.events;
  reportedInvalid = core.stats.invalidEvents;
}

function fail(err: unknown): void {
  send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

function flush(): Promise<void> {
  if (flushing !== undefined) return flushing;
  if (!core.needsFlush()) return Promise.resolve();
  const checkpoint = core.lastLsn;
  flushing = core
    .flush()
    .then(() => send({ type: 'flushed', checkpoint }))
    .catch(fail)
    .finally(() => {
      flushing = undefined;
    });
  return flushing;
}

try {
  const replayed = core.recover();
  await core.flush();
  send({ type: 'ready', lastLsn: core.lastLsn, replayed });
} catch (err) {
  fail(err);
}

const timer = setInterval(() => {
  reportProgress();
  void flush();
}, data.flushIntervalMs);

port.on('message', (msg: ToShard) => {
  try {
    switch (msg.type) {
      case 'batch':
        core.processBatch(msg.lsn, msg.tmid, new Uint8Array(msg.events));
        break;
      case 'catchup':
        core.catchUp(msg.upTo);
        break;
      case 'stop':
        clearInterval(timer);
        reportProgress();
        void (async () => {
          while (flushing !== undefined || core.needsFlush()) await flush();
          await store.close();
          send({ type: 'stopped' });
          port.close();
        })().catch(fail);
        return;
    }
  } catch (err) {
    fail(err);
    return;
  }
  if (++handled >= PROGRESS_EVERY) reportProgress();
});
