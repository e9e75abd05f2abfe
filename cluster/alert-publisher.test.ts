/**
 * The alert publisher against a real nats-server (skipped with an install
 * hint where it is missing): committed alerts reach `kiseki-alerts` under
 * their ids with their latest report revision; a put that fails keeps the
 * feed position and is retried; a new publisher on the same store resumes
 * from the stored position.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertRecord, QuickReport, SigmaDetection } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { eventually } from '../test/support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { ALERT_FEED_READER, createAlertPublisher, decodeAlertEntry, decodeDetectionEntry, type AlertPublisher } from './alert-publisher.js';
import { decodeCommandEntry } from './commands-sync.js';
import { alertKey, commandKey, detectionKey, openClusterLink, type ClusterLink } from './nats.js';

if (NATS_SERVER === undefined) console.warn(`cluster/alert-publisher.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

function alertOf(id: string, revision: number): AlertRecord {
  return {
    id, tmid: 'D1', supportId: 'TA', computer: 'PC', sha256: 'a'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked',
    detectedAt: 995, createdAt: 1000, state: 'reported', verdict: 'gray', score: 0, revision, repeats: 0, openUntil: 1000, isolationRequested: false,
  };
}

describe.skipIf(NATS_SERVER === undefined)('alert publisher', () => {
  let dir = '';
  let nats: NatsServer;
  let port = 0;
  let store: HotStore;
  const links: ClusterLink[] = [];
  const publishers: AlertPublisher[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-alert-pub-'));
    port = await freePort();
    nats = await startNats(dir, 'n1', port);
    store = openHotStore({ dataDir: join(dir, 'store'), mapSizeBytes: 64 * 1024 * 1024 });
  });
  afterEach(async () => {
    for (const p of publishers.splice(0)) await p.stop();
    for (const l of links.splice(0)) await l.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function link(): Promise<ClusterLink> {
    const l = await openClusterLink({ servers: `nats://127.0.0.1:${port}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
    links.push(l);
    return l;
  }

  function publisher(l: ClusterLink): AlertPublisher {
    // A long interval: the test drives the rounds.
    const p = createAlertPublisher({ kv: l.alerts, store, nodeId: 's1', logger, intervalMs: 60_000, putTimeoutMs: 1000 });
    publishers.push(p);
    return p;
  }

  /** Commits an alert as a shard's flush does: record, indexes (its feed entry), report revisions. */
  async function commit(id: string, revisions = 1): Promise<void> {
    await store.transaction(() => {
      const a = alertOf(id, revisions);
      store.alerts.saveSync(a);
      store.alerts.indexSync(a);
      for (let r = 1; r <= revisions; r++) store.alerts.putRevisionSync({ alertId: id, revision: r, createdAt: 1000 + r } as QuickReport);
    });
  }

  async function bucketIds(l: ClusterLink): Promise<string[]> {
    const ids: string[] = [];
    for await (const k of await l.alerts.keys('alert.>')) {
      const e = await l.alerts.get(k);
      if (e !== null && e.operation === 'PUT') ids.push(decodeAlertEntry(e.value).alert.id);
    }
    return ids.sort();
  }

  it('puts every committed alert under its id with its latest revision, and leaves the notifier its own cursor', async () => {
    const l = await link();
    await commit('al_1', 2);
    await commit('al_2');
    const p = publisher(l);
    await p.publishCommitted();
    expect(await bucketIds(l)).toEqual(['al_1', 'al_2']);
    const e = decodeAlertEntry((await l.alerts.get(alertKey('al_1')))!.value);
    expect(e).toMatchObject({ alert: { id: 'al_1', revision: 2 }, report: { alertId: 'al_1', revision: 2 }, node: 's1' });
    expect(store.notify.readerCursor(ALERT_FEED_READER)).toBe(2);
    expect(store.notify.cursor()).toBe(0);
    expect(store.notify.feedAfter(0, 10)).toHaveLength(2);
  });

  it('puts every Sigma detection stored into kiseki-detections under its id, in the same rounds', async () => {
    const l = await link();
    const p = createAlertPublisher({ kv: l.alerts, detections: l.detections, store, nodeId: 's1', logger, intervalMs: 60_000, putTimeoutMs: 1000 });
    publishers.push(p);
    const d: SigmaDetection = {
      id: 'sd_1', supportId: 'TA', tmid: 'D1', computer: 'PC', ruleId: 'r1', title: 'Rule', level: 'high', severity: 'Serious', tags: [], author: 'a',
      lsn: 1, event: { tmid: 'D1', seq: 5, ts: 900, k: 'proc.start' }, pg: '{P1}', image: 'C:\\x.exe', at: 900, createdAt: 1000, repeats: 0,
    };
    await store.transaction(() => {
      store.detections.saveSync(d);
      store.detections.indexSync(d);
    });
    await commit('al_1');
    await p.publishCommitted();
    const e = await l.detections.get(detectionKey('sd_1'));
    expect(decodeDetectionEntry(e!.value)).toMatchObject({ detection: d, node: 's1' });
    expect(decodeDetectionEntry(new TextEncoder().encode('{"not":"a detection"}'))).toBeUndefined();
    expect(await bucketIds(l)).toEqual(['al_1']);
  });

  it('keeps its feed position while NATS is down and publishes once it is back', async () => {
    const l = await link();
    await commit('al_1');
    const p = publisher(l);
    await p.publishCommitted();
    nats.child.kill('SIGKILL');
    await nats.exited;
    await commit('al_2');
    await expect(p.publishCommitted()).rejects.toMatchObject({ code: 'ERR_CLUSTER_UNAVAILABLE' });
    expect(store.notify.readerCursor(ALERT_FEED_READER)).toBe(1);
    nats = await startNats(dir, 'n1', port);
    await eventually(() => p.publishCommitted().then(() => true, () => undefined), 100, 200);
    expect(await bucketIds(l)).toEqual(['al_1', 'al_2']);
    expect(store.notify.readerCursor(ALERT_FEED_READER)).toBe(2);
  });

  it('resumes from the stored position after a restart: what was committed but not published goes out, nothing earlier again', async () => {
    const l = await link();
    await commit('al_1');
    const first = publisher(l);
    await first.publishCommitted();
    await first.stop();
    // Committed while no publisher ran (a node killed between its flush and its publish).
    await commit('al_2');
    // Removed from the bucket: a second publisher that started over from the feed's start would put it back.
    await l.alerts.delete(alertKey('al_1'));
    const second = publisher(l);
    expect(second.position()).toBe(1);
    await second.publishCommitted();
    expect(await bucketIds(l)).toEqual(['al_2']);
  });

  it('publishes the later versions the engine stores without a verdict change: a repeat, a report revision', async () => {
    const l = await link();
    await commit('al_1');
    const p = publisher(l);
    await p.publishCommitted();
    // A repeat of the same file, then a revision that keeps the verdict (what the correlator's flushes write).
    await store.transaction(() => store.alerts.saveSync({ ...alertOf('al_1', 1), repeats: 1, lastRepeatAt: 2000 }));
    await store.transaction(() => {
      store.alerts.saveSync({ ...alertOf('al_1', 2), repeats: 1, lastRepeatAt: 2000 });
      store.alerts.putRevisionSync({ alertId: 'al_1', revision: 2, createdAt: 3000 } as QuickReport);
    });
    expect(store.notify.feedAfter(1, 10).map((e) => e.kind)).toEqual(['alert.updated', 'alert.updated']);
    await p.publishCommitted();
    const e = decodeAlertEntry((await l.alerts.get(alertKey('al_1')))!.value);
    expect(e).toMatchObject({ alert: { id: 'al_1', revision: 2, repeats: 1 }, report: { revision: 2 } });
  });

  it("creates the isolation a black verdict queued in kiseki-commands, and never sets it back once an ingest node moved it on", async () => {
    const l = await link();
    const p = createAlertPublisher({ kv: l.alerts, commands: l.commands, store, nodeId: 's1', logger, intervalMs: 60_000, putTimeoutMs: 1000 });
    publishers.push(p);
    const command = store.commands.create({ id: 'cmd_1', tmid: 'D1', supportId: 'TA', kind: 'isolate', args: { allow: [] }, requestedBy: 'engine', requestedAt: 1000 });
    await store.transaction(() => {
      const a = { ...alertOf('al_1', 1), verdict: 'black' as const, isolationRequested: true };
      store.alerts.saveSync(a);
      store.alerts.indexSync(a);
      store.commands.queueSync(command);
    });
    await p.publishCommitted();
    const held = async () => decodeCommandEntry((await l.commands.get(commandKey('cmd_1')))!.value);
    expect(await held()).toMatchObject({ id: 'cmd_1', state: 'queued', requestedBy: 'engine' });
    // The ingest node holding the agent sent it and the agent confirmed it; a later revision republishes the alert.
    await l.commands.put(commandKey('cmd_1'), JSON.stringify({ ...command, state: 'done', updatedAt: 2000 }));
    await store.transaction(() => store.alerts.saveSync({ ...alertOf('al_1', 2), verdict: 'black', isolationRequested: true }));
    await p.publishCommitted();
    expect(decodeAlertEntry((await l.alerts.get(alertKey('al_1')))!.value).alert.revision).toBe(2);
    expect(await held()).toMatchObject({ id: 'cmd_1', state: 'done' });
  });
});
