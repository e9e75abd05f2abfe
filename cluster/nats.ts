/**
 * The one place that talks to NATS: connects to the server list (reconnecting
 * forever, so a NATS server lost and restarted costs a pause, not the node),
 * and makes sure the JetStream stream of raw batches and the key-value buckets
 * the nodes share exist with the configured replica count. Everything else in
 * cluster/ receives a `ClusterLink` and never creates a stream itself.
 *
 * Layout (docs/CLUSTER.md):
 * - stream `KISEKI_BATCHES`, subjects `kiseki.batch.<vshard>.<device>`, file
 *   storage, `max_age` from `cluster.streamMaxAgeDays` (every node applies
 *   its own setting at start), dedup window `duplicateWindowMs` over the `Nats-Msg-Id` header
 *   (= batch id); the device token lets any ingest node read a device's last
 *   stored batch (its `welcome.nextSeq`) with one direct lookup;
 * - KV `kiseki-leases`: `vshard.<n>` → owning node, `node.<id>` → liveness;
 *   the bucket's TTL is the lease TTL, so an unrenewed lease disappears;
 * - KV `kiseki-checkpoints`: `vshard.<n>` → last stream sequence whose batch
 *   the owner has stored and processed (decimal);
 * - KV `kiseki-directory`: `device.<tmid>`, `tenant.<supportId>` and
 *   `enroll.<key hash>` → the records every ingest node needs to authenticate
 *   and enroll a device, and a shard node to correlate its events;
 * - KV `kiseki-alerts`: `alert.<alert id>` → the alert as its shard node
 *   committed it, with its latest quick-report revision (alert-publisher.ts);
 *   alert ids are deterministic (TMID and detection seq), so a replay of the
 *   same detection on another node writes the same key;
 * - KV `kiseki-commands`: `cmd.<command id>` → the command's record as its
 *   furthest state (commands-sync.ts): queued by an API node, delivered by the
 *   ingest node holding the agent's socket; entries leave 14 days after their
 *   last put (only ended commands are that old);
 * - KV `kiseki-notified`: `claim.<SHA-256 of the delivery claim key>` → who
 *   sends one notification to one recipient, and whether it was sent
 *   (notify-claims.ts); entries expire after `NOTIFY_CLAIM_TTL_MS`;
 * - KV `kiseki-notify-settings`: `notify.<supportId>` → a tenant's
 *   notification settings, recipients' secrets included (notify-settings-sync.ts);
 * - KV `kiseki-analysis`: `verdict.<alert id>.<id>`, `comment.<alert id>.<id>`
 *   → an analyst's verdict or comment made on an API node (analysis-sync.ts);
 * - KV `kiseki-identity`: `user.<login ID>`, `session.<SHA-256 of the secret>`
 *   → users, sessions and API tokens of the API nodes (identity-sync.ts);
 * - KV `kiseki-detections`: `det.<detection id>` → a Sigma detection as its
 *   shard node stored it (alert-publisher.ts); ids are deterministic
 *   (TMID, seq, rule), so a replay writes the same key.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { COMMAND_EXPIRY_MS } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';

export const BATCH_STREAM = 'KISEKI_BATCHES';
export const BATCH_SUBJECT_PREFIX = 'kiseki.batch.';
export const LEASE_BUCKET = 'kiseki-leases';
export const CHECKPOINT_BUCKET = 'kiseki-checkpoints';
export const DIRECTORY_BUCKET = 'kiseki-directory';
export const ALERT_BUCKET = 'kiseki-alerts';
export const COMMAND_BUCKET = 'kiseki-commands';
/**
 * A command's entry leaves `kiseki-commands` this long after its last state was put: twice the time a command
 * may wait for its device before it expires, so only ended commands go. Nodes keep their local copies.
 */
export const COMMAND_BUCKET_MAX_AGE_MS = 2 * COMMAND_EXPIRY_MS;
export const NOTIFY_CLAIM_BUCKET = 'kiseki-notified';
export const NOTIFY_SETTINGS_BUCKET = 'kiseki-notify-settings';
export const ANALYSIS_BUCKET = 'kiseki-analysis';
export const IDENTITY_BUCKET = 'kiseki-identity';
export const DETECTION_BUCKET = 'kiseki-detections';

/**
 * How long a claim record of `kiseki-notified` is kept after its last write, ms (7 days): far longer than any
 * notification stays pending (6 attempts span about 16 min) and than an API node's notify horizon
 * (`cluster.notifyMaxAgeMs`), so a record is never gone while a node could still send its notification.
 */
export const NOTIFY_CLAIM_TTL_MS = 7 * 86_400_000;

/** NATS KV keys allow `[-/_=.A-Za-z0-9]`; kiseki's ids (`al_<hex>`, `sd_<hex>`, `cmd_<hex>`) always fit, anything else is encoded. */
const NATS_SAFE_TOKEN = /^[-_=A-Za-z0-9]+$/;

/** `<prefix>.<id>` for an id that is one NATS-safe token (readable with `nats kv get`), `<prefix>.b64.<base64url>` otherwise. */
export function tokenKey(prefix: string, id: string): string {
  return NATS_SAFE_TOKEN.test(id) ? `${prefix}.${id}` : `${prefix}.b64.${Buffer.from(id).toString('base64url')}`;
}

