/**
 * Data-flow contracts shared by every folder: trail events (SPEC §2), agent
 * protocol frames (SPEC §3, docs/PROTOCOL.md) and the ports between ingest,
 * engine and storage. Types only: no runtime code lives here.
 */

/** Event kinds of SPEC §2. Unknown kinds are accepted and stored unchanged. */
export type TrailEventKind =
  | 'proc.start'
  | 'proc.end'
  | 'file.create'
  | 'file.write'
  | 'file.read'
  | 'file.delete'
  | 'file.rename'
  | 'reg.set'
  | 'reg.create'
  | 'reg.delete'
  | 'net.conn'
  | 'net.dns'
  | 'usb.connect'
  | 'usb.disconnect'
  | 'logon'
  | 'logoff'
  | 'av.detect';

/** Fields every trail event carries; kind-specific fields ride along (SPEC §2). */
export interface TrailEvent {
  /** Endpoint time, ms since epoch, UTC. */
  ts: number;
  /** Event kind; a TrailEventKind or an unknown kind kept for forward compatibility. */
  k: TrailEventKind | (string & {});
  /** Per-device sequence number, +1 per recorded event across batches and reconnects. */
  seq: number;
  /** Acting process GUID (Sysmon ProcessGuid). */
  pg?: string;
  pid?: number;
  /** User SID. */
  user?: string;
  [field: string]: unknown;
}

/** Agent policy sent in `welcome`. */
export interface AgentPolicy {
  batchIntervalMs: number;
  maxBatchEvents: number;
  maxUnackedBatches: number;
  hbIntervalMs: number;
  /** The tenant's fleet policy (mode, log tuning, USB control); absent from servers before issue 16. */
  fleet?: AgentFleetPolicy;
}

export interface HelloFrame {
  t: 'hello';
  enrollKey?: string;
  tmid?: string;
  token?: string;
  computer: string;
  agentVersion: string;
  os: string;
  ips: string[];
  macs: string[];
}

export interface BatchFrame {
  t: 'batch';
  /** 32 lowercase hex characters, unique per batch. */
  id: string;
  /** Agent send time, ms since epoch. */
  sentAt: number;
  first: number;
  last: number;
  events: TrailEvent[];
}

export interface HeartbeatFrame {
  t: 'hb';
  ts?: number;
  /** Agent → server: events and bytes the agent's tuning filters dropped since its last report (docs/FLEET.md). */
  tuned?: { events: number; bytes: number };
}

export interface InventoryFrame {
  t: 'inv';
  [field: string]: unknown;
}

export type AgentFrame = HelloFrame | BatchFrame | HeartbeatFrame | InventoryFrame | CommandResultFrame;

export interface WelcomeFrame {
  t: 'welcome';
  tmid: string;
  /** Present only on enrollment. */
  token?: string;
  policy: AgentPolicy;
  serverTime: number;
  /** One past the highest seq the server holds for this device. */
  nextSeq: number;
}

export interface AckFrame {
  t: 'ack';
  id: string;
  dup?: true;
}

export interface ErrorFrame {
  t: 'error';
  code: ProtocolErrorCode;
  message: string;
  field?: string;
}

export type ServerFrame = WelcomeFrame | AckFrame | HeartbeatFrame | ErrorFrame | CommandFrame | PolicyFrame;

/** Stable error codes of the agent protocol (docs/PROTOCOL.md). */
export type ProtocolErrorCode =
  | 'malformed_frame'
  | 'unknown_frame_type'
  | 'missing_field'
  | 'invalid_field'
  | 'frame_too_large'
  | 'hello_required'
  | 'hello_timeout'
  | 'duplicate_hello'
  | 'enroll_key_invalid'
  | 'auth_failed'
  | 'batch_id_conflict'
  | 'server_shutting_down'
  | 'internal_error'
  // hardening: agent path (issue 11)
  | 'nesting_too_deep'
  | 'batch_id_reused'
  | 'seq_out_of_range'
  | 'seq_overlap'
  | 'superseded'
  // hardening: process and storage: the disk or the LMDB map is full; retry later (close 1013).
  | 'storage_unavailable';

// ---------------------------------------------------------------------------
// Alerts, quick reports and verdicts (SPEC §4). Written by the engine, read by
// the API and the CLI.

export type Verdict = 'black' | 'gray' | 'white';

/** Points at one event of a device's trail: enough to find it again in the log. */
export interface EvidenceRef {
  tmid: string;
  seq: number;
  ts: number;
  k: string;
}

/** An event quoted in a report section, with the reference that proves it. */
export interface EvidenceItem {
  ref: EvidenceRef;
  /** The event's own fields (as stored). */
  event: Record<string, unknown>;
  /** Why it is in this section, e.g. "created the detected file". */
  note?: string;
}

