/**
 * `kiseki start --role api`: the HTTP API and console of the embedded mode
 * over a local copy of what the other nodes share, so that any API node
 * answers for any tenant whichever shard node committed its alerts.
 *
 * The copy is one-way, bucket → local LMDB, kept by two watchers:
 * - `kiseki-alerts`: every alert with its latest report revision
 *   (`store.alerts.mirror`, batched by bucket-copy.ts: one transaction per
 *   burst);
 * - `kiseki-directory`: tenants, their fleet policies, devices and their
 *   live connection state and hello facts, and the per-tenant settings
 *   (exception list, Sigma, threshold-rule and liveness settings)
 *   (`copyDirectoryEntry`).
 * Each watcher starts from the bucket's current values, then follows its
 * updates; when its iterator ends (a NATS server lost for longer than the
 * client's reconnect covers) it starts again after the last revision it
 * applied. Requests are answered from the local store throughout, so an API
 * node keeps answering while NATS, ingest or shard nodes fail: what it shows
 * is at most as old as its watchers' lag (`/healthz` details).
 *
 * Tenants an operator creates here, and their policies and fleet policies,
 * are written to `kiseki-directory` first and answered once NATS acked
 * (tenant-sync.ts): every node copies them from there. So are the exception
 * list, Sigma settings, threshold rules and liveness settings
 * (settings-sync.ts).
 *
 * Commands an operator queues or cancels here go to the ingest nodes through
 * `kiseki-commands` (commands-sync.ts), and their later states come back the
 * same way.
 *
 * Every API node runs the notifier (mail, webhooks, SIEM) over its copy: the
 * alert copy appends the feed entries the shard node's engine wrote
 * (`alert.new`, `alert.verdict`) for changes newer than
 * `cluster.notifyMaxAgeMs`, each notification is claimed in `kiseki-notified`
 * before it is sent, so the API nodes send it once between them
 * (notify-claims.ts), and tenants' notification settings are shared through
 * `kiseki-notify-settings` (notify-settings-sync.ts). Analysts' verdicts and
 * comments go to the other API nodes through `kiseki-analysis`
 * (analysis-sync.ts), and users, sessions and API tokens through
 * `kiseki-identity` (identity-sync.ts): any API node answers any logged-in
 * user.
 *
 * With `cluster.archive` the node is also the cluster's archive: it follows
 * the whole batch stream into its local log (archive-follower.ts) and runs the
 * embedded day close, retention and export jobs over it, closing a day only
 * once its copy is complete through the day's end. Without it, export routes
 * answer 404.
 */
import { startHttpServer, createHttpApp, createHealthCheck, freeDiskBytes, type HttpServer } from '../api/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { createExportRunner, createExportScheduler, recoverInterruptedJobs, type ExportRunner, type ExportScheduler } from '../export/index.js';
import { createBatchCommitter, type BatchCommitter } from '../ingest/index.js';
import { startNotifications, type NotificationsRuntime } from '../notify/index.js';
import type { HotStore } from '../storage/index.js';
import { startArchiveFollower, type ArchiveFollower } from './archive-follower.js';
import { decodeAlertEntry, decodeDetectionEntry } from './alert-publisher.js';
import { copyDirectoryEntry } from './directory.js';
import { createSettingsSharing } from './settings-sync.js';
import { createTenantSharing } from './tenant-sync.js';
import { clusterLinkOptionsFrom, openClusterLink, type ClusterLink } from './nats.js';
import { openNodeBase } from './node-base.js';
import { watchBucket, type BucketWatcher } from './bucket-watch.js';
import { startCommandSync, type CommandSync } from './commands-sync.js';
import { createNotifyClaims } from './notify-claims.js';
import { startNotifySettingsSync, type NotifySettingsSync } from './notify-settings-sync.js';
import { startAnalysisSync, type AnalysisSync } from './analysis-sync.js';
import { startIdentitySync, type IdentitySync } from './identity-sync.js';
import { startBucketCopy, type BucketCopy } from './bucket-copy.js';

/** How often a starting node looks whether its settings copy has caught up (to start the notifier), ms. */
const NOTIFIER_GATE_MS = 100;

