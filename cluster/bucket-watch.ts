/**
 * Follows a KV bucket from its first value on, in revision order, for the
 * nodes that keep a local copy of one (the API node's alerts and directory,
 * every node's commands): starts from the bucket's current values, then its
 * updates; when the iterator ends (a NATS server lost for longer than the
 * client's reconnect covers) it starts again after the last revision applied.
 */
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';

export interface BucketWatcher {
  stop(): Promise<void>;
  caughtUp(): boolean;
  /** The revision of the last entry applied (0: none yet). */
  revision(): number;
}

/**
 * Follows one bucket from its first value on, calling `apply` for each entry
 * in revision order; a failed `apply` is retried (the entry is not skipped).
 */
export function watchBucket(kv: KV, name: string, apply: (e: KvWatchEntry) => Promise<void>, log: Logger, delayMs: number, onRewatch: () => void): BucketWatcher {
  let stopped = false;
  let revision = 0;
  let initialized = false;
  let iterator: { stop(): void } | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        const it = await kv.watch(revision > 0 ? { resumeFromRevision: revision + 1 } : {});
        iterator = it;
        if (stopped) it.stop();
        for await (const e of it) {
          if (stopped) break;
          for (;;) {
            try {
              await apply(e);
              break;
            } catch (err) {
              // The local store refused (disk full, map full): hold the watch here rather than skip the entry.
              log.error({ bucket: name, key: e.key, err: err instanceof Error ? err.message : String(err) }, 'A bucket entry could not be copied; retrying.');
              if (stopped) return;
              await new Promise((r) => setTimeout(r, delayMs));
            }
          }
          revision = e.revision;
          if (e.delta === 0) initialized = true;
        }
      } catch (err) {
        if (!stopped) log.warn({ bucket: name, err: err instanceof Error ? err.message : String(err) }, 'Watching a bucket failed; watching again from the last entry copied.');
      }
      iterator = undefined;
      if (stopped) return;
      onRewatch();
      await new Promise((r) => setTimeout(r, delayMs));
    }
  })();
  // An empty bucket sends nothing: its watcher is caught up as soon as it watches.
  void kv
    .status()
    .then((s) => {
      if (s.values === 0) initialized = true;
    })
    .catch(() => undefined);
  return {
    caughtUp: () => initialized,
    revision: () => revision,
    async stop() {
      stopped = true;
      iterator?.stop();
      await loop;
    },
  };
}
