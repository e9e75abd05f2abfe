/**
 * Analysts' verdicts and comments across API nodes, through the
 * `kiseki-analysis` bucket: one key per record, `verdict.<alert id>.<id>` and
 * `comment.<alert id>.<id>` (both base64url), holding the record as its API
 * node stored it. Records are never changed once made, so each is written
 * with `kv.create` under its own random id: two analysts on two nodes never
 * overwrite each other, and a put retried after a lost answer is a no-op.
 *
 * The node where an analyst acts stores the record first (the request is
 * answered from its store), then puts it in the background, retried until
 * NATS takes it; at start a node puts again every record it holds (a put that
 * exists is a no-op), so a record made while NATS was down, or just before a
 * crash, is shared once NATS is back. Every API node watches the bucket and
 * copies each record (`store.alerts.mirrorAnalysis`): the effective verdict and
 * the comments are the same on every node, and a verdict change within the
 * notify horizon appends the same `alert.verdict` feed entry as on the node
 * where it was made (the notifiers' claims send it once).
 *
 * Only what analysts do through the API is shared: the gray → white rule runs
 * on every API node and makes its own record there.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';
import type { AlertComment, AnalysisRecord, AnalystVerdict, HotStore } from '../storage/index.js';
import { isRevisionConflict } from './bucket-update.js';
import { watchBucket } from './bucket-watch.js';
import { boundedNatsCall } from './nats.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64url');

/** The bucket key of a record. */
export function analysisKey(record: AnalysisRecord): string {
  const r = record.kind === 'verdict' ? record.verdict : record.comment;
  return `${record.kind}.${b64(r.alertId)}.${b64(r.id)}`;
}

const VERDICTS = new Set(['black', 'gray', 'white']);

/** Parses a bucket entry; undefined for a key or value of another shape. */
export function parseAnalysisEntry(key: string, json: string): AnalysisRecord | undefined {
  const [kind, alertToken, idToken, ...rest] = key.split('.');
  if (rest.length > 0 || alertToken === undefined || idToken === undefined || (kind !== 'verdict' && kind !== 'comment')) return undefined;
  const alertId = Buffer.from(alertToken, 'base64url').toString();
  const id = Buffer.from(idToken, 'base64url').toString();
  let v: Record<string, unknown>;
  try {
    const parsed = JSON.parse(json) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    v = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (v.alertId !== alertId || v.id !== id || typeof v.at !== 'number') return undefined;
  if (kind === 'verdict') {
    if (typeof v.by !== 'string' || typeof v.verdict !== 'string' || !VERDICTS.has(v.verdict)) return undefined;
    return { kind, verdict: v as unknown as AnalystVerdict };
  }
  if (typeof v.author !== 'string' || typeof v.text !== 'string') return undefined;
  return { kind, comment: v as unknown as AlertComment };
}

export interface AnalysisSync {
  /** Puts a record made on this node into the bucket, in the background, retried until NATS takes it. */
  share(record: AnalysisRecord): void;
  /** Records put and waiting; records copied from other nodes; entries skipped (not kiseki records). */
  stats(): { shared: number; pending: number; copied: number; skipped: number; caughtUp: boolean };
  stop(): Promise<void>;
}

export interface AnalysisSyncOptions {
  kv: KV;
  store: HotStore;
  logger: Logger;
  /** The notify horizon: a copied verdict change made before this time (ms) is not notified. */
  notifyFrom: () => number;
  /** Wait before a failed put is tried again, and before a watcher starts again, ms (default 1000). */
  retryMs?: number;
  /** Bound of one put, ms (default 5000). */
  timeoutMs?: number;
}

export function startAnalysisSync(options: AnalysisSyncOptions): AnalysisSync {
  const { kv, store } = options;
  const log = options.logger.child({ component: 'analysis-sync' });
  const retryMs = options.retryMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const queue: AnalysisRecord[] = [];
  let shared = 0;
  let copied = 0;
  let skipped = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  let failing = false;

  /** Puts the queue's records one after the other; a failed put waits and tries the same record again. */
  const putLoop = (async () => {
    while (!stopped) {
      const record = queue[0];
      if (record === undefined) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      try {
        await boundedNatsCall(kv.create(analysisKey(record), JSON.stringify(record.kind === 'verdict' ? record.verdict : record.comment)), timeoutMs, 'analysis put');
        shared++;
      } catch (err) {
        // Already in the bucket (put before, by this node or a retry whose answer was lost): nothing to do.
        if (!isRevisionConflict(err)) {
          if (!failing) log.warn({ err: err instanceof Error ? err.message : String(err) }, 'An analyst verdict or comment could not be shared yet; retrying.');
          failing = true;
          await new Promise((r) => setTimeout(r, retryMs));
          continue;
        }
      }
      if (failing) log.info('Analyst verdicts and comments are shared again.');
      failing = false;
      queue.shift();
    }
  })();

  const share = (record: AnalysisRecord): void => {
    queue.push(record);
    wake?.();
  };
  // What this node holds is put again at start: a record made while NATS was down, or before a crash, goes out now.
  for (const record of store.alerts.analysisRecords()) share(record);

  const watcher = watchBucket(
    kv,
    'kiseki-analysis',
    async (e) => {
      if (e.operation !== 'PUT') return;
      const record = parseAnalysisEntry(e.key, e.string());
      if (record === undefined) {
        skipped++;
        return;
      }
      if (await store.alerts.mirrorAnalysis(record, { notifyFrom: options.notifyFrom() })) copied++;
    },
    log,
    retryMs,
    () => undefined,
  );

  return {
    share,
    stats: () => ({ shared, pending: queue.length, copied, skipped, caughtUp: watcher.caughtUp() }),
    async stop() {
      stopped = true;
      wake?.();
      await watcher.stop();
      await putLoop;
    },
  };
}
