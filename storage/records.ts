/**
 * The record types the repositories store and hand out (types only). They
 * live apart from the repositories so that no two storage modules need each
 * other: tables.ts and every repository import this file, never one another
 * in a circle.
 */
import type { AgentFleetPolicy, AlertRecord, CommandRequest, TenantPolicy, Verdict } from '../core/contracts.js';

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
export type NotifyEventKind = 'alert.new' | 'alert.verdict' | 'device.isolated' | 'device.offline';

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
}

/** One destination of a tenant's notifications and what it wants. */
export interface NotifyRecipient {
  id: string;
  channel: 'email' | 'webhook';
  /** An e-mail address or an http(s) URL. */
  to: string;
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
