/**
 * Tenants and their per-tenant configuration on a running cluster, through
 * `kiseki-directory` (directory-layout.ts):
 * - `tenant.<support ID>`: the TenantRecord with its policy (what shard nodes
 *   apply: isolation on black, tuning period, automatic exceptions) and
 *   `enroll.<SHA-256 of the enrollment key>` → support ID (enrollment on
 *   any ingest node);
 * - `fleet.<support ID>`: the fleet policy agents get in `welcome` and shard
 *   nodes apply (tuning filters, USB control).
 *
 * Writers: an API node (`createTenantSharing`, the API's `sharedTenants`)
 * claims a new support ID with `kv.create`, which fails when any node's
 * tenant holds it, and changes a policy by read-modify-write of the bucket's
 * record with a revision check, so two API nodes never both make version N+1;
 * the local store is written only after NATS acked. An ingest node at start
 * publishes the tenants and fleet policies of its data directory (`kiseki
 * tenant create --data DIR` before the start) where the bucket holds none or
 * an older one (`publishLocalTenant`).
 *
 * Readers: every node watches the bucket (`watchTenants`) and applies each
 * record to its local store, the newest winning: a tenant's `updatedAt`
 * (`tenants.mirror`), a fleet policy's version (`fleet.mirrorPolicy`).
 * Stamps along the bucket's chain of one key only grow (a change is stamped
 * at least one past the record it replaces), so a node whose clock is behind
 * another's still moves every copy forward.
 */
import type { KV } from '@nats-io/kv';
import type { TenantPolicy } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { TenantSharing } from '../api/index.js';
import { nextFleetPolicy, tenantChangedAt, withTenantPolicy, type FleetPolicyRecord, type HotStore, type TenantRecord } from '../storage/index.js';
import { watchBucket, type BucketWatcher } from './bucket-watch.js';
import { applySettingsEntry } from './settings-sync.js';
import { enrollKeyKey, fleetKey, parseDirectoryKey, parseFleetPolicy, parseTenant, tenantKey } from './directory-layout.js';
import { bucketCall, isRevisionConflict, TENANT_PUT_TIMEOUT_MS, updateKey } from './bucket-update.js';

