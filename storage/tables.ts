/**
 * The raw LMDB databases, private to storage/: only the repositories use
 * them, and storage/index.ts does not export this file. Opening them is
 * the one place that knows database names and key types; the key layouts
 * themselves are documented beside the repository that owns each table
 * (storage/README.md lists them all).
 *
 * Two environments: `log.lmdb` holds the raw batch log and its indexes
 * (written only by ingest's group commits and by retention), `kiseki.lmdb`
 * everything else. LMDB has one writer per environment: apart, the shards'
 * and the API's transactions never make an ack wait.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { AlertRecord, ExceptionEntry, NetworkIntelAlert, NetworkLogRecord, QuickReport, SigmaDetection, SigmaTenantSettings, VerdictChange } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import { createDiskGuard, guardWrites, type DiskGuard } from './disk-guard.js';
import { checkLmdbFile } from './verify.js';
import type {
  AlertComment,
  AnalystVerdict,
  AuditRecord,
  BatchRecord,
  CommandRecord,
  CustomerAnswer,
  DailyCounters,
  DedupEntry,
  DeviceLiveness,
  LivenessSettings,
  OpsAlert,
  ThresholdRuleSet,
  DeviceIsolation,
  DeviceRecord,
  FleetAlert,
  FleetPolicyRecord,
  QuarantineRecord,
  PrevalenceRecord,
  RolloutRecord,
  RolloutTarget,
  TuningSavings,
  LoginAttempts,
  NetConnEntry,
  NetConnValue,
  NotifyFeedEvent,
  NotifySettings,
  OutboxEntry,
  PeriodicReportRecord,
  SessionRecord,
  TenantRecord,
  TrailState,
  UserRecord,
  SigmaHuntHit,
  SigmaHuntRecord,
} from './records.js';

export interface TablesOptions {
  dataDir: string;
  /** Initial LMDB map size in bytes; LMDB grows it as needed. */
  mapSizeBytes?: number;
  readOnly?: boolean;
  /** Free bytes of the data directory's file system (storage/disk-guard.ts; tests inject it). */
  freeBytes?: () => number;
}

