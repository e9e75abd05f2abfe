/**
 * A shard node's alerts, shared through the `kiseki-alerts` bucket: every
 * alert the node's shards commit is put under its id (`alert.<id>`, value:
 * the AlertRecord and its latest quick-report revision), after the local
 * flush committed it, at least once.
 *
 * What to publish comes from the local store, not from the shard workers'
 * messages: every new alert, every engine verdict change and every later
 * version the engine stores (a repeat, a report revision: `alert.updated`)
 * appends an entry to the notification feed in the same LMDB transaction as
 * the alert (storage/feed.ts). The publisher reads the feed after its own position
 * (`notify.readerCursor('alert-bucket')`, independent of the notifier's),
 * puts the alerts those entries name as they are now in the store, and moves
 * its position only once every put of the round was acked. A failed put is
 * retried from the same position on the next round; a node killed between
 * its flush and its publish republishes at its next start. So nothing
 * committed is left out, and a put done twice writes the same key.
 *
 * Across a crash takeover the new owner of a virtual shard replays the
 * stream from the dead node's last checkpoint: the detections it processes
 * again give the same alert ids (`alertIdFor(tmid, seq)`), so the bucket
 * keeps one key per detection. The shard node calls `publishCommitted()`
 * before each stream checkpoint: a checkpoint never passes a batch whose
 * alerts are not in the bucket, so a node whose disk is lost for good loses
 * no alert either (docs/CLUSTER.md).
 *
 * With an alert go what the engine made of it on this node: the isolation
 * its black verdict queued (`kiseki-commands`) and the exception its white
 * verdict added (`kiseki-directory`, settings-sync.ts). The same rounds put
 * every new Sigma detection (`detection.new` in the feed) into
 * `kiseki-detections` under its deterministic id, with the same guarantee: a
 * checkpoint never passes a batch whose detections are not in the bucket.
 * A detection goes as first stored (its later repeats are counted on the
 * shard node only).
 */
import type { KV } from '@nats-io/kv';
import type { AlertRecord, QuickReport, SigmaDetection } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { autoExceptionId, type CommandRecord, type HotStore } from '../storage/index.js';
import { alertKey, boundedNatsCall, commandKey, detectionKey } from './nats.js';
import { publishEngineException } from './settings-sync.js';

/** The feed reader's name in `notify-state` (`reader:alert-bucket`). */
export const ALERT_FEED_READER = 'alert-bucket';

/** Feed entries read per step of a round. */
const FEED_PAGE = 256;
/** Puts awaited at once. */
const PUTS_IN_FLIGHT = 32;
/**
 * Largest value put with its report, bytes: under NATS's default 1 MiB
 * `max_payload`, so that one large report cannot fail its put forever (and
 * hold the node's checkpoints); beyond it the alert goes without its report.
 */
const MAX_ENTRY_BYTES = 512 * 1024;

/** The value of one key of `kiseki-alerts` (JSON). */
export interface AlertBucketEntry {
  alert: AlertRecord;
  /** The latest quick-report revision when the alert was published (none for a suppressed alert). */
  report?: QuickReport;
  /** True when the report was left out because the entry would have exceeded 512 KiB (it stays in the node's LMDB). */
  reportOmitted?: boolean;
  /** The shard node that published this version. */
  node: string;
  /** When it was published, ms. */
  publishedAt: number;
}

/** The value of one key of `kiseki-detections` (JSON). */
export interface DetectionBucketEntry {
  detection: SigmaDetection;
  /** The shard node that published it. */
  node: string;
  publishedAt: number;
}

/** Parses a value of `kiseki-detections`; undefined for a value of another shape. */
export function decodeDetectionEntry(bytes: Uint8Array): DetectionBucketEntry | undefined {
  try {
    const e = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<DetectionBucketEntry> | null;
    const d = e?.detection;
    if (e === null || typeof e !== 'object' || typeof e.node !== 'string' || typeof d !== 'object' || d === null) return undefined;
    if (typeof d.id !== 'string' || typeof d.tmid !== 'string' || typeof d.supportId !== 'string' || typeof d.ruleId !== 'string' || typeof d.at !== 'number' || typeof d.createdAt !== 'number') return undefined;
    return e as DetectionBucketEntry;
  } catch {
    return undefined;
  }
}

