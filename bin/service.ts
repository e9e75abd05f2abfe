/**
 * The composition root of `kiseki start`: opens the hot store, recovers the
 * shards from their checkpoints, then opens the agent endpoint and the HTTP
 * server. Shutdown runs the other way round and loses nothing acked.
 */
import { createHealthCheck, createHttpApp, freeDiskBytes, startHttpServer, type HttpServer } from '../api/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { createShardPool, shardPoolOptionsFrom, type ShardPool } from '../engine/index.js';
import { createExportRunner, createExportScheduler, recoverInterruptedJobs } from '../export/index.js';
import { createBatchCommitter, startAgentServer, type AgentServer } from '../ingest/index.js';
import { startNotifications, type NotificationsRuntime } from '../notify/index.js';
import { createPdfRenderer, createReportScheduler, quickReportPdf, type ReportScheduler } from '../reports/index.js';
import { lockDataDir, openHotStore, verifyDataDir, type HotStore } from '../storage/index.js';

export interface RunningService {
  readonly ingestPort: number;
  readonly httpPort: number;
  readonly store: HotStore;
  readonly metrics: Metrics;
  /** Resolves when the shards have processed and checkpointed every committed batch. */
  drained(): Promise<void>;
  close(): Promise<void>;
}

export interface ServiceOptions {
  config: Readonly<Config>;
  logger: Logger;
  clock?: Clock;
  /** Collect Node's default process metrics (off in tests that start several services). */
  defaultMetrics?: boolean;
}

