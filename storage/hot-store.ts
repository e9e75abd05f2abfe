/**
 * The hot store: the two LMDB environments under the data directory (SPEC §5)
 * and one repository per kind of record. This is the only door to storage:
 * callers get repositories (`store.alerts.effective(id)`,
 * `store.commands.queue(req)`, `store.devices.scanTenant(id)`), never a table
 * or a key; each repository owns its key layout, read models and paging
 * (storage/README.md has them all in one table).
 */
import { KisekiError } from '../core/errors.js';
import type { AlertRepository } from './alerts.js';
import { createAlertRepository } from './alerts.js';
import { createAnswerRepository, type AnswerRepository } from './answers.js';
import { createCommandRepository, type CommandRepository } from './commands.js';
import { createDetectionRepository, type DetectionRepository } from './detections.js';
import { createSigmaHuntRepository, type SigmaHuntRepository } from './sigma-hunts.js';
import { createDeviceRepository, type DeviceRepository } from './devices.js';
import { createExceptionRepository, type ExceptionRepository } from './exceptions.js';
import { createFleetRepository, type FleetRepository } from './fleet.js';
import { createRolloutRepository, type RolloutRepository } from './rollouts.js';
import { createIdentityRepository, type IdentityRepository } from './identity.js';
import { createLogRepository, type LogRepository } from './log.js';
import { createNetlogRepository, type NetlogRepository } from './netlog.js';
import { createQuarantineRepository, type QuarantineRepository } from './quarantine.js';
import { createNotifyRepository, type NotifyRepository } from './notify.js';
import { createPeriodicReportRepository, type PeriodicReportRepository } from './periodic-reports.js';
import { createShardStateRepository, type ShardStateRepository } from './shard-state.js';
import { openTables, type TablesOptions } from './tables.js';
import { createIntelAlertRepository, type IntelAlertRepository } from './intel-alerts.js';
import { createNetConnRepository, type NetConnRepository } from './net-conns.js';
import { createOpsAlertRepository, type OpsAlertRepository } from './ops-alerts.js';
import { createPrevalenceRepository, type PrevalenceRepository } from './prevalence.js';
import { createLivenessRepository, type LivenessRepository } from './liveness.js';
import { createAnalyticsRepository, type AnalyticsRepository } from './analytics.js';
import { createTenantRepository, type TenantRepository } from './tenants.js';

export type HotStoreOptions = TablesOptions;

export interface HotStore {
  readonly dataDir: string;
  /** Tenants, enrollment keys and tenant policy. */
  readonly tenants: TenantRepository;
  /** Devices, their tokens, tenant index and inventory. */
  readonly devices: DeviceRepository;
  /** Alerts, report revisions, verdicts (engine, analyst, effective), comments, dedup. */
  readonly alerts: AlertRepository;
  /** Response actions through their whole lifecycle, and isolation state. */
  readonly commands: CommandRepository;
  /** Sigma detections, their 72 h dedup, the tenants' Sigma settings. */
  readonly detections: DetectionRepository;
  /** Sigma hunt jobs and their hits (`POST /api/v1/sigma/hunts`). */
  readonly sigmaHunts: SigmaHuntRepository;
  /** The tenants' exception lists. */
  readonly exceptions: ExceptionRepository;
  /** Users, sessions and tokens, the audit log. */
  readonly identity: IdentityRepository;
  /** The raw batch log (log.lmdb): batches, batch ids, trails. */
  readonly log: LogRepository;
  /** Shard checkpoints, kind counts, device-state snapshots. */
  readonly shardState: ShardStateRepository;
  /** Poison events the shards set aside, with their reasons. */
  readonly quarantine: QuarantineRepository;
  /** Notification feed, settings, outbox, dead letters (notify/). */
  readonly notify: NotifyRepository;
  /** Periodic reports and their rendered files (reports/). */
  readonly periodicReports: PeriodicReportRepository;
  /** Customers' answers on alerts. */
  readonly answers: AnswerRepository;
  /** Network logs (syslog), their destination index and parse-failure counts (log.lmdb). */
  readonly netlog: NetlogRepository;
  /** Endpoint connections (net.conn) by local address, port and time: a network log finds its process. */
  readonly netConns: NetConnRepository;
  /** Network-intel alerts: network logs that hit an indicator, with endpoint evidence. */
  readonly intelAlerts: IntelAlertRepository;
  /** Operational alerts: agents offline, mass offline, analytics thresholds. */
  readonly opsAlerts: OpsAlertRepository;
  /** Liveness settings (offline delay, maintenance windows) and decisions per device. */
  readonly liveness: LivenessRepository;
  /** Streaming-analytics counters per device and day, threshold rules. */
  readonly analytics: AnalyticsRepository;
  /** Fleet policy (mode, log tuning, USB control), tuning savings, fleet alerts (issue 16). */
  readonly fleet: FleetRepository;
  /** Staged agent upgrades and the devices' versions (issue 16). */
  readonly rollouts: RolloutRepository;
  /** Prevalence of files across each tenant's fleet: devices, first and last seen, signer (issue 13). */
  readonly prevalence: PrevalenceRepository;
  /**
   * Runs `fn` in one write transaction of kiseki.lmdb: the repositories'
   * `...Sync` writers called inside it commit together (a shard's flush).
   */
  transaction<T>(fn: () => T): Promise<T>;
  /** Resolves when every write issued so far is durable. */
  flushed(): Promise<void>;
  /**
   * Moves this thread's read snapshot to the latest commit. lmdb-js renews it
   * only "periodically", so a thread told about a commit by another thread
   * must call this before reading it.
   */
  refreshReads(): void;
  /**
   * Map use of the fuller of the two environments: pages up to the last one
   * written × page size, against the current map size (LMDB grows the map
   * itself while the disk has room). For /healthz.
   */
  mapUse(): MapUse;
  close(): Promise<void>;
}

