/**
 * The shard pool on ingest's thread: long-lived worker threads, each owning
 * the devices whose TMID hashes (via 256 virtual shards) to it. Ingest hands
 * over each committed batch by transferring its buffer. The queue to each
 * worker is bounded: past `maxQueuedBatches` the pool stops posting and later
 * sends one `catchup`, and the worker reads the skipped batches back from the
 * log. Ingest never blocks on a slow shard and memory stays bounded, while
 * nothing is lost because the log is committed before anything is posted.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { compiledScript } from '../core/compiled-script.js';
import type { Config } from '../core/config.js';
import { KisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { GcKind } from '../core/gc-pauses.js';
import type { AlertStageTimes, FromShard, ShardSigmaOptions, ShardWorkerData, ToShard } from './shard-messages.js';
import type { PrevalencePolicy } from './prevalence-stage.js';
import { workerOf } from '../core/vshard.js';

/** The pool's options from the configuration (the embedded service and a cluster shard node start it alike). */
export function shardPoolOptionsFrom(config: Readonly<Config>, logger: Logger): ShardPoolOptions {
  return {
    workers: config.engine.shards,
    dataDir: config.dataDir,
    mapSizeBytes: config.storage.mapSizeBytes,
    flushIntervalMs: config.engine.flushIntervalMs,
    maxQueuedBatches: config.engine.maxQueuedBatchesPerShard,
    stateSnapshotIntervalMs: config.engine.stateSnapshotIntervalMs,
    intelDir: config.engine.intelDir ?? join(config.dataDir, 'intel'),
    revisionWindowMs: config.engine.revisionWindowMs,
    maxDevicesInMemory: config.engine.maxDevicesInMemory,
    deviceStateBudgetBytes: config.engine.deviceStateBudgetMb * 1024 * 1024,
    youngGenerationMb: config.engine.shardYoungGenerationMb,
    heapTrim: config.engine.shardHeapTrim,
    fleetPolicyRefreshMs: config.engine.fleetPolicyRefreshMs,
    prevalence: { minDevices: config.engine.prevalenceMinDevices, minDays: config.engine.prevalenceMinDays },
    analytics: config.analytics.enabled,
    ...(config.sigma.enabled
      ? { sigma: { defaultPack: config.sigma.defaultPack, reloadIntervalMs: config.sigma.reloadIntervalMs, ...(config.sigma.dir === undefined ? {} : { dir: config.sigma.dir }) } }
      : {}),
    logger,
  };
}

export interface ShardPoolOptions {
  workers: number;
  dataDir: string;
  mapSizeBytes: number;
  flushIntervalMs: number;
  maxQueuedBatches: number;
  stateSnapshotIntervalMs: number;
  intelDir: string;
  revisionWindowMs: number;
  maxDevicesInMemory: number;
  /** Approximate bytes of device state per worker (engine/correlator.ts); default the correlator's. */
  deviceStateBudgetBytes?: number;
  /** V8 young generation of each worker, MB (default: V8's own). */
  youngGenerationMb?: number;
  /** Shrink each worker's young generation when it is quiet (core/heap-trim.ts); default off. */
  heapTrim?: boolean;
  /** How long a shard uses a tenant's cached fleet policy, ms (default 1000; docs/FLEET.md). */
  fleetPolicyRefreshMs?: number;
  /** Thresholds of the verdict's fleet prevalence factors; absent: the defaults (engine/prevalence-stage.ts). */
  prevalence?: PrevalencePolicy;
  /** Sigma rules in the shards; absent: off. */
  sigma?: ShardSigmaOptions;
  /** Streaming analytics (daily counters, threshold rules) in the shards; default off. */
  analytics?: boolean;
  /** Longest stretch of a shard's catch-up between two chances to flush, ms (default 100; tests use 0: one step a turn). */
  catchUpSliceMs?: number;
  logger: Logger;
  /** Called with the alerts each flush stored, their batch-receipt → stored latencies (ms) and where that time went. */
  onAlerts?: (count: number, latenciesMs: number[], stagesMs: AlertStageTimes) => void;
  /** Called with devices whose commands a shard queued (and stored). */
  onCommands?: (tmids: string[]) => void;
  /** Called with a shard's garbage-collection pauses, [kind, seconds] each, about every flushIntervalMs. */
  onGcPauses?: (pauses: readonly [GcKind, number][]) => void;
}

export interface ShardPoolStats {
  /** Batches posted and not yet taken off a worker's queue, over all workers. */
  queued: number;
  /** Batches left to catch-up reads because a queue was full. */
  skippedToCatchUp: number;
  eventsProcessed: number;
  invalidEvents: number;
  /** Poison events the shards set aside, per reason (running totals; storage/quarantine.ts has each one). */
  quarantinedEvents: Record<string, number>;
  /** Lowest persisted checkpoint over all workers. */
  checkpoint: number;
  /**
   * How far the slowest worker is behind the work given to it: the largest
   * distance, in log positions, between the last lsn posted (or left to
   * catch-up) to a worker and its persisted checkpoint. 0 when every worker has
   * checkpointed all it was given; an idle worker is not behind.
   */
  lagLsn: number;
  /** Times a worker failed and was restarted. */
  restarts: number;
  /** JS heap in use over all shard workers, bytes, as of their last flush. */
  heapUsedBytes: number;
  /** Devices whose correlation state is in memory, over all shards. */
  devicesInMemory: number;
  /** The young generation limit the workers report running with, MB. */
  youngGenerationMb: number;
}

