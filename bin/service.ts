/**
 * The composition root of `kiseki start`: opens the hot store, recovers the
 * shards from their checkpoints, then opens the agent endpoint and the HTTP
 * server. Shutdown runs the other way round and loses nothing acked.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHealthCheck, createHttpApp, createReportTemplates, freeDiskBytes, startHttpServer, type HttpServer } from '../api/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import { createCpuShareMeter } from '../core/cpu-share.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { createMetrics, shardGcObserver, type Metrics } from '../core/metrics.js';
import { createLivenessMonitor, createShardPool, shardPoolOptionsFrom, startNetworkIntel, sweepAnalytics, type LivenessMonitor, type NetworkIntelRuntime, type ShardPool } from '../engine/index.js';
import { createExportRunner, createExportScheduler, recoverInterruptedJobs } from '../export/index.js';
import { createBatchCommitter, startAgentServer, type AgentServer } from '../ingest/index.js';
import { createSyslogRouter, loadSyslogRoutes, startSyslogReceiver, type SyslogReceiver } from '../ingest/syslog/index.js';
import type { NetworkLogRecord } from '../core/contracts.js';
import { startNotifications, startNotificationsThread, type NotificationsRuntime, type NotificationsThread } from '../notify/index.js';
import { createPdfRenderer, createReportScheduler, quickReportPdf, type ReportScheduler } from '../reports/index.js';
import { lockDataDir, openHotStore, verifyDataDir, type HotStore } from '../storage/index.js';

export interface RunningService {
  readonly ingestPort: number;
  readonly httpPort: number;
  /** Bound syslog ports (docs/NETLOG.md); undefined when the receiver or that listener is off. */
  readonly syslogPorts: { tcp?: number; tls?: number; udp?: number };
  readonly store: HotStore;
  readonly metrics: Metrics;
  /** The liveness check (absent when `liveness.enabled` is false); tests run `check()` with an injected clock. */
  readonly liveness: LivenessMonitor | undefined;
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
  /** Called with each batch of network-log records once stored (intel matching subscribes here). */
  onNetworkLogs?: (records: NetworkLogRecord[]) => void;
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
  // Sigma hunts run in memory: one left `running` was cut by the stop.
  const cutHunts = await store.sigmaHunts.interruptRunning(clock.now());
  if (cutHunts.length > 0) log.warn({ hunts: cutHunts }, 'Sigma hunts interrupted by the previous run are marked interrupted.');
  let pool: ShardPool | undefined;
  let agents: AgentServer | undefined;
  let syslog: SyslogReceiver | undefined;
  let http: HttpServer | undefined;
  let stopExports: (() => Promise<void>) | undefined;
  let notifications: NotificationsRuntime | NotificationsThread | undefined;
  let networkIntel: NetworkIntelRuntime | undefined;
  let reports: ReportScheduler | undefined;
  let liveness: LivenessMonitor | undefined;
  let analyticsSweep: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();
  // Chromium starts on the first PDF only (a report or a quick-report mail).
  const pdf = createPdfRenderer(config.reports.chromiumPath === '' ? {} : { executablePath: config.reports.chromiumPath });
  // Reports print from the console's templates: the console's report page and the PDF are one document.
  const templates = createReportTemplates();
  const stopOutbound = async (): Promise<void> => {
    await networkIntel?.stop();
    if (analyticsSweep !== undefined) clearInterval(analyticsSweep);
    await sweeping;
    await liveness?.stop();
    await notifications?.stop();
    await reports?.stop();
    await pdf.close();
  };
  try {
    await resetConnectedFlags(store);
    // An empty intel folder from the start: operators see where lists go, and the verdict needs none to reach black.
    const intelDir = config.engine.intelDir ?? join(config.dataDir, 'intel');
    mkdirSync(intelDir, { recursive: true });
    pool = createShardPool({
      ...shardPoolOptionsFrom(config, logger),
      onAlerts: (count, latenciesMs, stagesMs) => {
        metrics.engineAlertsTotal.inc(count);
        for (const ms of latenciesMs) {
          metrics.engineReportLatencySeconds.observe(ms / 1000);
          metrics.engineReportLatencyHistogramSeconds.observe(ms / 1000);
        }
        for (const stage of ['queue', 'process', 'store'] as const) for (const ms of stagesMs[stage]) metrics.engineReportStageSeconds.observe({ stage }, ms / 1000);
        // Stored: the notifier reads the feed now, not at its next interval.
        notifications?.wake();
      },
      onGcPauses: shardGcObserver(metrics),
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
    // Network logs against intel (issue 17): the matcher exists before the first syslog line can arrive.
    const intelMatcher = startNetworkIntel({ store, clock, logger, intelDir, config: config.intel });
    networkIntel = intelMatcher;
    if (config.syslog.enabled) {
      const router = createSyslogRouter(loadSyslogRoutes(config.syslog.routesFile));
      for (const supportId of router.tenants) {
        if (store.tenants.get(supportId) === undefined) log.warn({ supportId }, 'The syslog routes name a tenant that does not exist; its lines are stored under that support ID.');
      }
      const extra = options.onNetworkLogs;
      const onNetworkLogs = (records: NetworkLogRecord[]): void => {
        // Stored already (the receiver calls after its commit): a failed match is logged, never loses a line.
        intelMatcher.matcher.onRecords(records).catch((err: unknown) => log.error({ err }, 'Matching network logs against intel failed.'));
        extra?.(records);
      };
      syslog = await startSyslogReceiver({
        settings: config.syslog,
        store,
        router,
        logger,
        clock,
        registry: metrics.registry,
        onRecords: onNetworkLogs,
      });
    }
    const syslogReceiver = syslog;
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
      // How far notifications are behind what the shards stored (issue 15's detection → mail time).
      const lag = store.notify.feedLag();
      metrics.notifyFeedLagEvents.set(lag.events);
      metrics.notifyFeedLagSeconds.set(lag.oldestAt === undefined ? 0 : Math.max(0, (clock.now() - lag.oldestAt) / 1000));
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
        pushFleetPolicy: (supportId) => void agentServer.pushFleetPolicy(supportId),
        requireClientCert: config.http.requireClientCert,
        exports: { dataDir: config.dataDir, runner: exportRunner, config: exportSettings },
        sigmaRules: { defaultPack: config.sigma.defaultPack, ...(config.sigma.dir === undefined ? {} : { dir: config.sigma.dir }) },
        liveness: config.liveness,
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
    const renderAlertPdf = (id: string, signal?: AbortSignal): Promise<Buffer | undefined> => quickReportPdf({ store, pdf, templates }, id, signal);
    // In a thread of its own, so the feed read never waits behind ingest (issue 15). An injected clock (tests) cannot
    // cross into a thread: with one, notify runs here on the main thread, on that clock.
    notifications =
      options.clock === undefined
        ? await startNotificationsThread({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes, logger, logLevel: config.logLevel, config: config.notify, siem: config.siem, renderAlertPdf })
        : startNotifications({ store, clock, logger, config: config.notify, siem: config.siem, renderAlertPdf });
    if (config.liveness.enabled) {
      liveness = createLivenessMonitor({
        store,
        clock,
        logger,
        config: config.liveness,
        onReport: (r) => {
          for (const [state, n] of Object.entries(r.states)) metrics.livenessDevices.set({ state }, n);
          metrics.livenessOfflineAlertsTotal.inc(r.offlineAlerts);
          metrics.livenessMassOfflineTotal.inc(r.massOfflineAlerts);
          metrics.livenessRecoveriesTotal.inc(r.recoveries);
        },
      });
      liveness.start();
    }
    if (config.analytics.enabled) {
      // Daily counters past their retention, hourly (and once now): SPEC §5 keeps them 90 days.
      const sweep = (): void => {
        sweeping = sweepAnalytics(store, clock.now(), config.analytics.retentionDays).catch((err: unknown) => log.error({ err }, 'The analytics retention sweep failed; the next one retries.'));
      };
      sweep();
      analyticsSweep = setInterval(sweep, 3_600_000);
      analyticsSweep.unref();
    }
    if (config.reports.enabled) {
      // Reports wait while ingest keeps the machine busy (an hour at most): Chromium's renders held acks back
      // even at the lowest CPU priority (docs/REPORTS.md, "Under load").
      const cpuShare = createCpuShareMeter();
      const busyShare = config.reports.busyCpuShare;
      reports = createReportScheduler({
        store,
        pdf,
        templates,
        clock,
        logger,
        checkIntervalMs: config.reports.checkIntervalMs,
        incidentReportsPerRound: config.reports.incidentReportsPerRound,
        ...(busyShare >= 1 ? {} : { busy: () => cpuShare() >= busyShare }),
      });
      reports.start();
    }
    const httpServer = http;
    log.info({ ingestPort: agentServer.port, httpPort: httpServer.port, shards: config.engine.shards, dataDir: config.dataDir }, 'kiseki is running.');
    let closing: Promise<void> | undefined;
    return {
      ingestPort: agentServer.port,
      httpPort: httpServer.port,
      syslogPorts: {
        ...(syslogReceiver?.tcpPort === undefined ? {} : { tcp: syslogReceiver.tcpPort }),
        ...(syslogReceiver?.tlsPort === undefined ? {} : { tls: syslogReceiver.tlsPort }),
        ...(syslogReceiver?.udpPort === undefined ? {} : { udp: syslogReceiver.udpPort }),
      },
      store,
      metrics,
      liveness,
      // Everything acked: in LMDB first (an ack waits only for the ack log), then processed.
      drained: async () => {
        await committer.committedThrough(committer.ackedLsn());
        await shards.drained(committer.committedLsn());
      },
      close() {
        closing ??= (async () => {
          log.info('Shutting down: no new connections, finishing in-flight commits.');
          await agentServer.close();
          // Stops the listeners and commits every network-log line already read.
          await syslogReceiver?.close();
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
    await syslog?.close().catch(() => undefined);
    await stopOutbound().catch(() => undefined);
    await stopExports?.().catch(() => undefined);
    await pool?.close().catch(() => undefined);
    await http?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}
