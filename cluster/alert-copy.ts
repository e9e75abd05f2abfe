/**
 * A shard node's copy of `kiseki-alerts` (alert records only), for the 72 h
 * dedup across a takeover: when a node takes over a dead node's virtual
 * shards it replays their batches from the dead node's checkpoints, and its
 * engine must find the alerts the dead node already committed: a replayed
 * detection whose alert exists is skipped (its report stays the one made with
 * the device's history), and a repeat of a file within 72 h is counted on the
 * first alert rather than making a second one. `store.alerts.seed` writes
 * each alert and its dedup entry, never a feed entry, so nothing is published
 * or notified again.
 *
 * Entries are written in batches (one transaction per burst). Before a node
 * consumes a virtual shard it has just acquired, `settle` waits (bounded) until
 * every entry the bucket held at that moment is written.
 */
import type { KV } from '@nats-io/kv';
import type { AlertRecord } from '../core/contracts.js';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import { decodeAlertEntry } from './alert-publisher.js';
import { watchBucket } from './bucket-watch.js';

/** Alerts written to the local store in one transaction at most. */
const SEED_BATCH = 500;

export interface AlertCopy {
  /**
   * Resolves once every entry the bucket holds now is in the local store, or after `timeoutMs` (resolving false:
   * the takeover goes on, and the dedup may miss the newest alerts of the node that died).
   */
  settle(timeoutMs: number): Promise<boolean>;
  stats(): { copied: number; skipped: number; caughtUp: boolean };
  stop(): Promise<void>;
}

export function startAlertCopy(options: { kv: KV; store: HotStore; logger: Logger; retryMs?: number }): AlertCopy {
  const { kv, store } = options;
  const log = options.logger.child({ component: 'alert-copy' });
  const delayMs = options.retryMs ?? 1000;
  const pending: AlertRecord[] = [];
  let copied = 0;
  let skipped = 0;
  let writing: Promise<void> | undefined;
  let queuedRevision = 0;

  /** Writes what is pending, one batch after the other; a failure keeps the batch for the next call. */
  function flush(): Promise<void> {
    writing ??= (async () => {
      try {
        while (pending.length > 0) {
          const batch = pending.slice(0, SEED_BATCH);
          copied += await store.alerts.seed(batch);
          pending.splice(0, batch.length);
        }
      } finally {
        writing = undefined;
      }
    })();
    return writing;
  }

  const watcher = watchBucket(
    kv,
    'kiseki-alerts',
    async (e) => {
      if (e.operation !== 'PUT') return;
      let entry;
      try {
        entry = decodeAlertEntry(e.value);
      } catch {
        skipped++;
        return;
      }
      // A retry of this entry (its batch's write failed) is already queued.
      if (e.revision > queuedRevision) {
        pending.push(entry.alert);
        queuedRevision = e.revision;
      }
      // A burst is written in batches; a failed write throws here and the watcher retries this entry.
      if (pending.length >= SEED_BATCH) await flush();
      else void flush().catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'Copied alerts could not be written yet; the next entry retries.'));
    },
    log,
    delayMs,
    () => undefined,
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
        // Bounded, like the wait above: the last batch copied is written before the replay starts.
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
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'The alert bucket could not be read before a takeover; going on without waiting.');
        return false;
      }
    },
    stats: () => ({ copied, skipped, caughtUp: watcher.caughtUp() }),
    async stop() {
      await watcher.stop();
      await flush().catch(() => undefined);
    },
  };
}
