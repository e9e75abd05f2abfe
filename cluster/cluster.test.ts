/**
 * The JetStream committer and the virtual-shard leases against a real
 * nats-server (skipped with an install hint where it is missing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../core/clock.js';
import { createSilentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { VIRTUAL_SHARDS } from '../core/vshard.js';
import type { BatchSubmission, CommitOutcome } from '../ingest/index.js';
import { eventually } from '../test/support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { decodeBatchMessage } from './batch-message.js';
import { createJetStreamCommitter } from './jetstream-committer.js';
import { BATCH_STREAM, COMMAND_BUCKET, COMMAND_BUCKET_MAX_AGE_MS, openClusterLink, type ClusterLink } from './nats.js';
import { createVshardLeases } from './vshard-leases.js';

if (NATS_SERVER === undefined) console.warn(`cluster/cluster.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

function batch(id: string, first: number): BatchSubmission {
  const events = new Uint8Array([0x91, 0x81, 0xa1, 0x6b, 0xa3, 0x61, 0x2e, 0x62]);
  return { tmid: 'TMID-1', id, sentAt: 1, first, last: first, events, eventCount: 1 };
}

function submit(committer: ReturnType<typeof createJetStreamCommitter>, b: BatchSubmission): Promise<CommitOutcome> {
  return new Promise((resolve) => committer.submit(b, resolve));
}

describe.skipIf(NATS_SERVER === undefined)('cluster over a real nats-server', () => {
  let dir = '';
  let nats: NatsServer;
  const links: ClusterLink[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-nats-'));
    nats = await startNats(dir, 'n1', await freePort());
  });
  afterEach(async () => {
    for (const l of links.splice(0)) await l.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  async function link(): Promise<ClusterLink> {
    const l = await openClusterLink({ servers: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger });
    links.push(l);
    return l;
  }

  it('acks a batch after its publish, a resend of its id as duplicate, and refuses beyond the in-flight bound', async () => {
    const l = await link();
    const committer = createJetStreamCommitter({ js: l.js, directory: { ensurePublished: async () => undefined }, clock: systemClock, logger, metrics: createMetrics({ defaultMetrics: false }), maxInFlight: 1 });
    expect(await submit(committer, batch('b-1', 1))).toBe('stored');
    expect(await submit(committer, batch('b-1', 1))).toBe('duplicate');
    // Two at once with room for one: the second is refused at once, not queued.
    const both = [submit(committer, batch('b-2', 2)), submit(committer, batch('b-3', 3))];
    expect(await Promise.all(both)).toEqual(['stored', 'unavailable']);
    const info = await l.jsm.streams.info(BATCH_STREAM);
    expect(info.state.messages).toBe(2);
    const first = await l.jsm.streams.getMessage(BATCH_STREAM, { seq: 1 });
    expect(decodeBatchMessage(first!.data)).toMatchObject({ tmid: 'TMID-1', id: 'b-1', first: 1, last: 1, eventCount: 1 });
    expect(committer.storageFailure()).toBeUndefined();
    await committer.idle();
  });

  it("sets the stream's max age from the configuration, and updates it when a node starts with another; bounds kiseki-commands", async () => {
    const opts = { servers: `nats://127.0.0.1:${nats.clientPort}`, replicas: 1, duplicateWindowMs: 60_000, leaseTtlMs: 3000, name: 'test', logger };
    const first = await openClusterLink({ ...opts, streamMaxAgeMs: 8 * 86_400_000 });
    links.push(first);
    expect((await first.jsm.streams.info(BATCH_STREAM)).config.max_age).toBe(8 * 86_400_000 * 1_000_000);
    const second = await openClusterLink({ ...opts, streamMaxAgeMs: 2 * 86_400_000 });
    links.push(second);
    expect((await second.jsm.streams.info(BATCH_STREAM)).config.max_age).toBe(2 * 86_400_000 * 1_000_000);
    // A link without the setting (a tool, a test) leaves it alone.
    const third = await openClusterLink(opts);
    links.push(third);
    expect((await third.jsm.streams.info(BATCH_STREAM)).config.max_age).toBe(2 * 86_400_000 * 1_000_000);
    // Ended commands leave kiseki-commands after twice a command's wait; a bucket made without that limit gets it.
    const commandStream = `KV_${COMMAND_BUCKET}`;
    expect((await third.jsm.streams.info(commandStream)).config.max_age).toBe(COMMAND_BUCKET_MAX_AGE_MS * 1_000_000);
    await third.jsm.streams.update(commandStream, { max_age: 0 });
    const fourth = await openClusterLink(opts);
    links.push(fourth);
    expect((await fourth.jsm.streams.info(commandStream)).config.max_age).toBe(14 * 86_400_000 * 1_000_000);
  });

  it('answers unavailable when JetStream cannot ack, and reports the failure', async () => {
    const l = await link();
    const committer = createJetStreamCommitter({ js: l.js, directory: { ensurePublished: async () => undefined }, clock: systemClock, logger, metrics: createMetrics({ defaultMetrics: false }), maxInFlight: 8, publishTimeoutMs: 1000 });
    nats.child.kill('SIGKILL');
    await nats.exited;
    expect(await submit(committer, batch('b-9', 9))).toBe('unavailable');
    expect(committer.storageFailure()).toMatchObject({ failures: 1 });
  });

  it('shares the virtual shards between two nodes and hands a released node’s shards over', async () => {
    const events: string[] = [];
    const make = async (nodeId: string) =>
      createVshardLeases({
        kv: (await link()).leases,
        nodeId,
        ttlMs: 3000,
        clock: systemClock,
        logger,
        onAcquire: async (v) => void events.push(`${nodeId}+${v}`),
        onRelease: async (v) => void events.push(`${nodeId}-${v}`),
      });
    const a = await make('a');
    await a.start();
    expect(a.owned()).toHaveLength(VIRTUAL_SHARDS);
    const b = await make('b');
    await b.start();
    // A sees two live nodes at its next round and releases half; B takes them at its next.
    await eventually(async () => (a.owned().length === VIRTUAL_SHARDS / 2 && b.owned().length === VIRTUAL_SHARDS / 2 ? true : undefined), 300, 100);
    const union = new Set([...a.owned(), ...b.owned()]);
    expect(union.size).toBe(VIRTUAL_SHARDS);
    // Every shard B took was released by A first.
    for (const v of b.owned()) expect(events.indexOf(`a-${v}`)).toBeLessThan(events.indexOf(`b+${v}`));
    await b.stop();
    await eventually(async () => (a.owned().length === VIRTUAL_SHARDS ? true : undefined), 300, 100);
    await a.stop();
    expect(a.owned()).toHaveLength(0);
  });
});
