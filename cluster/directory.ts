/**
 * The `kiseki-directory` bucket: the records several ingest nodes and the
 * shard nodes share, so that a fleet is served by any ingest node.
 *
 * - `tenant.<support ID>` → TenantRecord JSON and `enroll.<SHA-256 of the
 *   enrollment key>` → support ID: written by API nodes and by each ingest
 *   node at start for its local tenants (tenant-sync.ts, which every node's
 *   watcher also copies them with); an enrollment on a node whose watcher has
 *   not copied the tenant yet looks the key up here and copies it.
 * - `device.<TMID>` → DeviceRecord JSON (with `tokenHash`): published at
 *   enrollment, before the agent gets its token, and again before the device's
 *   first batch on each node. A hello on a node that does not know the TMID
 *   (or holds another token hash for it) copies the record from here.
 * - A device's `welcome.nextSeq` comes from the batch stream, not from this
 *   bucket: the last message on the device's subject is the last batch any
 *   ingest node stored for it.
 *
 * - `state.<TMID>` → the device's live connection state and hello facts, put
 *   by the ingest node holding its socket (device-state.ts).
 *
 * Lookups from the hello path are bounded (`lookupTimeoutMs`): a NATS outage
 * answers the agent `storage_unavailable` within that time instead of holding
 * its hello. The `device.` record is not republished when it changes; the
 * connection and facts travel in `state.<TMID>`, the isolation in
 * `kiseki-commands`.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { virtualShardOf } from '../core/vshard.js';
import type { AgentDirectory } from '../ingest/index.js';
import { sha256Hex, type DeviceFacts, type DeviceRecord, type HotStore, type TenantRecord } from '../storage/index.js';
import { decodeBatchMessage } from './batch-message.js';
import { deviceKey, enrollKeyKey, parseDevice, parseDirectoryKey, parseTenant, tenantKey } from './directory-layout.js';
import { BATCH_STREAM, batchSubject, boundedNatsCall } from './nats.js';
import { applyDeviceState } from './device-state.js';
import { applySettingsEntry } from './settings-sync.js';
import { applyTenantEntry, publishLocalTenant } from './tenant-sync.js';

/** Default bound of one directory lookup on the hello path, ms: under the agents' 10 s hello timeout. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 5000;

export interface DirectoryPublisher {
  /** Resolves once the device's record and its tenant's are in the bucket (once per device per process). */
  ensurePublished(tmid: string): Promise<void>;
}

/** What an ingest node needs from the bucket: the publisher for the committer and the agent server's lookups. */
export interface IngestDirectory extends DirectoryPublisher, AgentDirectory {
  /**
   * Publishes every tenant of the local store (at start) where the bucket holds none or an older one; resolves
   * with their count and the support IDs the bucket holds with another enrollment key (the bucket's stands).
   */
  publishTenants(): Promise<{ tenants: number; conflicts: string[] }>;
}

export interface IngestDirectoryOptions {
  directory: KV;
  /** For `nextSeq`: the last batch of a device's subject. */
  jsm: JetStreamManager;
  store: HotStore;
  /** Bound of each lookup, ms (default {@link DEFAULT_LOOKUP_TIMEOUT_MS}). */
  lookupTimeoutMs?: number;
}