export interface ApiNodeOptions {
  config: Readonly<Config>;
  logger: Logger;
  clock?: Clock;
  /** Wait before a watcher whose iterator ended starts again, ms (default 1000). */
  rewatchDelayMs?: number;
  /** The archive's position check interval, ms (default 5000; `cluster.archive` only). */
  archiveCheckIntervalMs?: number;
  /** Quick-report PDFs for new-alert mails; absent: mails go with the console link only. */
  renderAlertPdf?: (alertId: string, signal?: AbortSignal) => Promise<Buffer | undefined>;
}

/** What the API node's copy holds, for `/healthz` and tests. */
export interface MirrorStats {
  /** Alerts new to the local store since start. */
  alerts: number;
  tenants: number;
  /** Fleet policies copied (newer than the local one). */
  fleetPolicies: number;
  devices: number;
  /** Connects and disconnects copied into device records (`state.<TMID>`). */
  deviceStates: number;
  /** Exception entries and removals copied (`except.<support ID>.<id>`). */
  exceptions: number;
  /** Sigma, threshold-rule and liveness settings copied (newer than the local ones). */
  settings: number;
  /** Bucket entries that were not kiseki records (skipped). */
  skipped: number;
  /** True once each watcher has applied every entry its bucket held when it started. */
  caughtUp: boolean;
  /** Watchers (re)started after their iterator ended. */
  rewatches: number;
}

export interface RunningApiNode {
  readonly nodeId: string;
  readonly httpPort: number;
  readonly store: HotStore;
  readonly metrics: Metrics;
  mirror(): MirrorStats;
  /** The cluster archive's follower and export scheduler, with `cluster.archive`. */
  readonly archive?: { follower: ArchiveFollower; scheduler: ExportScheduler };
  close(): Promise<void>;
}

/** What runs on an API node with `cluster.archive`. */
interface ArchiveParts {
  follower: ArchiveFollower;
  scheduler: ExportScheduler;
  runner: ExportRunner;
  committer: BatchCommitter;
}

