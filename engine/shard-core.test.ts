import { encode } from '@msgpack/msgpack';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { inspectStore, openHotStore, type HotStore } from '../storage/index.js';
import { INVALID_KIND, ShardCore } from './shard-core.js';
import { workerOf } from '../core/vshard.js';

function eventsBytes(kinds: string[]): Uint8Array {
  return encode(kinds.map((k, i) => ({ ts: i, k, seq: i + 1 })));
}

async function commit(store: HotStore, lsn: number, tmid: string, bytes: Uint8Array): Promise<void> {
  await store.log.commitBatches([{ lsn, record: { tmid, id: lsn.toString(16).padStart(32, '0'), sentAt: 0, recvAt: 0, first: 1, last: 1, n: 1, z: compress(bytes) } }]);
}

function counts(store: HotStore): Record<string, number> {
  return inspectStore(store).eventsByKind;
}

describe('shard core', () => {
  let dir: string;
  let store: HotStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-shard-'));
    store = openHotStore({ dataDir: dir });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts events per kind per device, with unusable kinds counted apart', async () => {
    const core = new ShardCore({ store, index: 0, workers: 1 });
    core.recover();
    const bytes = encode([{ k: 'proc.start' }, { k: 'proc.start' }, { k: 'net.dns' }, { nok: 1 }, 7, { k: 'x'.repeat(65) }]);
    core.processBatch(1, 'DEV-A', bytes);
    await core.flush();
    expect(store.shardState.kindCounts('DEV-A')).toEqual({ 'proc.start': 2, 'net.dns': 1, [INVALID_KIND]: 3 });
    expect(core.stats.invalidEvents).toBe(3);
  });

  it('replays after a crash from its checkpoint: nothing lost, nothing counted twice', async () => {
    const b1 = eventsBytes(['proc.start', 'file.create']);
    const b2 = eventsBytes(['net.conn']);
    const b3 = eventsBytes(['reg.set', 'reg.set']);
    await commit(store, 1, 'DEV-A', b1);
    await commit(store, 2, 'DEV-B', b2);
    await commit(store, 3, 'DEV-A', b3);

    const first = new ShardCore({ store, index: 0, workers: 1 });
    expect(first.recover()).toBe(3);
    await first.flush();
    expect(counts(store)).toEqual({ 'proc.start': 1, 'file.create': 1, 'net.conn': 1, 'reg.set': 2 });

    // More batches arrive; the shard processes them but "crashes" before flushing.
    const b4 = eventsBytes(['logon']);
    await commit(store, 4, 'DEV-B', b4);
    first.processBatch(4, 'DEV-B', b4);

    const second = new ShardCore({ store, index: 0, workers: 1 });
    expect(second.recover()).toBe(1);
    await second.flush();
    expect(counts(store)).toEqual({ 'proc.start': 1, 'file.create': 1, 'net.conn': 1, 'reg.set': 2, logon: 1 });

    // A third start replays nothing.
    const third = new ShardCore({ store, index: 0, workers: 1 });
    expect(third.recover()).toBe(0);
    expect(third.processBatch(4, 'DEV-B', b4)).toBe(false);
  });

  it('takes only the devices of its own virtual shards, and catches up from the log', async () => {
    const mine = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'].map((s) => `DEV-${s}`);
    const tmid0 = mine.find((t) => workerOf(t, 2) === 0)!;
    const tmid1 = mine.find((t) => workerOf(t, 2) === 1)!;
    await commit(store, 1, tmid0, eventsBytes(['proc.start']));
    await commit(store, 2, tmid1, eventsBytes(['proc.end']));
    const w0 = new ShardCore({ store, index: 0, workers: 2 });
    const w1 = new ShardCore({ store, index: 1, workers: 2 });
    expect(w0.ownsDevice(tmid0) && !w0.ownsDevice(tmid1)).toBe(true);
    expect(w0.recover()).toBe(1);
    expect(w1.recover()).toBe(1);
    await commit(store, 3, tmid0, eventsBytes(['file.read']));
    expect(w0.catchUp(3)).toBe(1);
    expect(w1.catchUp(3)).toBe(0);
    await w0.flush();
    await w1.flush();
    expect(counts(store)).toEqual({ 'proc.start': 1, 'proc.end': 1, 'file.read': 1 });
    expect(inspectStore(store).minCheckpoint).toBe(3);
  });
});
