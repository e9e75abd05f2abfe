/**
 * The per-tenant settings other nodes read, on a running cluster, through
 * `kiseki-directory` (directory-layout.ts):
 * - `except.<support ID>.<entry id>`: one entry of the exception list (the
 *   shard nodes' engines apply it to every detection), or its removal;
 * - `sigma.<support ID>`: the Sigma settings (pack on or off, rules off) the
 *   shard nodes' matchers read;
 * - `analytics.<support ID>`: the threshold rules the shard nodes evaluate;
 * - `liveness.<support ID>`: the liveness settings (shown by every API node).
 *
 * One key per exception entry, not one per list: two API nodes adding at
 * once write two keys (each a `kv.create` of a random id), so neither add
 * can be lost, and a list of many automatic exceptions never makes one
 * large value rewritten on every add. A removal is a value too (not a KV
 * delete), stamped past the entry's `createdAt`, so every copy can tell it
 * from a late copy of the add (`exceptions.mirrorRemoval`).
 *
 * Writers: an API node (`createSettingsSharing`, the API's `sharedSettings`)
 * writes with a revision check (bucket-update.ts `updateKey`, re-read on a
 * conflict) and stamps each change at least one past the record it replaces,
 * then writes its local store once NATS acked. A shard node's alert publisher
 * publishes the exceptions its engine adds (`autoExceptWhite`) with
 * `publishEngineException`, where the bucket holds nothing newer.
 *
 * Readers: shard nodes (`watchTenants` with `settings`) and API nodes
 * (`copyDirectoryEntry`) apply each entry with `applySettingsEntry`, the
 * newest winning. The shard workers read the store as in the embedded mode:
 * the exception list on every detection, Sigma settings and threshold rules
 * again every 5 s (engine/shard-worker.ts), so a copy takes effect there
 * without a restart or a message.
 */
import type { KV } from '@nats-io/kv';
import type { ExceptionEntry } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import type { TenantSettingsSharing } from '../api/index.js';
import type { HotStore, LivenessSettings, ThresholdRuleSet } from '../storage/index.js';
import {
  analyticsKey,
  exceptionKey,
  exceptionStamp,
  isExceptionRemoval,
  livenessKey,
  parseDirectoryKey,
  parseException,
  parseLivenessSettings,
  parseSigmaSettings,
  parseThresholdRules,
  sigmaKey,
  type SharedException,
  type SharedSigmaSettings,
} from './directory-layout.js';
import { bucketCall, isRevisionConflict, TENANT_PUT_TIMEOUT_MS, updateKey } from './bucket-update.js';