/** The key of an alert in `kiseki-alerts`: `alert.<id>` (kiseki's ids are `al_` + hex). */
export function alertKey(alertId: string): string {
  return tokenKey('alert', alertId);
}

/** The key of a Sigma detection in `kiseki-detections`: `det.<id>` (kiseki's ids are `sd_` + hex). */
export function detectionKey(detectionId: string): string {
  return tokenKey('det', detectionId);
}

/** The key of a command in `kiseki-commands`: `cmd.<id>` (kiseki's ids are `cmd_` + hex). */
export function commandKey(commandId: string): string {
  return tokenKey('cmd', commandId);
}

/** The subjects of a virtual shard's batches (a consumer filter: every device of the shard). */
export function vshardBatchSubjects(vshard: number): string {
  return `${BATCH_SUBJECT_PREFIX}${vshard}.*`;
}

/**
 * The subject of one device's batches: its virtual shard, then the TMID in
 * base64url (TMIDs come from agents: base64url keeps `.`, `*` and `>` out of
 * the subject).
 */
export function batchSubject(vshard: number, tmid: string): string {
  return `${BATCH_SUBJECT_PREFIX}${vshard}.${Buffer.from(tmid).toString('base64url')}`;
}

/**
 * `p`, or ERR_CLUSTER_UNAVAILABLE (`<what>: no answer within <ms> ms`) when it
 * has not settled within `ms`: a NATS call on a path that must answer in time
 * (a hello, a checkpoint round, a read from outside the nodes).
 */
export function boundedNatsCall<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `${what}: no answer within ${ms} ms` })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface ClusterLinkOptions {
  /** Comma-separated NATS URLs (config `cluster.nats`). */
  servers: string;
  replicas: number;
  duplicateWindowMs: number;
  leaseTtlMs: number;
  /** The batch stream's `max_age`: older batches are removed by JetStream (absent: a new stream keeps them forever, an existing one keeps its setting). */
  streamMaxAgeMs?: number;
  /** Connection name shown by the NATS server (`kiseki-<role>-<node>`). */
  name: string;
  logger: Logger;
}

/** An open connection with the stream and buckets in place. */
export interface ClusterLink {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly leases: KV;
  readonly checkpoints: KV;
  readonly directory: KV;
  /** `kiseki-alerts`: every alert the shard nodes committed, one key per alert id. */
  readonly alerts: KV;
  /** `kiseki-commands`: response commands between the API nodes and the ingest nodes. */
  readonly commands: KV;
  /** `kiseki-notified`: the API nodes' claims on notifications, so that each is sent once. */
  readonly notified: KV;
  /** `kiseki-notify-settings`: tenants' notification settings, shared by the API nodes. */
  readonly notifySettings: KV;
  /** `kiseki-analysis`: analysts' verdicts and comments, shared by the API nodes. */
  readonly analysis: KV;
  /** `kiseki-identity`: users, sessions and API tokens, shared by the API nodes. */
  readonly identity: KV;
  /** `kiseki-detections`: every Sigma detection the shard nodes stored, one key per detection id. */
  readonly detections: KV;
  /** Drains and closes the connection. */
  close(): Promise<void>;
}

const NANOS_PER_MS = 1_000_000;
const MS_PER_DAY = 86_400_000;

/** A node's link options from its configuration (`cluster.*`); `name` is shown by the NATS server. */
export function clusterLinkOptionsFrom(config: Readonly<Config>, name: string, logger: Logger): ClusterLinkOptions {
  return {
    servers: config.cluster.nats,
    replicas: config.cluster.replicas,
    duplicateWindowMs: config.cluster.duplicateWindowMs,
    leaseTtlMs: config.cluster.leaseTtlMs,
    streamMaxAgeMs: config.cluster.streamMaxAgeDays * MS_PER_DAY,
    name,
    logger,
  };
}