/** Starts an API node: local store, NATS link, the bucket watchers and syncs, the notifier, the HTTP server (and the archive). */
export async function startApiNode(options: ApiNodeOptions): Promise<RunningApiNode> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const delayMs = options.rewatchDelayMs ?? 1000;
  const base = openNodeBase(config);
  const { nodeId, store, metrics } = base;
  const log = logger.child({ component: 'api-node', node: nodeId });
  const stats: MirrorStats = { alerts: 0, tenants: 0, fleetPolicies: 0, devices: 0, deviceStates: 0, exceptions: 0, settings: 0, skipped: 0, caughtUp: false, rewatches: 0 };
  let link: ClusterLink | undefined;
  let http: HttpServer | undefined;
  const watchers: BucketWatcher[] = [];
  let commands: CommandSync | undefined;
  let archive: ArchiveParts | undefined;
  let notifySettings: NotifySettingsSync | undefined;
  let analysis: AnalysisSync | undefined;
  let identity: IdentitySync | undefined;
  let detections: BucketCopy | undefined;
  let alerts: BucketCopy | undefined;
  let notifications: NotificationsRuntime | undefined;
  let notifierGate: NodeJS.Timeout | undefined;

  try {
    link = await openClusterLink(clusterLinkOptionsFrom(config, `kiseki-api-${nodeId}`, logger));
    notifySettings = startNotifySettingsSync({ kv: link.notifySettings, store, logger, retryMs: delayMs });
    identity = startIdentitySync({ kv: link.identity, store, logger, retryMs: delayMs });
    // The shard nodes' Sigma detections: listed here, and notified within the horizon like alerts.
    detections = startBucketCopy({
      kv: link.detections,
      name: 'kiseki-detections',
      decode: (bytes) => decodeDetectionEntry(bytes)?.detection,
      write: (batch) => store.detections.mirror(batch, { notifyFrom: clock.now() - config.cluster.notifyMaxAgeMs }),
      onWritten: () => notifications?.wake(),
      logger,
      retryMs: delayMs,
    });
    analysis = startAnalysisSync({ kv: link.analysis, store, logger, retryMs: delayMs, notifyFrom: () => clock.now() - config.cluster.notifyMaxAgeMs });
    // The notifier starts once the settings are copied: a node with an empty store would otherwise read the feed
    // entries of its first alert copies before it knows any recipient, and queue nothing for them.
    const claims = createNotifyClaims({ kv: link.notified, nodeId });
    notifierGate = setInterval(() => {
      if (notifications !== undefined || !notifySettings!.stats().caughtUp) return;
      clearInterval(notifierGate);
      notifications = startNotifications({
        store,
        clock,
        logger,
        config: config.notify,
        siem: config.siem,
        claims,
        ...(options.renderAlertPdf === undefined ? {} : { renderAlertPdf: options.renderAlertPdf }),
      });
    }, NOTIFIER_GATE_MS);
    const onRewatch = (): void => {
      stats.rewatches++;
    };
    watchers.push(
      watchBucket(
        link.directory,
        'kiseki-directory',
        async (e) => {
          if (e.operation !== 'PUT') return;
          const copied = await copyDirectoryEntry(store, e.key, e.string());
          if (copied === 'tenant') stats.tenants++;
          else if (copied === 'fleet') stats.fleetPolicies++;
          else if (copied === 'device') stats.devices++;
          else if (copied === 'state') stats.deviceStates++;
          else if (copied === 'exception') stats.exceptions++;
          else if (copied === 'settings') stats.settings++;
        },
        log,
        delayMs,
        onRewatch,
      ),
    );
    // Alerts with their latest report, written in batches (one transaction per burst). Changes older than the notify
    // horizon (a copy of the bucket's history) append no feed entry: they are not sent again.
    alerts = startBucketCopy({
      kv: link.alerts,
      name: 'kiseki-alerts',
      decode: (bytes) => {
        try {
          const entry = decodeAlertEntry(bytes);
          return { alert: entry.alert, report: entry.report };
        } catch {
          return undefined;
        }
      },
      write: (batch) => store.alerts.mirror(batch, { notifyFrom: clock.now() - config.cluster.notifyMaxAgeMs }),
      onWritten: () => notifications?.wake(),
      onRewatch,
      logger,
      retryMs: delayMs,
    });
    commands = startCommandSync({ kv: link.commands, store, logger, retryMs: delayMs });
    if (config.cluster.archive) archive = startArchive(link);
    const archiveRunning = archive;
    // The embedded mode's checks of the disk and LMDB, and with the archive its day closes and log writes.
    const health = createHealthCheck({
      thresholds: config.health,
      clock,
      probes: {
        freeDiskBytes: () => freeDiskBytes(config.dataDir),
        lmdbMapUse: () => store.mapUse(),
        shardPositions: () => ({ lagLsn: 0, committedLsn: 0, slowestCheckpointLsn: 0 }),
        exportFailures: () => archiveRunning?.scheduler.failures() ?? [],
        storageFailure: () => archiveRunning?.committer.storageFailure(),
      },
    });
    const app = createHttpApp({
      metrics,
      maxBodyBytes: config.http.maxBodyBytes,
      api: {
        // Users, sessions and tokens changed through the API are shared with the other API nodes.
        store: { ...store, identity: identity.identity },
        clock,
        logger,
        // A queued command reaches the ingest nodes through kiseki-commands; the one holding the agent sends it.
        shareCommand: (command) => commands!.share(command),
        // A tenant's notification settings changed here apply on every API node.
        shareNotifySettings: (settings) => notifySettings!.share(settings),
        shareAnalysis: (record) => analysis!.share(record),
        // Rollouts queue upgrades in bulk: shared in the background (retried until NATS takes them).
        deliverCommands: (tmid) => {
          for (const c of store.commands.pendingFor(tmid)) if (c.state === 'queued') commands!.share(c).catch(() => undefined);
        },
        // Tenants created and policies changed here go to kiseki-directory first (every node copies them), then to this store.
        sharedTenants: createTenantSharing({ kv: link.directory, store }),
        // The exception list, Sigma settings and threshold rules (read by the shard nodes) and liveness settings too.
        sharedSettings: createSettingsSharing({ kv: link.directory, store }),
        requireClientCert: config.http.requireClientCert,
        liveness: config.liveness,
        ...(archive === undefined ? {} : { exports: { dataDir: config.dataDir, runner: archive.runner, config: config.export } }),
      },
      health: {
        problems: () => health.problems(),
        details: () => ({
          role: 'api',
          node: nodeId,
          mirror: mirrorStats(),
          commands: commands!.stats(),
          notifySettings: notifySettings!.stats(),
          analysis: analysis!.stats(),
          identity: identity!.stats(),
          detections: detections!.stats(),
          ...(archive === undefined ? {} : { archive: archive.follower.stats() }),
        }),
      },
    });
    http = await startHttpServer(app, config.http);
  } catch (err) {
    await stopArchive().catch(() => undefined);
    for (const w of watchers) await w.stop().catch(() => undefined);
    await alerts?.stop().catch(() => undefined);
    await commands?.stop().catch(() => undefined);
    clearInterval(notifierGate);
    await notifySettings?.stop().catch(() => undefined);
    await analysis?.stop().catch(() => undefined);
    await identity?.stop().catch(() => undefined);
    await detections?.stop().catch(() => undefined);
    await notifications?.stop().catch(() => undefined);
    await link?.close().catch(() => undefined);
    await base.release();
    throw err;
  }
  /** The cluster archive: the stream copied into the local log, and the embedded day close and retention over it. */
  function startArchive(nats: ClusterLink): ArchiveParts {
    // Export jobs left `running` by a killed node are failed and their temporary files removed, as in the embedded mode.
    const recovered = recoverInterruptedJobs(config.dataDir, clock.now());
    if (recovered.failed.length > 0) log.warn({ jobs: recovered.failed }, 'Export jobs interrupted by the previous run are marked failed.');
    // No shards behind this committer: the log is for the day close and exports only.
    const committer = createBatchCommitter({ store, sink: { dispatch() {} }, clock, logger, metrics, zstdLevel: config.storage.zstdLevel });
    const follower = startArchiveFollower({
      link: nats,
      store,
      committer,
      dataDir: config.dataDir,
      clock,
      logger,
      retryDelayMs: delayMs,
      ...(options.archiveCheckIntervalMs === undefined ? {} : { checkIntervalMs: options.archiveCheckIntervalMs }),
    });
    const runner = createExportRunner({ store, threads: config.export.workerThreads, mapSizeBytes: config.storage.mapSizeBytes, logger });
    const scheduler = createExportScheduler({
      store,
      dataDir: config.dataDir,
      logger,
      clock,
      config: config.export,
      mapSizeBytes: config.storage.mapSizeBytes,
      runner,
      // A day closes once the copy holds every batch received before its end (plus the grace period).
      completeThrough: () => follower.completeThrough(),
      // Nothing replays this log: every committed batch may leave once its day is archived and past the hot retention.
      safeLsn: () => committer.committedLsn(),
    });
    scheduler.start();
    return { follower, scheduler, runner, committer };
  }

  async function stopArchive(): Promise<void> {
    if (archive === undefined) return;
    await archive.scheduler.stop();
    await archive.runner.close();
    await archive.follower.stop();
  }

  function mirrorStats(): MirrorStats {
    const copy = alerts!.stats();
    return { ...stats, alerts: copy.copied, skipped: stats.skipped + copy.skipped, caughtUp: copy.caughtUp && watchers.every((w) => w.caughtUp()) };
  }
  const server = http;
  const nats = link;
  const settingsSync = notifySettings!;
  log.info({ httpPort: server.port, dataDir: config.dataDir }, 'API node is running.');
  let closing: Promise<void> | undefined;
  return {
    nodeId,
    httpPort: server.port,
    store,
    metrics,
    mirror: mirrorStats,
    ...(archive === undefined ? {} : { archive: { follower: archive.follower, scheduler: archive.scheduler } }),
    close() {
      closing ??= (async () => {
        await server.close();
        await stopArchive();
        for (const w of watchers) await w.stop();
        await commands!.stop();
        await settingsSync.stop();
        await analysis!.stop();
        await identity!.stop();
        await detections!.stop();
        await alerts!.stop();
        // Before NATS closes: a delivery in flight settles its claim.
        clearInterval(notifierGate);
        await notifications?.stop();
        await nats.close();
        await base.release();
        log.info('API node stopped.');
      })();
      return closing;
    },
  };
}
