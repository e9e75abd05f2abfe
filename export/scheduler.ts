/**
 * The export scheduler the server runs: every `checkIntervalMs` it closes the
 * collection days that have ended (D+1 05:00 JST plus `closeGraceMs`), then
 * applies retention (hot → cold rollover, cold and export expiry). Builds run
 * on the export worker pool; a tick that finds the lock taken (a `kiseki
 * export` command is running) simply waits for the next one. `stop()` cancels
 * a running build; its temporary files are swept on the next close.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import { exportConfig, type ExportConfig } from './config.js';
import { applyRetention, closeFinishedDays, withColdLock, type ClosedDay, type RetentionReport } from './day-closer.js';
import { createExportRunner, type ExportRunner } from './export-pool.js';

export interface ExportSchedulerOptions {
  store: HotStore;
  dataDir: string;
  logger: Logger;
  clock: Clock;
  config?: Partial<ExportConfig>;
  /** LMDB map size the store was opened with (handed to the workers). */
  mapSizeBytes?: number;
  /** A runner to use instead of a new worker pool (tests). */
  runner?: ExportRunner;
  /** Receipt time up to which the store holds every batch, when not now (a cluster's archive node; `CloseDaysOptions.completeThrough`); 0: no day closes. */
  completeThrough?: () => number;
  /** Highest lsn retention may drop, when no local shards decide it (a cluster's archive node). */
  safeLsn?: () => number;
}

export interface ExportScheduler {
  start(): void;
  /** Stops the timer, cancels a running build and waits for the tick to end. */
  stop(): Promise<void>;
  /** Runs one tick now (also what the timer does). Resolves with what it did, or `busy`. */
  runOnce(): Promise<{ busy: true } | { busy: false; closed: ClosedDay[]; retention: RetentionReport }>;
  /** The last failed ticks (at most 20), oldest first: what /healthz reports as export_failed. */
  failures(): readonly { at: number; reason: string }[];
}

const MAX_FAILURES_KEPT = 20;

export function createExportScheduler(options: ExportSchedulerOptions): ExportScheduler {
  const config = exportConfig(options.config);
  const log = options.logger.child({ component: 'export-scheduler' });
  const runner =
    options.runner ??
    createExportRunner({ store: options.store, threads: config.workerThreads, logger: options.logger, ...(options.mapSizeBytes === undefined ? {} : { mapSizeBytes: options.mapSizeBytes }) });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let abort = new AbortController();
  let stopped = false;
  const failures: { at: number; reason: string }[] = [];

  const tick = async (): Promise<{ busy: true } | { busy: false; closed: ClosedDay[]; retention: RetentionReport }> => {
    const now = options.clock.now();
    const outcome = await withColdLock(options.dataDir, now, async () => {
      const completeThrough = options.completeThrough?.();
      // 0: the copy has not caught up once since start, so no day is known to be complete yet.
      const closed =
        completeThrough === 0
          ? []
          : await closeFinishedDays({
              store: options.store,
              dataDir: options.dataDir,
              runner,
              config,
              now,
              logger: log,
              signal: abort.signal,
              ...(completeThrough === undefined ? {} : { completeThrough }),
            });
      const retention = abort.signal.aborted
        ? { rolled: [], coldDeleted: [], exportsExpired: [] }
        : await applyRetention({ store: options.store, dataDir: options.dataDir, config, now, logger: log, ...(options.safeLsn === undefined ? {} : { safeLsn: options.safeLsn() }) });
      return { closed, retention };
    });
    if (outcome.busy) {
      log.info('Another export process holds the cold-tier lock; trying again at the next tick.');
      return { busy: true };
    }
    return { busy: false, ...outcome.value };
  };

  const runOnce = (): ReturnType<ExportScheduler['runOnce']> => {
    if (running !== undefined) return running as ReturnType<ExportScheduler['runOnce']>;
    const p = tick().catch((err: unknown) => {
      if (!stopped && (err as Error).name !== 'AbortError') {
        failures.push({ at: options.clock.now(), reason: err instanceof Error ? err.message : String(err) });
        if (failures.length > MAX_FAILURES_KEPT) failures.shift();
      }
      throw err;
    });
    const settled = p.finally(() => {
      running = undefined;
    });
    running = settled;
    return settled;
  };

  const onTimer = (): void => {
    if (stopped || running !== undefined) return;
    runOnce().catch((err: unknown) => {
      if ((err as Error).name === 'AbortError' || stopped) return;
      log.error({ err }, 'Closing days or applying retention failed; retrying at the next tick.');
    });
  };

  return {
    start() {
      if (timer !== undefined) return;
      stopped = false;
      abort = new AbortController();
      timer = setInterval(onTimer, config.checkIntervalMs);
      timer.unref();
      setImmediate(onTimer);
      log.info({ checkIntervalMs: config.checkIntervalMs, mode: runner.mode }, 'Export scheduler started.');
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      abort.abort();
      await running?.catch(() => undefined);
      if (options.runner === undefined) await runner.close({ force: true });
    },
    runOnce,
    failures: () => failures,
  };
}