/** The ingest side: publishes from the local store, copies what it lacks from the bucket. */
export function createIngestDirectory(options: IngestDirectoryOptions): IngestDirectory {
  const { directory, jsm, store } = options;
  const timeoutMs = options.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
  const published = new Map<string, Promise<void>>();
  const tenants = new Map<string, Promise<void>>();
  /** Lookups of one TMID in flight: an agent saying hello again while its first lookup runs waits for the same one. */
  const refreshing = new Map<string, Promise<boolean>>();

  /** Conflicts met: local tenants whose support ID the bucket holds with another enrollment key. */
  const conflicts = new Set<string>();

  function ensureTenantPublished(supportId: string): Promise<void> {
    let p = tenants.get(supportId);
    if (p === undefined) {
      // Only where the bucket holds none or an older one: a copy never overwrites a change made on another node.
      p = publishLocalTenant(directory, store, supportId).then((outcome) => {
        if (outcome === 'conflict') conflicts.add(supportId);
      });
      tenants.set(supportId, p);
      p.catch(() => tenants.delete(supportId));
    }
    return p;
  }

  async function readTenant(supportId: string): Promise<TenantRecord | undefined> {
    const entry = await boundedNatsCall(directory.get(tenantKey(supportId)), timeoutMs, 'tenant lookup');
    if (entry === null || entry.operation !== 'PUT') return undefined;
    return parseTenant(entry.string(), supportId);
  }

  async function refresh(tmid: string): Promise<boolean> {
    const entry = await boundedNatsCall(directory.get(deviceKey(tmid)), timeoutMs, 'device lookup');
    if (entry === null || entry.operation !== 'PUT') return false;
    const shared = parseDevice(entry.string(), tmid);
    if (shared === undefined) return false;
    const local = store.devices.get(tmid);
    if (local !== undefined && local.tokenHash === shared.tokenHash) return false;
    if (store.tenants.get(shared.supportId) === undefined) {
      const tenant = await readTenant(shared.supportId);
      if (tenant !== undefined) await store.tenants.save(tenant);
    }
    // The shared record, with this node's view of the connection (the hello that follows marks it connected).
    await store.devices.save({ ...shared, connected: false });
    // Known in the bucket already: no need to publish it again before its first batch here.
    published.set(tmid, Promise.resolve());
    return true;
  }

  return {
    ensurePublished(tmid) {
      let p = published.get(tmid);
      if (p === undefined) {
        const device = store.devices.get(tmid);
        p = device === undefined ? Promise.resolve() : ensureTenantPublished(device.supportId).then(() => directory.put(deviceKey(tmid), JSON.stringify(device))).then(() => undefined);
        published.set(tmid, p);
        // A failed put is tried again with the device's next batch.
        p.catch(() => published.delete(tmid));
      }
      return p;
    },
    async publishTenants() {
      let count = 0;
      for (const supportId of store.tenants.ids()) {
        await ensureTenantPublished(supportId);
        count++;
      }
      return { tenants: count, conflicts: [...conflicts] };
    },
    refreshDevice(tmid) {
      let p = refreshing.get(tmid);
      if (p === undefined) {
        p = refresh(tmid).finally(() => refreshing.delete(tmid));
        refreshing.set(tmid, p);
      }
      return p;
    },
    async tenantForEnrollKey(enrollKey) {
      const hash = sha256Hex(enrollKey);
      const entry = await boundedNatsCall(directory.get(enrollKeyKey(hash)), timeoutMs, 'enrollment key lookup');
      if (entry === null || entry.operation !== 'PUT') return undefined;
      const tenant = await readTenant(entry.string());
      if (tenant === undefined || tenant.enrollKeyHash !== hash) return undefined;
      await store.tenants.mirror(tenant);
      tenants.set(tenant.supportId, Promise.resolve());
      return tenant;
    },
    async publishDevice(device) {
      const p = boundedNatsCall(
        ensureTenantPublished(device.supportId).then(() => directory.put(deviceKey(device.tmid), JSON.stringify(device))),
        timeoutMs,
        'device publish',
      ).then(() => undefined);
      await p;
      published.set(device.tmid, p);
    },
    async nextSeq(tmid) {
      const last = await boundedNatsCall(jsm.streams.getMessage(BATCH_STREAM, { last_by_subj: batchSubject(virtualShardOf(tmid), tmid) }), timeoutMs, 'last batch lookup');
      return last === null ? 1 : decodeBatchMessage(last.data).last + 1;
    },
  };
}

/**
 * Copies one entry of the bucket into a local store (an API node's mirror,
 * api-node.ts): a tenant or its fleet policy when newer than the local copy
 * (tenant-sync.ts), a device record, a device's live state
 * (device-state.ts), and the per-tenant settings (exception entries and
 * removals, Sigma, threshold-rule and liveness settings: settings-sync.ts);
 * enrollment keys and values of another shape are skipped.
 * Resolves with what it copied.
 */
export async function copyDirectoryEntry(store: HotStore, key: string, json: string): Promise<'tenant' | 'fleet' | 'device' | 'state' | 'exception' | 'settings' | undefined> {
  const parsed = parseDirectoryKey(key);
  if (parsed?.kind === 'except' || parsed?.kind === 'sigma' || parsed?.kind === 'analytics' || parsed?.kind === 'liveness') {
    const applied = await applySettingsEntry(store, key, json);
    return applied === 'skipped' ? undefined : applied;
  }
  if (parsed?.kind === 'tenant' || parsed?.kind === 'fleet') {
    const applied = await applyTenantEntry(store, key, json);
    return applied === 'skipped' ? undefined : applied;
  }
  if (parsed?.kind === 'state') return (await applyDeviceState(store, key, json)) ? 'state' : undefined;
  if (parsed?.kind === 'device') {
    const device = parseDevice(json, parsed.id);
    if (device === undefined) return undefined;
    const local = store.devices.get(device.tmid);
    // The record is put at enrollment and again before the first batch on each node: its connection flag is
    // that node's view at the time. The local one follows `state.<TMID>` (the connection as it is) and stays.
    if (local === undefined) await store.devices.save(device);
    else await store.devices.save({ ...device, connected: local.connected, lastSeen: Math.max(local.lastSeen, device.lastSeen), ...(local.lastSeen > device.lastSeen ? factsOf(local) : {}) });
    return 'device';
  }
  return undefined;
}

/** The fields of a device record its agent's hello sets. */
function factsOf(d: DeviceRecord): DeviceFacts {
  return { computer: d.computer, agentVersion: d.agentVersion, os: d.os, ips: d.ips, macs: d.macs };
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