export interface Tables {
  /** kiseki.lmdb: everything but the log. */
  readonly root: RootDatabase;
  /** log.lmdb: the raw batch log and its indexes. */
  readonly log: RootDatabase;
  /** The free-space check every write handle runs first; absent when opened read-only. Writers outside LMDB (the ack log) run it too. */
  readonly diskGuard: DiskGuard | undefined;
  readonly tenants: Database<TenantRecord, string>;
  readonly enrollKeys: Database<string, string>;
  readonly devices: Database<DeviceRecord, string>;
  readonly tenantDevices: Database<number, [string, string]>;
  readonly inventory: Database<Record<string, unknown>, string>;
  readonly batches: Database<BatchRecord, number>;
  readonly deviceBatches: Database<number, [string, number]>;
  readonly batchIds: Database<[number, string], string>;
  readonly trails: Database<TrailState, string>;
  readonly checkpoints: Database<number, number>;
  readonly stateCheckpoints: Database<number, number>;
  readonly kindCounts: Database<Record<string, number>, string>;
  readonly deviceState: Database<Buffer, string>;
  readonly alerts: Database<AlertRecord, string>;
  readonly tenantAlerts: Database<string, [string, number, string]>;
  readonly deviceAlerts: Database<string, [string, number, string]>;
  readonly alertsByTime: Database<string, [number, string]>;
  readonly reports: Database<QuickReport, [string, number]>;
  readonly verdictHistory: Database<VerdictChange, [string, number]>;
  readonly alertDedup: Database<DedupEntry, [string, string]>;
  readonly analystVerdicts: Database<AnalystVerdict, [string, number, string]>;
  readonly comments: Database<AlertComment, [string, number, string]>;
  readonly exceptions: Database<ExceptionEntry, [string, string]>;
  /** When an entry was removed, ms: what a cluster node's copy compares a late copy of the entry against. */
  readonly exceptionRemovals: Database<number, [string, string]>;
  readonly commands: Database<CommandRecord, string>;
  readonly deviceCommands: Database<string, [string, number, string]>;
  readonly isolation: Database<DeviceIsolation, string>;
  readonly users: Database<UserRecord, string>;
  readonly sessions: Database<SessionRecord, string>;
  readonly loginAttempts: Database<LoginAttempts, string>;
  readonly audit: Database<AuditRecord, [number, string]>;
  readonly quarantine: Database<QuarantineRecord, [string, number, number]>;
  // notify/ and reports/
  readonly notifyFeed: Database<NotifyFeedEvent, number>;
  readonly notifySettings: Database<NotifySettings, string>;
  readonly notifyOutbox: Database<OutboxEntry, string>;
  readonly notifyDue: Database<string, [number, string]>;
  readonly notifyDead: Database<string, [string, number, string]>;
  readonly notifyState: Database<number | string, string>;
  readonly periodicReports: Database<PeriodicReportRecord, string>;
  readonly tenantReports: Database<string, [string, number, string]>;
  readonly reportFiles: Database<Buffer, [string, string]>;
  readonly customerAnswers: Database<CustomerAnswer, [string, number, string]>;
  readonly detections: Database<SigmaDetection, string>;
  readonly tenantDetections: Database<string, [string, number, string]>;
  /** Value: [id, lower-case pg]; the id alone in entries written before the pg was added. */
  readonly deviceDetections: Database<string | [string, string], [string, number, string]>;
  readonly detectionsByTime: Database<string, [number, string]>;
  readonly detectionDedup: Database<{ detectionId: string; at: number }, [string, string, string]>;
  readonly sigmaTenants: Database<SigmaTenantSettings, string>;
  // Sigma hunt jobs (storage/sigma-hunts.ts).
  readonly sigmaHunts: Database<SigmaHuntRecord, string>;
  readonly sigmaHuntHits: Database<SigmaHuntHit, [string, number]>;
  // network logs (ingest/syslog, issue 17), in log.lmdb
  readonly netlogs: Database<NetworkLogRecord, [string, number, number]>;
  readonly netlogDst: Database<number, [string, string, number, number]>;
  readonly netlogFailures: Database<number, [string, string]>;
  readonly netlogState: Database<number, string>;
  // Network intel (issue 17, part B): the endpoint connection index and network-intel alerts.
  /** Written by earlier versions (keyed by port first): read and swept only. */
  readonly netConnsByPort: Database<NetConnEntry, [string, string, number, number, string, number]>;
  /** Values: the entry's non-key fields as an array (storage/net-conns.ts), or whole entries from earlier versions. */
  readonly netConns: Database<NetConnEntry | NetConnValue, [string, string, number, number, string, number]>;
  readonly netConnsByTime: Database<number, [number, string, string, number, string, number]>;
  readonly intelAlerts: Database<NetworkIntelAlert, string>;
  readonly tenantIntelAlerts: Database<string, [string, number, string]>;
  readonly intelAlertsByTime: Database<string, [number, string]>;
  readonly intelAlertDedup: Database<{ id: string; at: number }, [string, string]>;
  readonly intelAlertsUnlinked: Database<string, [number, string]>;
  // liveness and streaming analytics (ops-alerts.ts, liveness.ts, analytics.ts)
  readonly opsAlerts: Database<OpsAlert, string>;
  readonly tenantOpsAlerts: Database<string, [string, number, string]>;
  readonly livenessSettings: Database<LivenessSettings, string>;
  readonly livenessState: Database<DeviceLiveness, string>;
  readonly livenessTenants: Database<string, string>;
  readonly analyticsDaily: Database<DailyCounters, [string, string, string]>;
  readonly analyticsDests: Database<string[], [string, string]>;
  readonly analyticsKnown: Database<{ since: number; values: string[] }, [string, string]>;
  readonly analyticsRules: Database<ThresholdRuleSet, string>;
  // fleet management (issue 16): storage/fleet.ts
  readonly fleetPolicy: Database<FleetPolicyRecord, string>;
  readonly rollouts: Database<RolloutRecord, string>;
  readonly tenantRollouts: Database<string, [string, number, string]>;
  readonly rolloutTargets: Database<RolloutTarget, [string, string]>;
  readonly tuningSavings: Database<TuningSavings, [string, string]>;
  readonly fleetAlerts: Database<FleetAlert, string>;
  readonly tenantFleetAlerts: Database<string, [string, number, string]>;
  // prevalence across the tenant's fleet (issue 13): storage/prevalence.ts
  readonly prevalence: Database<PrevalenceRecord, [string, string]>;
}