export interface SettingsSharingOptions {
  kv: KV;
  store: HotStore;
  /** Bound of each bucket call, ms (default {@link TENANT_PUT_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/** The API node's writer: every change goes to the bucket first, then to the local store. */
export function createSettingsSharing(options: SettingsSharingOptions): TenantSettingsSharing {
  const { kv, store } = options;
  const timeoutMs = options.timeoutMs ?? TENANT_PUT_TIMEOUT_MS;
  return {
    async addException(entry) {
      try {
        await bucketCall(kv.create(exceptionKey(entry.supportId, entry.id), JSON.stringify(entry)), 'exception create', timeoutMs);
      } catch (err) {
        // Random ids: a taken key means the same entry id was made twice.
        if (isRevisionConflict(err)) throw new KisekiError('ERR_CONFLICT', { id: entry.id, reason: 'exception id already in the cluster' }, { cause: err });
        throw err;
      }
      await store.exceptions.mirror(entry);
    },
    async removeException(supportId, id, by, now) {
      let held: SharedException | undefined;
      const written = await updateKey<SharedException>(
        kv,
        exceptionKey(supportId, id),
        (json) => parseException(json, supportId, id),
        // Not in the bucket: an entry this node holds from before (an engine's exception not published yet).
        () => store.exceptions.get(supportId, id),
        (current) => {
          held = current;
          if (current === undefined || isExceptionRemoval(current)) return undefined;
          return { supportId, id, removedAt: Math.max(now, current.createdAt + 1), removedBy: by };
        },
        timeoutMs,
      );
      const removal = written ?? held;
      if (removal !== undefined && isExceptionRemoval(removal)) await store.exceptions.mirrorRemoval(supportId, id, removal.removedAt);
      return written !== undefined;
    },
    async setSigmaSettings(supportId, change, now) {
      const next = await updateKey<SharedSigmaSettings>(
        kv,
        sigmaKey(supportId),
        (json) => parseSigmaSettings(json, supportId),
        () => ({ supportId, ...store.detections.settings(supportId), updatedAt: store.detections.settings(supportId).updatedAt ?? 0 }),
        (current) => ({
          supportId,
          enabled: change.enabled ?? current!.enabled,
          disabledRules: [...new Set(change.disabledRules ?? current!.disabledRules)].sort(),
          updatedAt: Math.max(now, current!.updatedAt + 1),
        }),
        timeoutMs,
      );
      await store.detections.mirrorSettings(supportId, next!);
      return store.detections.settings(supportId);
    },
    async setAnalyticsRules(set) {
      const next = await updateKey<ThresholdRuleSet>(
        kv,
        analyticsKey(set.supportId),
        (json) => parseThresholdRules(json, set.supportId),
        () => store.analytics.rules(set.supportId),
        (current) => ({ ...set, updatedAt: Math.max(set.updatedAt, (current?.updatedAt ?? 0) + 1) }),
        timeoutMs,
      );
      await store.analytics.mirrorRules(next!);
      return next!;
    },
    async setLivenessSettings(settings) {
      const next = await updateKey<LivenessSettings>(
        kv,
        livenessKey(settings.supportId),
        (json) => parseLivenessSettings(json, settings.supportId),
        () => store.liveness.settings(settings.supportId),
        (current) => ({ ...settings, updatedAt: Math.max(settings.updatedAt, (current?.updatedAt ?? 0) + 1) }),
        timeoutMs,
      );
      await store.liveness.mirrorSettings(next!);
      return next!;
    },
  };
}

/**
 * Publishes an exception the engine added on this node (`autoExceptWhite`) where the bucket holds nothing as new
 * (a removal made on an API node after it stands). Resolves true when written.
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE
 */
export async function publishEngineException(kv: KV, entry: ExceptionEntry, timeoutMs = TENANT_PUT_TIMEOUT_MS): Promise<boolean> {
  const written = await updateKey<SharedException>(
    kv,
    exceptionKey(entry.supportId, entry.id),
    (json) => parseException(json, entry.supportId, entry.id),
    () => undefined,
    (held) => (held === undefined || exceptionStamp(held) < entry.createdAt ? entry : undefined),
    timeoutMs,
  );
  return written !== undefined;
}

/** What `applySettingsEntry` did with a directory entry. */
export type SettingsCopy = 'exception' | 'settings' | 'skipped';

/**
 * Applies one directory entry to the local store when it is an exception entry or removal, or Sigma, threshold
 * rule or liveness settings (newest wins); resolves with what it applied, 'skipped' for such a key whose value is
 * not a kiseki record, or undefined for the bucket's other keys and for an older copy.
 */
export async function applySettingsEntry(store: HotStore, key: string, json: string): Promise<SettingsCopy | undefined> {
  const parsed = parseDirectoryKey(key);
  if (parsed === undefined) return undefined;
  const supportId = parsed.id;
  switch (parsed.kind) {
    case 'except': {
      const v = parseException(json, supportId, parsed.item!);
      if (v === undefined) return 'skipped';
      const changed = isExceptionRemoval(v) ? await store.exceptions.mirrorRemoval(supportId, v.id, v.removedAt) : await store.exceptions.mirror(v);
      return changed ? 'exception' : undefined;
    }
    case 'sigma': {
      const v = parseSigmaSettings(json, supportId);
      if (v === undefined) return 'skipped';
      return (await store.detections.mirrorSettings(supportId, v)) ? 'settings' : undefined;
    }
    case 'analytics': {
      const v = parseThresholdRules(json, supportId);
      if (v === undefined) return 'skipped';
      return (await store.analytics.mirrorRules(v)) ? 'settings' : undefined;
    }
    case 'liveness': {
      const v = parseLivenessSettings(json, supportId);
      if (v === undefined) return 'skipped';
      return (await store.liveness.mirrorSettings(v)) ? 'settings' : undefined;
    }
    default:
      return undefined;
  }
}
