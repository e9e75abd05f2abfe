/**
 * The hot store: one LMDB environment under the data directory with named
 * databases for tenants, devices, the raw batch log and the indexes around it
 * (SPEC §5). The raw batch log is the system's write-ahead log: everything the
 * shards derive can be rebuilt by replaying it from their checkpoints.
 *
 * Key layouts (bench/micro/lmdb-keys.bench.ts compares the alternatives):
 *   batches        lsn (number, ascending)       -> BatchRecord (zstd events)
 *   deviceBatches  [tmid, lsn]                    -> event count
 *   batchIds       batch id (32 hex)              -> [lsn, tmid]
 *   trails         tmid                           -> TrailState (seq ranges, counters)
 *   checkpoints    virtual shard (0..255)         -> last lsn processed
 *   kindCounts     tmid                           -> { kind: events }
 * The log keys are one increasing number, so appends land at the end of the
 * B-tree and a shard's replay is one forward range scan.
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { AlertRecord, CommandRequest, ExceptionEntry, QuickReport, TenantPolicy, Verdict, VerdictChange } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import type { AuditRecord, SessionRecord, UserRecord } from './identity.js';

/** A verdict set by an analyst; it takes precedence over the engine's. */
export interface AnalystVerdict {
  id: string;
  alertId: string;
  at: number;
  by: string;
  verdict: Verdict;
  comment?: string;
}

/** An analyst's comment on an alert. */
export interface AlertComment {
  id: string;
  alertId: string;
  at: number;
  author: string;
  text: string;
}

/** Tenant (one contract, identified by its support ID). */
export interface TenantRecord {
  supportId: string;
  name: string;
  /** SHA-256 hex of the enrollment key; the key itself is never stored. */
  enrollKeyHash: string;
  createdAt: number;
  /** Absent until set: see DEFAULT_TENANT_POLICY. */
  policy?: TenantPolicy;
}

/** A device (one PC running one agent). */
export interface DeviceRecord {
  tmid: string;
  supportId: string;
  computer: string;
  agentVersion: string;
  os: string;
  ips: string[];
  macs: string[];
  /** SHA-256 hex of the device token. */
  tokenHash: string;
  firstSeen: number;
  lastSeen: number;
  connected: boolean;
}

/** Network isolation as last confirmed by the agent (SPEC §8); its own database, so device updates never race it. */
export interface DeviceIsolation {
  state: 'isolated' | 'released';
  since: number;
  /** Allowed destinations while isolated (IP or CIDR, optional port). */
  allow: { cidr: string; port?: number }[];
  commandId: string;
}

/** What the store knows of a device's trail: held seq ranges and counters. */
export interface TrailState {
  /** Sorted, disjoint, non-adjacent inclusive [lo, hi] ranges of seq held. */
  ranges: [number, number][];
  batches: number;
  events: number;
  lastLsn: number;
  lastBatchAt: number;
}

/** One raw batch as committed by ingest. `z` holds the zstd-compressed MessagePack events array. */
export interface BatchRecord {
  tmid: string;
  id: string;
  sentAt: number;
  recvAt: number;
  first: number;
  last: number;
  n: number;
  z: Uint8Array;
}

/** A batch ready to commit; `lsn` is assigned by the committer. */
export interface BatchToCommit {
  lsn: number;
  record: BatchRecord;
}

export interface HotStoreOptions {
  dataDir: string;
  /** Initial LMDB map size in bytes; LMDB grows it as needed. */
  mapSizeBytes?: number;
  readOnly?: boolean;
}