/**
 * Parses a value of `kiseki-alerts`.
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when it is not an alert entry (a foreign writer on the bucket).
 */
export function decodeAlertEntry(bytes: Uint8Array): AlertBucketEntry {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: 'a value of the alert bucket is not JSON' }, { cause: err });
  }
  const e = v as Partial<AlertBucketEntry> | null;
  if (e === null || typeof e !== 'object' || typeof e.alert !== 'object' || e.alert === null || typeof e.alert.id !== 'string' || typeof e.node !== 'string') {
    throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: 'a value of the alert bucket is not a kiseki alert' });
  }
  return e as AlertBucketEntry;
}

export interface AlertPublisherOptions {
  kv: KV;
  /**
   * `kiseki-commands`: the isolation an alert's black verdict queued on this node (the engine's `isolateOnBlack`)
   * is created there with the alert, for the ingest node holding the agent to send (commands-sync.ts).
   */
  commands?: KV;
  /** `kiseki-detections`: every Sigma detection stored on this node, for the API nodes (absent: not published). */
  detections?: KV;
  /**
   * `kiseki-directory`: the exception an alert's white verdict made on this node (the engine's `autoExceptWhite`)
   * is published there with the alert, for the API nodes to list and the other shard nodes to apply
   * (settings-sync.ts).
   */
  directory?: KV;
  store: HotStore;
  nodeId: string;
  logger: Logger;
  /** Time between two rounds (retries, verdict changes), ms (default 1000). */
  intervalMs?: number;
  /** Longest wait for one put's ack, ms (default 10,000). */
  putTimeoutMs?: number;
  /** Clock of `publishedAt` (default Date.now). */
  now?: () => number;
}

export interface AlertPublisher {
  /**
   * Publishes every alert committed to the local store so far (the feed up
   * to its last entry now); rounds run one at a time.
   * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when a put failed or timed out (the position stays: the next round retries).
   */
  publishCommitted(): Promise<void>;
  /** Asks for a round soon (a flush stored alerts); failures are logged and retried by the timer. */
  nudge(): void;
  /** Feed position published up to. */
  position(): number;
  /** Stops the timer and waits for the round in flight (it does not publish what is left: call publishCommitted first). */
  stop(): Promise<void>;
}

