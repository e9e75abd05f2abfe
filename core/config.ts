/**
 * Configuration: one defaults object with units in the names, one strict
 * schema (unknown keys are errors), cross-field checks, frozen. Environment
 * variables are read here and nowhere else; command-line flags override them.
 * CONFIG_SETTINGS is the one table of what the environment and `kiseki start`
 * flags may set (docs/OPERATIONS.md lists the same, a test keeps them equal).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { KisekiError } from './errors.js';

const port = z.number().int().min(0).max(65535);

const configSchema = z
  .object({
    /** Directory of the LMDB environment. */
    dataDir: z.string().min(1),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    ingest: z
      .object({
        host: z.string().min(1),
        port,
        path: z.string().startsWith('/'),
        /** Largest frame answered with a frame_too_large error; frames over 2x are cut by uWS. */
        maxFrameBytes: z.number().int().min(1024).max(64 * 1024 * 1024),
        helloTimeoutMs: z.number().int().min(100),
        /** uWS idle timeout; agents heartbeat more often than this. */
        idleTimeoutSec: z.number().int().min(8).max(960),
        tlsCertFile: z.string().min(1).optional(),
        tlsKeyFile: z.string().min(1).optional(),
        /** Policy handed to agents in `welcome`. */
        batchIntervalMs: z.number().int().min(10),
        maxBatchEvents: z.number().int().min(1),
        maxUnackedBatches: z.number().int().min(1).max(1024),
        hbIntervalMs: z.number().int().min(1000),
        /** Inventory frames larger than this are refused (invalid_field). */
        maxInventoryBytes: z.number().int().min(1024),
        /**
         * Deepest nesting of an agent frame (its own map is 1; an event's fields start at 4);
         * deeper frames are refused with nesting_too_deep. At most 64: shards and exports
         * quarantine events deeper than that (core/msgpack-bounds.ts MAX_EVENT_DEPTH).
         */
        maxFrameDepth: z.number().int().min(4).max(64),
        /**
         * Open agent connections at most; further upgrades get 503. The agent port's own
         * descriptor budget, apart from the HTTP server's: size ulimit -n for both.
         */
        maxConnections: z.number().int().min(1),
      })
      .strict(),
    http: z
      .object({
        host: z.string().min(1),
        port,
        /** PEM files: the API serves HTTPS when both are given. */
        tlsCertFile: z.string().min(1).optional(),
        tlsKeyFile: z.string().min(1).optional(),
        /** CA that signs client certificates; with requireClientCert, the second login factor. */
        clientCaFile: z.string().min(1).optional(),
        requireClientCert: z.boolean(),
        /** Largest request body accepted (413 ERR_BODY_TOO_LARGE beyond). */
        maxBodyBytes: z.number().int().min(1024).max(256 * 1024 * 1024),
        /** Open HTTP connections at most; more are closed at once, so they cannot take the agent port's descriptors. */
        maxConnections: z.number().int().min(1).max(1_000_000),
        /** Time a client has to send the request headers (slow-header clients are cut). */
        headersTimeoutMs: z.number().int().min(100).max(600_000),
        /** Time a client has to send the whole request, body included (not the response). */
        requestTimeoutMs: z.number().int().min(100).max(3_600_000),
      })
      .strict(),
    engine: z
      .object({
        /** Shard worker threads; devices map to 256 virtual shards, then to workers. */
        shards: z.number().int().min(1).max(64),
        /** Batches posted to one shard and not yet processed before it falls back to catch-up reads. */
        maxQueuedBatchesPerShard: z.number().int().min(1),
        /** How often a shard persists its derived state and checkpoint. */
        flushIntervalMs: z.number().int().min(1),
        /** How often a shard writes its device state snapshots (recovery replays at most this much). */
        stateSnapshotIntervalMs: z.number().int().min(100),
        /** Endpoint ms after a detection during which the process tree's events revise its report. */
        revisionWindowMs: z.number().int().min(0),
        /** Devices whose correlation state each shard keeps in memory; the rest are snapshotted to LMDB. */
        maxDevicesInMemory: z.number().int().min(1),
        /** Approximate MB of device state each shard keeps in memory (engine/correlator.ts); past it the least recently used are snapshotted too. */
        deviceStateBudgetMb: z.number().int().min(1),
        /** V8 young generation of each shard worker, MB (resourceLimits.maxYoungGenerationSizeMb; 3 semi-spaces' worth). */
        shardYoungGenerationMb: z.number().int().min(8).max(4096),
        /** Shrink a shard worker's young generation with a full collection after 10 s of under 2,000 events/s (core/heap-trim.ts). */
        shardHeapTrim: z.boolean(),
        /** Threat-intelligence lists (sha256.txt, domains.txt, ips.txt); default DATA/intel. */
        intelDir: z.string().min(1).optional(),
        // fleet management (issue 16)
        /** How long a shard uses a tenant's cached fleet policy (tuning filters, USB allow-list) before reading it again. */
        fleetPolicyRefreshMs: z.number().int().min(10).max(600_000),
        // prevalence across the tenant's fleet (issue 13)
        /** Devices of the tenant that must have had a file before its detection for the prevalence factors (docs/CORRELATION.md). */
        prevalenceMinDevices: z.number().int().min(1).max(64),
        /** Days between the fleet's first sighting of a file and its detection for the prevalence factors. */
        prevalenceMinDays: z.number().int().min(0).max(3650),
      })
      .strict(),
    storage: z
      .object({
        zstdLevel: z.number().int().min(1).max(19),
        /** LMDB map size; grows automatically, this is only the starting reservation. */
        mapSizeBytes: z.number().int().min(1024 * 1024),
        /** Newest batches read and checksummed by the start-up check (storage/verify.ts); 0 checks structure only. */
        verifyRecentBatches: z.number().int().min(0),
      })
      .strict(),
    /** The cold tier and the exports (export/). */
    export: z
      .object({
        /** Wait after a collection day's window ends (D+1 05:00 JST) before closing it, for in-flight commits. */
        closeGraceMs: z.number().int().min(0).max(24 * 3600_000),
        /** How often the scheduler looks for finished days and applies retention. */
        checkIntervalMs: z.number().int().min(1000),
        /** Raw batches of an archived day stay in LMDB this many days after the day ends (≥ 8: shards look back 7 days). */
        hotRetentionDays: z.number().int().min(1).max(3650),
        /** Cold archives (daily zip, Parquet, manifest) are deleted when their collection day is older than this. */
        coldRetentionDays: z.number().int().min(1).max(36500),
        /** Exports (daily downloads and log spots) are removed this many days after they were made. */
        exportRetentionDays: z.number().int().min(1).max(3650),
        /** Deflate level of the `.log` inside each inner zip (1 fastest … 9 smallest). */
        deflateLevel: z.number().int().min(1).max(9),
        /** Rows per Parquet row group. */
        parquetRowGroupRows: z.number().int().min(1024).max(16 * 1024 * 1024),
        parquetCompression: z.enum(['zstd', 'snappy', 'lz4', 'none']),
        /** Export worker threads (piscina); 0 runs the builds on the calling thread. */
        workerThreads: z.number().int().min(0).max(64),
      })
      .strict(),
    /** Notifications (notify/): SMTP, webhooks, the gray → white rule. */
    notify: z
      .object({
        /** SMTP relay; empty: e-mail recipients are not sent to (their entries retry, then dead-letter). */
        smtpHost: z.string(),
        smtpPort: port,
        /** TLS from the first byte (465); otherwise STARTTLS. */
        smtpSecure: z.boolean(),
        /** Refuse to send without STARTTLS. */
        smtpRequireTls: z.boolean(),
        /** Empty: no authentication. */
        smtpUser: z.string(),
        smtpPassword: z.string(),
        mailFrom: z.string().min(3),
        /** Base URL of the console for links in mails. */
        consoleUrl: z.string().url(),
        /** How often the notifier reads the feed and sends what is due. */
        intervalMs: z.number().int().min(100),
        /** Attempts before a notification is dead-lettered. */
        maxAttempts: z.number().int().min(1).max(100),
        /** Delay after the first failure; doubles per attempt up to 30 min. */
        retryBaseMs: z.number().int().min(100),
        /** Business days a gray alert waits for the customer before it turns white; 0 turns the rule off. */
        grayTimeoutBusinessDays: z.number().int().min(0).max(30),
        /** alert → mail latency (issue 15): longest wait of a new-alert mail for its quick-report PDF, ms; past it the mail goes with the console link only. */
        pdfWaitMs: z.number().int().min(0).max(600_000),
      })
      .strict(),
    /** Periodic and incident reports (reports/). */
    reports: z
      .object({
        /** Run the report scheduler in `kiseki start`. */
        enabled: z.boolean(),
        /** How often the scheduler looks for due reports (so a report is made within this after its period). */
        checkIntervalMs: z.number().int().min(1000),
        /** Chromium executable for PDFs; empty: the usual Debian paths. */
        chromiumPath: z.string(),
        /** Incident reports (one per black alert) made per round at most, newest first; the rest follow in later rounds. */
        incidentReportsPerRound: z.number().int().min(1).max(10_000),
        /**
         * Reports wait (an hour at most) while the service used at least this share of the machine's cores
         * since the scheduler's last round; 1: they never wait.
         */
        busyCpuShare: z.number().min(0).max(1),
      })
      .strict(),
    /** Sigma rules in the shards (docs/SIGMA.md). */
    sigma: z
      .object({
        /** Off: the shards match no Sigma rule (the benchmark's baseline). */
        enabled: z.boolean(),
        /** The default pack shipped in engine/sigma/rules/. */
        defaultPack: z.boolean(),
        /** A directory of Sigma rules loaded besides the default pack (a customer's own, SigmaHQ's tree). */
        dir: z.string().min(1).optional(),
        /** How often each shard checks the rule directories for changes and reloads them. */
        reloadIntervalMs: z.number().int().min(100),
      })
      .strict(),
    /** Threat intelligence on network logs and TAXII polling (issue 17, part B; docs/INTEL.md). */
    intel: z
      .object({
        /** A JSON file listing TAXII 2.1 servers and collections to poll (docs/INTEL.md); absent: no polling. */
        taxiiServersFile: z.string().min(1).optional(),
        /** How often each TAXII collection is polled. */
        taxiiIntervalMs: z.number().int().min(10_000),
        /** Confidence (0–100) of plain-list entries and of STIX / MISP indicators that state none. */
        defaultConfidence: z.number().int().min(0).max(100),
        /** MISP attributes expire this many days after their timestamp; 0: never. */
        mispMaxAgeDays: z.number().int().min(0),
        /** Largest gap between a network log's time and the endpoint connection it is linked to. */
        linkWindowMs: z.number().int().min(0),
        /** How long after its creation an alert without a process keeps looking for it (agents' trails arrive late). */
        relinkForMs: z.number().int().min(0),
        /** How often the network matcher reloads intel, retries links and sweeps the connection index. */
        checkIntervalMs: z.number().int().min(100),
      })
      .strict(),
    /** SIEM forwarding of alerts and detections (issue 17, part B; docs/SIEM.md). */
    siem: z
      .object({
        /** A JSON file of operator-wide SIEM destinations (every tenant's events); absent: none. */
        destinationsFile: z.string().min(1).optional(),
        /** HOSTNAME of the RFC 5424 headers kiseki sends. */
        hostname: z.string().min(1).max(255),
      })
      .strict(),
    /** Agent liveness (engine/liveness.ts): the defaults each tenant's settings override. */
    liveness: z
      .object({
        /** Run the liveness check in `kiseki start`. */
        enabled: z.boolean(),
        /** How often devices' silences are checked (an offline alert comes at most this late). */
        checkIntervalMs: z.number().int().min(100),
        /** A device silent this long outside maintenance windows raises one `agent.offline` alert. */
        offlineAfterMs: z.number().int().min(1000),
        /** Share of a tenant's devices (0–1) that dropping within massOfflineWindowMs makes one mass-offline event… */
        massOfflineShare: z.number().min(0).max(1),
        /** …when they are at least this many. */
        massOfflineMinDevices: z.number().int().min(2),
        massOfflineWindowMs: z.number().int().min(1000),
      })
      .strict(),
    /** Streaming analytics in the shards (engine/analytics.ts, docs/ANALYTICS.md). */
    analytics: z
      .object({
        /** Off: shards count nothing per day and evaluate no threshold (the benchmark's baseline). */
        enabled: z.boolean(),
        /** Daily counters are swept after this many days (SPEC §5: 90). */
        retentionDays: z.number().int().min(1).max(3650),
      })
      .strict(),
    // cluster (issue 19): multi-node roles over NATS JetStream (docs/CLUSTER.md)
    cluster: z
      .object({
        /** What this process runs: `all` (the embedded single process, default), `ingest`, `shard` or `api` (NATS JetStream nodes). */
        role: z.enum(['all', 'ingest', 'shard', 'api']),
        /** NATS server URLs, comma-separated (e.g. `nats://10.0.0.1:4222,nats://10.0.0.2:4222`); empty: embedded mode. */
        nats: z.string(),
        /** Replicas of the batch stream and the KV buckets: 3 in a 3-server NATS cluster, 1 on a single server. */
        replicas: z.number().int().min(1).max(5),
        /** JetStream's deduplication window for batch ids: a resend within it is a duplicate at the stream. */
        duplicateWindowMs: z.number().int().min(1000),
        /** A shard node's lease on a virtual shard lasts this long unless renewed (renewed every third of it). */
        leaseTtlMs: z.number().int().min(1000),
        /** Batches older than this are removed from the stream by JetStream (its `max_age`): the stream's disk is bounded. */
        streamMaxAgeDays: z.number().int().min(1).max(3650),
        /** Batch publishes an ingest node waits on at once; beyond, batches are answered `unavailable`. */
        maxInFlightPublishes: z.number().int().min(1),
        /** This node's name in leases and logs; empty: hostname and pid. */
        nodeId: z.string(),
        /**
         * An ingest or shard node's HTTP port for `/healthz` and `/metrics` (on `http.host`; 0: chosen by the OS);
         * absent: none. An API node serves them on `http.port` with the API.
         */
        nodeHttpPort: z.number().int().min(0).max(65535).optional(),
        /**
         * An API node that also keeps the whole raw log (it follows the batch stream) and writes the cold tier: day
         * archives, retention, daily downloads and log-spot exports (docs/CLUSTER.md "Exports and cold archives").
         */
        archive: z.boolean(),
        /**
         * An API node's notify horizon, ms: alerts it copies that were created (or changed verdict) longer ago
         * than this are not notified by it (a node copying the bucket's history does not send it again).
         */
        notifyMaxAgeMs: z.number().int().min(60_000),
      })
      .strict(),
    /** Thresholds of /healthz: beyond any of them the service reports itself degraded (503). */
    health: z
      .object({
        /** Free bytes on the data directory's file system below which /healthz reports low_disk_space. */
        minFreeDiskBytes: z.number().int().min(0),
        /** LMDB data file size as a percentage of its map size above which /healthz reports lmdb_map_full. */
        maxMapUsePercent: z.number().min(1).max(100),
        /** Log positions between the last batch handed to a shard and its checkpoint above which /healthz reports shard_lag. */
        maxShardLagLsn: z.number().int().min(1),
        /** How far back an export failure keeps /healthz degraded. */
        exportFailureWindowMs: z.number().int().min(0),
      })
      .strict(),
    /** The syslog receiver for network logs (ingest/syslog, docs/NETLOG.md). */
    syslog: z
      .object({
        /** Start the receiver in `kiseki start`; needs routesFile. */
        enabled: z.boolean(),
        host: z.string().min(1),
        /** -1 turns a listener off; 0 takes any free port (tests). */
        tcpPort: z.number().int().min(-1).max(65535),
        udpPort: z.number().int().min(-1).max(65535),
        /** Listens only when tlsCertFile and tlsKeyFile are given. */
        tlsPort: z.number().int().min(-1).max(65535),
        /** PEM files of the TLS listener; empty: no TLS listener. */
        tlsCertFile: z.string(),
        tlsKeyFile: z.string(),
        /** JSON file of each tenant's sender CIDRs and relay token; empty: none. */
        routesFile: z.string(),
        /** Longest message; longer ones are skipped and counted as line_too_long. */
        maxLineBytes: z.number().int().min(1024).max(16 * 1024 * 1024),
        /** Open TCP and TLS connections at most; more are closed at once and counted. */
        maxConnections: z.number().int().min(1).max(1_000_000),
        /** Pending records that start a commit at once (else flushIntervalMs); a commit takes everything pending. */
        batchMaxRecords: z.number().int().min(1).max(1_000_000),
        /** Longest a parsed record waits for its commit. */
        flushIntervalMs: z.number().int().min(1).max(60_000),
        /** Records waiting for a commit above which sockets pause and datagrams are dropped (queue_full). */
        maxPendingRecords: z.number().int().min(1),
      })
      .strict(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.ingest.tlsCertFile === undefined) !== (c.ingest.tlsKeyFile === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'tlsCertFile and tlsKeyFile must be given together', path: ['ingest'] });
    }
    if ((c.http.tlsCertFile === undefined) !== (c.http.tlsKeyFile === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'http tlsCertFile and tlsKeyFile must be given together', path: ['http'] });
    }
    if (c.http.requireClientCert && (c.http.tlsCertFile === undefined || c.http.clientCaFile === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'requireClientCert needs HTTPS (tlsCertFile, tlsKeyFile) and clientCaFile', path: ['http'] });
    }
    if (c.http.requestTimeoutMs < c.http.headersTimeoutMs) {
      ctx.addIssue({ code: 'custom', message: 'http requestTimeoutMs must be at least headersTimeoutMs', path: ['http', 'requestTimeoutMs'] });
    }
    if ((c.syslog.tlsCertFile === '') !== (c.syslog.tlsKeyFile === '')) {
      ctx.addIssue({ code: 'custom', message: 'syslog tlsCertFile and tlsKeyFile must be given together', path: ['syslog'] });
    }
    if (c.syslog.enabled && c.syslog.routesFile === '') {
      ctx.addIssue({ code: 'custom', message: 'syslog.enabled needs syslog.routesFile (which tenant each sender belongs to)', path: ['syslog', 'routesFile'] });
    }
    if (c.syslog.maxPendingRecords < c.syslog.batchMaxRecords) {
      ctx.addIssue({ code: 'custom', message: 'syslog maxPendingRecords must be at least batchMaxRecords', path: ['syslog', 'maxPendingRecords'] });
    }
    // cluster (issue 19): the node roles need NATS; the embedded mode runs without it.
    if (c.cluster.role !== 'all' && c.cluster.nats.trim() === '') {
      ctx.addIssue({ code: 'custom', message: 'cluster role ingest, shard or api needs nats URLs (--nats)', path: ['cluster', 'nats'] });
    }
    if (c.cluster.archive && c.cluster.role !== 'api') {
      ctx.addIssue({ code: 'custom', message: 'the cluster archive (--archive) runs on an API node (--role api)', path: ['cluster', 'archive'] });
    }
    if (c.cluster.role === 'all' && c.cluster.nats.trim() !== '') {
      ctx.addIssue({ code: 'custom', message: 'with --nats, choose a node role: ingest, shard or api (docs/CLUSTER.md)', path: ['cluster', 'role'] });
    }
    if (c.ingest.port !== 0 && c.ingest.port === c.http.port) {
      ctx.addIssue({ code: 'custom', message: 'ingest and http ports must differ', path: ['http', 'port'] });
    }
  });

