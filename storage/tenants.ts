/**
 * Tenants and enrollment (SPEC §2, §4): one record per contract keyed by its
 * support ID, the enrollment-key index, and the tenant policy kept inside
 * the tenant record.
 *
 * Key layouts:
 *   tenants      supportId                -> TenantRecord (with policy)
 *   enroll-keys  SHA-256 of enrollment key -> supportId
 */
import type { TenantPolicy } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import type { TenantRecord } from './records.js';
import { newSecret, sha256Hex } from './secrets.js';
import type { Tables } from './tables.js';

export const DEFAULT_TENANT_POLICY: TenantPolicy = { autoExceptWhite: false, tuningUntil: null, isolateOnBlack: false };

/** Support IDs are printed on contracts and used in export paths: keep them path-safe. */
const SUPPORT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** When a tenant record last changed, ms: what cluster copies compare to keep the newest. */
export function tenantChangedAt(tenant: TenantRecord): number {
  return tenant.updatedAt ?? tenant.createdAt;
}

/** The tenant with some policy fields changed, stamped `now` (a pure function: `setPolicy` and the cluster's bucket updates share it). */
export function withTenantPolicy(tenant: TenantRecord, change: Partial<TenantPolicy>, now: number): TenantRecord {
  return { ...tenant, policy: { ...DEFAULT_TENANT_POLICY, ...tenant.policy, ...change }, updatedAt: now };
}

export interface TenantRepository {
  /**
   * Validates a new tenant and makes its record and enrollment key without storing them: cluster mode
   * claims the support ID in the shared bucket first, then `save`s it.
   * @throws KisekiError ERR_INVALID_INPUT for a bad support ID or name
   */
  prepare(input: { supportId: string; name: string; now: number }): { tenant: TenantRecord; enrollKey: string };
  /**
   * Creates a tenant and returns it with its enrollment key (shown once).
   * @throws KisekiError ERR_INVALID_INPUT for a bad support ID or name, ERR_TENANT_EXISTS when taken.
   */
  create(input: { supportId: string; name: string; now: number }): Promise<{ tenant: TenantRecord; enrollKey: string }>;
  get(supportId: string): TenantRecord | undefined;
  /** Writes a tenant record as given (fixtures and benchmarks; `create` is the normal way). */
  save(tenant: TenantRecord): Promise<void>;
  /**
   * Stores a copy of a tenant record another node wrote (cluster/tenant-sync.ts) unless the local one
   * changed later (`tenantChangedAt`); a copy with another enrollment key replaces the local record
   * whatever its time (the shared record is the cluster's), and the old key's index entry goes.
   * Resolves true when it wrote.
   */
  mirror(tenant: TenantRecord): Promise<boolean>;
  /** The tenant an enrollment key belongs to, or undefined. */
  forEnrollKey(enrollKey: string): TenantRecord | undefined;
  /** Every support ID, in key order, read without holding a snapshot (long loops). */
  ids(): string[];
  /** Tenants in support-ID order, strictly after `after` when given (a page cursor). */
  scan(after?: string): Iterable<TenantRecord>;
  count(): number;
  /** The tenant's policy with defaults for unset fields. */
  policy(supportId: string): TenantPolicy;
  /**
   * Changes some policy fields of a tenant; returns the new policy.
   * @param now the change's time, ms, kept as the record's `updatedAt` (absent: left as it was)
   * @throws KisekiError ERR_TENANT_NOT_FOUND
   */
  setPolicy(supportId: string, change: Partial<TenantPolicy>, now?: number): Promise<TenantPolicy>;
}

/** The tenant repository over the hot store's tables (called by openHotStore). */
export function createTenantRepository(t: Tables): TenantRepository {
  const { tenants, enrollKeys } = t;
  const prepare = (input: { supportId: string; name: string; now: number }): { tenant: TenantRecord; enrollKey: string } => {
    if (!SUPPORT_ID.test(input.supportId)) {
      throw new KisekiError('ERR_INVALID_INPUT', { field: 'supportId', rule: SUPPORT_ID.source });
    }
    const name = input.name.trim();
    if (name.length === 0 || name.length > 200) throw new KisekiError('ERR_INVALID_INPUT', { field: 'name', rule: '1-200 characters' });
    const enrollKey = newSecret('kek');
    return { tenant: { supportId: input.supportId, name, enrollKeyHash: sha256Hex(enrollKey), createdAt: input.now }, enrollKey };
  };
  return {
    prepare,
    async create(input) {
      const { tenant, enrollKey } = prepare(input);
      const created = await tenants.transaction(() => {
        if (tenants.get(tenant.supportId) !== undefined) return false;
        tenants.putSync(tenant.supportId, tenant);
        enrollKeys.putSync(tenant.enrollKeyHash, tenant.supportId);
        return true;
      });
      if (!created) throw new KisekiError('ERR_TENANT_EXISTS', { supportId: input.supportId });
      await t.root.flushed;
      return { tenant, enrollKey };
    },
    get: (supportId) => tenants.get(supportId),
    async save(tenant) {
      await tenants.transaction(() => {
        tenants.putSync(tenant.supportId, tenant);
        enrollKeys.putSync(tenant.enrollKeyHash, tenant.supportId);
      });
    },
    async mirror(tenant) {
      return tenants.transaction(() => {
        const local = tenants.get(tenant.supportId);
        if (local !== undefined) {
          const sameKey = local.enrollKeyHash === tenant.enrollKeyHash;
          if (sameKey && tenantChangedAt(local) > tenantChangedAt(tenant)) return false;
          if (sameKey && JSON.stringify(local) === JSON.stringify(tenant)) return false;
          if (!sameKey && enrollKeys.get(local.enrollKeyHash) === local.supportId) enrollKeys.removeSync(local.enrollKeyHash);
        }
        tenants.putSync(tenant.supportId, tenant);
        enrollKeys.putSync(tenant.enrollKeyHash, tenant.supportId);
        return true;
      });
    },
    forEnrollKey(enrollKey) {
      const supportId = enrollKeys.get(sha256Hex(enrollKey));
      return supportId === undefined ? undefined : tenants.get(supportId);
    },
    ids: () => [...tenants.getKeys({ snapshot: false })],
    *scan(after) {
      for (const { key, value } of tenants.getRange(after === undefined ? {} : { start: after })) {
        if (key === after) continue;
        yield value;
      }
    },
    count: () => tenants.getCount(),
    policy: (supportId) => ({ ...DEFAULT_TENANT_POLICY, ...tenants.get(supportId)?.policy }),
    async setPolicy(supportId, change, now) {
      const policy = await tenants.transaction(() => {
        const tenant = tenants.get(supportId);
        if (tenant === undefined) return undefined;
        const next = withTenantPolicy(tenant, change, now ?? tenantChangedAt(tenant));
        // Without a time the record keeps the one it had (an absent updatedAt stays absent).
        if (now === undefined && tenant.updatedAt === undefined) delete next.updatedAt;
        tenants.putSync(supportId, next);
        return next.policy!;
      });
      if (policy === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
      await t.root.flushed;
      return policy;
    },
  };
}