export interface ShardPool {
  /** Starts the workers; resolves once each has replayed the log past its checkpoint. */
  start(): Promise<void>;
  /** Hands a committed batch to its shard. `events` is transferred: the caller must not touch it again. */
  dispatch(lsn: number, tmid: string, events: Uint8Array, recvAt: number): void;
  stats(): ShardPoolStats;
  /** Resolves once every worker has processed everything up to `lsn` and persisted its checkpoint. */
  drained(lsn: number): Promise<void>;
  /** Flushes and stops every worker. */
  close(): Promise<void>;
}

/**
 * The compiled worker lives next to this file as shard-worker.js. When this
 * module runs from TypeScript sources (vitest), the worker is taken from the
 * build in dist/, which test/global-setup.ts brings up to date before any
 * test runs (Node 20 cannot load a TypeScript worker).
 */
function workerUrl(): URL {
  const url = compiledScript('shard-worker.js', import.meta.url);
  if (url === undefined) throw new KisekiError('ERR_SHARD_FAILED', { reason: 'shard-worker.js not found; run npm run build' });
  return url;
}

interface WorkerSlot {
  index: number;
  worker: Worker | undefined;
  queued: number;
  /** Highest lsn routed to this worker while its queue was full, 0 when not lagging. */
  catchUpTo: number;
  /** Highest lsn handed to this worker (posted, left to catch-up, or recovered through). */
  givenLsn: number;
  checkpoint: number;
  stopping: boolean;
  heapUsedBytes: number;
  devicesInMemory: number;
}

