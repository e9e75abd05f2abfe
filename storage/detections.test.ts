import { describe, expect, it } from 'vitest';
import type { SigmaDetection } from '../core/contracts.js';
import type { HotStore } from './hot-store.js';
import { openTables } from './tables.js';
import { useTempStore } from '../test/support/temp-store.js';

const TMID = 'AAAAAAAA-0000-4000-8000-000000000001';

function detection(id: string, pg: string, at: number): SigmaDetection {
  return {
    id,
    supportId: 'T1',
    tmid: TMID,
    computer: 'PC-1',
    ruleId: 'r1',
    title: 'rule',
    level: 'high',
    severity: 'Serious',
    tags: [],
    author: 'a',
    lsn: 1,
    event: { tmid: TMID, seq: at, ts: at, k: 'proc.start' },
    pg,
    image: 'C:\\x.exe',
    at,
    createdAt: at,
    repeats: 0,
  };
}

// One temporary store per test, for both describe blocks.
let store: HotStore;
const temp = useTempStore('kiseki-detections-', (s) => (store = s));

describe('detections of a device by process', () => {

  it('returns only the detections of the asked processes in the time range, matching GUIDs in any case, old index entries included', async () => {
    const ds = [detection('sd_a', '{AAAA-1}', 100), detection('sd_b', '{BBBB-2}', 200), detection('sd_c', '{aaaa-1}', 300), detection('sd_d', '{AAAA-1}', 900)];
    await store.transaction(() => {
      for (const d of ds) {
        store.detections.saveSync(d);
        store.detections.indexSync(d);
      }
    });
    // An entry as written before the index named the process: the id alone.
    await temp.reopen(async (dir) => {
      const tables = openTables({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
      const old = detection('sd_old', '{AAAA-1}', 150);
      await tables.detections.put(old.id, old);
      await tables.deviceDetections.put([TMID, old.at, old.id], old.id);
      await tables.root.close();
      await tables.log.close();
    });

    const ids = (pgs: string[], from: number, to?: number) => store.detections.ofDeviceProcesses(TMID, new Set(pgs), from, to).map((d) => d.id);
    expect(ids(['{aaaa-1}'], 0, 500)).toEqual(['sd_a', 'sd_old', 'sd_c']);
    expect(ids(['{bbbb-2}'], 0)).toEqual(['sd_b']);
    expect(ids(['{aaaa-1}', '{bbbb-2}'], 150, 899)).toEqual(['sd_old', 'sd_b', 'sd_c']);
    expect(ids([], 0)).toEqual([]);
    expect(ids(['{cccc-3}'], 0)).toEqual([]);
    // The device's whole list is unchanged by the new index value.
    expect(store.detections.ofDevice(TMID, 0).map((d) => d.id)).toEqual(['sd_a', 'sd_old', 'sd_b', 'sd_c', 'sd_d']);
  });
});

describe('notification feed lag', () => {

  it('counts the entries after the notifier’s cursor and dates the oldest of them', async () => {
    expect(store.notify.feedLag()).toEqual({ events: 0, oldestAt: undefined });
    // Each new detection appends one detection.new entry, dated by its createdAt.
    await store.transaction(() => {
      for (const [i, at] of [1000, 2000, 3000].entries()) store.detections.indexSync({ ...detection(`sd_${i}`, '{A}', at), createdAt: at + 5 });
    });
    expect(store.notify.feedLag()).toEqual({ events: 3, oldestAt: 1005 });
    await store.transaction(() => store.notify.setCursorSync(2));
    expect(store.notify.feedLag()).toEqual({ events: 1, oldestAt: 3005 });
    await store.transaction(() => store.notify.setCursorSync(3));
    expect(store.notify.feedLag()).toEqual({ events: 0, oldestAt: undefined });
  });
});

describe('a cluster API node\'s copy of detections', () => {
  it('indexes a new detection once, keeps the version with more repeats, and announces only those stored since notifyFrom', async () => {
    const recent = detection('sd_new', '{AAAA-1}', 2000);
    const old = detection('sd_old', '{BBBB-2}', 1000);
    expect(await store.detections.mirror([recent, old], { notifyFrom: 1500 })).toBe(2);
    expect(await store.detections.mirror([recent], { notifyFrom: 1500 })).toBe(0);
    expect(await store.detections.mirror([{ ...recent, repeats: 3 }], { notifyFrom: 1500 })).toBe(0);
    expect(await store.detections.mirror([recent], { notifyFrom: 1500 })).toBe(0);
    expect(store.detections.get('sd_new')).toMatchObject({ repeats: 3 });
    expect(store.detections.ofDevice(TMID, 0).map((d) => d.id)).toEqual(['sd_old', 'sd_new']);
    expect(store.notify.feedAfter(0, 10).map((e) => [e.kind, e.detectionId])).toEqual([['detection.new', 'sd_new']]);
  });
});
