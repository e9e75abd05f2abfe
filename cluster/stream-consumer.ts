/**
 * Reading the batch stream into a local group committer: what a shard node
 * does for each virtual shard it owns, and an archive node for the whole
 * stream. One ordered consumer per cursor, from after the cursor's `answered`
 * sequence; each batch is submitted to the committer, and `answered` moves
 * only past batches whose every predecessor was answered (stored, duplicate,
 * or refused for good), so it is a safe place to start again.
 *
 * A batch the local store refuses (`unavailable`, `failed`), or a NATS error,
 * ends the pass: once every submitted batch is answered, the next pass starts
 * again after `answered`, so the refused batch is read again and those after
 * it come back as duplicates of the local batch-id index.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../core/logger.js';
import type { BatchCommitter, CommitOutcome } from '../ingest/index.js';
import { decodeBatchMessage, type BatchMessage } from './batch-message.js';
import { BATCH_STREAM } from './nats.js';

/** Where one consumer of the stream stands. */
export interface StreamCursor {
  /** Stream sequences submitted, in order, with whether their batch was answered. */
  pending: { seq: number; done: boolean }[];
  /** Highest sequence with every earlier one answered (stored, duplicate, or refused for good). */
  answered: number;
  /** The running pass's messages (stopped to end the pass). */
  messages: ConsumerMessages | undefined;
  stopped: boolean;
}

/** A cursor that starts after stream sequence `from` (0: the stream's first message). */
export function streamCursor(from: number): StreamCursor {
  return { pending: [], answered: from, messages: undefined, stopped: false };
}

/** Bounds the batches submitted and not yet answered, over every cursor that shares it. */
export interface CommitWindow {
  /** Resolves once a batch may be submitted. */
  room(): Promise<void>;
  /** Batches submitted and not answered. */
  size(): number;
  /** Wakes every waiter (a cursor being stopped must see it). */
  wakeAll(): void;
}

interface CommitWindowControl extends CommitWindow {
  enter(): void;
  leave(): void;
}

export function createCommitWindow(max: number): CommitWindow {
  let size = 0;
  let waiters: (() => void)[] = [];
  const control: CommitWindowControl = {
    room: () => (size < max ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
    size: () => size,
    wakeAll() {
      const w = waiters;
      waiters = [];
      for (const r of w) r();
    },
    enter() {
      size++;
    },
    leave() {
      size--;
      if (size < max && waiters.length > 0) control.wakeAll();
    },
  };
  return control;
}

export interface ConsumeIntoCommitterOptions {
  js: JetStreamClient;
  /** The consumer's subject filter. */
  subjects: string;
  cursor: StreamCursor;
  committer: BatchCommitter;
  /** Made by createCommitWindow. */
  window: CommitWindow;
  /** Keep the receipt time the ingest node wrote (an archive node's day windows) rather than the local clock's. */
  keepRecvAt: boolean;
  /** Runs before a batch is submitted (a shard node makes sure the device's record is local). */
  beforeSubmit?: (batch: BatchMessage) => Promise<void>;
  /**
   * Counts, by outcome, the batches acked by ingest and refused for good by the local checks that need the device's
   * stored seqs (`conflict`, `overlap`, ...; docs/CLUSTER.md); each is logged.
   */
  refused: Partial<Record<CommitOutcome, number>>;
  /** Every message read, with JetStream's count of messages after it (an archive node's gap and lag figures). */
  onMessage?: (seq: number, pending: number) => void;
  logger: Logger;
  /** Wait before a pass that ended on a refusal or an error starts again, ms (default 1000). */
  retryDelayMs?: number;
}

/** Reads the stream into the committer, pass after pass, until `cursor.stopped`. */
export async function consumeIntoCommitter(o: ConsumeIntoCommitterOptions): Promise<void> {
  const { cursor: c, committer } = o;
  const window = o.window as CommitWindowControl;
  const answer = (entry: { seq: number; done: boolean }): void => {
    entry.done = true;
    window.leave();
    while (c.pending.length > 0 && c.pending[0]!.done) c.answered = c.pending.shift()!.seq;
  };
  while (!c.stopped) {
    let passEnded = false;
    try {
      const consumer = await o.js.consumers.get(BATCH_STREAM, {
        filter_subjects: o.subjects,
        ...(c.answered > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: c.answered + 1 } : { deliver_policy: DeliverPolicy.All }),
      });
      const messages = await consumer.consume({ max_messages: 64 });
      c.messages = messages;
      // Stopped while the consumer was being created: nothing else would end an idle iterator.
      if (c.stopped) messages.stop();
      for await (const m of messages) {
        if (c.stopped || passEnded) break;
        o.onMessage?.(m.seq, m.info.pending);
        const batch = decodeBatchMessage(m.data);
        await o.beforeSubmit?.(batch);
        await window.room();
        const entry = { seq: m.seq, done: false };
        c.pending.push(entry);
        window.enter();
        committer.submit(
          {
            tmid: batch.tmid,
            id: batch.id,
            sentAt: batch.sentAt,
            first: batch.first,
            last: batch.last,
            events: batch.events,
            eventCount: batch.eventCount,
            ...(o.keepRecvAt ? { recvAt: batch.recvAt } : {}),
          },
          (outcome) => {
            if (outcome === 'unavailable' || outcome === 'failed') {
              // Left in `pending` undone: `answered` cannot pass it until the next pass stores it.
              window.leave();
              passEnded = true;
              messages.stop();
              return;
            }
            if (outcome !== 'stored' && outcome !== 'duplicate') {
              o.refused[outcome] = (o.refused[outcome] ?? 0) + 1;
              o.logger.warn({ seq: m.seq, outcome }, 'A batch from the stream was refused by the local store checks.');
            }
            answer(entry);
          },
        );
      }
    } catch (err) {
      if (!c.stopped) o.logger.warn({ subjects: o.subjects, err }, 'Reading the batch stream failed; reading again from the last answered batch.');
      passEnded = true;
    }
    c.messages = undefined;
    await committer.idle();
    c.pending = [];
    if (passEnded && !c.stopped) await new Promise((r) => setTimeout(r, o.retryDelayMs ?? 1000));
  }
}

/** Stops a cursor's passes: the running one ends at its next message, a wait for room ends at once. */
export function stopCursor(c: StreamCursor, window: CommitWindow): void {
  c.stopped = true;
  c.messages?.stop();
  window.wakeAll();
}
