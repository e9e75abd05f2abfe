/**
 * The ingest node's committer: the same interface as ingest's group
 * committer (ingest/batch-committer.ts), but a batch is committed by
 * publishing it to the JetStream stream on its virtual shard's subject, with
 * `Nats-Msg-Id` = the batch id. The agent is acked only after JetStream's
 * publish ack, i.e. once the stream's replicas hold the batch; a pub-ack that
 * JetStream marks duplicate (the id was published within the dedup window) is
 * answered `duplicate`, so a resend is acked again and stored once.
 *
 * Publishes in flight are bounded: beyond `maxInFlight` a batch is answered
 * `unavailable` at once (the agent resends it later), as a failed publish is
 * (no quorum, NATS unreachable, timeout). Checks that need a device's stored
 * seqs (`overlap`, `reused`) happen on the shard node, after the ack
 * (docs/CLUSTER.md).
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { virtualShardOf } from '../core/vshard.js';
import type { BatchCommitter, BatchSubmission, CommitCallback, StorageFailure } from '../ingest/index.js';
import type { JetStreamClient } from '@nats-io/jetstream';
import { encodeBatchMessage } from './batch-message.js';
import type { DirectoryPublisher } from './directory.js';
import { batchSubject } from './nats.js';

export interface JetStreamCommitterOptions {
  js: JetStreamClient;
  directory: DirectoryPublisher;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Publishes awaited at once; beyond, batches are answered `unavailable`. */
  maxInFlight: number;
  /** Longest wait for a publish ack, ms (default 10,000). */
  publishTimeoutMs?: number;
  /** zstd level of the events in the stream (config `storage.zstdLevel`); absent: stored as the agent sent them. */
  zstdLevel?: number;
}

/** Creates the committer of an ingest node. */
export function createJetStreamCommitter(options: JetStreamCommitterOptions): BatchCommitter {
  const { js, clock, metrics } = options;
  const log = options.logger.child({ component: 'jetstream-committer' });
  const timeout = options.publishTimeoutMs ?? 10_000;
  let inFlight = 0;
  let lastSeq = 0;
  let failure: StorageFailure | undefined;
  let idleWaiters: (() => void)[] = [];
  metrics.storageWritable.set(1);

  function settle(): void {
    inFlight--;
    if (inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  async function publish(batch: BatchSubmission): Promise<'stored' | 'duplicate'> {
    await options.directory.ensurePublished(batch.tmid);
    const body = encodeBatchMessage({ ...batch, recvAt: clock.now() }, options.zstdLevel);
    const ack = await js.publish(batchSubject(virtualShardOf(batch.tmid), batch.tmid), body, { msgID: batch.id, timeout });
    if (ack.seq > lastSeq) lastSeq = ack.seq;
    return ack.duplicate ? 'duplicate' : 'stored';
  }

  return {
    submit(batch: BatchSubmission, callback: CommitCallback) {
      if (inFlight >= options.maxInFlight) {
        metrics.ingestBatchesTotal.inc({ result: 'refused' });
        return callback('unavailable');
      }
      inFlight++;
      publish(batch).then(
        (outcome) => {
          metrics.ingestBatchesTotal.inc({ result: outcome });
          if (outcome === 'stored') metrics.ingestEventsTotal.inc(batch.eventCount);
          if (failure !== undefined) {
            log.warn({ downMs: clock.now() - failure.since, failures: failure.failures }, 'JetStream acks publishes again; ingest resumes.');
            failure = undefined;
            metrics.storageWritable.set(1);
          }
          settle();
          callback(outcome);
        },
        (err: unknown) => {
          const reason = err instanceof Error ? err.message : String(err);
          if (failure === undefined) {
            log.error({ reason }, 'A batch publish to JetStream failed; the batch is not acked (the agent resends it).');
            failure = { since: clock.now(), reason, failures: 1 };
          } else failure = { ...failure, reason, failures: failure.failures + 1 };
          metrics.storageWritable.set(0);
          metrics.storageWriteFailuresTotal.inc();
          metrics.ingestBatchesTotal.inc({ result: 'failed' });
          settle();
          callback('unavailable');
        },
      );
    },
    committedLsn() {
      return lastSeq;
    },
    // JetStream's ack is the commit: nothing follows it here.
    ackedLsn() {
      return lastSeq;
    },
    committedThrough() {
      return Promise.resolve();
    },
    ackedNextSeq() {
      return 1;
    },
    idle() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    storageFailure() {
      return failure;
    },
  };
}