export type ReportSectionId =
  | 'origin'
  | 'chain'
  | 'descendants'
  | 'filesWritten'
  | 'registry'
  | 'filesRead'
  | 'network'
  | 'attributes'
  // Sections past the eight of SPEC §4 (issue 13): what the process tree did to other processes, loaded and connected to.
  | 'processAccess'
  | 'imageLoads'
  | 'pipes';

export interface ReportSection {
  id: ReportSectionId;
  /** Section title as printed (SPEC §4 order). */
  title: string;
  /** One-line summary, e.g. "downloaded by chrome.exe from https://…". */
  summary: string;
  items: EvidenceItem[];
}

/** A rule that fired, with the evidence it matched. */
export interface RuleHit {
  ruleId: string;
  description: string;
  weight?: number;
  outcome?: Verdict;
  evidence: EvidenceRef[];
  /** The verdict model's factor group (sigma, provenance, behaviour, signer, execution, intel); absent on rule-set rules. */
  group?: string;
  /** What the evidence showed, in words (e.g. "lsass.exe opened with PROCESS_VM_READ"). */
  detail?: string;
}

export interface FileAttributes {
  path: string;
  sha256: string | undefined;
  size: number | undefined;
  signer: string | undefined;
  sig: string | undefined;
  firstSeen: number | undefined;
  vol: string | undefined;
}

export interface QuickReport {
  alertId: string;
  revision: number;
  /** Server time the revision was made, ms. */
  createdAt: number;
  tmid: string;
  supportId: string;
  computer: string;
  detection: EvidenceItem;
  /** How the file came to be: internet, mail, removable, local, unknown. */
  originKind: string;
  executed: boolean;
  sections: ReportSection[];
  rules: RuleHit[];
  /**
   * Sigma rules that fired on a process of the report's tree (the detected
   * process's chain and descendants): stored detections, oldest first.
   * Absent on reports made before Sigma ran in the shards.
   */
  sigma?: SigmaReportHit[];
  score: number;
  verdict: Verdict;
  /**
   * How the detected file ran: `process` (a process started from it), `hosted`
   * (a script host or loader ran it by its command line), `loaded` (loaded as an
   * image into a process); with that process. Absent when it did not run, and on
   * reports made before issue 13.
   */
  execution?: { how: 'process' | 'hosted' | 'loaded'; pg: string; image: string; detail: string };
  /** How sure the verdict is (high, medium, low) and why; absent on reports made before issue 13. */
  confidence?: { level: 'high' | 'medium' | 'low'; reason: string };
}

/** The Sigma severities: `level` critical → Critical, high → Serious, medium → Medium, low / informational → Information. */
export type SigmaSeverity = 'Critical' | 'Serious' | 'Medium' | 'Information';

/** A Sigma rule that fired in a quick report's process tree ("rules that fired"). */
export interface SigmaReportHit {
  detectionId: string;
  ruleId: string;
  title: string;
  level: string;
  severity: SigmaSeverity;
  tags: string[];
  /** The process the matched event belongs to. */
  pg: string;
  image: string;
  event: EvidenceRef;
}

/**
 * A stored Sigma detection: one rule that matched one trail event, with the
 * device and the process. Deduplicated per device + rule + process for 72 h
 * (later matches count as `repeats` of the first).
 */
export interface SigmaDetection {
  /** `sd_` + 24 hex of SHA-256(tmid:seq:ruleId): a replay produces the same id. */
  id: string;
  supportId: string;
  tmid: string;
  computer: string;
  ruleId: string;
  title: string;
  level: string;
  severity: SigmaSeverity;
  tags: string[];
  /** The rule's author (DRL 1.1 asks that messages based on a match keep it). */
  author: string;
  /** Batch of the device's log holding the matched event, and the event itself. */
  lsn: number;
  event: EvidenceRef;
  /** The acting process (its GUID, '' when the event has none) and its image. */
  pg: string;
  image: string;
  /** Endpoint time of the matched event, ms. */
  at: number;
  /** Server time it was stored, ms. */
  createdAt: number;
  repeats: number;
  lastRepeatAt?: number;
}

/** A tenant's Sigma settings: the whole pack on or off, and rules turned off by id. */
export interface SigmaTenantSettings {
  enabled: boolean;
  disabledRules: string[];
  /** When last changed through a cluster API node, ms (the stamp its copies compare); absent otherwise. */
  updatedAt?: number;
}

export type AlertState = 'reported' | 'suppressed' | 'tuning';

