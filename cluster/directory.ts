/**
 * The records a shard node needs besides the batches: a device's record
 * (its tenant, computer name) and its tenant's record (the policy), which the
 * ingest node that enrolled the device holds in its local store. The ingest
 * node publishes both to the `kiseki-directory` bucket before the device's
 * first batch goes to the stream, so by the time a shard node reads the batch
 * the records are there; the shard node copies them into its local store.
 *
 * Device changes after the first batch (isolation, facts at a later hello)
 * are not republished yet (docs/CLUSTER.md, "What remains").
 */
import type { KV } from '@nats-io/kv';
import type { DeviceRecord, HotStore, TenantRecord } from '../storage/index.js';

function deviceKey(tmid: string): string {
  return `device.${Buffer.from(tmid).toString('base64url')}`;
}

function tenantKey(supportId: string): string {
  return `tenant.${Buffer.from(supportId).toString('base64url')}`;
}

export interface DirectoryPublisher {
  /** Resolves once the device's record and its tenant's are in the bucket (once per device per process). */
  ensurePublished(tmid: string): Promise<void>;
}

/** The ingest side: publishes from the local store. */
export function createDirectoryPublisher(directory: KV, store: HotStore): DirectoryPublisher {
  const published = new Map<string, Promise<void>>();
  const tenants = new Map<string, Promise<void>>();
  async function publish(tmid: string): Promise<void> {
    const device = store.devices.get(tmid);
    if (device === undefined) return;
    let tenant = tenants.get(device.supportId);
    if (tenant === undefined) {
      const record = store.tenants.get(device.supportId);
      tenant = record === undefined ? Promise.resolve() : directory.put(tenantKey(record.supportId), JSON.stringify(record)).then(() => undefined);
      tenants.set(device.supportId, tenant);
      tenant.catch(() => tenants.delete(device.supportId));
    }
    await tenant;
    await directory.put(deviceKey(tmid), JSON.stringify(device));
  }
  return {
    ensurePublished(tmid) {
      let p = published.get(tmid);
      if (p === undefined) {
        p = publish(tmid);
        published.set(tmid, p);
        // A failed put is tried again with the device's next batch.
        p.catch(() => published.delete(tmid));
      }
      return p;
    },
  };
}

export interface DirectoryReader {
  /** Copies the device's record (and its tenant's) into the local store when it is not there yet. */
  ensureLocal(tmid: string): Promise<void>;
}

/** The shard side: reads from the bucket into the local store. */
export function createDirectoryReader(directory: KV, store: HotStore): DirectoryReader {
  const copying = new Map<string, Promise<void>>();
  async function copy(tmid: string): Promise<void> {
    const entry = await directory.get(deviceKey(tmid));
    if (entry === null || entry.operation !== 'PUT') return;
    const device = JSON.parse(entry.string()) as DeviceRecord;
    if (store.tenants.get(device.supportId) === undefined) {
      const t = await directory.get(tenantKey(device.supportId));
      if (t !== null && t.operation === 'PUT') await store.tenants.save(JSON.parse(t.string()) as TenantRecord);
    }
    await store.devices.save(device);
  }
  return {
    ensureLocal(tmid) {
      if (store.devices.get(tmid) !== undefined) return Promise.resolve();
      let p = copying.get(tmid);
      if (p === undefined) {
        p = copy(tmid).finally(() => copying.delete(tmid));
        copying.set(tmid, p);
      }
      return p;
    },
  };
}
