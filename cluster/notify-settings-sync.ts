/**
 * Tenants' notification settings shared by the API nodes through the
 * `kiseki-notify-settings` bucket (`notify.<supportId>` → the NotifySettings
 * JSON, webhook secrets and SIEM headers included: the NATS servers must be
 * private to the cluster, docs/CLUSTER.md), so that a
 * `PUT /tenants/{id}/notifications` on one API node applies on every one:
 * - out: `share(settings)` after the local save; the bucket takes only a
 *   version newer (`updatedAt`) than the one it holds (a revision check, so two
 *   nodes changing one tenant at once leave the newer one everywhere); a
 *   share that fails is retried in the background with the store's version;
 * - in: a watcher copies each entry into the local store unless the store
 *   holds a version as new or newer.
 */
import type { KV } from '@nats-io/kv';
import { KisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { HotStore, NotifySettings } from '../storage/index.js';
import { watchBucket, type BucketWatcher } from './bucket-watch.js';
import { boundedNatsCall, tokenKey } from './nats.js';

/** Bound of one KV call, ms. */
const CALL_TIMEOUT_MS = 5000;
/** Lost revision races before a share gives up (and is retried by the timer). */
const SHARE_ROUNDS = 3;

/** The key of a tenant's settings: `notify.<supportId>`, or `notify.b64.<base64url>` for a support ID with other characters. */
export function notifySettingsKey(supportId: string): string {
  return tokenKey('notify', supportId);
}

/** Parses a value of `kiseki-notify-settings`; undefined for anything that is not a tenant's settings. */
export function decodeNotifySettings(bytes: Uint8Array): NotifySettings | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<NotifySettings> | null;
    if (v === null || typeof v !== 'object' || typeof v.supportId !== 'string' || !Array.isArray(v.recipients)) return undefined;
    if (typeof v.maxPerHour !== 'number' || typeof v.updatedAt !== 'number' || typeof v.updatedBy !== 'string') return undefined;
    for (const r of v.recipients as unknown[]) {
      const p = r as Partial<NotifySettings['recipients'][number]> | null;
      if (p === null || typeof p !== 'object' || typeof p.id !== 'string' || typeof p.to !== 'string' || !Array.isArray(p.events) || !Array.isArray(p.verdicts)) return undefined;
      if (p.channel !== 'email' && p.channel !== 'webhook' && p.channel !== 'siem') return undefined;
    }
    return v as NotifySettings;
  } catch {
    return undefined;
  }
}

export interface NotifySettingsSyncOptions {
  kv: KV;
  store: HotStore;
  logger: Logger;
  /** Wait before a failed share is retried, and before a watcher starts again, ms (default 1000). */
  retryMs?: number;
}

export interface NotifySettingsSync {
  /**
   * Puts a tenant's settings into the bucket unless it holds a version as new or newer.
   * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when NATS does not answer within 5 s (retried in the background)
   */
  share(settings: NotifySettings): Promise<void>;
  /** Settings copied in, entries skipped (not settings, or older than the local ones), shares waiting for a retry. */
  stats(): { copied: number; skipped: number; unshared: number; caughtUp: boolean };
  stop(): Promise<void>;
}

export function startNotifySettingsSync(options: NotifySettingsSyncOptions): NotifySettingsSync {
  const { kv, store } = options;
  const log = options.logger.child({ component: 'notify-settings-sync' });
  const retryMs = options.retryMs ?? 1000;
  /** Tenants whose share failed: the timer shares the store's version then. */
  const unshared = new Set<string>();
  let copied = 0;
  let skipped = 0;

  async function putNewest(settings: NotifySettings): Promise<void> {
    const key = notifySettingsKey(settings.supportId);
    for (let round = 0; round < SHARE_ROUNDS; round++) {
      const held = await boundedNatsCall(kv.get(key), CALL_TIMEOUT_MS, 'notify settings read');
      const current = held !== null && held.operation === 'PUT' ? decodeNotifySettings(held.value) : undefined;
      if (current !== undefined && current.updatedAt >= settings.updatedAt) return;
      const json = JSON.stringify(settings);
      try {
        await boundedNatsCall(held === null ? kv.create(key, json) : kv.update(key, json, held.revision), CALL_TIMEOUT_MS, 'notify settings put');
        return;
      } catch (err) {
        // A NATS that does not answer fails the share; a lost revision race is answered by the next read.
        if (err instanceof KisekiError) throw err;
      }
    }
    throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: 'notify settings put: another node wrote the settings first, repeatedly' });
  }

  const retryTimer = setInterval(() => {
    for (const supportId of unshared) {
      const current = store.notify.settings(supportId);
      if (current === undefined) {
        unshared.delete(supportId);
        continue;
      }
      putNewest(current).then(
        () => unshared.delete(supportId),
        () => undefined,
      );
    }
  }, retryMs);

  const watcher: BucketWatcher = watchBucket(
    kv,
    'kiseki-notify-settings',
    async (e) => {
      if (e.operation !== 'PUT') return;
      const settings = decodeNotifySettings(e.value);
      const local = settings === undefined ? undefined : store.notify.settings(settings.supportId);
      if (settings === undefined || (local !== undefined && local.updatedAt >= settings.updatedAt)) {
        skipped++;
        return;
      }
      await store.notify.putSettings(settings);
      copied++;
    },
    log,
    retryMs,
    () => undefined,
  );

  return {
    async share(settings) {
      try {
        await putNewest(settings);
      } catch (err) {
        unshared.add(settings.supportId);
        const reason = err instanceof Error ? err.message : String(err);
        log.warn({ supportId: settings.supportId, err: reason }, "A tenant's notification settings could not be shared through the bucket; retrying.");
        throw err instanceof KisekiError ? err : new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `notify settings put: ${reason}` }, { cause: err });
      }
    },
    stats: () => ({ copied, skipped, unshared: unshared.size, caughtUp: watcher.caughtUp() }),
    async stop() {
      clearInterval(retryTimer);
      await watcher.stop();
    },
  };
}
