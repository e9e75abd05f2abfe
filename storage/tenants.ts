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

export interface TenantRepository {
  /**
   * Creates a tenant and returns it with its enrollment key (shown once).
   * @throws KisekiError ERR_INVALID_INPUT for a bad support ID or name, ERR_TENANT_EXISTS when taken.
   */
  create(input: { supportId: string; name: string; now: number }): Promise<{ tenant: TenantRecord; enrollKey: string }>;
  get(supportId: string): TenantRecord | undefined;
  /** Writes a tenant record as given (fixtures and benchmarks; `create` is the normal way). */
  save(tenant: TenantRecord): Promise<void>;
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
   * @throws KisekiError ERR_TENANT_NOT_FOUND
   */
  setPolicy(supportId: string, change: Partial<TenantPolicy>): Promise<TenantPolicy>;
}

/** The tenant repository over the hot store's tables (called by openHotStore). */
export function createTenantRepository(t: Tables): TenantRepository {
  const { tenants, enrollKeys } = t;
  return {
    async create(input) {
      if (!SUPPORT_ID.test(input.supportId)) {
        throw new KisekiError('ERR_INVALID_INPUT', { field: 'supportId', rule: SUPPORT_ID.source });
      }
      const name = input.name.trim();
      if (name.length === 0 || name.length > 200) throw new KisekiError('ERR_INVALID_INPUT', { field: 'name', rule: '1-200 characters' });
      const enrollKey = newSecret('kek');
      const tenant: TenantRecord = { supportId: input.supportId, name, enrollKeyHash: sha256Hex(enrollKey), createdAt: input.now };
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
    async setPolicy(supportId, change) {
      const policy = await tenants.transaction(() => {
        const tenant = tenants.get(supportId);
        if (tenant === undefined) return undefined;
        const next: TenantPolicy = { ...DEFAULT_TENANT_POLICY, ...tenant.policy, ...change };
        tenants.putSync(supportId, { ...tenant, policy: next });
        return next;
      });
      if (policy === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
      await t.root.flushed;
      return policy;
    },
  };
}
