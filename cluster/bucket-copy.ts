/**
 * A node's batched copy of one bucket of records the shard nodes publish:
 * each entry decoded, queued, and written to the local store in batches (one
 * transaction per burst), the watcher held on an entry while its batch cannot
 * be written.
 *
 * Two uses:
 * - `startAlertCopy`, a shard node's copy of `kiseki-alerts`' alert records,
 *   for the 72 h dedup across a takeover: when a node takes over a dead node's
 *   virtual shards it replays their batches from the dead node's checkpoints,
 *   and its engine must find the alerts the dead node already committed: a
 *   replayed detection whose alert exists is skipped (its report stays the one
 *   made with the device's history), and a repeat of a file within 72 h is
 *   counted on the first alert rather than making a second one.
 *   `store.alerts.seed` writes each alert and its dedup entry, never a feed
 *   entry, so nothing is published or notified again. Before a node consumes
 *   a virtual shard it has just acquired, `settle` waits (bounded) until every
 *   entry the bucket held at that moment is written.
 * - an API node's copies of `kiseki-alerts` (alerts with their latest report)
 *   and `kiseki-detections` (api-node.ts).
 *
 * A batch that cannot be written stays queued: the next entry, or a retry
 * after `retryMs`, writes it, so the last entries of a burst are not left
 * waiting for another one.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import { decodeAlertEntry } from './alert-publisher.js';
import { watchBucket } from './bucket-watch.js';

/** Records written to the local store in one transaction at most. */
const COPY_BATCH = 500;

export interface BucketCopy {
  /**
   * Resolves once every entry the bucket holds now is in the local store, or after `timeoutMs` (resolving
   * false).
   */
  settle(timeoutMs: number): Promise<boolean>;
  /** Records new to the local store, entries skipped (not kiseki records), and whether the first pass is done. */
  stats(): { copied: number; skipped: number; caughtUp: boolean };
  stop(): Promise<void>;
}

export interface BucketCopyOptions<T> {
  kv: KV;
  /** The bucket's name, for logs. */
  name: string;
  /** A record from an entry's value; undefined (skipped) for a value of another shape. */
  decode: (bytes: Uint8Array) => T | undefined;
  /** Writes a batch in one transaction; resolves with the records new to the store. */
  write: (batch: T[]) => Promise<number>;
  /** Called after each batch written (a notifier to wake). */
  onWritten?: () => void;
  /** Called when the watcher starts again after its iterator ended. */
  onRewatch?: () => void;
  logger: Logger;
  retryMs?: number;
}

export function startBucketCopy<T>(options: BucketCopyOptions<T>): BucketCopy {
  const { kv } = options;
  const log = options.logger.child({ component: 'bucket-copy', bucket: options.name });
  const delayMs = options.retryMs ?? 1000;
  const pending: T[] = [];
  let copied = 0;
  let skipped = 0;
  let writing: Promise<void> | undefined;
  let queuedRevision = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  /** Writes what is pending, one batch after the other; a failure keeps the batch and schedules a retry. */
  function flush(): Promise<void> {
    writing ??= (async () => {
      try {
        while (pending.length > 0) {
          const batch = pending.slice(0, COPY_BATCH);
          copied += await options.write(batch);
          // Removed only once written: a failed write keeps them for the retry.
          pending.splice(0, batch.length);
          options.onWritten?.();
        }
      } catch (err) {
        if (retryTimer === undefined) log.error({ pending: pending.length, err: err instanceof Error ? err.message : String(err) }, 'Copied records could not be written to the local store; retrying.');
        if (!stopped) {
          retryTimer ??= setTimeout(() => {
            retryTimer = undefined;
            flush().catch(() => undefined);
          }, delayMs);
        }
        throw err;
      } finally {
        writing = undefined;
      }
    })();
    return writing;
  }

  const watcher = watchBucket(
    kv,
    options.name,
    async (e) => {
      if (e.operation !== 'PUT') return;
      const record = options.decode(e.value);
      if (record === undefined) {
        skipped++;
        return;
      }
      // A retry of this entry (its batch's write failed) is already queued.
      if (e.revision > queuedRevision) {
        pending.push(record);
        queuedRevision = e.revision;
      }
      // Bounded memory: a burst waits for the write in flight once a batch is queued; a failed write throws here
      // and the watcher retries this entry.
      if (pending.length >= COPY_BATCH) await flush();
      else void flush().catch(() => undefined);
    },
    log,
    delayMs,
    () => options.onRewatch?.(),
  );

  return {
    async settle(timeoutMs) {
      const until = Date.now() + timeoutMs;
      try {
        const status = await kv.status();
        const target = status.streamInfo.state.last_seq;
        while (watcher.revision() < target && status.values > 0) {
          if (Date.now() > until) return false;
          await new Promise((r) => setTimeout(r, 20));
        }
        // Bounded, like the wait above: the last batch copied is written before the caller goes on.
        for (;;) {
          try {
            await flush();
            return true;
          } catch {
            if (Date.now() > until) return false;
            await new Promise((r) => setTimeout(r, delayMs));
          }
        }
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'The bucket could not be read; going on without waiting for its copy.');
        return false;
      }
    },
    stats: () => ({ copied, skipped, caughtUp: watcher.caughtUp() }),
    async stop() {
      stopped = true;
      await watcher.stop();
      clearTimeout(retryTimer);
      await flush().catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'The last records copied could not be written; the next start copies them again.'));
    },
  };
}

/** A shard node's copy of `kiseki-alerts`' alert records with their dedup entries (see above). */
export function startAlertCopy(options: { kv: KV; store: HotStore; logger: Logger; retryMs?: number }): BucketCopy {
  return startBucketCopy({
    kv: options.kv,
    name: 'kiseki-alerts',
    decode: (bytes) => {
      try {
        return decodeAlertEntry(bytes).alert;
      } catch {
        return undefined;
      }
    },
    write: (batch) => options.store.alerts.seed(batch),
    logger: options.logger,
    ...(options.retryMs === undefined ? {} : { retryMs: options.retryMs }),
  });
}
