/**
 * Prometheus metrics of the whole process, named kiseki_<area>_<name>_<unit>.
 * Made once at start-up and handed to each component through its factory;
 * hot paths increment counters per batch, never per event.
 */
import { readdir } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry, Summary, collectDefaultMetrics } from 'prom-client';
import { GC_PAUSE_BUCKETS, type GcKind } from './gc-pauses.js';

export interface Metrics {
  registry: Registry;
  ingestConnections: Gauge;
  ingestFramesTotal: Counter<'type'>;
  ingestRejectsTotal: Counter<'reason'>;
  ingestBatchesTotal: Counter<'result'>;
  ingestEventsTotal: Counter;
  ingestBytesTotal: Counter;
  ingestCommitSeconds: Histogram;
  ingestAckStageSeconds: Histogram<'stage'>;
  ingestEnrollmentsTotal: Counter;
  ingestSupersededTotal: Counter;
  engineQuarantinedEventsTotal: Counter<'reason'>;
  engineEventsTotal: Counter;
  engineInvalidEventsTotal: Counter;
  engineQueuedBatches: Gauge;
  engineCatchUpBatchesTotal: Counter;
  engineCheckpointLsn: Gauge;
  engineAlertsTotal: Counter;
  engineShardHeapBytes: Gauge;
  engineDevicesInMemory: Gauge;
  engineReportLatencySeconds: Summary;
  engineReportLatencyHistogramSeconds: Histogram;
  engineReportStageSeconds: Summary<'stage'>;
  notifyFeedLagEvents: Gauge;
  notifyFeedLagSeconds: Gauge;
  /** A cluster shard node's consumers: stream messages not read yet (cluster/shard-node.ts). */
  clusterStreamLagMessages: Gauge;
  // hardening: process and storage
  storageWritable: Gauge;
  storageWriteFailuresTotal: Counter;
  processUnhandledRejectionsTotal: Counter;
  // liveness (engine/liveness.ts)
  livenessDevices: Gauge<'state'>;
  livenessOfflineAlertsTotal: Counter;
  livenessMassOfflineTotal: Counter;
  livenessRecoveriesTotal: Counter;
  /** GC pauses of the shard workers (core/gc-pauses.ts); the main thread's are kiseki_process_nodejs_gc_duration_seconds. */
  engineShardGcSeconds: Histogram<'kind'>;
}

/** Bucket bounds (seconds) of the ack stages: fine where a durable ack should be (a flush is ~2 ms), coarse in the tail. */
export const ACK_STAGE_BUCKETS: readonly number[] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5];
/** Bounds of the detection → report histogram, s: fine around the 50 ms goal, up to a shard minutes behind. */
export const REPORT_LATENCY_BUCKETS: readonly number[] = [0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120];

/**
 * prom-client counts open descriptors with a synchronous readdir of
 * /proc/self/fd on the thread that serves /metrics, the ingest thread: with
 * 19,000 agents connected that stopped every ack for 30-40 ms per scrape
 * (a CPU profile of fanin-19k). The same figure, read in libuv's thread pool.
 */