export type Config = z.infer<typeof configSchema>;

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Defaults that work on a fresh machine. */
export const DEFAULTS: Config = {
  dataDir: './data',
  logLevel: 'info',
  ingest: {
    host: '0.0.0.0',
    port: 9100,
    path: '/agent/v1',
    maxFrameBytes: 4 * 1024 * 1024,
    helloTimeoutMs: 10_000,
    idleTimeoutSec: 120,
    batchIntervalMs: 1000,
    maxBatchEvents: 5000,
    maxUnackedBatches: 16,
    hbIntervalMs: 30_000,
    maxInventoryBytes: 256 * 1024,
    // Inventory (drives → partitions) and events (net.dns answers) nest 4-6 deep; 32 leaves room.
    maxFrameDepth: 32,
    // 50,000 agents per node (the reference scale) plus reconnect overlap.
    maxConnections: 60_000,
  },
  http: {
    host: '0.0.0.0',
    port: 8080,
    requireClientCert: false,
    // 1 MiB: the largest legitimate body (a set-policy command, an exception) is a few KiB.
    maxBodyBytes: 1024 * 1024,
    // Far above what operators' consoles and scripts open; far below the default descriptor limit.
    maxConnections: 1024,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
  },
  engine: {
    // One core serves sockets and commits; the rest decode and correlate.
    shards: Math.max(1, availableParallelism() - 1),
    maxQueuedBatchesPerShard: 512,
    flushIntervalMs: 100,
    stateSnapshotIntervalMs: 30_000,
    revisionWindowMs: 10 * 60 * 1000,
    // Bounded by bytes: an idle fleet of tens of thousands stays loaded, full states are held to a few thousand.
    maxDevicesInMemory: 100_000,
    deviceStateBudgetMb: 1024,
    // 64 MB semi-spaces instead of V8's 16: the shard allocates a decoded batch per batch, and a small
    // nursery promoted much of it and collected often (docs/BENCHMARKS.md, "Shard young generation").
    shardYoungGenerationMb: 192,
    // ...and give it back when the shard is quiet: a server with no agents kept 134 MB of it committed from its start.
    shardHeapTrim: true,
    // A policy change reaches every shard within a second; one LMDB read per tenant per second otherwise.
    fleetPolicyRefreshMs: 1000,
    // A file on 5 devices for two weeks is part of the fleet (the record keeps 64 device ids: the most a threshold can ask).
    prevalenceMinDevices: 5,
    prevalenceMinDays: 14,
  },
  storage: { zstdLevel: 1, mapSizeBytes: 1024 * 1024 * 1024, verifyRecentBatches: 10_000 },
  export: {
    closeGraceMs: 15 * 60_000,
    checkIntervalMs: 5 * 60_000,
    hotRetentionDays: 8,
    coldRetentionDays: 365,
    exportRetentionDays: 30,
    deflateLevel: 6,
    // 65,536 rows: as fast as 131,072 (bench/micro/export-day.bench.ts) with ~200 MB less peak memory.
    parquetRowGroupRows: 65_536,
    parquetCompression: 'zstd',
    // One thread: on the 2-core reference machine the other core serves ingest and the shards.
    workerThreads: 1,
  },
  notify: {
    smtpHost: '',
    smtpPort: 587,
    smtpSecure: false,
    smtpRequireTls: true,
    smtpUser: '',
    smtpPassword: '',
    mailFrom: 'kiseki@localhost',
    consoleUrl: 'http://localhost:8080',
    // One second: detection → mail accepted stays far inside the 60 s target (seed 003 asks 15 min).
    intervalMs: 1000,
    maxAttempts: 6,
    retryBaseMs: 30_000,
    grayTimeoutBusinessDays: 3,
    // alert → mail latency (issue 15): Chromium on a loaded machine prints in 5-20 s; the mail's p99 target is 60 s.
    pdfWaitMs: 10_000,
  },
  reports: { enabled: true, checkIntervalMs: 60_000, chromiumPath: '', incidentReportsPerRound: 10, busyCpuShare: 0.25 },
  sigma: { enabled: true, defaultPack: true, reloadIntervalMs: 5_000 },
  intel: {
    taxiiIntervalMs: 3600_000,
    defaultConfidence: 80,
    mispMaxAgeDays: 0,
    // Two minutes: agent batching and clock skew between the network device and the endpoint.
    linkWindowMs: 120_000,
    // 15 minutes: an agent offline for a short while still gets its trail linked.
    relinkForMs: 900_000,
    checkIntervalMs: 5_000,
  },
  siem: { hostname: 'kiseki' },
  liveness: {
    enabled: true,
    checkIntervalMs: 60_000,
    offlineAfterMs: 24 * 3600_000,
    // An outage, not a lunch break: a fifth of the tenant's PCs, at least 10, within 5 minutes.
    massOfflineShare: 0.2,
    massOfflineMinDevices: 10,
    massOfflineWindowMs: 5 * 60_000,
  },
  analytics: { enabled: true, retentionDays: 90 },
  // cluster (issue 19)
  cluster: { role: 'all', nats: '', replicas: 1, duplicateWindowMs: 120_000, leaseTtlMs: 10_000, streamMaxAgeDays: 8, maxInFlightPublishes: 1024, nodeId: '', archive: false, notifyMaxAgeMs: 3_600_000 },
  health: {
    // 1 GiB: room for a day's archive and LMDB growth on the reference workload.
    minFreeDiskBytes: 1024 * 1024 * 1024,
    maxMapUsePercent: 90,
    // A shard this far behind replays at least this many batches after a restart.
    maxShardLagLsn: 10_000,
    exportFailureWindowMs: 24 * 3600_000,
  },
  syslog: {
    enabled: false,
    host: '0.0.0.0',
    // Unprivileged ports: 514 needs root; 6514 is the IANA port of syslog over TLS (RFC 5425).
    tcpPort: 5140,
    udpPort: 5140,
    tlsPort: 6514,
    tlsCertFile: '',
    tlsKeyFile: '',
    routesFile: '',
    // 64 KiB: rsyslog's default maxMessageSize is 8 KiB; Suricata alerts with payloads reach ~20 KiB.
    maxLineBytes: 64 * 1024,
    maxConnections: 1024,
    batchMaxRecords: 5000,
    flushIntervalMs: 100,
    maxPendingRecords: 50_000,
  },
};