/** Splits `cluster.nats` into server URLs. */
export function natsServers(list: string): string[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** How long a node keeps trying to set up the stream and buckets before it stops with ERR_CLUSTER_UNAVAILABLE. */
const LAYOUT_RETRY_MS = 60_000;

/**
 * Connects and ensures the stream and the buckets (creating them, or updating
 * the stream's replicas and dedup window when they differ).
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when no server answers or JetStream refuses the layout.
 */
export async function openClusterLink(options: ClusterLinkOptions): Promise<ClusterLink> {
  const log = options.logger.child({ component: 'nats' });
  const servers = natsServers(options.servers);
  let nc: NatsConnection;
  try {
    // maxReconnectAttempts -1: a node outlives any NATS outage; publishes fail (and are not acked) meanwhile.
    nc = await connect({ servers, name: options.name, maxReconnectAttempts: -1, reconnectTimeWait: 500, waitOnFirstConnect: true, timeout: 20_000 });
  } catch (err) {
    throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `no NATS server answers at ${servers.join(', ')}: ${err instanceof Error ? err.message : String(err)}` }, { cause: err });
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ event: s.type, server: 'server' in s ? s.server : undefined }, 'NATS connection changed.');
    }
  })().catch(() => undefined);
  // A NATS cluster started with the nodes elects its JetStream leader a few seconds later, and two nodes may create
  // the stream at once: the layout is retried for a bounded time before the node gives up.
  try {
    return await retryWhileStarting(() => ensureLayout(nc, options, log, servers), 'the stream and buckets', log);
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Runs a node's start-up step against JetStream until it succeeds, for at
 * most `budgetMs`: a bucket just created on a NATS cluster that is still
 * electing its leaders answers "no responders" (`JetStreamNotEnabled`) for a
 * few seconds, which is no reason for a node started with it to exit.
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE (`JetStream refused <what>: …`) once the budget is spent.
 */
export async function retryWhileStarting<T>(step: () => Promise<T>, what: string, log: Logger, budgetMs = LAYOUT_RETRY_MS, delayMs = 1000): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (Date.now() >= deadline) {
        throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `JetStream refused ${what}: ${err instanceof Error ? err.message : String(err)}` }, { cause: err });
      }
      log.warn({ attempt, err: err instanceof Error ? err.message : String(err) }, `JetStream is not ready for ${what} yet; retrying.`);
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

/** Creates or updates the batch stream and the buckets; throws what JetStream answers. */
async function ensureLayout(nc: NatsConnection, options: ClusterLinkOptions, log: Logger, servers: string[]): Promise<ClusterLink> {
  const jsm = await jetstreamManager(nc, { timeout: 20_000 });
  const js = jetstream(nc, { timeout: 20_000 });
  const streamConfig = {
    name: BATCH_STREAM,
    subjects: [`${BATCH_SUBJECT_PREFIX}*.*`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: options.replicas,
    duplicate_window: options.duplicateWindowMs * NANOS_PER_MS,
    // Without a setting, a new stream has no age limit (JetStream's default) and an existing one keeps its own.
    ...(options.streamMaxAgeMs === undefined ? {} : { max_age: options.streamMaxAgeMs * NANOS_PER_MS }),
  };
  const existing = await jsm.streams.info(BATCH_STREAM).catch(() => undefined);
  if (existing === undefined) await jsm.streams.add(streamConfig);
  else if (
    existing.config.num_replicas !== options.replicas ||
    existing.config.duplicate_window !== streamConfig.duplicate_window ||
    (streamConfig.max_age !== undefined && existing.config.max_age !== streamConfig.max_age) ||
    existing.config.subjects.join(',') !== streamConfig.subjects.join(',')
  ) {
    // A stream of the earlier per-shard layout (`kiseki.batch.<vshard>`) gets the per-device subjects; its old
    // messages are no longer read (docs/CLUSTER.md: drain the shard nodes before that upgrade).
    await jsm.streams.update(BATCH_STREAM, { num_replicas: options.replicas, duplicate_window: streamConfig.duplicate_window, ...(streamConfig.max_age === undefined ? {} : { max_age: streamConfig.max_age }), subjects: streamConfig.subjects });
  }
  const kvm = new Kvm(js);
  const leases = await kvm.create(LEASE_BUCKET, { replicas: options.replicas, ttl: options.leaseTtlMs, history: 1 });
  const checkpoints = await kvm.create(CHECKPOINT_BUCKET, { replicas: options.replicas, history: 1 });
  const directory = await kvm.create(DIRECTORY_BUCKET, { replicas: options.replicas, history: 1 });
  const alerts = await kvm.create(ALERT_BUCKET, { replicas: options.replicas, history: 1 });
  const commands = await kvm.create(COMMAND_BUCKET, { replicas: options.replicas, history: 1, ttl: COMMAND_BUCKET_MAX_AGE_MS });
  // kvm.create leaves an existing bucket as it is: a bucket made before the age limit gets it here.
  const commandStream = await jsm.streams.info(`KV_${COMMAND_BUCKET}`);
  if (commandStream.config.max_age !== COMMAND_BUCKET_MAX_AGE_MS * NANOS_PER_MS) {
    await jsm.streams.update(`KV_${COMMAND_BUCKET}`, { max_age: COMMAND_BUCKET_MAX_AGE_MS * NANOS_PER_MS });
  }
  const notified = await kvm.create(NOTIFY_CLAIM_BUCKET, { replicas: options.replicas, history: 1, ttl: NOTIFY_CLAIM_TTL_MS });
  const notifySettings = await kvm.create(NOTIFY_SETTINGS_BUCKET, { replicas: options.replicas, history: 1 });
  const analysis = await kvm.create(ANALYSIS_BUCKET, { replicas: options.replicas, history: 1 });
  const identity = await kvm.create(IDENTITY_BUCKET, { replicas: options.replicas, history: 1 });
  const detections = await kvm.create(DETECTION_BUCKET, { replicas: options.replicas, history: 1 });
  log.info({ servers, replicas: options.replicas }, 'Connected to NATS; the batch stream and buckets are in place.');
  return {
    nc,
    js,
    jsm,
    leases,
    checkpoints,
    directory,
    alerts,
    commands,
    notified,
    notifySettings,
    analysis,
    identity,
    detections,
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}
