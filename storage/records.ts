/**
 * The record types the repositories store and hand out (types only). They
 * live apart from the repositories so that no two storage modules need each
 * other: tables.ts and every repository import this file, never one another
 * in a circle.
 */
import type { AgentFleetPolicy, AlertRecord, CommandRequest, NetConnEntry, SigmaSeverity, TenantPolicy, Verdict } from '../core/contracts.js';

export type { NetConnEntry };

/**
 * A connection as net-conns-by-ip-time stores it: what its key does not hold, by position: lsn, pg, pid,
 * image, user, proto, dir, rip, rport, rhost (storage/net-conns.ts). The key fields are not repeated in the
 * value: encoding and writing the whole entry was about 30 % of a put's cost (100,000 puts in transactions
 * of 2,000 on tmpfs: 12-19 µs a put whole, 9-13 µs as this array).
 */
export type NetConnValue = [number, string, number | undefined, string | undefined, string | undefined, string | undefined, string | undefined, string, number, string | undefined];

/** Tenant (one contract, identified by its support ID). */
export interface TenantRecord {
  supportId: string;
  name: string;
  /** SHA-256 hex of the enrollment key; the key itself is never stored. */
  enrollKeyHash: string;
  createdAt: number;
  /** Absent until set: see DEFAULT_TENANT_POLICY. */
  policy?: TenantPolicy;
  /** Time of the record's last change, ms (a policy change); absent: `createdAt`. Cluster copies keep the newest (cluster/tenant-sync.ts). */
  updatedAt?: number;
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

/** What an agent reports of its device at hello: the fields of a device record it owns. */
export interface DeviceFacts {
  computer: string;
  agentVersion: string;
  os: string;
  ips: string[];
  macs: string[];
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
  /** CRC-32 of `z` (storage/verify.ts); absent on records written before checksums. */
  c?: number;
}

/** A batch ready to commit; `lsn` is assigned by the committer. */
export interface BatchToCommit {
  lsn: number;
  record: BatchRecord;
}

/** A verdict set by an analyst; it takes precedence over the engine's. */
export interface AnalystVerdict {
  id: string;
  alertId: string;
  at: number;
  by: string;
  verdict: Verdict;
  /** The effective verdict just before this change (absent on records written before it was kept). */
  from?: Verdict;
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

/** The first alert of a device and file, for the 72 h dedup. */
export interface DedupEntry {
  alertId: string;
  /** Endpoint time of the detection that created the alert. */
  at: number;
}

export type CommandKind = CommandRequest['kind'];
export type CommandState = CommandRequest['state'];

/** What a command record holds beyond the request: its last change and result. */
export interface CommandRecord extends CommandRequest {
  /** Absent on commands the engine queued and nobody touched since. */
  updatedAt?: number;
  result?: Record<string, unknown>;
  error?: string;
  /** Who cancelled it (state `cancelled`). */
  cancelledBy?: string;
}

export type Role = 'operator' | 'admin' | 'viewer';

export interface UserRecord {
  /** Login ID. */
  id: string;
  role: Role;
  /** The tenant of an admin or viewer; null for operators (all tenants). */
  supportId: string | null;
  passwordHash: string;
  mustChangePassword: boolean;
  /** No longer read: the lockout counter lives in `login-attempts` (LoginAttempts), shared with unknown IDs. Kept 0. */
  failedLogins: number;
  /** No longer read (see failedLogins). Kept 0. */
  lockedUntil: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * Failed logins of one login ID, real or not (unknown IDs are counted the same
 * way so that the answers cannot tell them apart). Attempts are counted when
 * they start, before the password is checked, so parallel guesses cannot all
 * be evaluated.
 */
export interface LoginAttempts {
  /** Attempts counted in the current window (a success clears them). */
  failed: number;
  /** When the last attempt was counted (ms); older windows are forgotten. */
  lastAt: number;
  /** Locked until this time (ms); 0 when not locked. */
  lockedUntil: number;
}

export interface SessionRecord {
  userId: string;
  kind: 'session' | 'token';
  createdAt: number;
  expiresAt: number;
  /** For tokens: what the script is for. */
  label?: string;
}

export interface AuditRecord {
  id: string;
  at: number;
  actor: string;
  role: Role | 'system';
  supportId: string | null;
  action: string;
  target: string;
  /** Client address as seen by the server. */
  from: string;
  details?: Record<string, unknown>;
}

/** An alert as users see it: the analyst's last verdict, when there is one, wins over the engine's. */
export interface EffectiveAlert extends AlertRecord {
  /** The engine's own verdict, kept for comparison. */
  engineVerdict: Verdict;
  /** `engine`, or the login ID of the analyst who set `verdict`. */
  verdictBy: string;
}

/** One entry of an alert's verdict history: an engine revision, or an analyst's change (revision null). */
export interface VerdictHistoryEntry {
  alertId: string;
  at: number;
  /** The report revision that changed the engine's verdict; null for an analyst's change. */
  revision: number | null;
  /** The effective verdict just before this change; null before the first report. */
  from: Verdict | null;
  to: Verdict;
  /** `engine` or the analyst's login ID. */
  by: string;
  comment?: string;
}

/** Why a stored event was set aside (core/msgpack-bounds.ts). */
export type QuarantineReason = 'depth_exceeded' | 'undecodable';

/** A poison event a shard set aside (storage/quarantine.ts). */
export interface QuarantineRecord {
  tmid: string;
  /** The batch's log position and the event's position in it (its seq is the batch's first + index). */
  lsn: number;
  index: number;
  reason: QuarantineReason;
  /** Size of the event's MessagePack encoding. */
  bytes: number;
  /** When the shard set it aside (ms). */
  at: number;
}

// ---------------------------------------------------------------------------
// Notifications, periodic reports and customer answers (notify/, reports/).

/** What a notification is about. */
export type NotifyEventKind =
  | 'alert.new'
  | 'alert.verdict'
  | 'device.isolated'
  | 'device.offline'
  // An incident report of a black alert was made for the first time (mailed with its PDF).
  | 'report.incident'
  // Network intel and Sigma (issue 17, part B): a network-log intel alert, a stored Sigma detection.
  | 'intel.hit'
  | 'detection.new'
  // liveness and streaming analytics (engine/liveness.ts, engine/analytics.ts)
  | 'device.online'
  | 'tenant.mass_offline'
  | 'tenant.recovered'
  | 'analytics.threshold'
  // An endpoint event hit a threat-intelligence indicator (engine/analytics.ts, no antivirus detection needed).
  | 'intel.endpoint'
  // The engine stored a later version of an alert (a repeat, a report revision) without announcing a verdict change:
  // read by the cluster's alert publisher (cluster/alert-publisher.ts) so that kiseki-alerts holds the latest version;
  // no recipient can ask for it, so it never notifies.
  | 'alert.updated';

/**
 * One entry of the notification feed: written by the repositories in the same
 * transaction as the change it describes, read in `seq` order by notify/.
 */
export interface NotifyFeedEvent {
  /** Position in the feed, 1, 2, 3… in commit order. */
  seq: number;
  kind: NotifyEventKind;
  supportId: string;
  /** Server time of the change, ms. */
  at: number;
  alertId?: string;
  tmid?: string;
  /** The (new) effective verdict of an alert event. */
  verdict?: Verdict;
  /** The verdict before a verdict change. */
  from?: Verdict | null;
  /** Who made the change: `engine`, `system:…` or a login ID. */
  by?: string;
  /** Alert state at creation: only `reported` alerts notify. */
  state?: AlertRecord['state'];
  /** `report.incident`: the report's id (its PDF is attached at send time). */
  reportId?: string;
  /** `intel.hit` and `detection.new`: Critical / Serious / Medium / Information. */
  severity?: SigmaSeverity;
  /** `detection.new`: the Sigma detection's id. */
  detectionId?: string;
  /** Liveness and analytics events: the operational alert they raised or resolved (storage/ops-alerts.ts). */
  opsAlertId?: string;
  /** Mass-offline events: how many devices dropped. */
  devices?: number;
  /** Threshold events: the rule's title. */
  title?: string;
}

/** One destination of a tenant's notifications and what it wants. */
export interface NotifyRecipient {
  id: string;
  channel: 'email' | 'webhook' | 'siem';
  /** An e-mail address, an http(s) URL, or a SIEM destination (`tcp://`, `tls://`, `udp://`, `https://`, `file://` for global ones). */
  to: string;
  /** SIEM destinations: the format and transport options. */
  siem?: SiemTarget;
  /** Webhooks: the HMAC-SHA256 key of the signature header (never shown back by the API). */
  secret?: string;
  /** Event kinds wanted. */
  events: NotifyEventKind[];
  /** Verdicts wanted on alert events. */
  verdicts: Verdict[];
}

/** A tenant's notification settings. */
export interface NotifySettings {
  supportId: string;
  recipients: NotifyRecipient[];
  /** Notifications per recipient per clock hour before the rest fold into one digest. */
  maxPerHour: number;
  updatedAt: number;
  updatedBy: string;
}

/** One queued notification (or digest) for one recipient; its id is the idempotency key. */
export interface OutboxEntry {
  id: string;
  supportId: string;
  recipientId: string;
  channel: NotifyRecipient['channel'];
  to: string;
  /** One event, or the folded events of a digest. */
  events: NotifyFeedEvent[];
  digest: boolean;
  state: 'pending' | 'sent' | 'dead';
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  sentAt?: number;
  lastError?: string;
  /**
   * Another notifier sent or dead-lettered this notification (API nodes of a cluster share deliveries,
   * docs/CLUSTER.md): its node id. This entry itself was not sent.
   */
  settledBy?: string;
}

/** A periodic report: monthly, weekly, or the incident report of one black alert. */
export interface PeriodicReportRecord {
  id: string;
  supportId: string;
  kind: 'monthly' | 'weekly' | 'incident';
  /** Period start and end (exclusive), ms; JST calendar boundaries. */
  periodStart: number;
  periodEnd: number;
  /** e.g. `2026-10` or `2026-W44` or the alert id. */
  label: string;
  createdAt: number;
  /** Reports older than this are swept (13 months after the period ends). */
  expiresAt: number;
  htmlBytes: number;
  pdfBytes: number;
  /** The figures the report prints, as the API returns them. */
  figures: Record<string, unknown>;
}

/** A customer's answer on an alert (typically a gray one: "this is our tool"). */
export interface CustomerAnswer {
  id: string;
  alertId: string;
  supportId: string;
  at: number;
  by: string;
  text: string;
}

// Sigma hunt jobs (storage/sigma-hunts.ts).

/** One rule matching one stored event (`kiseki sigma hunt` prints the same). */
export interface SigmaHuntHit {
  ruleId: string;
  title: string;
  level: string;
  severity: 'Critical' | 'Serious' | 'Medium' | 'Information';
  tags: readonly string[];
  tmid: string;
  computer: string;
  seq: number;
  ts: number;
  k: string;
  pg: string;
  image: string;
  source: 'hot' | 'cold';
}

export type SigmaHuntStatus = 'running' | 'done' | 'failed' | 'interrupted';

/** A hunt job as stored and shown. */
export interface SigmaHuntRecord {
  id: string;
  supportId: string;
  status: SigmaHuntStatus;
  /** Who asked (login ID). */
  requestedBy: string;
  createdAt: number;
  finishedAt?: number;
  /** Event time bounds, ms. */
  sinceMs: number;
  untilMs?: number;
  /** `rule`: one rule id of the server's set; `rules`: rules sent as YAML; `all`: the server's whole set. */
  ruleSet: { kind: 'all' | 'rule' | 'rules'; ruleId?: string; rules: number; refused: { id?: string; title?: string; reason: string; detail: string }[] };
  progress: { done: number; total: number };
  batches: number;
  events: number;
  /** Hits found (stored up to `maxHits`; `truncated` past it). */
  hits: number;
  truncated: boolean;
  byRule: Record<string, number>;
  error?: string;
}
// ---------------------------------------------------------------------------
// Network intel and SIEM forwarding (issue 17, part B).

/** What a SIEM destination receives: syslog RFC 5424 (JSON message), CEF over syslog, ECS JSON, OCSF JSON. */
export type SiemFormat = 'rfc5424' | 'cef' | 'ecs' | 'ocsf';

/** A SIEM destination's format and transport options (its address is the recipient's `to`). */
export interface SiemTarget {
  format: SiemFormat;
  /** Stream framing of tcp:// and tls://: RFC 6587 octet counting (default) or a newline after each message. */
  framing?: 'octet-counting' | 'newline';
  /** tls://: the CA bundle (PEM file path) to trust besides the system's; global destinations only. */
  caFile?: string;
  /** tls://: accept a certificate that does not verify (tests, self-signed labs); default false. */
  insecure?: boolean;
  /** https:// with ECS: `ndjson` posts lines; `elastic-bulk` adds the `_bulk` create action lines. */
  http?: 'ndjson' | 'elastic-bulk';
  /** Extra HTTP headers (an `Authorization: ApiKey …` for Elastic). Never shown back by the API. */
  headers?: Record<string, string>;
}

// ---------------------------------------------------------------------------
// Liveness and streaming analytics (engine/liveness.ts, engine/analytics.ts).

/**
 * A planned maintenance window: devices going silent inside one raise no
 * offline alert. `weekly`: on the given JST weekdays (0 Sunday … 6 Saturday)
 * from `start` to `end` (`HH:MM`, JST; an `end` at or before `start` ends the
 * next day). `once`: one range of server time, ms.
 */
export type MaintenanceWindow = { kind: 'weekly'; days: number[]; start: string; end: string; label?: string } | { kind: 'once'; from: number; to: number; label?: string };

/** A tenant's liveness settings; absent fields take the server's defaults (config `liveness`). */
export interface LivenessSettings {
  supportId: string;
  /** A device silent this long (outside maintenance windows) raises one `agent.offline` alert. */
  offlineAfterMs?: number;
  windows: MaintenanceWindow[];
  /** At least this share of the tenant's devices … */
  massOfflineShare?: number;
  /** … and at least this many, dropped within `massOfflineWindowMs`, make one mass-offline event. */
  massOfflineMinDevices?: number;
  massOfflineWindowMs?: number;
  updatedAt: number;
  updatedBy: string;
}

/** What liveness last decided about a device's silence (absent: never reported). */
export interface DeviceLiveness {
  tmid: string;
  supportId: string;
  /** `offline`: this silence was reported (by its own alert or a mass-offline event); `online`: it came back. */
  state: 'online' | 'offline';
  /** When the state was set, ms. */
  since: number;
  /** The device's lastSeen the silence was reported at: a new silence has a newer one. */
  lastSeen: number;
  /** The `agent.offline` alert of this silence. */
  alertId?: string;
  /** The mass-offline event that covered this silence instead of an alert of its own. */
  massAlertId?: string;
}

export type OpsAlertKind = 'agent.offline' | 'agent.mass_offline' | 'analytics.threshold' | 'intel.endpoint';

/**
 * An operational alert: about the fleet or a device's behaviour rather than
 * an antivirus detection (no quick report, no verdict). Open until resolved
 * (a device back online, a tenant recovered); threshold alerts are born resolved.
 */
export interface OpsAlert {
  id: string;
  kind: OpsAlertKind;
  supportId: string;
  tmid?: string;
  computer?: string;
  createdAt: number;
  state: 'open' | 'resolved';
  resolvedAt?: number;
  /** One line for lists and mails. */
  title: string;
  /** Kind-specific facts: lastSeen, device counts and TMIDs, a rule's id, count and window. */
  details: Record<string, unknown>;
}

/** Counters of one device on one JST day (engine/analytics.ts). */
export interface DailyCounters {
  /** `YYYY-MM-DD`, JST, of the batches' receipt. */
  day: string;
  supportId: string;
  tmid: string;
  events: number;
  kinds: Record<string, number>;
  procStarts: number;
  failedLogons: number;
  usbInsertions: number;
  fileDeletes: number;
  /** Distinct remote IPs of `net.conn`, exact up to DESTINATIONS_CAP, then a floor. */
  destinations: number;
  /** True once the distinct set reached its cap: `destinations` is then a lower bound. */
  destinationsCapped: boolean;
  /** Threshold alerts raised that day. */
  thresholdAlerts: number;
}

/** What one flush adds to a device's day (engine/analytics.ts builds it; storage merges it). */
export interface DailyDelta {
  events: number;
  kinds: ReadonlyMap<string, number>;
  procStarts: number;
  failedLogons: number;
  usbInsertions: number;
  fileDeletes: number;
  /** Remote IPs seen in this flush (the repository merges them into the day's set). */
  destinations: ReadonlySet<string>;
  thresholdAlerts: number;
}

/**
 * A sliding-window threshold, as data: at least `threshold` events of `kind`
 * (whose fields equal `where`) on one device within `windowMs` raise one
 * `analytics.threshold` alert; the next can come after another `windowMs`.
 * `firstSeen` rules instead alert on a value never seen on the device before
 * (after `learnDays` of learning).
 */
export interface ThresholdRule {
  id: string;
  title: string;
  enabled: boolean;
  kind: string;
  where?: Record<string, string | number | boolean>;
  threshold?: number;
  windowMs?: number;
  /** `net16`: the /16 of `rip` (IPv4), `rhost`: the domain (last two labels). */
  firstSeen?: 'net16' | 'rhost';
  learnDays?: number;
}

/** A tenant's threshold rules (absent: DEFAULT_THRESHOLD_RULES). */
export interface ThresholdRuleSet {
  supportId: string;
  rules: ThresholdRule[];
  updatedAt: number;
  updatedBy: string;
}

// ---------------------------------------------------------------------------
// Fleet management (issue 16, agent management): storage/fleet.ts.

/** A tenant's fleet policy as stored: what agents get, plus who changed it last. */
export interface FleetPolicyRecord extends AgentFleetPolicy {
  supportId: string;
  updatedAt: number;
  updatedBy: string;
}

/** One stage of a rollout: a share of the fleet (stable hash of the TMID) or named devices. */
export type RolloutStage = { percent: number } | { devices: string[] };

/** The package of an agent version. */
export interface AgentPackage {
  version: string;
  url: string;
  sha256: string;
}

export type RolloutState = 'active' | 'paused' | 'rolled-back';

/** A staged upgrade of a tenant's agents to one version. */
export interface RolloutRecord {
  id: string;
  supportId: string;
  target: AgentPackage;
  /** What `rollback` installs on the devices that took the target. */
  previous: AgentPackage;
  stages: RolloutStage[];
  /** Index of the stage reached (stages are cumulative: stage i includes every earlier one). */
  stage: number;
  state: RolloutState;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  /** Every move (create, advance, pause, resume, rollback) with who and when. */
  history: { action: string; at: number; by: string; stage: number }[];
}

/** A device a rollout chose, with the upgrade command it got (and the rollback one, if any). */
export interface RolloutTarget {
  rolloutId: string;
  tmid: string;
  stage: number;
  /** Agent version at the time it was chosen. */
  fromVersion: string;
  commandId: string;
  rollbackCommandId?: string;
  at: number;
}

/** Events and bytes kept out of storage by tuning filters, for one tenant and day (Asia/Tokyo). */
export interface TuningSavings {
  /** Dropped by the agents at the source (reported in `hb.tuned`). */
  agentEvents: number;
  agentBytes: number;
  /** Dropped by the shards (arrived from agents that had not applied the policy yet). */
  shardEvents: number;
  shardBytes: number;
}

/** A fleet alert: an event of device control or agent management that needs a look (a blocked USB device). */
export interface FleetAlert {
  id: string;
  supportId: string;
  tmid: string;
  computer: string;
  kind: 'usb.blocked' | 'usb.unallowed';
  /** Endpoint time of the event, ms. */
  at: number;
  createdAt: number;
  /** The device or fact involved (for USB: vendorId, productId, serial, vendor, model, instanceId). */
  details: Record<string, unknown>;
  /** The event that raised it. */
  seq: number;
}

// prevalence across the tenant's fleet (issue 13): storage/prevalence.ts
/**
 * Where one file (by SHA-256) was seen in one tenant's fleet: the devices
 * that had it, each with the first time it did, up to PREVALENCE_DEVICE_CAP
 * devices; past the cap only `saturated` says more devices had it, so the
 * device count is exact up to the cap and "at least the cap" beyond.
 */
export interface PrevalenceRecord {
  /** [TMID, first endpoint time it was seen there (ms)], at most PREVALENCE_DEVICE_CAP, in the order first recorded. */
  devices: [string, number][];
  /** True once a device beyond the cap had the file. */
  saturated: boolean;
  /** Earliest and latest endpoint time any device had it, ms. */
  firstSeen: number;
  lastSeen: number;
  /** Signer and signature state (`trusted` / `untrusted` / `unsigned`) of the latest event that carried them. */
  signer?: string;
  sig?: string;
}

/** One device's sightings of a file, folded into a PrevalenceRecord. */
export interface PrevalenceSighting {
  tmid: string;
  /** Earliest and latest endpoint time of the sightings, ms. */
  first: number;
  last: number;
  signer?: string;
  sig?: string;
}
