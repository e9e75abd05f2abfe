/**
 * `kiseki start --role shard`: a node that owns virtual shards through leases
 * (vshard-leases.ts) and, for each, reads the stream subject
 * `kiseki.batch.<n>.*` with an ordered consumer from the checkpoint stored in
 * the `kiseki-checkpoints` bucket. Each batch goes through the same pipeline
 * as in the embedded mode, fed by the stream instead of a socket: the local
 * group committer (raw batch + batch-id index in the node's LMDB) then the
 * local shard pool (counts, correlation, alerts, quick reports).
 *
 * Exactly-once on this node: the checkpoint of a virtual shard is the stream
 * sequence up to which every batch is committed locally *and* processed and
 * checkpointed by the local shards (the pool has drained past it); it is
 * written only by the lease holder, with a revision check. A crash replays
 * from there, and batches replayed that the node had already stored are
 * `duplicate`s of the local batch-id index, so they are not processed again
 * (this also covers resends older than JetStream's dedup window).
 *
 * Alerts leave the node through the `kiseki-alerts` bucket (alert-publisher.ts):
 * each flush that stored alerts nudges the publisher, and a checkpoint is
 * written only once every alert committed before it is in the bucket, so a
 * takeover by another node that replays from the checkpoint re-creates the
 * same alert ids on the same keys instead of second alerts.
 */
import type { HttpServer } from '../api/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { shardGcObserver, type Metrics } from '../core/metrics.js';
import { createShardPool, shardPoolOptionsFrom, type ShardPool } from '../engine/index.js';
import { createBatchCommitter, type CommitOutcome } from '../ingest/index.js';
import { hotRetentionEdge, rollOutRawBatches } from '../export/index.js';
import type { HotStore } from '../storage/index.js';
import { openNodeBase, startNodeHttp } from './node-base.js';
import { createAlertPublisher, type AlertPublisher } from './alert-publisher.js';
import { startAlertCopy } from './bucket-copy.js';
import { createDirectoryReader } from './directory.js';
import { consumeIntoCommitter, createCommitWindow, stopCursor, streamCursor, type StreamCursor } from './stream-consumer.js';
import { watchTenants } from './tenant-sync.js';
import { clusterLinkOptionsFrom, openClusterLink, vshardBatchSubjects, type ClusterLink } from './nats.js';
import { createVshardLeases, type VshardLeases } from './vshard-leases.js';

/** Longest wait, when a virtual shard is acquired, for the alerts the bucket holds to be copied locally, ms. */
const ALERT_COPY_SETTLE_MS = 10_000;

/** Batches a node has submitted to its local committer and not yet seen answered, over all its virtual shards. */
const MAX_PENDING_BATCHES = 2048;

export interface ShardNodeOptions {
  config: Readonly<Config>;
  logger: Logger;
  clock?: Clock;
  /** How often checkpoints are written to the bucket, ms (default 1000). */
  checkpointIntervalMs?: number;
}

export interface RunningShardNode {
  readonly nodeId: string;
  readonly store: HotStore;
  readonly metrics: Metrics;
  /** `/healthz` and `/metrics`, when `cluster.nodeHttpPort` is set. */
  readonly httpPort?: number;
  /** Virtual shards this node holds leases on. */
  owned(): number[];
  /**
   * Removes the raw batches past the hot retention that the local shards have checkpointed (also what the node does
   * every `export.checkIntervalMs`): the archive node, not this one, keeps the cold tier.
   */
  sweepLog(): Promise<{ batches: number; events: number; complete: boolean }>;
  close(): Promise<void>;
}

/** One owned virtual shard being consumed. */
interface VshardConsumer extends StreamCursor {
  vshard: number;
  /** Messages of its subjects after the last one read (JetStream's count at that message). */
  lag: number;
  /** What the bucket holds, and its revision (0: no key yet). */
  persisted: number;
  revision: number;
  loop: Promise<void>;
}

