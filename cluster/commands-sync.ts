/**
 * Response commands across nodes, through the `kiseki-commands` bucket
 * (`cmd.<id>` → the command's record). Every node keeps its commands in its
 * local store as the embedded mode does (storage/commands.ts); this module
 * copies them both ways:
 * - out: `share(command)` puts a node's record of a command: an API node when
 *   an operator queues or cancels one (the request is answered only once the
 *   bucket acked it), an ingest node at each state its agent's connection
 *   moved it to (sent, acknowledged, done, failed, expired);
 * - in: a watcher applies every entry to the local store with
 *   `commands.mirror`, which only ever moves a command forward along its
 *   lifecycle, so a late or repeated entry never undoes a later state.
 *
 * An ingest node hears of a queued command from the watcher and sends it if
 * the agent is connected to it; every ingest node holds a copy, so an agent
 * that moves to another node gets the command there (queued, or sent and not
 * acknowledged: resent, as in the embedded mode). A share that fails is kept
 * and retried; a node only puts a state further along than the bucket's, as
 * far as its watcher has seen.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';
import { commandStateRank, type CommandRecord, type HotStore } from '../storage/index.js';
import { watchBucket, type BucketWatcher } from './bucket-watch.js';
import { boundedNatsCall, commandKey } from './nats.js';

/** Bound of one put, ms. */
const PUT_TIMEOUT_MS = 5000;

const COMMAND_STATES = new Set(['queued', 'sent', 'acknowledged', 'done', 'failed', 'expired', 'cancelled']);

/** Parses a value of `kiseki-commands`; undefined for anything that is not a kiseki command record. */
export function decodeCommandEntry(bytes: Uint8Array): CommandRecord | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<CommandRecord> | null;
    if (v === null || typeof v !== 'object') return undefined;
    if (typeof v.id !== 'string' || typeof v.tmid !== 'string' || typeof v.supportId !== 'string' || typeof v.kind !== 'string') return undefined;
    if (typeof v.state !== 'string' || !COMMAND_STATES.has(v.state) || typeof v.requestedAt !== 'number' || typeof v.expiresAt !== 'number') return undefined;
    if (typeof v.args !== 'object' || v.args === null || typeof v.requestedBy !== 'string') return undefined;
    return v as CommandRecord;
  } catch {
    return undefined;
  }
}

export interface CommandSyncOptions {
  kv: KV;
  store: HotStore;
  logger: Logger;
  /** Called with each command the watcher changed in the local store (an ingest node delivers it). */
  onChanged?: (command: CommandRecord) => void;
  /** Wait before a failed share is retried, and before a watcher starts again, ms (default 1000). */
  retryMs?: number;
}

export interface CommandSync {
  /**
   * Puts the command's record into the bucket unless the bucket already holds it at that state or further.
   * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when NATS does not ack it within 5 s (it is then retried in the background).
   */
  share(command: CommandRecord): Promise<void>;
  /** Commands copied in, entries skipped (not kiseki records), shares waiting for a retry. */
  stats(): { copied: number; skipped: number; unshared: number; caughtUp: boolean };
  stop(): Promise<void>;
}

export function startCommandSync(options: CommandSyncOptions): CommandSync {
  const { kv, store } = options;
  const log = options.logger.child({ component: 'commands-sync' });
  const retryMs = options.retryMs ?? 1000;
  /** The furthest state of each command the bucket is known to hold (from the watcher and our own puts). */
  const shared = new Map<string, number>();
  /** Ids of commands whose share failed: the timer puts their local record as it is then. */
  const unshared = new Set<string>();
  /** The put in flight per command: puts of one command run one after the other, so a later state is never overtaken. */
  const inFlight = new Map<string, Promise<void>>();
  let copied = 0;
  let skipped = 0;

  async function putNow(command: CommandRecord): Promise<void> {
    const rank = commandStateRank(command.state);
    if ((shared.get(command.id) ?? -1) >= rank) return;
    await boundedNatsCall(kv.put(commandKey(command.id), JSON.stringify(command)), PUT_TIMEOUT_MS, 'command put');
    if ((shared.get(command.id) ?? -1) < rank) shared.set(command.id, rank);
  }

  function put(command: CommandRecord): Promise<void> {
    const next = (inFlight.get(command.id) ?? Promise.resolve()).catch(() => undefined).then(() => putNow(command));
    inFlight.set(command.id, next);
    next.then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      if (inFlight.get(command.id) === next) inFlight.delete(command.id);
    });
    return next;
  }

  const retryTimer = setInterval(() => {
    for (const id of unshared) {
      if (inFlight.has(id)) continue;
      const current = store.commands.get(id);
      if (current === undefined) {
        unshared.delete(id);
        continue;
      }
      put(current).then(
        () => unshared.delete(id),
        () => undefined,
      );
    }
  }, retryMs);

  const watcher: BucketWatcher = watchBucket(
    kv,
    'kiseki-commands',
    async (e) => {
      if (e.operation !== 'PUT') return;
      const command = decodeCommandEntry(e.value);
      if (command === undefined) {
        skipped++;
        return;
      }
      const rank = commandStateRank(command.state);
      if ((shared.get(command.id) ?? -1) < rank) shared.set(command.id, rank);
      const changed = await store.commands.mirror(command);
      if (changed === undefined) return;
      copied++;
      options.onChanged?.(changed);
    },
    log,
    retryMs,
    () => undefined,
  );

  return {
    async share(command) {
      try {
        await put(command);
      } catch (err) {
        unshared.add(command.id);
        log.warn({ commandId: command.id, state: command.state, err: err instanceof Error ? err.message : String(err) }, 'A command could not be shared through the bucket; retrying.');
        throw err;
      }
    },
    stats: () => ({ copied, skipped, unshared: unshared.size, caughtUp: watcher.caughtUp() }),
    async stop() {
      clearInterval(retryTimer);
      await watcher.stop();
    },
  };
}
