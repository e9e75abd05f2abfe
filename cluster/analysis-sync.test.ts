/**
 * Analysts' verdicts and comments across API nodes against a real
 * nats-server (skipped with an install hint where it is missing): a verdict
 * and a comment made on node A show on node B, with B's feed announcing the
 * verdict change as A's does (the notifiers' claims send it once); a comment
 * made on A while NATS is down reaches B once NATS is back; entries of
 * another shape are skipped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import type { AlertRecord } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import { testAlert } from '../notify/test-support.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { eventually } from '../test/support/cli.js';
import { operatorCall, type ApiCall } from '../test/support/api-operator.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { publishTestDevice } from '../test/support/stream-batches.js';
import type { AlertBucketEntry } from './alert-publisher.js';
import { analysisKey, parseAnalysisEntry } from './analysis-sync.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { alertKey, openClusterLink, type ClusterLink } from './nats.js';

if (NATS_SERVER === undefined) console.warn(`cluster/analysis-sync.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();
const TENANT = 'EX0001';

describe('analysis bucket entries', () => {
  it('round-trips a record through its key and value, and skips other shapes', () => {
    const verdict = { kind: 'verdict' as const, verdict: { id: 'av_1', alertId: 'al_1', at: 5, by: 'op', verdict: 'black' as const, from: 'gray' as const } };
    const comment = { kind: 'comment' as const, comment: { id: 'co_1', alertId: 'al_1', at: 6, author: 'op', text: 'seen' } };
    expect(parseAnalysisEntry(analysisKey(verdict), JSON.stringify(verdict.verdict))).toEqual(verdict);
    expect(parseAnalysisEntry(analysisKey(comment), JSON.stringify(comment.comment))).toEqual(comment);
    expect(parseAnalysisEntry(analysisKey(verdict), JSON.stringify({ ...verdict.verdict, verdict: 'purple' }))).toBeUndefined();
    expect(parseAnalysisEntry(analysisKey(verdict), JSON.stringify({ ...verdict.verdict, alertId: 'al_2' }))).toBeUndefined();
    expect(parseAnalysisEntry('other.a.b', '{}')).toBeUndefined();
    expect(parseAnalysisEntry(analysisKey(comment), 'not json')).toBeUndefined();
  });
});

describe.skipIf(NATS_SERVER === undefined)('analysts across API nodes', () => {
  let dir = '';
  let nats: NatsServer;
  let port = 0;
  let source: HotStore;
  let link: ClusterLink | undefined;
  const nodes: RunningApiNode[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-analysis-'));
    port = await freePort();
    nats = await startNats(dir, 'n1', port);
    source = openHotStore({ dataDir: join(dir, 'ingest'), mapSizeBytes: 64 * 1024 * 1024 });
    link = await openClusterLink({ servers: `nats://127.0.0.1:${port}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
    await link?.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startNode(name: string): Promise<{ node: RunningApiNode; call: ApiCall }> {
    const config = loadConfig({ dataDir: join(dir, name), http: { host: '127.0.0.1', port: 0 }, cluster: { role: 'api', nats: `nats://127.0.0.1:${port}`, replicas: 1, nodeId: name } });
    const node = await startApiNode({ config, logger, rewatchDelayMs: 100 });
    nodes.push(node);
    return { node, call: await operatorCall(node) };
  }

  const publishAlert = (alert: AlertRecord): Promise<number> => link!.alerts.put(alertKey(alert.id), JSON.stringify({ alert, node: 'shard-1', publishedAt: Date.now() } satisfies AlertBucketEntry));

  it("shows a verdict and comments made on one node on the other, with the verdict change in both feeds", async () => {
    await publishTestDevice(link!, source, TENANT, 'D1', 'PC-01');
    await publishAlert(testAlert('al_1', TENANT, Date.now(), 'gray'));
    const a = await startNode('api-a');
    const b = await startNode('api-b');
    await eventually(async () => (a.node.store.alerts.get('al_1') !== undefined && b.node.store.alerts.get('al_1') !== undefined ? true : undefined), 300, 100);

    expect((await a.call('POST', '/api/v1/alerts/al_1/verdict', { verdict: 'black', comment: 'lateral movement' })).status).toBe(200);
    expect((await a.call('POST', '/api/v1/alerts/al_1/comments', { text: 'isolated by phone' })).status).toBe(201);
    const onB = await eventually(async () => {
      const view = await b.call('GET', '/api/v1/alerts/al_1');
      return (view.body.alert as { verdict?: string } | undefined)?.verdict === 'black' && (view.body.comments as unknown[]).length === 1 ? view.body : undefined;
    }, 300, 100);
    expect(onB).toMatchObject({ alert: { verdict: 'black', verdictBy: 'op.api' }, comments: [{ author: 'op.api', text: 'isolated by phone' }] });
    expect((onB.verdictHistory as { by: string; to: string; comment?: string }[]).map((v) => [v.by, v.to, v.comment ?? null])).toEqual([['op.api', 'black', 'lateral movement']]);
    // B announces the change as A did: each notifier queues it, and their claims send it once (notify-cluster.test.ts).
    const verdictEntries = (n: RunningApiNode) => n.store.notify.feedAfter(0, 100).filter((e) => e.kind === 'alert.verdict').map((e) => [e.alertId, e.verdict, e.from, e.by]);
    expect(verdictEntries(a.node)).toEqual([['al_1', 'black', 'gray', 'op.api']]);
    expect(verdictEntries(b.node)).toEqual([['al_1', 'black', 'gray', 'op.api']]);
    expect(b.node.store.alerts.comments('al_1')).toEqual(a.node.store.alerts.comments('al_1'));

    // Made while NATS is down: answered from A's store, shared once NATS is back.
    await link!.close();
    link = undefined;
    nats.child.kill('SIGKILL');
    await nats.exited;
    expect((await a.call('POST', '/api/v1/alerts/al_1/comments', { text: 'sent to forensics' })).status).toBe(201);
    nats = await startNats(dir, 'n1', port);
    await eventually(async () => (b.node.store.alerts.comments('al_1').length === 2 ? true : undefined), 600, 100);
    expect(b.node.store.alerts.comments('al_1').map((c) => c.text)).toEqual(['isolated by phone', 'sent to forensics']);
  });
});