/** Marks every device disconnected: after a crash the flags of the previous run are stale. */
function resetConnectedFlags(store: HotStore): Promise<number> {
  return store.devices.markAllDisconnected();
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const log = logger.child({ component: 'service' });
  // One server per data directory (issue 11, item 3): two would hand out the same lsns.
  const lock = lockDataDir(config.dataDir);
  if (lock.stale !== undefined) log.warn({ lockFile: lock.path, reason: lock.stale }, 'Took over the lock of a server that is gone.');
  let store: HotStore;
  try {
    // Damaged files stop the start with a message, before LMDB maps them (issue 11, item 9).
    const verified = await verifyDataDir(config.dataDir, { recentBatches: config.storage.verifyRecentBatches });
    if (verified.envs.length > 0) log.info({ entries: verified.entries, batchesChecked: verified.batchesChecked }, 'The data directory passed its start-up check.');
    store = openHotStore({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes });
  } catch (err) {
    lock.release();
    throw err;
  }
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  // Export jobs left `running` by a killed server are failed and their temporary files removed (item 10).
  const recovered = recoverInterruptedJobs(config.dataDir, clock.now());
  if (recovered.failed.length > 0) log.warn({ jobs: recovered.failed, tempFilesRemoved: recovered.tempFilesRemoved }, 'Export jobs interrupted by the previous run are marked failed.');
  let pool: ShardPool | undefined;
  let agents: AgentServer | undefined;
  let http: HttpServer | undefined;
  let stopExports: (() => Promise<void>) | undefined;
  let notifications: NotificationsRuntime | undefined;
  let reports: ReportScheduler | undefined;
  // Chromium starts on the first PDF only (a report or a quick-report mail).
  const pdf = createPdfRenderer(config.reports.chromiumPath === '' ? {} : { executablePath: config.reports.chromiumPath });
  const stopOutbound = async (): Promise<void> => {
    await notifications?.stop();
    await reports?.stop();
    await pdf.close();
  };
  try {
    await resetConnectedFlags(store);
    pool = createShardPool({
      ...shardPoolOptionsFrom(config, logger),
      onAlerts: (count, latenciesMs) => {
        metrics.engineAlertsTotal.inc(count);
        for (const ms of latenciesMs) metrics.engineReportLatencySeconds.observe(ms / 1000);
      },
      // Isolation on black: the agent server exists by the time a shard queues anything live.
      onCommands: (tmids) => {
        for (const tmid of tmids) agents?.deliverCommands(tmid);
      },
    });
    await pool.start();
    const shards = pool;
    let catchUpSeen = 0;
    let eventsSeen = 0;
    let invalidSeen = 0;
    const quarantinedSeen: Record<string, number> = {};
    const committer = createBatchCommitter({ store, sink: shards, clock, logger, metrics, zstdLevel: config.storage.zstdLevel });
    agents = await startAgentServer({ config: config.ingest, store, committer, clock, logger, metrics });
    const agentServer = agents;
    // Shard figures arrive as running totals; the registry is refreshed when scraped and every second.
    const refreshEngineMetrics = (): void => {
      const s = shards.stats();
      metrics.engineQueuedBatches.set(s.queued);
      metrics.engineCheckpointLsn.set(s.checkpoint);
      metrics.engineShardHeapBytes.set(s.heapUsedBytes);
      metrics.engineDevicesInMemory.set(s.devicesInMemory);
      metrics.engineCatchUpBatchesTotal.inc(s.skippedToCatchUp - catchUpSeen);
      metrics.engineEventsTotal.inc(s.eventsProcessed - eventsSeen);
      metrics.engineInvalidEventsTotal.inc(s.invalidEvents - invalidSeen);
      catchUpSeen = s.skippedToCatchUp;
      eventsSeen = s.eventsProcessed;
      invalidSeen = s.invalidEvents;
      for (const [reason, n] of Object.entries(s.quarantinedEvents)) {
        metrics.engineQuarantinedEventsTotal.inc({ reason }, n - (quarantinedSeen[reason] ?? 0));
        quarantinedSeen[reason] = n;
      }
    };
    const metricsTimer = setInterval(refreshEngineMetrics, 1000);
    // Day close, retention and log-spot jobs share one worker pool off the event loop.
    const exportSettings = config.export;
    const exportRunner = createExportRunner({ store, threads: exportSettings.workerThreads, mapSizeBytes: config.storage.mapSizeBytes, logger });
    const exportScheduler = createExportScheduler({ store, dataDir: config.dataDir, logger, clock, config: exportSettings, mapSizeBytes: config.storage.mapSizeBytes, runner: exportRunner });
    exportScheduler.start();
    stopExports = async () => {
      await exportScheduler.stop();
      await exportRunner.close();
    };
    const healthCheck = createHealthCheck({
      thresholds: config.health,
      clock,
      probes: {
        freeDiskBytes: () => freeDiskBytes(config.dataDir),
        lmdbMapUse: () => store.mapUse(),
        shardPositions: () => {
          const s = shards.stats();
          return { lagLsn: s.lagLsn, committedLsn: committer.committedLsn(), slowestCheckpointLsn: s.checkpoint };
        },
        exportFailures: () => exportScheduler.failures(),
        storageFailure: () => committer.storageFailure(),
      },
    });
    const app = createHttpApp({
      metrics,
      maxBodyBytes: config.http.maxBodyBytes,
      api: {
        store,
        clock,
        logger,
        deliverCommands: (tmid) => agentServer.deliverCommands(tmid),
        requireClientCert: config.http.requireClientCert,
        exports: { dataDir: config.dataDir, runner: exportRunner, config: exportSettings },
      },
      health: {
        problems: () => healthCheck.problems(),
        details: () => {
          const s = shards.stats();
          return {
            connections: agentServer.connections(),
            committedLsn: committer.committedLsn(),
            shardCheckpoint: s.checkpoint,
            shardQueued: s.queued,
            shardRestarts: s.restarts,
          };
        },
      },
    });
    http = await startHttpServer(app, config.http);
    // Outbound after everything else is up: notify reads what the shards commit (storage's feed), reports what storage holds.
    notifications = startNotifications({ store, clock, logger, config: config.notify, renderAlertPdf: (id) => quickReportPdf({ store, pdf }, id) });
    if (config.reports.enabled) {
      reports = createReportScheduler({ store, pdf, clock, logger, checkIntervalMs: config.reports.checkIntervalMs });
      reports.start();
    }
    const httpServer = http;
    log.info({ ingestPort: agentServer.port, httpPort: httpServer.port, shards: config.engine.shards, dataDir: config.dataDir }, 'kiseki is running.');
    let closing: Promise<void> | undefined;
    return {
      ingestPort: agentServer.port,
      httpPort: httpServer.port,
      store,
      metrics,
      drained: () => shards.drained(committer.committedLsn()),
      close() {
        closing ??= (async () => {
          log.info('Shutting down: no new connections, finishing in-flight commits.');
          await agentServer.close();
          await stopOutbound();
          await stopExports?.();
          await shards.drained(committer.committedLsn());
          await shards.close();
          clearInterval(metricsTimer);
          await httpServer.close();
          await store.close();
          lock.release();
          log.info('Shutdown complete: every acked batch is on disk.');
        })();
        return closing;
      },
    };
  } catch (err) {
    await agents?.close().catch(() => undefined);
    await stopOutbound().catch(() => undefined);
    await stopExports?.().catch(() => undefined);
    await pool?.close().catch(() => undefined);
    await http?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}