/** Starts the publisher of one shard node; its first round runs at once (what a previous run left unpublished). */
export function createAlertPublisher(options: AlertPublisherOptions): AlertPublisher {
  const { kv, store, nodeId } = options;
  const log = options.logger.child({ component: 'alert-publisher', node: nodeId });
  const putTimeoutMs = options.putTimeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  let cursor = store.notify.readerCursor(ALERT_FEED_READER);
  let running: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;
  let stopped = false;
  let failingSince: number | undefined;
  let published = 0;

  async function put(alertId: string): Promise<void> {
    const alert = store.alerts.get(alertId);
    if (alert === undefined) return; // Not in this store (another node's alert named by an analyst's verdict): nothing to share.
    const report = alert.revision > 0 ? store.alerts.revision(alertId, alert.revision) : undefined;
    const entry: AlertBucketEntry = { alert, ...(report === undefined ? {} : { report }), node: nodeId, publishedAt: now() };
    let json = JSON.stringify(entry);
    if (Buffer.byteLength(json) > MAX_ENTRY_BYTES) {
      log.warn({ alertId, bytes: Buffer.byteLength(json) }, 'An alert report is too large for the bucket; the alert is published without it.');
      json = JSON.stringify({ alert, reportOmitted: true, node: nodeId, publishedAt: entry.publishedAt } satisfies AlertBucketEntry);
    }
    await boundedNatsCall(kv.put(alertKey(alertId), json), putTimeoutMs, 'alert put');
    if (alert.isolationRequested && options.commands !== undefined) {
      // Only the engine queues commands on a shard node. Created, never put: once an ingest node has moved the
      // command on (sent, done), a republished alert must not set it back to queued.
      for (const c of store.commands.pendingFor(alert.tmid)) if (c.state === 'queued') await createOnce(options.commands, c);
    }
    if (alert.verdict === 'white' && alert.sha256 !== '' && options.directory !== undefined) {
      // Written in the flush that stored the alert; only where the bucket holds nothing newer (a removal stands).
      const exception = store.exceptions.get(alert.supportId, autoExceptionId(alert.sha256));
      if (exception?.createdBy === 'engine') await publishEngineException(options.directory, exception, putTimeoutMs);
    }
  }

  async function putDetection(detections: KV, id: string): Promise<void> {
    const detection = store.detections.get(id);
    if (detection === undefined) return;
    const entry: DetectionBucketEntry = { detection, node: nodeId, publishedAt: now() };
    await boundedNatsCall(detections.put(detectionKey(id), JSON.stringify(entry)), putTimeoutMs, 'detection put');
  }

  async function createOnce(commands: KV, c: CommandRecord): Promise<void> {
    const key = commandKey(c.id);
    try {
      await boundedNatsCall(commands.create(key, JSON.stringify(c)), putTimeoutMs, 'command create');
    } catch (err) {
      // Already there (this node published it before, or an ingest node moved it on): done. Otherwise a real failure.
      const held = await boundedNatsCall(commands.get(key), putTimeoutMs, 'command read');
      if (held === null || held.operation !== 'PUT') throw err;
    }
  }

  /** One round: the feed from `cursor` up to its last entry as of now. */
  async function round(): Promise<void> {
    // The shards commit on their own threads: see their latest commits before reading.
    store.refreshReads();
    for (;;) {
      const page = store.notify.feedAfter(cursor, FEED_PAGE);
      if (page.length === 0) return;
      if (page[0]!.seq > cursor + 1 && cursor > 0) {
        // Another reader trimmed the feed past this position (a notifier on the node's store): those alerts were not shared.
        log.error({ from: cursor + 1, to: page[0]!.seq - 1 }, 'Feed entries were removed before the alert publisher read them; their alerts are not in the bucket.');
      }
      const ids = new Set<string>();
      const detectionIds = new Set<string>();
      for (const e of page) {
        if ((e.kind === 'alert.new' || e.kind === 'alert.verdict' || e.kind === 'alert.updated') && e.alertId !== undefined) ids.add(e.alertId);
        else if (e.kind === 'detection.new' && e.detectionId !== undefined) detectionIds.add(e.detectionId);
      }
      const list = [...ids];
      for (let i = 0; i < list.length; i += PUTS_IN_FLIGHT) await Promise.all(list.slice(i, i + PUTS_IN_FLIGHT).map(put));
      const detections = options.detections;
      if (detections !== undefined) {
        const dl = [...detectionIds];
        for (let i = 0; i < dl.length; i += PUTS_IN_FLIGHT) await Promise.all(dl.slice(i, i + PUTS_IN_FLIGHT).map((id) => putDetection(detections, id)));
      }
      const last = page.at(-1)!.seq;
      await store.notify.setReaderCursor(ALERT_FEED_READER, last);
      cursor = last;
      published += list.length;
    }
  }

  function schedule(): Promise<void> {
    // A round asked for while one runs is merged into one next round: it reads the feed to its end anyway.
    queued ??= running.catch(() => undefined).then(() => {
      queued = undefined;
      running = round().then(
        () => {
          if (failingSince !== undefined) {
            log.warn({ downMs: now() - failingSince, position: cursor }, 'Alerts are published to the bucket again.');
            failingSince = undefined;
          }
        },
        (err: unknown) => {
          if (failingSince === undefined) {
            failingSince = now();
            log.error({ err: err instanceof Error ? err.message : String(err), position: cursor }, 'Publishing alerts to the bucket failed; retrying from the same feed position.');
          }
          throw err instanceof KisekiError ? err : new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `alert publish: ${err instanceof Error ? err.message : String(err)}` }, { cause: err });
        },
      );
      return running;
    });
    return queued;
  }

  const timer = setInterval(() => {
    if (!stopped) schedule().catch(() => undefined);
  }, options.intervalMs ?? 1000);
  schedule().catch(() => undefined);
  let lastLog = now();
  const statsTimer = setInterval(() => {
    if (published === 0) return;
    log.info({ published, position: cursor, sinceMs: now() - lastLog }, 'Alerts published to the bucket.');
    published = 0;
    lastLog = now();
  }, 60_000);

  return {
    publishCommitted: schedule,
    nudge() {
      if (!stopped) schedule().catch(() => undefined);
    },
    position: () => cursor,
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearInterval(statsTimer);
      await (queued ?? running).catch(() => undefined);
    },
  };
}