/** One value the environment (and, when `flag` is set, `kiseki start`) may set. */
export interface ConfigSetting {
  /** Dotted path in Config, e.g. `export.workerThreads`. */
  path: string;
  env: string;
  /** Flag of `kiseki start` (without `--`); absent: environment only. */
  flag?: string;
  type: 'string' | 'integer' | 'number' | 'boolean';
}

/** Everything the environment and `kiseki start` flags may set. Flags win over the environment. */
export const CONFIG_SETTINGS: readonly ConfigSetting[] = [
  { path: 'dataDir', env: 'KISEKI_DATA', flag: 'data', type: 'string' },
  { path: 'logLevel', env: 'KISEKI_LOG_LEVEL', flag: 'log-level', type: 'string' },
  { path: 'ingest.host', env: 'KISEKI_INGEST_HOST', type: 'string' },
  { path: 'ingest.port', env: 'KISEKI_INGEST_PORT', flag: 'ingest-port', type: 'integer' },
  { path: 'ingest.tlsCertFile', env: 'KISEKI_TLS_CERT', flag: 'tls-cert', type: 'string' },
  { path: 'ingest.tlsKeyFile', env: 'KISEKI_TLS_KEY', flag: 'tls-key', type: 'string' },
  { path: 'ingest.maxFrameBytes', env: 'KISEKI_MAX_FRAME_BYTES', type: 'integer' },
  { path: 'ingest.maxFrameDepth', env: 'KISEKI_MAX_FRAME_DEPTH', type: 'integer' },
  { path: 'ingest.maxConnections', env: 'KISEKI_INGEST_MAX_CONNECTIONS', type: 'integer' },
  { path: 'http.host', env: 'KISEKI_HTTP_HOST', type: 'string' },
  { path: 'http.port', env: 'KISEKI_HTTP_PORT', flag: 'http-port', type: 'integer' },
  { path: 'http.tlsCertFile', env: 'KISEKI_HTTP_TLS_CERT', flag: 'http-tls-cert', type: 'string' },
  { path: 'http.tlsKeyFile', env: 'KISEKI_HTTP_TLS_KEY', flag: 'http-tls-key', type: 'string' },
  { path: 'http.clientCaFile', env: 'KISEKI_HTTP_CLIENT_CA', flag: 'client-ca', type: 'string' },
  { path: 'http.requireClientCert', env: 'KISEKI_HTTP_REQUIRE_CLIENT_CERT', flag: 'require-client-cert', type: 'boolean' },
  { path: 'http.maxBodyBytes', env: 'KISEKI_HTTP_MAX_BODY_BYTES', type: 'integer' },
  { path: 'http.maxConnections', env: 'KISEKI_HTTP_MAX_CONNECTIONS', flag: 'http-max-connections', type: 'integer' },
  { path: 'http.headersTimeoutMs', env: 'KISEKI_HTTP_HEADERS_TIMEOUT_MS', type: 'integer' },
  { path: 'http.requestTimeoutMs', env: 'KISEKI_HTTP_REQUEST_TIMEOUT_MS', type: 'integer' },
  { path: 'engine.shards', env: 'KISEKI_SHARDS', flag: 'shards', type: 'integer' },
  { path: 'engine.intelDir', env: 'KISEKI_INTEL_DIR', flag: 'intel-dir', type: 'string' },
  { path: 'engine.shardYoungGenerationMb', env: 'KISEKI_SHARD_YOUNG_GENERATION_MB', type: 'integer' },
  { path: 'engine.shardHeapTrim', env: 'KISEKI_SHARD_HEAP_TRIM', type: 'boolean' },
  { path: 'engine.maxDevicesInMemory', env: 'KISEKI_MAX_DEVICES_IN_MEMORY', type: 'integer' },
  { path: 'engine.deviceStateBudgetMb', env: 'KISEKI_DEVICE_STATE_BUDGET_MB', type: 'integer' },
  // fleet management (issue 16)
  { path: 'engine.fleetPolicyRefreshMs', env: 'KISEKI_FLEET_POLICY_REFRESH_MS', type: 'integer' },
  { path: 'engine.prevalenceMinDevices', env: 'KISEKI_PREVALENCE_MIN_DEVICES', type: 'integer' },
  { path: 'engine.prevalenceMinDays', env: 'KISEKI_PREVALENCE_MIN_DAYS', type: 'integer' },
  { path: 'sigma.enabled', env: 'KISEKI_SIGMA_ENABLED', type: 'boolean' },
  { path: 'sigma.defaultPack', env: 'KISEKI_SIGMA_DEFAULT_PACK', type: 'boolean' },
  { path: 'sigma.dir', env: 'KISEKI_SIGMA_DIR', flag: 'sigma', type: 'string' },
  { path: 'storage.mapSizeBytes', env: 'KISEKI_MAP_SIZE_BYTES', type: 'integer' },
  { path: 'storage.verifyRecentBatches', env: 'KISEKI_VERIFY_RECENT_BATCHES', type: 'integer' },
  { path: 'export.closeGraceMs', env: 'KISEKI_EXPORT_CLOSE_GRACE_MS', type: 'integer' },
  { path: 'export.hotRetentionDays', env: 'KISEKI_HOT_RETENTION_DAYS', flag: 'hot-retention-days', type: 'integer' },
  { path: 'export.coldRetentionDays', env: 'KISEKI_COLD_RETENTION_DAYS', flag: 'cold-retention-days', type: 'integer' },
  { path: 'export.exportRetentionDays', env: 'KISEKI_EXPORT_RETENTION_DAYS', flag: 'export-retention-days', type: 'integer' },
  { path: 'export.workerThreads', env: 'KISEKI_EXPORT_WORKERS', flag: 'export-workers', type: 'integer' },
  { path: 'export.parquetCompression', env: 'KISEKI_PARQUET_COMPRESSION', type: 'string' },
  { path: 'notify.smtpHost', env: 'KISEKI_SMTP_HOST', flag: 'smtp-host', type: 'string' },
  { path: 'notify.smtpPort', env: 'KISEKI_SMTP_PORT', flag: 'smtp-port', type: 'integer' },
  { path: 'notify.smtpSecure', env: 'KISEKI_SMTP_SECURE', type: 'boolean' },
  { path: 'notify.smtpRequireTls', env: 'KISEKI_SMTP_REQUIRE_TLS', type: 'boolean' },
  { path: 'notify.smtpUser', env: 'KISEKI_SMTP_USER', type: 'string' },
  { path: 'notify.smtpPassword', env: 'KISEKI_SMTP_PASSWORD', type: 'string' },
  { path: 'notify.mailFrom', env: 'KISEKI_MAIL_FROM', flag: 'mail-from', type: 'string' },
  { path: 'notify.consoleUrl', env: 'KISEKI_CONSOLE_URL', flag: 'console-url', type: 'string' },
  { path: 'notify.grayTimeoutBusinessDays', env: 'KISEKI_GRAY_TIMEOUT_BUSINESS_DAYS', type: 'integer' },
  // alert → mail latency (issue 15)
  { path: 'notify.pdfWaitMs', env: 'KISEKI_NOTIFY_PDF_WAIT_MS', type: 'integer' },
  { path: 'reports.enabled', env: 'KISEKI_REPORTS', type: 'boolean' },
  { path: 'reports.incidentReportsPerRound', env: 'KISEKI_INCIDENT_REPORTS_PER_ROUND', type: 'integer' },
  { path: 'reports.busyCpuShare', env: 'KISEKI_REPORTS_BUSY_CPU_SHARE', type: 'number' },
  { path: 'reports.chromiumPath', env: 'KISEKI_CHROMIUM', type: 'string' },
  // liveness and streaming analytics
  { path: 'liveness.enabled', env: 'KISEKI_LIVENESS', type: 'boolean' },
  { path: 'liveness.checkIntervalMs', env: 'KISEKI_LIVENESS_CHECK_INTERVAL_MS', type: 'integer' },
  { path: 'liveness.offlineAfterMs', env: 'KISEKI_OFFLINE_AFTER_MS', flag: 'offline-after-ms', type: 'integer' },
  { path: 'analytics.enabled', env: 'KISEKI_ANALYTICS', type: 'boolean' },
  { path: 'analytics.retentionDays', env: 'KISEKI_ANALYTICS_RETENTION_DAYS', type: 'integer' },
  { path: 'health.minFreeDiskBytes', env: 'KISEKI_HEALTH_MIN_FREE_DISK_BYTES', type: 'integer' },
  { path: 'health.maxMapUsePercent', env: 'KISEKI_HEALTH_MAX_MAP_USE_PERCENT', type: 'number' },
  { path: 'health.maxShardLagLsn', env: 'KISEKI_HEALTH_MAX_SHARD_LAG_LSN', type: 'integer' },
  // syslog receiver (network logs, issue 17)
  { path: 'syslog.enabled', env: 'KISEKI_SYSLOG', flag: 'syslog', type: 'boolean' },
  { path: 'syslog.host', env: 'KISEKI_SYSLOG_HOST', type: 'string' },
  { path: 'syslog.tcpPort', env: 'KISEKI_SYSLOG_TCP_PORT', flag: 'syslog-tcp-port', type: 'integer' },
  { path: 'syslog.udpPort', env: 'KISEKI_SYSLOG_UDP_PORT', flag: 'syslog-udp-port', type: 'integer' },
  { path: 'syslog.tlsPort', env: 'KISEKI_SYSLOG_TLS_PORT', flag: 'syslog-tls-port', type: 'integer' },
  { path: 'syslog.tlsCertFile', env: 'KISEKI_SYSLOG_TLS_CERT', flag: 'syslog-tls-cert', type: 'string' },
  { path: 'syslog.tlsKeyFile', env: 'KISEKI_SYSLOG_TLS_KEY', flag: 'syslog-tls-key', type: 'string' },
  { path: 'syslog.routesFile', env: 'KISEKI_SYSLOG_ROUTES', flag: 'syslog-routes', type: 'string' },
  { path: 'syslog.maxLineBytes', env: 'KISEKI_SYSLOG_MAX_LINE_BYTES', type: 'integer' },
  { path: 'syslog.maxConnections', env: 'KISEKI_SYSLOG_MAX_CONNECTIONS', type: 'integer' },
  { path: 'syslog.flushIntervalMs', env: 'KISEKI_SYSLOG_FLUSH_INTERVAL_MS', type: 'integer' },
  // threat intelligence and SIEM forwarding (issue 17, part B)
  { path: 'intel.taxiiServersFile', env: 'KISEKI_TAXII_SERVERS_FILE', flag: 'taxii-servers', type: 'string' },
  { path: 'intel.taxiiIntervalMs', env: 'KISEKI_TAXII_INTERVAL_MS', type: 'integer' },
  { path: 'intel.defaultConfidence', env: 'KISEKI_INTEL_DEFAULT_CONFIDENCE', type: 'integer' },
  { path: 'intel.mispMaxAgeDays', env: 'KISEKI_INTEL_MISP_MAX_AGE_DAYS', type: 'integer' },
  { path: 'intel.linkWindowMs', env: 'KISEKI_INTEL_LINK_WINDOW_MS', type: 'integer' },
  { path: 'siem.destinationsFile', env: 'KISEKI_SIEM_DESTINATIONS_FILE', flag: 'siem-destinations', type: 'string' },
  { path: 'siem.hostname', env: 'KISEKI_SIEM_HOSTNAME', type: 'string' },
  // cluster (issue 19)
  { path: 'cluster.role', env: 'KISEKI_ROLE', flag: 'role', type: 'string' },
  { path: 'cluster.nats', env: 'KISEKI_NATS', flag: 'nats', type: 'string' },
  { path: 'cluster.replicas', env: 'KISEKI_NATS_REPLICAS', flag: 'nats-replicas', type: 'integer' },
  { path: 'cluster.duplicateWindowMs', env: 'KISEKI_NATS_DUPLICATE_WINDOW_MS', type: 'integer' },
  { path: 'cluster.streamMaxAgeDays', env: 'KISEKI_STREAM_MAX_AGE_DAYS', flag: 'stream-max-age-days', type: 'integer' },
  { path: 'cluster.leaseTtlMs', env: 'KISEKI_LEASE_TTL_MS', type: 'integer' },
  { path: 'cluster.maxInFlightPublishes', env: 'KISEKI_MAX_INFLIGHT_PUBLISHES', type: 'integer' },
  { path: 'cluster.nodeId', env: 'KISEKI_NODE_ID', flag: 'node-id', type: 'string' },
  { path: 'cluster.nodeHttpPort', env: 'KISEKI_NODE_HTTP_PORT', flag: 'node-http-port', type: 'integer' },
  { path: 'cluster.archive', env: 'KISEKI_CLUSTER_ARCHIVE', flag: 'archive', type: 'boolean' },
  { path: 'cluster.notifyMaxAgeMs', env: 'KISEKI_CLUSTER_NOTIFY_MAX_AGE_MS', type: 'integer' },
];

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