/** How much of an LMDB environment's map is in use, in bytes. */
export interface MapUse {
  env: 'kiseki.lmdb' | 'log.lmdb';
  usedBytes: number;
  mapSizeBytes: number;
}

/**
 * Opens (creating when needed) the two LMDB environments in `dataDir`:
 * `log.lmdb` holds the raw batch log and its indexes (written only by
 * ingest's group commits and by retention), `kiseki.lmdb` everything else.
 * @throws KisekiError ERR_STORAGE when an environment cannot be opened.
 */
export function openHotStore(options: HotStoreOptions): HotStore {
  const t = openTables(options);
  const { root, log } = t;
  const devices = createDeviceRepository(t);
  const commands = createCommandRepository(t);
  const logRepository = createLogRepository(t, options.dataDir);
  return {
    dataDir: options.dataDir,
    tenants: createTenantRepository(t),
    devices,
    alerts: createAlertRepository(t),
    commands,
    detections: createDetectionRepository(t),
    sigmaHunts: createSigmaHuntRepository(t),
    exceptions: createExceptionRepository(t),
    identity: createIdentityRepository(t),
    log: logRepository,
    shardState: createShardStateRepository(t),
    quarantine: createQuarantineRepository(t),
    notify: createNotifyRepository(t),
    periodicReports: createPeriodicReportRepository(t),
    answers: createAnswerRepository(t),
    netlog: createNetlogRepository(t),
    netConns: createNetConnRepository(t),
    intelAlerts: createIntelAlertRepository(t),
    opsAlerts: createOpsAlertRepository(t),
    liveness: createLivenessRepository(t),
    analytics: createAnalyticsRepository(t),
    fleet: createFleetRepository(t),
    rollouts: createRolloutRepository(t, commands, devices),
    prevalence: createPrevalenceRepository(t),
    transaction: (fn) => root.transaction(fn),
    async flushed() {
      await Promise.all([root.flushed, log.flushed]);
    },
    mapUse() {
      const a = envMapUse('kiseki.lmdb', root.getStats());
      const b = envMapUse('log.lmdb', log.getStats());
      return b.usedBytes / b.mapSizeBytes > a.usedBytes / a.mapSizeBytes ? b : a;
    },
    refreshReads() {
      root.resetReadTxn();
      log.resetReadTxn();
    },
    async close() {
      await logRepository.closeAckLog();
      await Promise.all([root.close(), log.close()]);
    },
  };
}

function envMapUse(env: MapUse['env'], stats: unknown): MapUse {
  const s = stats as { pageSize?: unknown; lastPageNumber?: unknown; mapSize?: unknown };
  if (typeof s.pageSize !== 'number' || typeof s.lastPageNumber !== 'number' || typeof s.mapSize !== 'number') {
    throw new KisekiError('ERR_STORAGE', { op: 'stats', env, reason: 'lmdb stats lack pageSize, lastPageNumber or mapSize' });
  }
  return { env, usedBytes: (s.lastPageNumber + 1) * s.pageSize, mapSizeBytes: s.mapSize };
}