export interface HotStore {
  readonly dataDir: string;
  readonly tenants: Database<TenantRecord, string>;
  readonly enrollKeys: Database<string, string>;
  readonly devices: Database<DeviceRecord, string>;
  readonly inventory: Database<Record<string, unknown>, string>;
  readonly batches: Database<BatchRecord, number>;
  readonly deviceBatches: Database<number, [string, number]>;
  readonly batchIds: Database<[number, string], string>;
  readonly trails: Database<TrailState, string>;
  readonly checkpoints: Database<number, number>;
  /** Events per kind of a device, as counted by its shard: one record per device, one write per flush. */
  readonly kindCounts: Database<Record<string, number>, string>;
  readonly stateCheckpoints: Database<number, number>;
  /** Shard state snapshots per device, MessagePack encoded by the engine before its write transaction. */
  readonly deviceState: Database<Buffer, string>;
  readonly alerts: Database<AlertRecord, string>;
  /** [supportId, createdAt, alertId] for listing a tenant's alerts in time order. */
  readonly tenantAlerts: Database<string, [string, number, string]>;
  /** [tmid, detectedAt, alertId]: a device's alerts in detection order. */
  readonly deviceAlerts: Database<string, [string, number, string]>;
  readonly reports: Database<QuickReport, [string, number]>;
  readonly verdictHistory: Database<VerdictChange, [string, number]>;
  /** [tmid, sha256 or folded path] -> first alert id, for the 72 h dedup. */
  readonly alertDedup: Database<{ alertId: string; at: number }, [string, string]>;
  readonly exceptions: Database<ExceptionEntry, [string, string]>;
  readonly commands: Database<CommandRequest, string>;
  readonly deviceCommands: Database<string, [string, number, string]>;
  readonly isolation: Database<DeviceIsolation, string>;
  /** [supportId, tmid]: a tenant's devices. */
  readonly tenantDevices: Database<number, [string, string]>;
  /** [createdAt, alertId]: every alert in time order (operators' view). */
  readonly alertsByTime: Database<string, [number, string]>;
  /** [alertId, at, id]: verdicts set by analysts. */
  readonly analystVerdicts: Database<AnalystVerdict, [string, number, string]>;
  readonly users: Database<UserRecord, string>;
  /** SHA-256 of a session or bearer token -> session. */
  readonly sessions: Database<SessionRecord, string>;
  readonly audit: Database<AuditRecord, [number, string]>;
  /** [alertId, at, id] -> analyst comment. */
  readonly comments: Database<AlertComment, [string, number, string]>;
  /** Highest lsn in the batch log, 0 when empty. */
  lastLsn(): number;
  /**
   * Commits batches atomically with their id index entries and the trail
   * states given, and resolves once the transaction is flushed to disk.
   */
  commitBatches(batches: readonly BatchToCommit[], trails: ReadonlyMap<string, TrailState>): Promise<void>;
  /** Resolves when every write issued so far is durable. */
  flushed(): Promise<void>;
  /**
   * Moves this thread's read snapshot to the latest commit. lmdb-js renews it
   * only "periodically", so a thread told about a commit by another thread
   * must call this before reading it.
   */
  refreshReads(): void;
  close(): Promise<void>;
}

/**
 * Opens (creating when needed) the two LMDB environments in `dataDir`:
 * `log.lmdb` holds the raw batch log and its indexes (written only by
 * ingest's group commits and by retention), `kiseki.lmdb` everything else.
 * LMDB has one writer per environment: apart, the shards' and the API's
 * transactions never make an ack wait.
 * @throws KisekiError ERR_STORAGE when an environment cannot be opened.
 */