export interface TenantSharingOptions {
  kv: KV;
  store: HotStore;
  /** Bound of each bucket call, ms (default {@link TENANT_PUT_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/** The API node's writer: every tenant change goes to the bucket first, then to the local store. */
export function createTenantSharing(options: TenantSharingOptions): TenantSharing {
  const { kv, store } = options;
  const timeoutMs = options.timeoutMs ?? TENANT_PUT_TIMEOUT_MS;
  const parseTenantOf = (supportId: string) => (json: string) => parseTenant(json, supportId);
  return {
    async create(tenant) {
      // The enrollment key first: it is random, so it collides with nothing, and a stray one (the claim below
      // refused) is never used: an enrollment checks the tenant's own key hash.
      await bucketCall(kv.put(enrollKeyKey(tenant.enrollKeyHash), tenant.supportId), 'enrollment key put', timeoutMs);
      try {
        await bucketCall(kv.create(tenantKey(tenant.supportId), JSON.stringify(tenant)), 'tenant create', timeoutMs);
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
        void kv.delete(enrollKeyKey(tenant.enrollKeyHash)).catch(() => undefined);
        throw new KisekiError('ERR_TENANT_EXISTS', { supportId: tenant.supportId }, { cause: err });
      }
      await store.tenants.mirror(tenant);
    },
    async setPolicy(supportId, change, now) {
      const next = await updateKey<TenantRecord>(
        kv,
        tenantKey(supportId),
        parseTenantOf(supportId),
        () => store.tenants.get(supportId),
        (current) => (current === undefined ? undefined : withTenantPolicy(current, change, Math.max(now, tenantChangedAt(current) + 1))),
        timeoutMs,
      );
      if (next === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
      await store.tenants.mirror(next);
      return next.policy as TenantPolicy;
    },
    async setFleetPolicy(supportId, change, by, now) {
      if (store.tenants.get(supportId) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
      const next = await updateKey<FleetPolicyRecord>(
        kv,
        fleetKey(supportId),
        (json) => parseFleetPolicy(json, supportId),
        () => store.fleet.policy(supportId),
        (current) => nextFleetPolicy(current ?? store.fleet.policy(supportId), change, by, Math.max(now, (current?.updatedAt ?? 0) + 1)),
        timeoutMs,
      );
      await store.fleet.mirrorPolicy(next!);
      return next!;
    },
  };
}

/** What `publishLocalTenant` did with a tenant of the local store. */
export type LocalTenantOutcome = 'published' | 'current' | 'conflict' | 'absent';

/**
 * Publishes a tenant of the local store (and its fleet policy, once changed) where the bucket holds none or
 * an older one. `conflict`: the bucket holds another tenant under the same support ID (another enrollment
 * key); the bucket's stands, and the watcher replaces the local copy with it.
 */
export async function publishLocalTenant(kv: KV, store: HotStore, supportId: string, timeoutMs = TENANT_PUT_TIMEOUT_MS): Promise<LocalTenantOutcome> {
  const local = store.tenants.get(supportId);
  if (local === undefined) return 'absent';
  let conflict = false;
  const written = await updateKey<TenantRecord>(
    kv,
    tenantKey(supportId),
    (json) => parseTenant(json, supportId),
    () => undefined,
    (held) => {
      conflict = held !== undefined && held.enrollKeyHash !== local.enrollKeyHash;
      return held === undefined || (!conflict && tenantChangedAt(held) < tenantChangedAt(local)) ? local : undefined;
    },
    timeoutMs,
  );
  if (conflict) return 'conflict';
  await bucketCall(kv.put(enrollKeyKey(local.enrollKeyHash), supportId), 'enrollment key put', timeoutMs);
  const fleet = store.fleet.policy(supportId);
  let fleetWritten: FleetPolicyRecord | undefined;
  if (fleet.version > 0) {
    fleetWritten = await updateKey<FleetPolicyRecord>(
      kv,
      fleetKey(supportId),
      (json) => parseFleetPolicy(json, supportId),
      () => undefined,
      (held) => (held === undefined || held.version < fleet.version ? fleet : undefined),
      timeoutMs,
    );
  }
  return written !== undefined || fleetWritten !== undefined ? 'published' : 'current';
}

/**
 * Applies one directory entry to the local store when it is a tenant or a fleet policy (newest wins);
 * resolves with what it applied, 'skipped' for such a key whose value is not a kiseki record, or undefined
 * for the bucket's other keys and for an older copy.
 */
export async function applyTenantEntry(store: HotStore, key: string, json: string): Promise<'tenant' | 'fleet' | 'skipped' | undefined> {
  const parsed = parseDirectoryKey(key);
  if (parsed?.kind === 'tenant') {
    const tenant = parseTenant(json, parsed.id);
    if (tenant === undefined) return 'skipped';
    return (await store.tenants.mirror(tenant)) ? 'tenant' : undefined;
  }
  if (parsed?.kind === 'fleet') {
    const policy = parseFleetPolicy(json, parsed.id);
    if (policy === undefined) return 'skipped';
    return (await store.fleet.mirrorPolicy(policy)) ? 'fleet' : undefined;
  }
  return undefined;
}

export interface TenantWatchOptions {
  kv: KV;
  store: HotStore;
  logger: Logger;
  /** Called after a newer fleet policy was stored (an ingest node pushes it to its connected agents). */
  onFleetPolicy?: (supportId: string) => void;
  /**
   * Also copy the per-tenant settings the engine reads (exception list, Sigma settings, threshold rules,
   * liveness settings: settings-sync.ts); a shard node's watcher does.
   */
  settings?: boolean;
  /** Wait before a watcher whose iterator ended starts again, ms (default 1000). */
  retryMs?: number;
}

export interface TenantWatch extends BucketWatcher {
  /** Tenants, fleet policies, exception entries and removals, and settings copied since start. */
  stats(): { tenants: number; fleetPolicies: number; exceptions: number; settings: number };
}

/**
 * An ingest or shard node's copy of the tenants and fleet policies, with `settings` also of the per-tenant
 * settings (the API node copies them all with its directory watcher).
 */
export function watchTenants(options: TenantWatchOptions): TenantWatch {
  const { store } = options;
  const log = options.logger.child({ component: 'tenant-watch' });
  let tenants = 0;
  let fleetPolicies = 0;
  let exceptions = 0;
  let settings = 0;
  const watcher = watchBucket(
    options.kv,
    'kiseki-directory',
    async (e) => {
      if (e.operation !== 'PUT') return;
      const applied = await applyTenantEntry(store, e.key, e.string());
      if (applied === 'tenant') tenants++;
      else if (applied === 'fleet') {
        fleetPolicies++;
        options.onFleetPolicy?.(parseDirectoryKey(e.key)!.id);
      } else if (applied === undefined && options.settings === true) {
        const copied = await applySettingsEntry(store, e.key, e.string());
        if (copied === 'exception') exceptions++;
        else if (copied === 'settings') settings++;
      }
    },
    log,
    options.retryMs ?? 1000,
    () => undefined,
  );
  return { ...watcher, stats: () => ({ tenants, fleetPolicies, exceptions, settings }) };
}