/** A flag's mistake is a usage error (exit 64), an environment variable's a configuration error. */
function convertSetting(setting: ConfigSetting, raw: unknown, source: string, code: 'ERR_CONFIG_INVALID' | 'ERR_USAGE'): unknown {
  if (setting.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new KisekiError(code, { variable: source, reason: `${source} takes true or false` });
  }
  if (setting.type === 'string') return raw;
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (String(raw).trim() === '' || !Number.isFinite(n) || (setting.type === 'integer' && !Number.isInteger(n))) {
    throw new KisekiError(code, { variable: source, reason: `${source} takes ${setting.type === 'integer' ? 'an integer' : 'a number'}` });
  }
  return n;
}

/**
 * The slice of configuration the environment sets (KISEKI_*, see
 * CONFIG_SETTINGS); an empty variable counts as unset.
 * @throws KisekiError ERR_CONFIG_INVALID for a value of the wrong type.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): DeepPartial<Config> {
  const out: Record<string, unknown> = {};
  for (const setting of CONFIG_SETTINGS) {
    const raw = env[setting.env];
    if (raw === undefined || raw === '') continue;
    setPath(out, setting.path, convertSetting(setting, raw, setting.env, 'ERR_CONFIG_INVALID'));
  }
  return out as DeepPartial<Config>;
}

/**
 * The slice of configuration set by flags, from values parsed with
 * CONFIG_FLAGS (absent flags leave the value alone).
 * @throws KisekiError ERR_USAGE for a value of the wrong type (e.g. --shards 1.5).
 */