/** Starts a shard node: local store and shards, NATS link, leases, consumers. */
export async function startShardNode(options: ShardNodeOptions): Promise<RunningShardNode> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const base = openNodeBase(config);
  const { nodeId, store, metrics } = base;
  const log = logger.child({ component: 'shard-node', node: nodeId });
  let pool: ShardPool | undefined;
  let link: ClusterLink | undefined;
  // Set once the link is open; a flush before that leaves its alerts to the publisher's first round.
  let publisher: AlertPublisher | undefined;
  try {
    pool = createShardPool({
      ...shardPoolOptionsFrom(config, logger),
      onAlerts: (count) => {
        metrics.engineAlertsTotal.inc(count);
        publisher?.nudge();
      },
      onGcPauses: shardGcObserver(metrics),
    });
    await pool.start();
    link = await openClusterLink(clusterLinkOptionsFrom(config, `kiseki-shard-${nodeId}`, logger));
  } catch (err) {
    await pool?.close().catch(() => undefined);
    await base.release();
    throw err;
  }
  const shards = pool;
  const nats = link;
  const alerts = createAlertPublisher({ kv: nats.alerts, commands: nats.commands, directory: nats.directory, detections: nats.detections, store, nodeId, logger });
  publisher = alerts;
  const committer = createBatchCommitter({ store, sink: shards, clock, logger, metrics, zstdLevel: config.storage.zstdLevel });
  const directory = createDirectoryReader(nats.directory, store);
  // Tenant policies and fleet policies changed on an API node reach the shards' store (isolation on black, tuning),
  // and so do the exception list (read on each detection), Sigma settings and threshold rules (re-read every 5 s).
  const tenantWatch = watchTenants({ kv: nats.directory, store, logger, settings: true });
  // Other nodes' alerts, so that a takeover's replay finds them (72 h dedup; bucket-copy.ts).
  const alertCopy = startAlertCopy({ kv: nats.alerts, store, logger });
  const consumers = new Map<number, VshardConsumer>();
  const window = createCommitWindow(MAX_PENDING_BATCHES);
  const refused: Partial<Record<CommitOutcome, number>> = {};

  let checkpointsWaitForAlerts = false;

  /** Unread stream messages over the owned virtual shards, and the virtual shard furthest behind. */
  function streamLag(): { messages: number; maxVshard: number | null; maxMessages: number } {
    let messages = 0;
    let max: VshardConsumer | undefined;
    for (const c of consumers.values()) {
      messages += c.lag;
      if (c.lag > 0 && (max === undefined || c.lag > max.lag)) max = c;
    }
    metrics.clusterStreamLagMessages.set(messages);
    return { messages, maxVshard: max?.vshard ?? null, maxMessages: max?.lag ?? 0 };
  }

  /** Writes the checkpoints that the local shards have made safe. */
  async function checkpointRound(only?: VshardConsumer): Promise<void> {
    const list = only === undefined ? [...consumers.values()] : [only];
    const targets = list.map((c) => ({ c, seq: c.answered })).filter((t) => t.seq > t.c.persisted);
    if (targets.length === 0) return;
    // Every batch answered so far is in the local ack log; once LMDB has it and the shards pass its lsn, it is processed and persisted.
    await committer.committedThrough(committer.ackedLsn());
    await shards.drained(committer.committedLsn());
    try {
      // ...and its alerts must be in the bucket before a checkpoint passes it: a takeover replays only after it.
      await alerts.publishCommitted();
      checkpointsWaitForAlerts = false;
    } catch (err) {
      // Logged once per outage (the publisher logs its own failure and recovery too).
      if (!checkpointsWaitForAlerts) log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Checkpoints wait: the alerts committed before them are not all in the bucket yet.');
      checkpointsWaitForAlerts = true;
      return;
    }
    for (const { c, seq } of targets) {
      const key = `vshard.${c.vshard}`;
      try {
        c.revision = c.revision === 0 ? await nats.checkpoints.create(key, String(seq)) : await nats.checkpoints.update(key, String(seq), c.revision);
        c.persisted = seq;
      } catch (err) {
        log.warn({ vshard: c.vshard, err }, 'A checkpoint could not be written (another writer or NATS unreachable); the next round retries.');
        // Re-read the revision: a create that raced an earlier writer needs its revision to update.
        const e = await nats.checkpoints.get(key).catch(() => null);
        if (e !== null) c.revision = e.revision;
      }
    }
  }

  async function startConsumer(vshard: number): Promise<void> {
    const e = await nats.checkpoints.get(`vshard.${vshard}`);
    const from = e === null || e.operation !== 'PUT' ? 0 : Number(e.string());
    // Every alert committed before that checkpoint is in the bucket (the publisher's rule): copied before the replay.
    if (!(await alertCopy.settle(ALERT_COPY_SETTLE_MS))) log.warn({ vshard }, 'The alert bucket was not copied in time: a repeat replayed now may make a second alert.');
    const c: VshardConsumer = { ...streamCursor(from), vshard, lag: 0, persisted: from, revision: e?.revision ?? 0, loop: Promise.resolve() };
    consumers.set(vshard, c);
    c.loop = consumeIntoCommitter({
      js: nats.js,
      subjects: vshardBatchSubjects(vshard),
      cursor: c,
      committer,
      window,
      keepRecvAt: false,
      beforeSubmit: (batch) => directory.ensureLocal(batch.tmid),
      refused,
      onMessage: (_seq, pending) => {
        c.lag = pending;
      },
      logger: log.child({ vshard }),
    });
  }

  async function stopConsumer(vshard: number): Promise<void> {
    const c = consumers.get(vshard);
    if (c === undefined) return;
    stopCursor(c, window);
    await c.loop;
    await committer.idle();
    await checkpointRound(c);
    consumers.delete(vshard);
  }

  const leases: VshardLeases = createVshardLeases({
    kv: nats.leases,
    nodeId,
    ttlMs: config.cluster.leaseTtlMs,
    clock,
    logger,
    onAcquire: startConsumer,
    onRelease: stopConsumer,
  });
  await leases.start();
  let http: HttpServer | undefined;
  try {
    http = await startNodeHttp(config, base, {
      storageFailure: () => committer.storageFailure(),
      shardPositions: () => {
        const s = shards.stats();
        return { lagLsn: s.lagLsn, committedLsn: committer.committedLsn(), slowestCheckpointLsn: s.checkpoint };
      },
      details: () => ({
        role: 'shard',
        node: nodeId,
        vshards: leases.owned().length,
        pendingBatches: window.size(),
        streamLag: streamLag(),
        checkpointsWaitForAlerts,
        alertFeedPosition: alerts.position(),
        tenantCopies: { ...tenantWatch.stats(), caughtUp: tenantWatch.caughtUp() },
        alertCopies: alertCopy.stats(),
      }),
    });
  } catch (err) {
    await leases.stop().catch(() => undefined);
    await shards.close().catch(() => undefined);
    await alerts.stop();
    await tenantWatch.stop().catch(() => undefined);
    await alertCopy.stop().catch(() => undefined);
    await nats.close().catch(() => undefined);
    await base.release();
    throw err;
  }
  const httpServer = http;
  let sweeping: Promise<{ batches: number; events: number; complete: boolean }> | undefined;
  const sweepLog = (): Promise<{ batches: number; events: number; complete: boolean }> =>
    (sweeping ??= (async () => {
      const receivedBefore = hotRetentionEdge(clock.now(), config.export.hotRetentionDays);
      const r = await rollOutRawBatches(store, [...store.devices.all()], receivedBefore, store.shardState.lsnSafeToDrop());
      if (r.batches > 0) log.info({ receivedBefore, ...r }, 'Raw batches past the hot retention left the local log.');
      return r;
    })().finally(() => {
      sweeping = undefined;
    }));
  const sweepTimer = setInterval(() => {
    sweepLog().catch((err: unknown) => log.warn({ err }, 'Sweeping the local log failed; the next round retries.'));
  }, config.export.checkIntervalMs);
  sweepTimer.unref();
  let checkpointing: Promise<void> | undefined;
  const checkpointTimer = setInterval(() => {
    streamLag();
    checkpointing ??= checkpointRound()
      .catch((err: unknown) => log.warn({ err }, 'A checkpoint round failed.'))
      .finally(() => {
        checkpointing = undefined;
      });
  }, options.checkpointIntervalMs ?? 1000);
  log.info({ owned: leases.owned().length, dataDir: config.dataDir }, 'Shard node is running.');
  let closing: Promise<void> | undefined;
  return {
    nodeId,
    store,
    metrics,
    ...(httpServer === undefined ? {} : { httpPort: httpServer.port }),
    owned: () => leases.owned(),
    sweepLog,
    close() {
      closing ??= (async () => {
        await httpServer?.close();
        clearInterval(sweepTimer);
        await sweeping?.catch(() => undefined);
        clearInterval(checkpointTimer);
        while (checkpointing !== undefined) await checkpointing;
        // Releasing each lease stops its consumer and writes its checkpoint first.
        await leases.stop();
        await committer.idle();
        await shards.drained(committer.committedLsn());
        await shards.close();
        // The shards' last flush may have stored alerts: publish them before leaving (a failure is republished at the next start).
        await alerts.publishCommitted().catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Some alerts are not in the bucket yet; the next start publishes them.'));
        await alerts.stop();
        await tenantWatch.stop();
        await alertCopy.stop();
        await nats.close();
        await base.release();
        log.info({ refused }, 'Shard node stopped; its virtual shards are checkpointed and released.');
      })();
      return closing;
    },
  };
}