export interface AlertRecord {
  id: string;
  tmid: string;
  supportId: string;
  computer: string;
  sha256: string;
  path: string;
  threat: string;
  engine: string;
  action: string;
  /** Endpoint time of the detection, ms. */
  detectedAt: number;
  /** Server time the alert was created, ms. */
  createdAt: number;
  state: AlertState;
  /** Exception entry id when suppressed. */
  suppressedBy?: string;
  verdict: Verdict;
  score: number;
  revision: number;
  /** Repeated detections of the same file on the same device within 72 h. */
  repeats: number;
  lastRepeatAt?: number;
  /** Until this endpoint time, events of the detected process tree revise the report. */
  openUntil: number;
  /** The tenant's policy asked for isolation of this device. */
  isolationRequested: boolean;
}

/** One verdict change of an alert, by the engine or (later) an analyst. */
export interface VerdictChange {
  alertId: string;
  at: number;
  revision: number;
  from: Verdict | null;
  to: Verdict;
  by: string;
}

/** Tenant policy from the hearing sheet (SPEC §4). */
export interface TenantPolicy {
  /** Add high-confidence white verdicts to the exception list automatically. */
  autoExceptWhite: boolean;
  /** Until this time (ms), alerts are recorded but reports are not published. */
  tuningUntil: number | null;
  /** Request isolation of the device at once on a black verdict. */
  isolateOnBlack: boolean;
}

/** An exception-list entry: a match means no report (SPEC §4, seed 000 §7-2). */
export interface ExceptionEntry {
  id: string;
  supportId: string;
  sha256?: string;
  /** Glob over the Windows path, case-insensitive: `*` any run of characters, `?` one. */
  pathPattern?: string;
  signer?: string;
  expiresAt?: number;
  reason: string;
  createdAt: number;
  /** 'engine' for automatic white additions, otherwise who added it. */
  createdBy: string;
}

/** A response action waiting for delivery (delivered by the response-actions work). */
export interface CommandRequest {
  id: string;
  tmid: string;
  supportId: string;
  kind: 'isolate' | 'release' | 'delete-file' | 'collect-file' | 'set-policy' | 'upgrade';
  args: Record<string, unknown>;
  state: 'queued' | 'sent' | 'acknowledged' | 'done' | 'failed' | 'expired' | 'cancelled';
  requestedBy: string;
  requestedAt: number;
  /** After this time an undelivered command expires (default 7 days after the request). */
  expiresAt: number;
  reason?: string;
}

/** Default time an undelivered command waits for its device. */
export const COMMAND_EXPIRY_MS = 7 * 24 * 3600 * 1000;

/** Server → agent command frame (SPEC §3). */
export interface CommandFrame {
  t: 'cmd';
  id: string;
  kind: CommandRequest['kind'];
  args: Record<string, unknown>;
}

/** Agent → server command result. */
export interface CommandResultFrame {
  t: 'cmdr';
  id: string;
  status: 'acknowledged' | 'done' | 'failed';
  result?: Record<string, unknown>;
  error?: string;
}

/** Network-log formats the syslog receiver parses (seed 003: proxy, IDS, firewall). */
export type NetworkLogFormat = 'squid' | 'suricata' | 'cef' | 'fortigate';

/** What a network device did with the traffic, as its log states it. */
export type NetworkLogAction = 'allowed' | 'blocked' | 'alert' | 'unknown';

/**
 * One parsed network-log record (proxy access, IDS alert, firewall session), owned by
 * ingest/syslog (parsing) and storage (its key layout); read by intel matching, correlation
 * with endpoint trails, exports and SIEM forwarding. Times are epoch milliseconds (UTC).
 */
export interface NetworkLogRecord {
  supportId: string;
  /** When the syslog message was received. */
  receivedAt: number;
  /** The event's own time where the line states it, else receivedAt. */
  ts: number;
  format: NetworkLogFormat;
  /** The syslog sender's address. */
  sourceAddress: string;
  /** The syslog header's hostname / app-name where present. */
  host?: string;
  srcIp?: string;
  srcPort?: number;
  dstIp?: string;
  dstPort?: number;
  protocol?: string;
  /** Domain or host name the traffic went to (proxy URL host, DNS query, TLS SNI, HTTP host). */
  domain?: string;
  url?: string;
  action: NetworkLogAction;
  /** IDS signature / firewall rule / proxy result code. */
  signature?: string;
  /** The device's own severity number or word, unmapped. */
  vendorSeverity?: string;
  bytesOut?: number;
  bytesIn?: number;
  user?: string;
  /** The line as received (after syslog framing), for exports and evidence. */
  raw: string;
}

// ---------------------------------------------------------------------------
// Threat intelligence on network logs (issue 17, part B: engine/intel, storage/intel-alerts).