export function openHotStore(options: HotStoreOptions): HotStore {
  const readOnly = options.readOnly ?? false;
  if (!readOnly) mkdirSync(options.dataDir, { recursive: true });
  const openEnv = (name: string): RootDatabase => {
    try {
      return open({ path: `${options.dataDir}/${name}`, maxDbs: 48, mapSize: options.mapSizeBytes ?? 1024 * 1024 * 1024, readOnly });
    } catch (cause) {
      throw new KisekiError('ERR_STORAGE', { dataDir: options.dataDir, op: 'open', env: name }, { cause });
    }
  };
  const root = openEnv('kiseki.lmdb');
  let log: RootDatabase;
  try {
    log = openEnv('log.lmdb');
  } catch (err) {
    void root.close();
    throw err;
  }
  const tenants = root.openDB<TenantRecord, string>('tenants', {});
  const enrollKeys = root.openDB<string, string>('enroll-keys', {});
  const devices = root.openDB<DeviceRecord, string>('devices', {});
  const inventory = root.openDB<Record<string, unknown>, string>('inventory', {});
  const batches = log.openDB<BatchRecord, number>('batches', {});
  const deviceBatches = log.openDB<number, [string, number]>('device-batches', {});
  const batchIds = log.openDB<[number, string], string>('batch-ids', {});
  const trails = log.openDB<TrailState, string>('trails', {});
  const checkpoints = root.openDB<number, number>('checkpoints', {});
  const kindCounts = root.openDB<Record<string, number>, string>('kind-counts', {});
  const stateCheckpoints = root.openDB<number, number>('state-checkpoints', {});
  const deviceState = root.openDB<Buffer, string>('device-state', { encoding: 'binary' });
  const alerts = root.openDB<AlertRecord, string>('alerts', {});
  const tenantAlerts = root.openDB<string, [string, number, string]>('tenant-alerts', {});
  const deviceAlerts = root.openDB<string, [string, number, string]>('device-alerts', {});
  const reports = root.openDB<QuickReport, [string, number]>('reports', {});
  const verdictHistory = root.openDB<VerdictChange, [string, number]>('verdict-history', {});
  const alertDedup = root.openDB<{ alertId: string; at: number }, [string, string]>('alert-dedup', {});
  const exceptions = root.openDB<ExceptionEntry, [string, string]>('exceptions', {});
  const commands = root.openDB<CommandRequest, string>('commands', {});
  const deviceCommands = root.openDB<string, [string, number, string]>('device-commands', {});
  const isolation = root.openDB<DeviceIsolation, string>('isolation', {});
  const tenantDevices = root.openDB<number, [string, string]>('tenant-devices', {});
  const alertsByTime = root.openDB<string, [number, string]>('alerts-by-time', {});
  const analystVerdicts = root.openDB<AnalystVerdict, [string, number, string]>('analyst-verdicts', {});
  const users = root.openDB<UserRecord, string>('users', {});
  const sessions = root.openDB<SessionRecord, string>('sessions', {});
  const audit = root.openDB<AuditRecord, [number, string]>('audit', {});
  const comments = root.openDB<AlertComment, [string, number, string]>('comments', {});

  return {
    dataDir: options.dataDir,
    tenants,
    enrollKeys,
    devices,
    inventory,
    batches,
    deviceBatches,
    batchIds,
    trails,
    checkpoints,
    kindCounts,
    stateCheckpoints,
    deviceState,
    alerts,
    tenantAlerts,
    deviceAlerts,
    reports,
    verdictHistory,
    alertDedup,
    exceptions,
    commands,
    deviceCommands,
    isolation,
    tenantDevices,
    alertsByTime,
    analystVerdicts,
    users,
    sessions,
    audit,
    comments,
    lastLsn() {
      for (const key of batches.getKeys({ reverse: true, limit: 1 })) return key;
      return 0;
    },
    async commitBatches(toCommit, trailStates) {
      await log.transaction(() => {
        for (const { lsn, record } of toCommit) {
          batches.putSync(lsn, record);
          deviceBatches.putSync([record.tmid, lsn], record.n);
          batchIds.putSync(record.id, [lsn, record.tmid]);
        }
        for (const [tmid, state] of trailStates) trails.putSync(tmid, state);
      });
      // With overlappingSync the commit is visible before it is on disk: acks wait for the flush.
      await log.flushed;
    },
    async flushed() {
      await Promise.all([root.flushed, log.flushed]);
    },
    refreshReads() {
      root.resetReadTxn();
      log.resetReadTxn();
    },
    async close() {
      await Promise.all([root.close(), log.close()]);
    },
  };
}

/** Adds [first, last] to sorted disjoint ranges, merging neighbours. Returns the new array. */
export function addSeqRange(ranges: [number, number][], first: number, last: number): [number, number][] {
  const out: [number, number][] = [];
  let lo = first;
  let hi = last;
  let placed = false;
  for (const r of ranges) {
    if (r[1] + 1 < lo) out.push(r);
    else if (hi + 1 < r[0]) {
      if (!placed) {
        out.push([lo, hi]);
        placed = true;
      }
      out.push(r);
    } else {
      lo = Math.min(lo, r[0]);
      hi = Math.max(hi, r[1]);
    }
  }
  if (!placed) out.push([lo, hi]);
  return out;
}

/**
 * Seq holes in held ranges: [from, to] inclusive for each gap. Agents number
 * events from 1, so a first range starting later is a gap too.
 */
export function seqGaps(ranges: readonly [number, number][]): [number, number][] {
  const gaps: [number, number][] = [];
  const first = ranges[0];
  if (first !== undefined && first[0] > 1) gaps.push([1, first[0] - 1]);
  for (let i = 1; i < ranges.length; i++) gaps.push([ranges[i - 1]![1] + 1, ranges[i]![0] - 1]);
  return gaps;
}
