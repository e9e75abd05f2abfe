/**
 * Notifications in cluster mode against a real nats-server (skipped with an
 * install hint where it is missing): two API nodes, tenant settings PUT on
 * one and copied to the other, an alert a shard node published to
 * `kiseki-alerts`, and a webhook receiver that gets exactly one notification
 * in total; a third API node started later with an empty store copies the
 * alert and sends nothing again, and an alert older than the notify horizon
 * is copied without being notified. Also the claim records themselves:
 * one holder, a takeover after the hold, a settled claim stands.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import type { AlertRecord } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import { startTestReceiver, testAlert } from '../notify/test-support.js';
import { openHotStore, sha256Hex, type DeviceRecord, type HotStore, type OutboxEntry } from '../storage/index.js';
import { eventually } from '../test/support/cli.js';
import { operatorCall } from '../test/support/api-operator.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import type { AlertBucketEntry } from './alert-publisher.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { createIngestDirectory } from './directory.js';
import { alertKey, openClusterLink, type ClusterLink } from './nats.js';
import { createNotifyClaims, decodeNotifyClaim, notifyClaimBucketKey } from './notify-claims.js';
import { decodeNotifySettings, notifySettingsKey, startNotifySettingsSync } from './notify-settings-sync.js';

if (NATS_SERVER === undefined) console.warn(`cluster/notify-cluster.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();
const TENANT = 'EX0001';

describe.skipIf(NATS_SERVER === undefined)('notifications in cluster mode', () => {
  let dir = '';
  let nats: NatsServer;
  let port = 0;
  let source: HotStore;
  let link: ClusterLink;
  const nodes: RunningApiNode[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-notify-cluster-'));
    port = await freePort();
    nats = await startNats(dir, 'n1', port);
    source = openHotStore({ dataDir: join(dir, 'ingest'), mapSizeBytes: 64 * 1024 * 1024 });
    link = await openClusterLink({ servers: `nats://127.0.0.1:${port}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
    await link.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startNode(name: string): Promise<{ node: RunningApiNode; put: (path: string, body: unknown) => Promise<{ status: number; body: Record<string, unknown> }> }> {
    const config = loadConfig({
      dataDir: join(dir, name),
      http: { host: '127.0.0.1', port: 0 },
      cluster: { role: 'api', nats: `nats://127.0.0.1:${port}`, replicas: 1, nodeId: name },
    });
    const node = await startApiNode({ config, logger, rewatchDelayMs: 100 });
    nodes.push(node);
    const call = await operatorCall(node);
    return { node, put: (path, body) => call('PUT', path, body) };
  }

  /** What an ingest node publishes: the tenant (with an enrolled device). */
  async function publishTenant(): Promise<void> {
    await source.tenants.save({ supportId: TENANT, name: 'Example Corp', enrollKeyHash: sha256Hex('kek_test'), createdAt: 1 });
    const device: DeviceRecord = { tmid: 'D1', supportId: TENANT, computer: 'PC-01', agentVersion: '1.0.0', os: 'Windows 11', ips: [], macs: [], tokenHash: sha256Hex('tok'), firstSeen: 1, lastSeen: 1, connected: false };
    await createIngestDirectory({ directory: link.directory, jsm: link.jsm, store: source }).publishDevice(device);
  }

  /** What a shard node's alert publisher puts (alert-publisher.ts). */
  const publishAlert = (alert: AlertRecord): Promise<number> =>
    link.alerts.put(alertKey(alert.id), JSON.stringify({ alert, node: 'shard-1', publishedAt: Date.now() } satisfies AlertBucketEntry));

  const outbox = (n: RunningApiNode): OutboxEntry[] => n.store.notify.scanTenant(TENANT);
  /** The node's outbox once every entry in it ended (sent here or settled by another node), else undefined. */
  const settled = async (n: RunningApiNode, entries: number): Promise<OutboxEntry[] | undefined> => {
    const all = outbox(n);
    return all.length === entries && all.every((e) => e.state !== 'pending') ? all : undefined;
  };

  it('sends one webhook between two API nodes, shares the settings, and a node started later sends nothing again', async () => {
    const hook = await startTestReceiver();
    try {
      await publishTenant();
      // An alert older than the notify horizon (1 h): copied, never notified.
      await publishAlert(testAlert('al_old', TENANT, Date.now() - 2 * 3600_000));
      const a = await startNode('api-a');
      const b = await startNode('api-b');
      await eventually(async () => (a.node.store.tenants.get(TENANT) !== undefined && b.node.store.tenants.get(TENANT) !== undefined ? true : undefined), 300, 100);

      const saved = await a.put(`/api/v1/tenants/${TENANT}/notifications`, {
        recipients: [{ id: 'h1', channel: 'webhook', to: hook.url, secret: 'a-secret-of-16-chars', events: ['alert.new'], verdicts: ['black', 'gray', 'white'] }],
      });
      expect(saved.status).toBe(200);
      // The bucket holds the settings (secret included), and node B copied them.
      const shared = await link.notifySettings.get(notifySettingsKey(TENANT));
      expect(decodeNotifySettings(shared!.value)).toMatchObject({ supportId: TENANT, recipients: [{ id: 'h1', secret: 'a-secret-of-16-chars' }] });
      const onB = await eventually(async () => b.node.store.notify.settings(TENANT), 300, 100);
      expect(onB).toMatchObject({ recipients: [{ id: 'h1', to: hook.url, secret: 'a-secret-of-16-chars' }], updatedBy: 'op.api' });

      // A shard node publishes a new black alert: each API node queues it, one of them sends it.
      await publishAlert(testAlert('al_new', TENANT, Date.now()));
      const onA = await eventually(() => settled(a.node, 1), 300, 100);
      const onBEntries = await eventually(() => settled(b.node, 1), 300, 100);
      expect(hook.hooks).toHaveLength(1);
      expect(JSON.parse(hook.hooks[0]!.body)).toMatchObject({ supportId: TENANT, events: [{ kind: 'alert.new', alertId: 'al_new' }] });
      const entries = [...onA, ...onBEntries];
      const sender = entries.find((e) => e.settledBy === undefined);
      expect(entries.map((e) => e.state)).toEqual(['sent', 'sent']);
      expect(entries.filter((e) => e.settledBy !== undefined)).toHaveLength(1);
      const senderNode = sender === onA[0] ? 'api-a' : 'api-b';
      expect(entries.find((e) => e.settledBy !== undefined)!.settledBy).toBe(senderNode);

      // A third API node with an empty store copies both alerts and the settings; the new alert is settled, the old one not even queued.
      const c = await startNode('api-c');
      await eventually(async () => (c.node.mirror().caughtUp && c.node.store.alerts.get('al_old') !== undefined ? true : undefined), 300, 100);
      const onC = await eventually(() => settled(c.node, 1), 300, 100);
      expect(onC).toMatchObject([{ state: 'sent', settledBy: senderNode, events: [{ alertId: 'al_new' }] }]);
      for (const n of [a.node, b.node, c.node]) expect(outbox(n).flatMap((e) => e.events.map((ev) => ev.alertId))).toEqual(['al_new']);
      expect(hook.hooks).toHaveLength(1);
    } finally {
      await hook.close();
    }
  });

  it('keeps the newest settings in the bucket and in every copy, whichever order the shares land in', async () => {
    const other = openHotStore({ dataDir: join(dir, 'other'), mapSizeBytes: 64 * 1024 * 1024 });
    const settingsAt = (updatedAt: number, to: string) => ({ supportId: TENANT, recipients: [{ id: 'h1', channel: 'webhook' as const, to, events: ['alert.new' as const], verdicts: ['black' as const] }], maxPerHour: 20, updatedAt, updatedBy: 'op' });
    const syncA = startNotifySettingsSync({ kv: link.notifySettings, store: source, logger, retryMs: 100 });
    const syncB = startNotifySettingsSync({ kv: link.notifySettings, store: other, logger, retryMs: 100 });
    try {
      // Two nodes change one tenant at once; the older change reaches the bucket last.
      await source.notify.putSettings(settingsAt(2000, 'https://newer.example/hook'));
      await other.notify.putSettings(settingsAt(1000, 'https://older.example/hook'));
      await syncA.share(settingsAt(2000, 'https://newer.example/hook'));
      await syncB.share(settingsAt(1000, 'https://older.example/hook'));
      expect(decodeNotifySettings((await link.notifySettings.get(notifySettingsKey(TENANT)))!.value)).toMatchObject({ updatedAt: 2000 });
      await eventually(async () => (other.notify.settings(TENANT)?.updatedAt === 2000 ? true : undefined), 300, 100);
      expect(source.notify.settings(TENANT)).toMatchObject({ updatedAt: 2000, recipients: [{ to: 'https://newer.example/hook' }] });
      // A foreign value is skipped, not copied.
      await link.notifySettings.put('notify.FOREIGN', '{"not":"settings"}');
      await eventually(async () => (syncB.stats().skipped >= 1 ? true : undefined), 300, 100);
      expect(other.notify.settings('FOREIGN')).toBeUndefined();
    } finally {
      await syncA.stop();
      await syncB.stop();
      await other.close();
    }
  });

  it('claims over the bucket: one holder, held for the others until its time ends, then taken over; a settled claim stands', async () => {
    let now = 1_000_000;
    const claimsA = createNotifyClaims({ kv: link.notified, nodeId: 'a', holdMs: 60_000, now: () => now });
    const claimsB = createNotifyClaims({ kv: link.notified, nodeId: 'b', holdMs: 60_000, now: () => now });
    const key = 'alert.new|al_1|h1';
    expect(await claimsA.claim(key)).toEqual({ kind: 'mine' });
    expect(await claimsA.claim(key)).toEqual({ kind: 'mine' });
    expect(await claimsB.claim(key)).toEqual({ kind: 'held', until: now + 60_000 });
    // A failed attempt keeps the claim until its retry plus the hold.
    await claimsA.settle(key, { state: 'retry', retryAt: now + 30_000 });
    now += 60_000;
    expect(await claimsB.claim(key)).toEqual({ kind: 'held', until: now + 30_000 });
    // A stopped before its retry: B takes the claim over, and A's late outcome does not replace B's record.
    now += 30_000;
    expect(await claimsB.claim(key)).toEqual({ kind: 'mine' });
    await claimsA.settle(key, { state: 'sent' });
    expect(decodeNotifyClaim((await link.notified.get(notifyClaimBucketKey(key)))!.value)).toMatchObject({ state: 'claimed', node: 'b' });
    await claimsB.settle(key, { state: 'sent' });
    expect(await claimsA.claim(key)).toEqual({ kind: 'settled', state: 'sent', by: 'b' });
    now += 3600_000;
    expect(await claimsA.claim(key)).toEqual({ kind: 'settled', state: 'sent', by: 'b' });
  });
});