/**
 * Opens (creating when needed) both environments and every database.
 * @throws KisekiError ERR_STORAGE when an environment cannot be opened, ERR_STORAGE_DAMAGED when its file is truncated or its meta pages damaged.
 */
export function openTables(options: TablesOptions): Tables {
  const readOnly = options.readOnly ?? false;
  if (!readOnly) mkdirSync(options.dataDir, { recursive: true });
  const openEnv = (name: string): RootDatabase => {
    // Truncated files and damaged meta pages crash LMDB (SIGBUS, segfault): refuse them with a message first.
    const path = `${options.dataDir}/${name}`;
    if (existsSync(path)) checkLmdbFile(path, name);
    try {
      // overlappingSync off: with it (lmdb-js's default), a `kiseki inspect` opening the environment
      // while the server wrote cost the server committed, flushed, acked transactions (about 1 in 6
      // kill -9 end-to-end runs under load). Off, a commit is on disk when it resolves.
      return open({ path, maxDbs: 128, mapSize: options.mapSizeBytes ?? 1024 * 1024 * 1024, readOnly, overlappingSync: false });
    } catch (cause) {
      throw new KisekiError('ERR_STORAGE', { dataDir: options.dataDir, op: 'open', env: name }, { cause });
    }
  };
  const rawRoot = openEnv('kiseki.lmdb');
  let rawLog: RootDatabase;
  try {
    rawLog = openEnv('log.lmdb');
  } catch (err) {
    void rawRoot.close();
    throw err;
  }
  // Every write handle checks the free space first (a full disk can abort the process inside lmdb-js).
  const guard: DiskGuard | undefined = readOnly ? undefined : createDiskGuard({ dataDir: options.dataDir, ...(options.freeBytes === undefined ? {} : { freeBytes: options.freeBytes }) });
  const guarded = (env: RootDatabase): RootDatabase => {
    if (guard === undefined) return env;
    guardWrites(env, guard);
    const openDB = env.openDB.bind(env);
    env.openDB = ((...args: Parameters<RootDatabase['openDB']>) => guardWrites(openDB(...args), guard)) as RootDatabase['openDB'];
    return env;
  };
  const root = guarded(rawRoot);
  const log = guarded(rawLog);
  return {
    root,
    log,
    diskGuard: guard,
    tenants: root.openDB('tenants', {}),
    enrollKeys: root.openDB('enroll-keys', {}),
    devices: root.openDB('devices', {}),
    tenantDevices: root.openDB('tenant-devices', {}),
    inventory: root.openDB('inventory', {}),
    batches: log.openDB('batches', {}),
    deviceBatches: log.openDB('device-batches', {}),
    batchIds: log.openDB('batch-ids', {}),
    trails: log.openDB('trails', {}),
    checkpoints: root.openDB('checkpoints', {}),
    stateCheckpoints: root.openDB('state-checkpoints', {}),
    kindCounts: root.openDB('kind-counts', {}),
    deviceState: root.openDB('device-state', { encoding: 'binary' }),
    alerts: root.openDB('alerts', {}),
    tenantAlerts: root.openDB('tenant-alerts', {}),
    deviceAlerts: root.openDB('device-alerts', {}),
    alertsByTime: root.openDB('alerts-by-time', {}),
    reports: root.openDB('reports', {}),
    verdictHistory: root.openDB('verdict-history', {}),
    alertDedup: root.openDB('alert-dedup', {}),
    analystVerdicts: root.openDB('analyst-verdicts', {}),
    comments: root.openDB('comments', {}),
    exceptions: root.openDB('exceptions', {}),
    exceptionRemovals: root.openDB('exception-removals', {}),
    commands: root.openDB('commands', {}),
    deviceCommands: root.openDB('device-commands', {}),
    isolation: root.openDB('isolation', {}),
    users: root.openDB('users', {}),
    sessions: root.openDB('sessions', {}),
    loginAttempts: root.openDB('login-attempts', {}),
    audit: root.openDB('audit', {}),
    quarantine: root.openDB('quarantine', {}),
    notifyFeed: root.openDB('notify-feed', {}),
    notifySettings: root.openDB('notify-settings', {}),
    notifyOutbox: root.openDB('notify-outbox', {}),
    notifyDue: root.openDB('notify-due', {}),
    notifyDead: root.openDB('notify-dead', {}),
    notifyState: root.openDB('notify-state', {}),
    periodicReports: root.openDB('periodic-reports', {}),
    tenantReports: root.openDB('tenant-reports', {}),
    reportFiles: root.openDB('report-files', { encoding: 'binary' }),
    customerAnswers: root.openDB('customer-answers', {}),
    detections: root.openDB('detections', {}),
    tenantDetections: root.openDB('tenant-detections', {}),
    deviceDetections: root.openDB('device-detections', {}),
    detectionsByTime: root.openDB('detections-by-time', {}),
    detectionDedup: root.openDB('detection-dedup', {}),
    sigmaTenants: root.openDB('sigma-tenants', {}),
    // Sigma hunt jobs (storage/sigma-hunts.ts).
    sigmaHunts: root.openDB('sigma-hunts', {}),
    sigmaHuntHits: root.openDB('sigma-hunt-hits', {}),
    netlogs: log.openDB('netlogs', {}),
    netlogDst: log.openDB('netlog-dst', {}),
    netlogFailures: log.openDB('netlog-failures', {}),
    netlogState: log.openDB('netlog-state', {}),
    // Network intel (issue 17, part B).
    netConnsByPort: root.openDB('net-conns', {}),
    netConns: root.openDB('net-conns-by-ip-time', {}),
    netConnsByTime: root.openDB('net-conns-by-time', {}),
    intelAlerts: root.openDB('intel-alerts', {}),
    tenantIntelAlerts: root.openDB('tenant-intel-alerts', {}),
    intelAlertsByTime: root.openDB('intel-alerts-by-time', {}),
    intelAlertDedup: root.openDB('intel-alert-dedup', {}),
    intelAlertsUnlinked: root.openDB('intel-alerts-unlinked', {}),
    opsAlerts: root.openDB('ops-alerts', {}),
    tenantOpsAlerts: root.openDB('tenant-ops-alerts', {}),
    livenessSettings: root.openDB('liveness-settings', {}),
    livenessState: root.openDB('liveness-state', {}),
    livenessTenants: root.openDB('liveness-tenants', {}),
    analyticsDaily: root.openDB('analytics-daily', {}),
    analyticsDests: root.openDB('analytics-dests', {}),
    analyticsKnown: root.openDB('analytics-known', {}),
    analyticsRules: root.openDB('analytics-rules', {}),
    fleetPolicy: root.openDB('fleet-policy', {}),
    rollouts: root.openDB('rollouts', {}),
    tenantRollouts: root.openDB('tenant-rollouts', {}),
    rolloutTargets: root.openDB('rollout-targets', {}),
    tuningSavings: root.openDB('tuning-savings', {}),
    fleetAlerts: root.openDB('fleet-alerts', {}),
    tenantFleetAlerts: root.openDB('tenant-fleet-alerts', {}),
    prevalence: root.openDB('prevalence', {}),
  };
}
