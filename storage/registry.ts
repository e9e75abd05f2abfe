/**
 * Tenants and device identities: enrollment keys and device tokens are random
 * secrets shown once; only their SHA-256 is stored (they carry 256 bits of
 * entropy, so a slow hash adds nothing). Comparisons are constant-time.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { KisekiError } from '../core/errors.js';
import type { DeviceRecord, HotStore, TenantRecord } from './hot-store.js';

export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** Support IDs are printed on contracts and used in export paths: keep them path-safe. */
const SUPPORT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Creates a tenant and returns it with its enrollment key (shown once).
 * @throws KisekiError ERR_INVALID_INPUT for a bad support ID or name, ERR_TENANT_EXISTS when taken.
 */
export async function createTenant(
  store: HotStore,
  input: { supportId: string; name: string; now: number },
): Promise<{ tenant: TenantRecord; enrollKey: string }> {
  if (!SUPPORT_ID.test(input.supportId)) {
    throw new KisekiError('ERR_INVALID_INPUT', { field: 'supportId', rule: SUPPORT_ID.source });
  }
  const name = input.name.trim();
  if (name.length === 0 || name.length > 200) throw new KisekiError('ERR_INVALID_INPUT', { field: 'name', rule: '1-200 characters' });
  const enrollKey = newSecret('kek');
  const tenant: TenantRecord = { supportId: input.supportId, name, enrollKeyHash: sha256Hex(enrollKey), createdAt: input.now };
  const created = await store.tenants.transaction(() => {
    if (store.tenants.get(tenant.supportId) !== undefined) return false;
    store.tenants.putSync(tenant.supportId, tenant);
    store.enrollKeys.putSync(tenant.enrollKeyHash, tenant.supportId);
    return true;
  });
  if (!created) throw new KisekiError('ERR_TENANT_EXISTS', { supportId: input.supportId });
  await store.flushed();
  return { tenant, enrollKey };
}

/** The tenant an enrollment key belongs to, or undefined. */
export function tenantForEnrollKey(store: HotStore, enrollKey: string): TenantRecord | undefined {
  const supportId = store.enrollKeys.get(sha256Hex(enrollKey));
  return supportId === undefined ? undefined : store.tenants.get(supportId);
}

export interface DeviceFacts {
  computer: string;
  agentVersion: string;
  os: string;
  ips: string[];
  macs: string[];
}

/** TMIDs are UUIDs written in upper case, as the agents of the original service print them. */
export function newTmid(): string {
  return randomUUID().toUpperCase();
}

/**
 * Enrolls a new device for a tenant; returns the record and its token (shown once).
 * The record is written asynchronously; the returned promise resolves when it is durable.
 */
export async function enrollDevice(
  store: HotStore,
  tenant: TenantRecord,
  facts: DeviceFacts,
  now: number,
): Promise<{ device: DeviceRecord; token: string }> {
  const token = newSecret('kdt');
  const device: DeviceRecord = {
    tmid: newTmid(),
    supportId: tenant.supportId,
    ...facts,
    tokenHash: sha256Hex(token),
    firstSeen: now,
    lastSeen: now,
    connected: true,
  };
  await store.devices.transaction(() => {
    store.devices.putSync(device.tmid, device);
    store.tenantDevices.putSync([device.supportId, device.tmid], device.firstSeen);
  });
  await store.flushed();
  return { device, token };
}

/** The device when `token` is its token; undefined for an unknown TMID or a wrong token. */
export function authenticateDevice(store: HotStore, tmid: string, token: string): DeviceRecord | undefined {
  const device = store.devices.get(tmid);
  if (device === undefined) return undefined;
  const given = Buffer.from(sha256Hex(token), 'hex');
  const held = Buffer.from(device.tokenHash, 'hex');
  return given.length === held.length && timingSafeEqual(given, held) ? device : undefined;
}
