/**
 * Devices (one PC running one agent): enrollment, token checks, the tenant
 * index and the last inventory an agent sent. Device tokens are random
 * secrets shown once; only their SHA-256 is stored, compared in constant time.
 *
 * Key layouts:
 *   devices         tmid             -> DeviceRecord
 *   tenant-devices  [supportId, tmid] -> firstSeen (a tenant's devices in TMID order)
 *   inventory       tmid             -> the agent's last inventory frame, with receivedAt
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { DeviceFacts, DeviceRecord, TenantRecord } from './records.js';
import { newSecret, sha256Hex } from './secrets.js';
import type { Tables } from './tables.js';

/** TMIDs are UUIDs written in upper case, as the agents of the original service print them. */
export function newTmid(): string {
  return randomUUID().toUpperCase();
}

export interface DeviceRepository {
  /**
   * Enrolls a new device for a tenant; returns the record and its token (shown once).
   * Resolves when the record is durable.
   */
  enroll(tenant: TenantRecord, facts: DeviceFacts, now: number): Promise<{ device: DeviceRecord; token: string }>;
  /** The device when `token` is its token; undefined for an unknown TMID or a wrong token. */
  authenticate(tmid: string, token: string): DeviceRecord | undefined;
  get(tmid: string): DeviceRecord | undefined;
  /** Writes a new or changed device with its tenant index entry (fixtures, benchmarks). */
  save(device: DeviceRecord): Promise<void>;
  /** `save` for many devices in one transaction (bulk loads: one fsync, not one per device). */
  saveAll(devices: Iterable<DeviceRecord>): Promise<void>;
  /** Rewrites an existing device's fields (connection state, last seen, facts); its tenant never changes. */
  update(device: DeviceRecord): Promise<void>;
  /**
   * Changes a device record over its latest version: writes queued by
   * `update` or `patch` and not yet committed are seen, so two writers of
   * different fields (hello, the lastSeen sweep, close) never undo each other
   * as a read of the committed record followed by `update` can. `change`
   * returns the new record, or undefined to leave it; nothing happens for an
   * unknown device.
   */
  patch(tmid: string, change: (current: DeviceRecord) => DeviceRecord | undefined): Promise<void>;
  /** Marks every device disconnected (at start-up, before agents reconnect); returns how many changed. */
  markAllDisconnected(): Promise<number>;
  /** Every device in TMID order, strictly after `after` when given (a page cursor). */
  scan(after?: string): Iterable<DeviceRecord>;
  /** A tenant's devices in TMID order, strictly after `after` when given. */
  scanTenant(supportId: string, after?: string): Iterable<DeviceRecord>;
  /** Every device, read without holding a snapshot (long exports). */
  all(): Iterable<DeviceRecord>;
  count(): number;
  inventory(tmid: string): Record<string, unknown> | undefined;
  setInventory(tmid: string, inventory: Record<string, unknown>): Promise<void>;
}

/** The device repository over the hot store's tables (called by openHotStore). */
export function createDeviceRepository(t: Tables): DeviceRepository {
  const { devices, tenantDevices, inventory } = t;
  const saveAll = async (list: Iterable<DeviceRecord>): Promise<void> => {
    await devices.transaction(() => {
      for (const device of list) {
        devices.putSync(device.tmid, device);
        tenantDevices.putSync([device.supportId, device.tmid], device.firstSeen);
      }
    });
  };
  const save = (device: DeviceRecord): Promise<void> => saveAll([device]);
  /**
   * Device records written and not yet committed: puts commit in call order,
   * so the newest queued one is what the record will be. Kept as a map rather
   * than read-modify-write inside `transaction()`, whose callback must run on
   * this thread while the write lock is held (a stall risk on the hot hello path).
   */
  const queued = new Map<string, DeviceRecord>();
  const write = async (device: DeviceRecord): Promise<void> => {
    queued.set(device.tmid, device);
    try {
      await devices.put(device.tmid, device);
    } finally {
      if (queued.get(device.tmid) === device) queued.delete(device.tmid);
    }
  };
  return {
    async enroll(tenant, facts, now) {
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
      await save(device);
      await t.root.flushed;
      return { device, token };
    },
    authenticate(tmid, token) {
      const device = devices.get(tmid);
      if (device === undefined) return undefined;
      const given = Buffer.from(sha256Hex(token), 'hex');
      const held = Buffer.from(device.tokenHash, 'hex');
      return given.length === held.length && timingSafeEqual(given, held) ? device : undefined;
    },
    get: (tmid) => devices.get(tmid),
    save,
    saveAll,
    update: (device) => write(device),
    async patch(tmid, change) {
      const current = queued.get(tmid) ?? devices.get(tmid);
      if (current === undefined) return;
      const next = change(current);
      if (next !== undefined) await write(next);
    },
    async markAllDisconnected() {
      let changed = 0;
      await devices.transaction(() => {
        for (const { key, value } of devices.getRange()) {
          if (value.connected) {
            devices.putSync(key, { ...value, connected: false });
            changed++;
          }
        }
      });
      return changed;
    },
    *scan(after) {
      for (const { key, value } of devices.getRange(after === undefined ? {} : { start: after })) {
        if (key === after) continue;
        yield value;
      }
    },
    *scanTenant(supportId, after) {
      for (const key of tenantDevices.getKeys({ start: [supportId, after ?? ''], end: [supportId, '\uffff'] })) {
        if (key[1] === after) continue;
        const d = devices.get(key[1]);
        if (d !== undefined) yield d;
      }
    },
    *all() {
      for (const { value } of devices.getRange({ snapshot: false })) yield value;
    },
    count: () => devices.getCount(),
    inventory: (tmid) => inventory.get(tmid),
    async setInventory(tmid, inv) {
      await inventory.put(tmid, inv);
    },
  };
}
