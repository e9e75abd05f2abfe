/**
 * An archive node's copy of the raw log: every batch of the stream, in stream
 * order, committed to the node's local batch log by the embedded group
 * committer (no shards behind it) with the receipt time the ingest node gave
 * it. With the whole log local, the embedded day close, retention and log-spot
 * jobs run on the node unchanged (docs/CLUSTER.md "Exports and cold archives").
 *
 * Exactly-once: the follower's position is the stream sequence below which
 * every batch is answered; it is kept in `DATA/cluster-archive.json` and read
 * again at start. A position older than what was stored replays batches the
 * local batch-id index already holds: they come back `duplicate`.
 *
 * Days close on complete data only: `completeThrough()` is a receipt time
 * before which every batch is local. It moves when the follower has answered
 * everything the stream held at a check, to the check's time minus the time a
 * batch may take from an ingest node's receipt to the stream.
 */
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { readJson, writeFileAtomic } from '../export/index.js';
import type { BatchCommitter, CommitOutcome } from '../ingest/index.js';
import type { HotStore } from '../storage/index.js';
import { createDirectoryReader } from './directory.js';
import { BATCH_STREAM, BATCH_SUBJECT_PREFIX, boundedNatsCall, type ClusterLink } from './nats.js';
import { consumeIntoCommitter, createCommitWindow, stopCursor, streamCursor } from './stream-consumer.js';

/** Batches submitted to the local committer and not yet answered. */
const MAX_PENDING_BATCHES = 2048;

/**
 * Longest time from an ingest node's receipt of a batch to the batch being in the stream: the ingest node's
 * publish timeout (10 s) with room for clocks a little apart.
 */
export const RECEIPT_TO_STREAM_MARGIN_MS = 60_000;

/** The follower's position file in the data directory. */
export const ARCHIVE_POSITION_FILE = 'cluster-archive.json';

interface PositionFile {
  format: 'kiseki.cluster-archive.v1';
  /** Every stream message up to this sequence is answered (stored, duplicate or refused for good). */
  streamSeq: number;
  updatedAt: number;
}

export interface ArchiveFollowerOptions {
  link: ClusterLink;
  store: HotStore;
  /** The node's group committer (no shards behind it). */
  committer: BatchCommitter;
  dataDir: string;
  clock: Clock;
  logger: Logger;
  /** How often the position is saved and the stream's end looked up, ms (default 5000). */
  checkIntervalMs?: number;
  /** Wait before a pass that failed starts again, ms (default 1000). */
  retryDelayMs?: number;
}

export interface ArchiveFollowerStats {
  /** Every stream message up to this sequence is answered. */
  streamSeq: number;
  /** The stream's last sequence at the latest check. */
  streamLastSeq: number;
  /** Receipt time before which every batch is local (0: not caught up since start). */
  completeThrough: number;
  /** Stream messages gone (past the stream's max age) before this node read them, since start. */
  missed: number;
  /** Batches refused for good by the local checks, by outcome. */
  refused: Partial<Record<CommitOutcome, number>>;
  /** Batches submitted and not yet answered. */
  pendingBatches: number;
}

export interface ArchiveFollower {
  /** Receipt time (ms) before which every batch the cluster acked is in the local log; 0 until the first catch-up. */
  completeThrough(): number;
  stats(): ArchiveFollowerStats;
  /** Saves the position and looks up the stream's end now (also what the timer does). */
  check(): Promise<void>;
  /** Stops reading, waits for the batches submitted and saves the position. */
  stop(): Promise<void>;
}

/** Starts following the whole batch stream into `store`'s log, from the position saved in `dataDir`. */
export function startArchiveFollower(options: ArchiveFollowerOptions): ArchiveFollower {
  const { link, store, committer, clock } = options;
  const log = options.logger.child({ component: 'archive-follower' });
  const positionPath = join(options.dataDir, ARCHIVE_POSITION_FILE);
  const saved = readJson<PositionFile>(positionPath);
  const from = saved !== undefined && Number.isSafeInteger(saved.streamSeq) && saved.streamSeq > 0 ? saved.streamSeq : 0;
  const cursor = streamCursor(from);
  const window = createCommitWindow(MAX_PENDING_BATCHES);
  const directory = createDirectoryReader(link.directory, store);
  const refused: Partial<Record<CommitOutcome, number>> = {};
  let persisted = from;
  let streamLastSeq = 0;
  let completeThrough = 0;
  let missed = 0;
  // The next sequence expected; a message above it means the stream dropped some before they were read.
  let expected = from > 0 ? from + 1 : 0;

  const loop = consumeIntoCommitter({
    js: link.js,
    subjects: `${BATCH_SUBJECT_PREFIX}>`,
    cursor,
    committer,
    window,
    keepRecvAt: true,
    // Day archives list devices from the local directory: the record is copied before its first batch.
    beforeSubmit: (batch) => directory.ensureLocal(batch.tmid),
    refused,
    onMessage: (seq) => {
      if (expected > 0 && seq > expected) {
        missed += seq - expected;
        log.error({ from: expected, to: seq - 1 }, 'Batches left the stream (its max age) before this archive node copied them: the archives of their days miss them.');
      }
      if (seq >= expected) expected = seq + 1;
    },
    logger: log,
    ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
  });

  function savePosition(): void {
    if (cursor.answered <= persisted) return;
    const file: PositionFile = { format: 'kiseki.cluster-archive.v1', streamSeq: cursor.answered, updatedAt: clock.now() };
    writeFileAtomic(positionPath, `${JSON.stringify(file)}\n`);
    persisted = cursor.answered;
  }

  async function check(): Promise<void> {
    savePosition();
    const at = clock.now();
    const info = await boundedNatsCall(link.jsm.streams.info(BATCH_STREAM), 5000, 'the batch stream');
    streamLastSeq = info.state.last_seq;
    if (cursor.answered < streamLastSeq) return;
    // Answered means in the ack log: the day close reads LMDB, so wait until LMDB has all of it too.
    await committer.committedThrough(committer.ackedLsn());
    // Everything the stream held at `at` is answered: every batch received before `at`, less the margin, is local.
    completeThrough = Math.max(completeThrough, at - RECEIPT_TO_STREAM_MARGIN_MS);
  }

  let checking: Promise<void> | undefined;
  const timer = setInterval(() => {
    checking ??= check()
      .catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'The archive position check failed; the next one retries.'))
      .finally(() => {
        checking = undefined;
      });
  }, options.checkIntervalMs ?? 5000);
  timer.unref();
  log.info({ from }, 'Following the batch stream into the local log.');

  let stopping: Promise<void> | undefined;
  return {
    completeThrough: () => completeThrough,
    stats: () => ({ streamSeq: cursor.answered, streamLastSeq, completeThrough, missed, refused: { ...refused }, pendingBatches: window.size() }),
    check: () => (checking ??= check().finally(() => (checking = undefined))),
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        await checking?.catch(() => undefined);
        stopCursor(cursor, window);
        await loop;
        await committer.idle();
        savePosition();
      })();
      return stopping;
    },
  };
}