export function createShardPool(options: ShardPoolOptions): ShardPool {
  const log = options.logger.child({ component: 'shard-pool' });
  const slots: WorkerSlot[] = [];
  const stats = { skippedToCatchUp: 0, eventsProcessed: 0, invalidEvents: 0, restarts: 0 };
  const quarantined: Record<string, number> = {};
  let youngGenerationMb = 0;
  let closing = false;
  const waiters: { lsn: number; resolve: () => void }[] = [];

  function minCheckpoint(): number {
    let m = Number.POSITIVE_INFINITY;
    for (const s of slots) m = Math.min(m, s.checkpoint);
    return m === Number.POSITIVE_INFINITY ? 0 : m;
  }

  function wakeWaiters(): void {
    const cp = minCheckpoint();
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (w.lsn <= cp) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  function post(slot: WorkerSlot, msg: ToShard, transfer?: ArrayBuffer[]): void {
    slot.worker?.postMessage(msg, transfer);
  }

  function spawn(slot: WorkerSlot): Promise<void> {
    const data: ShardWorkerData = {
      index: slot.index,
      workers: options.workers,
      dataDir: options.dataDir,
      mapSizeBytes: options.mapSizeBytes,
      flushIntervalMs: options.flushIntervalMs,
      stateSnapshotIntervalMs: options.stateSnapshotIntervalMs,
      intelDir: options.intelDir,
      revisionWindowMs: options.revisionWindowMs,
      maxDevicesInMemory: options.maxDevicesInMemory,
      ...(options.deviceStateBudgetBytes === undefined ? {} : { deviceStateBudgetBytes: options.deviceStateBudgetBytes }),
      ...(options.fleetPolicyRefreshMs === undefined ? {} : { fleetPolicyRefreshMs: options.fleetPolicyRefreshMs }),
      ...(options.prevalence === undefined ? {} : { prevalence: options.prevalence }),
      ...(options.sigma === undefined ? {} : { sigma: options.sigma }),
      ...(options.analytics === true ? { analytics: true } : {}),
      ...(options.catchUpSliceMs === undefined ? {} : { catchUpSliceMs: options.catchUpSliceMs }),
      ...(options.heapTrim === true ? { heapTrim: true } : {}),
    };
    const worker = new Worker(workerUrl(), {
      workerData: data,
      name: `kiseki-shard-${slot.index}`,
      ...(options.youngGenerationMb === undefined ? {} : { resourceLimits: { maxYoungGenerationSizeMb: options.youngGenerationMb } }),
    });
    slot.worker = worker;
    slot.queued = 0;
    slot.catchUpTo = 0;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: FromShard) => {
        switch (msg.type) {
          case 'ready':
            ready = true;
            slot.checkpoint = msg.lastLsn;
            slot.givenLsn = Math.max(slot.givenLsn, msg.lastLsn);
            youngGenerationMb = msg.youngGenerationMb;
            log.info({ shard: slot.index, replayed: msg.replayed, lastLsn: msg.lastLsn, youngGenerationMb: msg.youngGenerationMb }, 'Shard recovered from its checkpoint.');
            // Batches routed here while the worker was restarting are in the log: have it read them.
            if (slot.catchUpTo > 0) {
              post(slot, { type: 'catchup', upTo: slot.catchUpTo });
              slot.queued++;
              slot.catchUpTo = 0;
            }
            resolve();
            break;
          case 'progress':
            slot.queued -= msg.handled;
            stats.eventsProcessed += msg.events;
            stats.invalidEvents += msg.invalidEvents;
            for (const [reason, n] of Object.entries(msg.quarantined ?? {})) quarantined[reason] = (quarantined[reason] ?? 0) + n;
            if (slot.catchUpTo > 0 && slot.queued <= options.maxQueuedBatches / 2) {
              post(slot, { type: 'catchup', upTo: slot.catchUpTo });
              slot.queued++;
              slot.catchUpTo = 0;
            }
            break;
          case 'flushed':
            slot.checkpoint = msg.checkpoint;
            slot.heapUsedBytes = msg.heapUsedBytes;
            slot.devicesInMemory = msg.devicesInMemory;
            wakeWaiters();
            break;
          case 'failed':
            log.error({ shard: slot.index, reason: msg.message }, 'Shard worker failed.');
            break;
          case 'gc':
            options.onGcPauses?.(msg.pauses);
            break;
          case 'alerts':
            options.onAlerts?.(msg.count, msg.latenciesMs, msg.stagesMs);
            break;
          case 'commands':
            options.onCommands?.(msg.tmids);
            break;
          case 'stopped':
            break;
        }
      });
      worker.on('error', (err) => {
        log.error({ shard: slot.index, err }, 'Shard worker crashed.');
      });
      worker.on('exit', (code) => {
        slot.worker = undefined;
        if (!ready) {
          reject(new KisekiError('ERR_SHARD_FAILED', { shard: slot.index, exitCode: code }));
          return;
        }
        if (slot.stopping || closing) return;
        // The log holds everything the dead worker had queued: a new worker replays it from the checkpoint.
        stats.restarts++;
        log.warn({ shard: slot.index, exitCode: code }, 'Restarting shard worker.');
        spawn(slot).catch((err: unknown) => log.error({ shard: slot.index, err }, 'Shard worker could not restart.'));
      });
    });
  }

  return {
    async start() {
      for (let i = 0; i < options.workers; i++) {
        slots.push({ index: i, worker: undefined, queued: 0, catchUpTo: 0, givenLsn: 0, checkpoint: 0, stopping: false, heapUsedBytes: 0, devicesInMemory: 0 });
      }
      await Promise.all(slots.map(spawn));
    },

    dispatch(lsn, tmid, events, recvAt) {
      const slot = slots[workerOf(tmid, options.workers)]!;
      if (slot.worker === undefined || slot.catchUpTo > 0 || slot.queued >= options.maxQueuedBatches) {
        // Full queue or restarting worker: the batch is in the log, the worker will read it from there.
        slot.catchUpTo = lsn;
        slot.givenLsn = Math.max(slot.givenLsn, lsn);
        stats.skippedToCatchUp++;
        return;
      }
      const ab = events.buffer as ArrayBuffer;
      if (events.byteOffset !== 0 || events.byteLength !== ab.byteLength) {
        throw new KisekiError('ERR_SHARD_FAILED', { reason: 'dispatch needs a buffer that owns its whole ArrayBuffer' });
      }
      post(slot, { type: 'batch', lsn, tmid, recvAt, events: ab }, [ab]);
      slot.queued++;
      slot.givenLsn = Math.max(slot.givenLsn, lsn);
    },

    stats() {
      let queued = 0;
      let heapUsedBytes = 0;
      let devicesInMemory = 0;
      let lagLsn = 0;
      for (const s of slots) {
        lagLsn = Math.max(lagLsn, s.givenLsn - s.checkpoint);
        queued += s.queued;
        heapUsedBytes += s.heapUsedBytes;
        devicesInMemory += s.devicesInMemory;
      }
      return { queued, ...stats, quarantinedEvents: { ...quarantined }, checkpoint: minCheckpoint(), lagLsn, heapUsedBytes, devicesInMemory, youngGenerationMb };
    },

    drained(lsn) {
      // A lagging worker must be told to catch up even when no progress message is due.
      for (const s of slots) {
        if (s.catchUpTo > 0 && s.worker !== undefined) {
          post(s, { type: 'catchup', upTo: s.catchUpTo });
          s.queued++;
          s.catchUpTo = 0;
        }
      }
      // Workers that own none of the devices seen still advance their checkpoints on catch-up.
      for (const s of slots) post(s, { type: 'catchup', upTo: lsn });
      for (const s of slots) {
        s.queued++;
        s.givenLsn = Math.max(s.givenLsn, lsn);
      }
      if (lsn <= minCheckpoint()) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ lsn, resolve }));
    },

    async close() {
      closing = true;
      await Promise.all(
        slots.map(
          (slot) =>
            new Promise<void>((resolve) => {
              const w = slot.worker;
              if (w === undefined) return resolve();
              slot.stopping = true;
              if (slot.catchUpTo > 0) post(slot, { type: 'catchup', upTo: slot.catchUpTo });
              w.once('exit', () => resolve());
              post(slot, { type: 'stop' });
            }),
        ),
      );
    },
  };
}
