/**
 * The cluster archive (an API node with `cluster.archive`) against a real
 * nats-server (skipped with an install hint where it is missing): batches
 * published to the stream with an ingest node's receipt times are copied into
 * the node's log once each, a day closes only once the copy is complete
 * through its end, the day archive holds exactly that day's batches and is
 * offered as a daily download over the API, and a restart resumes from the
 * saved position without storing anything twice.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { coldDayPaths, readManifest } from '../export/index.js';
import { dayWindow } from '../export/collection-day.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { eventually } from '../test/support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { publishTestBatch, publishTestDevice } from '../test/support/stream-batches.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { ARCHIVE_POSITION_FILE } from './archive-follower.js';
import { openClusterLink, type ClusterLink } from './nats.js';

if (NATS_SERVER === undefined) console.warn(`cluster/archive-follower.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();
const DAY = '2026-11-20';
const NEXT_DAY = '2026-11-21';
const TMID = 'TMID-A';

describe.skipIf(NATS_SERVER === undefined)('cluster archive', () => {
  let dir = '';
  let nats: NatsServer;
  let port = 0;
  let source: HotStore;
  let node: RunningApiNode | undefined;
  let link: ClusterLink | undefined;
  // Two days after DAY's window ends: DAY and NEXT_DAY may close once the copy is complete.
  const clock = createManualClock(dayWindow(NEXT_DAY).toMs + 86_400_000);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-archive-'));
    port = await freePort();
    nats = await startNats(dir, 'n1', port);
    source = openHotStore({ dataDir: join(dir, 'ingest'), mapSizeBytes: 64 * 1024 * 1024 });
    link = await openClusterLink({ servers: `nats://127.0.0.1:${port}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
    await publishTestDevice(link, source, 'EX0001', TMID, 'PC-A');
  });
  afterEach(async () => {
    await node?.close().catch(() => undefined);
    node = undefined;
    await link?.close().catch(() => undefined);
    link = undefined;
    nats.child.kill('SIGKILL');
    await nats.exited;
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const publish = (id: string, first: number, n: number, recvAt: number): Promise<void> => publishTestBatch(link!, TMID, id, first, n, recvAt);

  async function start(): Promise<RunningApiNode> {
    const config = loadConfig({
      dataDir: join(dir, 'archive'),
      http: { host: '127.0.0.1', port: 0 },
      export: { workerThreads: 0 },
      cluster: { role: 'api', nats: `nats://127.0.0.1:${port}`, replicas: 1, nodeId: 'archive1', archive: true },
    });
    // A long check interval: the test decides when the position is checked.
    node = await startApiNode({ config, logger, clock, rewatchDelayMs: 100, archiveCheckIntervalMs: 3_600_000 });
    return node;
  }

  const day = dayWindow(DAY);
  const next = dayWindow(NEXT_DAY);

  it('copies the stream once, closes a day only once the copy is complete, and serves the daily download', async () => {
    await publish('b1', 1, 3, day.fromMs + 3_600_000);
    await publish('b2', 4, 2, day.toMs - 60_000);
    await publish('b3', 6, 4, next.fromMs + 60_000);
    const n = await start();
    const archive = n.archive!;
    expect(archive).toBeDefined();

    // Not caught up once yet: the tick closes nothing, even with the batches already copied.
    await eventually(async () => (archive.follower.stats().streamSeq === 3 ? true : undefined), 300, 100);
    const early = await archive.scheduler.runOnce();
    expect(early).toMatchObject({ busy: false, closed: [] });
    expect(existsSync(coldDayPaths(join(dir, 'archive'), 'EX0001', DAY).zip)).toBe(false);

    await archive.follower.check();
    expect(archive.follower.stats()).toMatchObject({ streamSeq: 3, streamLastSeq: 3, missed: 0, pendingBatches: 0 });
    expect(archive.follower.completeThrough()).toBeGreaterThan(next.toMs);
    const ticked = await archive.scheduler.runOnce();
    expect(ticked.busy).toBe(false);
    const closed = ticked.busy ? [] : ticked.closed.filter((c) => c.status === 'archived');
    expect(closed.map((c) => [c.day, c.batches, c.events])).toEqual([
      [DAY, 2, 5],
      [NEXT_DAY, 1, 4],
    ]);
    // Each day's archive holds the batches the ingest node received in its window (its receipt times, not the copy's).
    const manifest = readManifest(join(dir, 'archive'), 'EX0001', DAY)!;
    expect(manifest.devices.map((d) => [d.tmid, d.firstSeq, d.lastSeq, d.batches])).toEqual([[TMID, 1, 5, 2]]);

    // The daily download is served by the API node.
    await n.store.identity.createUser({ id: 'op.api', role: 'operator', supportId: null, password: 'pass-pass-pass', now: Date.now(), mustChangePassword: false });
    const token = await n.store.identity.createSession('op.api', 'token', Date.now(), 3_600_000);
    const headers = { authorization: `Bearer ${token}` };
    const list = (await (await fetch(`http://127.0.0.1:${n.httpPort}/api/v1/exports?supportId=EX0001&kind=daily`, { headers })).json()) as { items: { params: { date: string }; files: { url: string; bytes: number }[] }[] };
    expect(list.items.map((j) => j.params.date).sort()).toEqual([DAY, NEXT_DAY]);
    const file = list.items.find((j) => j.params.date === DAY)!.files[0]!;
    const zip = await fetch(`http://127.0.0.1:${n.httpPort}${file.url}`, { headers });
    expect(zip.status).toBe(200);
    expect(Buffer.from(await zip.arrayBuffer()).equals(readFileSync(coldDayPaths(join(dir, 'archive'), 'EX0001', DAY).zip))).toBe(true);
    const health = (await (await fetch(`http://127.0.0.1:${n.httpPort}/healthz`)).json()) as { status: string; archive: { streamSeq: number } };
    expect(health).toMatchObject({ status: 'ok', archive: { streamSeq: 3 } });
  });

  it('resumes from its saved position after a restart and stores nothing twice', async () => {
    await publish('b1', 1, 3, day.fromMs + 3_600_000);
    await publish('b2', 4, 2, day.fromMs + 7_200_000);
    let n = await start();
    await eventually(async () => (n.archive!.follower.stats().streamSeq === 2 ? true : undefined), 300, 100);
    await n.close();
    node = undefined;
    const saved = JSON.parse(readFileSync(join(dir, 'archive', ARCHIVE_POSITION_FILE), 'utf8')) as { streamSeq: number };
    expect(saved.streamSeq).toBe(2);

    // A position older than what the log holds (e.g. a crash before the save): b2 is read again, and is a duplicate.
    writeFileSync(join(dir, 'archive', ARCHIVE_POSITION_FILE), JSON.stringify({ ...saved, streamSeq: 1 }));
    await publish('b3', 6, 1, day.fromMs + 10_800_000);
    n = await start();
    await eventually(async () => (n.archive!.follower.stats().streamSeq === 3 ? true : undefined), 300, 100);
    await n.archive!.follower.check();
    expect(n.store.log.lastLsn()).toBe(3);
    expect(n.store.log.trail(TMID)?.ranges).toEqual([[1, 6]]);
    const ticked = await n.archive!.scheduler.runOnce();
    expect(ticked.busy ? [] : ticked.closed.filter((c) => c.status === 'archived').map((c) => [c.day, c.batches])).toEqual([[DAY, 3]]);
  });
});