function replaceOpenFdsGauge(registry: Registry, registers: Registry[]): void {
  const name = 'kiseki_process_process_open_fds';
  if (process.platform !== 'linux' || registry.getSingleMetric(name) === undefined) return;
  registry.removeSingleMetric(name);
  new Gauge({
    name,
    help: 'Number of open file descriptors.',
    registers,
    async collect() {
      try {
        // Less the descriptor readdir itself held.
        this.set((await readdir('/proc/self/fd')).length - 1);
      } catch {
        // Not readable here (a sandbox): the gauge keeps its last value.
      }
    },
  });
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics ?? true) {
    // The GC histogram with the shards' buckets: prom-client's default (1 ms, 10 ms, 100 ms...) cannot tell a 2 ms scavenge from a 9 ms one.
    collectDefaultMetrics({ register: registry, prefix: 'kiseki_process_', gcDurationBuckets: [...GC_PAUSE_BUCKETS] });
    replaceOpenFdsGauge(registry, registers);
  }
  return {
    registry,
    ingestConnections: new Gauge({ name: 'kiseki_ingest_connections', help: 'Open agent connections.', registers }),
    ingestFramesTotal: new Counter({ name: 'kiseki_ingest_frames_total', help: 'Agent frames received, by type.', labelNames: ['type'], registers }),
    ingestRejectsTotal: new Counter({ name: 'kiseki_ingest_rejects_total', help: 'Frames or connections rejected, by reason (protocol error code).', labelNames: ['reason'], registers }),
    ingestBatchesTotal: new Counter({ name: 'kiseki_ingest_batches_total', help: 'Batches acked, by result (stored, duplicate) or failed.', labelNames: ['result'], registers }),
    ingestEventsTotal: new Counter({ name: 'kiseki_ingest_events_total', help: 'Events in batches stored.', registers }),
    ingestBytesTotal: new Counter({ name: 'kiseki_ingest_bytes_total', help: 'Bytes of batch frames received.', registers }),
    ingestCommitSeconds: new Histogram({
      name: 'kiseki_ingest_commit_seconds',
      help: 'Time of an acked group\'s LMDB commit to the batch log, write and flush (after its ack: acks wait for the ack log, kiseki_ingest_ack_stage_seconds).',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    // Per batch, so its quantiles compare with the agents' ack latency; a histogram (bucket counts) costs the
    // ingest thread almost nothing per observation, where a summary's digests would.
    ingestAckStageSeconds: new Histogram({
      name: 'kiseki_ingest_ack_stage_seconds',
      help: 'Where a stored batch\'s ack time goes on the server, per batch: stage="wait" accepted (decoded, compressed) → its group starts (the previous group\'s ack-log append included), "lock" → the group\'s ack-log write starts, "commit" its write and fdatasync, "order" on disk → acked.',
      labelNames: ['stage'],
      buckets: [...ACK_STAGE_BUCKETS],
      registers,
    }),
    storageWritable: new Gauge({ name: 'kiseki_storage_writable', help: '1 while the batch log accepts writes, 0 after a failed ack-log append or LMDB commit (disk or map full) until a retry succeeds.', registers }),
    storageWriteFailuresTotal: new Counter({ name: 'kiseki_storage_write_failures_total', help: 'Failed writes of batch groups, to the ack log or to LMDB (ENOSPC, map full, I/O error).', registers }),
    processUnhandledRejectionsTotal: new Counter({ name: 'kiseki_process_unhandled_rejections_total', help: 'Promise rejections that reached the process-level last resort (logged, the server kept serving).', registers }),
    ingestEnrollmentsTotal: new Counter({ name: 'kiseki_ingest_enrollments_total', help: 'Devices enrolled.', registers }),
    ingestSupersededTotal: new Counter({
      name: 'kiseki_ingest_superseded_total',
      help: 'Agent connections closed because the same device connected again (steady growth: a copied device token).',
      registers,
    }),
    engineQuarantinedEventsTotal: new Counter({
      name: 'kiseki_engine_quarantined_events_total',
      help: 'Stored events the shards could not decode and set aside, by reason (depth_exceeded, undecodable).',
      labelNames: ['reason'],
      registers,
    }),
    engineEventsTotal: new Counter({ name: 'kiseki_engine_events_total', help: 'Events processed by the shards.', registers }),
    engineInvalidEventsTotal: new Counter({ name: 'kiseki_engine_invalid_events_total', help: 'Events without a usable kind.', registers }),
    engineQueuedBatches: new Gauge({ name: 'kiseki_engine_queued_batches', help: 'Batches posted to shards and not yet processed.', registers }),
    engineCatchUpBatchesTotal: new Counter({ name: 'kiseki_engine_catch_up_batches_total', help: 'Batches left for shards to read from the log because their queue was full.', registers }),
    engineShardHeapBytes: new Gauge({ name: 'kiseki_engine_shard_heap_bytes', help: 'JS heap in use by the shard workers.', registers }),
    engineDevicesInMemory: new Gauge({ name: 'kiseki_engine_devices_in_memory', help: 'Devices whose correlation state the shards hold in memory.', registers }),
    engineAlertsTotal: new Counter({ name: 'kiseki_engine_alerts_total', help: 'Alerts stored with a quick report (or suppressed).', registers }),
    // A summary, not a histogram: operators and the benchmark read exact p50 / p99 of the last 10 minutes.
    engineReportLatencySeconds: new Summary({
      name: 'kiseki_engine_report_latency_seconds',
      help: 'From the receipt of a detection batch to its quick report being stored (last 10 minutes).',
      percentiles: [0.5, 0.9, 0.99, 0.999],
      maxAgeSeconds: 600,
      ageBuckets: 5,
      registers,
    }),
    // The same time as buckets: a benchmark takes its quantiles over one window (two scrapes' difference).
    engineReportLatencyHistogramSeconds: new Histogram({
      name: 'kiseki_engine_report_latency_histogram_seconds',
      help: 'From the receipt of a detection batch to its quick report being stored, as a histogram (kiseki_engine_report_latency_seconds has exact recent quantiles).',
      buckets: [...REPORT_LATENCY_BUCKETS],
      registers,
    }),
    engineReportStageSeconds: new Summary({
      name: 'kiseki_engine_report_stage_seconds',
      help: 'Where detection → report time goes (last 10 minutes): stage="queue" receipt → shard starts the batch, "process" the shard on that batch (quick report included), "store" batch done → flush committed.',
      labelNames: ['stage'],
      percentiles: [0.5, 0.9, 0.99, 0.999],
      maxAgeSeconds: 600,
      ageBuckets: 5,
      registers,
    }),
    notifyFeedLagEvents: new Gauge({ name: 'kiseki_notify_feed_lag_events', help: 'Notification feed entries (alerts, detections, verdict changes…) the notifier has not read yet.', registers }),
    notifyFeedLagSeconds: new Gauge({ name: 'kiseki_notify_feed_lag_seconds', help: 'Age of the oldest notification feed entry the notifier has not read yet (0 when none).', registers }),
    clusterStreamLagMessages: new Gauge({
      name: 'kiseki_cluster_stream_lag_messages',
      help: "A shard node's unread batch-stream messages over its virtual shards, as of each consumer's last message (cluster mode).",
      registers,
    }),
    engineCheckpointLsn: new Gauge({ name: 'kiseki_engine_checkpoint_lsn', help: 'Lowest persisted shard checkpoint (log sequence number).', registers }),
    // liveness (engine/liveness.ts): set after each check
    livenessDevices: new Gauge({ name: 'kiseki_liveness_devices', help: 'Devices per state (online, offline, isolated, error) as of the last liveness check.', labelNames: ['state'], registers }),
    livenessOfflineAlertsTotal: new Counter({ name: 'kiseki_liveness_offline_alerts_total', help: 'agent.offline alerts raised (one per silence outside maintenance windows).', registers }),
    livenessMassOfflineTotal: new Counter({ name: 'kiseki_liveness_mass_offline_total', help: 'Mass-offline events raised (many devices of a tenant dropped at once).', registers }),
    livenessRecoveriesTotal: new Counter({ name: 'kiseki_liveness_recoveries_total', help: 'Devices with an open offline alert that came back.', registers }),
    engineShardGcSeconds: new Histogram({
      name: 'kiseki_engine_shard_gc_seconds',
      help: 'Garbage-collection pauses of the shard workers, by kind (minor, major, incremental, weakcb).',
      labelNames: ['kind'],
      buckets: [...GC_PAUSE_BUCKETS],
      registers,
    }),
  };
}

/** The shard pool's `onGcPauses` for a process that exports `metrics`: each pause into kiseki_engine_shard_gc_seconds. */
export function shardGcObserver(metrics: Metrics): (pauses: readonly [GcKind, number][]) => void {
  return (pauses) => {
    for (const [kind, seconds] of pauses) metrics.engineShardGcSeconds.observe({ kind }, seconds);
  };
}