/** One intel entry that matched an observed value of a network log. */
export interface IntelIndicatorHit {
  kind: 'ip' | 'domain' | 'url' | 'sha256';
  /** The observed value that matched (the IP, host, URL or hash the log names). */
  observed: string;
  /** The listed indicator (an IP, a CIDR, a parent domain…). */
  value: string;
  /** `list:ips.txt`, `stix:<file>`, `taxii:<server>`, `misp:<feed>`. */
  source: string;
  /** 0–100. */
  confidence: number;
  labels: string[];
  /** The source's id (STIX indicator id, MISP attribute uuid). */
  ref?: string;
  name?: string;
  validUntil?: number;
}

/**
 * One endpoint connection (a net.conn event) as the connection index keeps it
 * (storage/net-conns.ts), so that a network log's 5-tuple finds the process behind it.
 */
export interface NetConnEntry {
  supportId: string;
  tmid: string;
  /** Endpoint time of the event, ms. */
  ts: number;
  seq: number;
  /** The log batch holding the event. */
  lsn: number;
  /** Process GUID and PID of the connecting process, its image when the shard knew it. */
  pg: string;
  pid?: number;
  image?: string;
  user?: string;
  proto?: string;
  dir?: string;
  lip: string;
  lport: number;
  rip: string;
  rport: number;
  rhost?: string;
}

/** The endpoint side of a network-intel alert: the connection the network device logged, with the device's name. */
export interface EndpointConnEvidence extends Omit<NetConnEntry, 'supportId'> {
  computer: string;
}

/**
 * A network log whose destination (or source) is a known indicator: one alert
 * per tenant, log line and indicator set, with the endpoint evidence when an
 * agent saw the same connection (device by IP and time, process by port and
 * time), and a severity from confidence, action and that evidence.
 */
export interface NetworkIntelAlert {
  /** `ni_` + 24 hex of SHA-256 of the tenant, the record's time, its 5-tuple and the raw line: a redelivered line is the same alert. */
  id: string;
  supportId: string;
  /** Server time the alert was created, ms. */
  createdAt: number;
  /** The network event's own time, ms. */
  at: number;
  severity: SigmaSeverity;
  /** The highest confidence among the hits. */
  confidence: number;
  hits: IntelIndicatorHit[];
  network: NetworkLogRecord;
  /** The device whose address the log names: by its connection (`connection`) or by its reported addresses (`device-ip`). */
  device?: { tmid: string; computer: string; matchedBy: 'connection' | 'device-ip' };
  endpoint?: EndpointConnEvidence;
  /** Server time the endpoint evidence was attached (later than createdAt when the agent's trail arrived after the log). */
  linkedAt?: number;
  /** The same indicator and source address again within the dedup window. */
  repeats: number;
  lastRepeatAt?: number;
}

// Fleet management (issue 16, agent management): block mode, log tuning
// filters, USB device control, staged upgrades. Owned by storage/fleet.ts,
// matched by core/fleet-policy.ts, pushed to agents in `welcome` and `policy`.

/** Block mode: agents block what the policy says (USB devices off the allow-list) and kiseki isolates on black; non-block mode only records. */
export type AgentMode = 'block' | 'non-block';

/**
 * A log tuning filter: an event matching every criterion given is dropped
 * before storage (by the agent, and by the shard for events that still arrive).
 * Globs are case-insensitive, `*` any run of characters, `?` one.
 */
export interface TuningFilter {
  id: string;
  /** Event kind glob, e.g. `file.read` or `net.*`. */
  kind?: string;
  /** Glob over the acting process's image (the event's `image`, else the image its `pg` started with). */
  image?: string;
  /** Glob over the event's `path`. */
  path?: string;
  /** Registry key prefix (case-insensitive) over the event's `key`. */
  keyPrefix?: string;
  note?: string;
}

/** A USB allow-list entry: a device matches when every field given matches (globs, case-insensitive). */
export interface UsbAllowRule {
  id: string;
  vendorId: string;
  productId?: string;
  serial?: string;
  note?: string;
}

/** What agents receive of their tenant's fleet policy (`welcome.policy.fleet`, `policy` frames). */
export interface AgentFleetPolicy {
  /** Increases with every change; an agent applies a policy only when newer than the one it holds. */
  version: number;
  mode: AgentMode;
  tuning: TuningFilter[];
  usb: { control: boolean; allow: UsbAllowRule[] };
}

/** Server → agent: the tenant's fleet policy changed (also carried by every `welcome`). */
export interface PolicyFrame {
  t: 'policy';
  fleet: AgentFleetPolicy;
}

/** `args` of an `upgrade` command: install this agent version from this package. */
export interface UpgradeArgs {
  version: string;
  /** Where the agent downloads the package (https). */
  url: string;
  /** SHA-256 of the package, lowercase hex: the agent refuses a package that differs. */
  sha256: string;
  rolloutId?: string;
}