export function configFromFlags(values: Readonly<Record<string, unknown>>): DeepPartial<Config> {
  const out: Record<string, unknown> = {};
  for (const setting of CONFIG_SETTINGS) {
    if (setting.flag === undefined) continue;
    const raw = values[setting.flag];
    if (raw === undefined) continue;
    setPath(out, setting.path, convertSetting(setting, raw, `--${setting.flag}`, 'ERR_USAGE'));
  }
  return out as DeepPartial<Config>;
}

/** Flag table (for core/cli-flags.ts) of every setting that has a flag. */
export const CONFIG_FLAGS: Readonly<Record<string, { type: 'string' | 'number' | 'boolean' }>> = Object.fromEntries(
  CONFIG_SETTINGS.filter((s) => s.flag !== undefined).map((s) => [s.flag!, { type: s.type === 'boolean' ? 'boolean' : s.type === 'string' ? 'string' : 'number' }]),
);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(v) && isPlainObject(base[k]) ? merge(base[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (isPlainObject(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Builds the configuration: defaults, then each override in order (later
 * wins; undefined leaves a value alone), validated once and frozen.
 * @throws KisekiError ERR_CONFIG_INVALID with the schema issues in details.
 */
export function loadConfig(...overrides: DeepPartial<Config>[]): Readonly<Config> {
  let merged: Record<string, unknown> = DEFAULTS as unknown as Record<string, unknown>;
  for (const o of overrides) merged = merge(merged, o as Record<string, unknown>);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    throw new KisekiError('ERR_CONFIG_INVALID', {
      issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return deepFreeze(parsed.data);
}

// Settings files (issue 17, part B: TAXII servers, SIEM destinations).
/**
 * Reads a JSON settings file a config value names and validates it.
 * @param what - names the file in the error, e.g. `the TAXII servers file`.
 * @throws KisekiError ERR_CONFIG_INVALID when the file is unreadable, not JSON, or invalid (`details.reason` lists the issues).
 */
export function readSettingsFile<T>(file: string, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new KisekiError('ERR_CONFIG_INVALID', { file, reason: `${what} cannot be read as JSON` }, { cause });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new KisekiError('ERR_CONFIG_INVALID', { file, reason: `${what}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` });
  return parsed.data;
}
