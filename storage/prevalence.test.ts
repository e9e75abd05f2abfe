import { describe, expect, it } from 'vitest';
import type { HotStore } from './hot-store.js';
import { mergePrevalence, PREVALENCE_DEVICE_CAP } from './prevalence.js';
import { useTempStore } from '../test/support/temp-store.js';

const SHA = 'ab'.repeat(32);

describe('fleet prevalence records', () => {
  let store: HotStore;
  useTempStore('kiseki-prevalence-', (s) => (store = s));

  it('merges sightings per tenant and file: distinct devices, earliest first, latest last, newest signer', async () => {
    expect(store.prevalence.get('T1', SHA)).toBeUndefined();
    await store.transaction(() => {
      store.prevalence.recordSync('T1', SHA, [
        { tmid: 'd1', first: 2_000, last: 3_000, signer: 'Microsoft Windows', sig: 'trusted' },
        { tmid: 'd2', first: 1_000, last: 1_500 },
      ]);
    });
    await store.transaction(() => {
      // d1 again, earlier and later than before; a third device; another tenant's file stays apart.
      store.prevalence.recordSync('T1', SHA, [{ tmid: 'd1', first: 500, last: 9_000 }, { tmid: 'd3', first: 4_000, last: 4_000, sig: 'unsigned' }]);
      store.prevalence.recordSync('T2', SHA, [{ tmid: 'x1', first: 7, last: 7 }]);
    });
    expect(store.prevalence.get('T1', SHA)).toEqual({
      devices: [['d1', 500], ['d2', 1_000], ['d3', 4_000]],
      saturated: false,
      firstSeen: 500,
      lastSeen: 9_000,
      signer: 'Microsoft Windows',
      sig: 'unsigned',
    });
    expect(store.prevalence.get('T2', SHA)).toMatchObject({ devices: [['x1', 7]], firstSeen: 7, lastSeen: 7 });
    expect(store.prevalence.get('T1', 'cd'.repeat(32))).toBeUndefined();
  });

  it('is idempotent: the same sightings again (a replay after a crash) change nothing', async () => {
    const sightings = [{ tmid: 'd1', first: 10, last: 20 }, { tmid: 'd2', first: 15, last: 15 }];
    await store.transaction(() => store.prevalence.recordSync('T1', SHA, sightings));
    const once = store.prevalence.get('T1', SHA);
    await store.transaction(() => store.prevalence.recordSync('T1', SHA, sightings));
    expect(store.prevalence.get('T1', SHA)).toEqual(once);
  });

  it(`keeps ${PREVALENCE_DEVICE_CAP} device ids, then only says that more devices had the file`, async () => {
    const many = Array.from({ length: PREVALENCE_DEVICE_CAP + 6 }, (_, i) => ({ tmid: `d${i}`, first: 100 + i, last: 100 + i }));
    await store.transaction(() => store.prevalence.recordSync('T1', SHA, many));
    const r = store.prevalence.get('T1', SHA)!;
    expect(r.devices).toHaveLength(PREVALENCE_DEVICE_CAP);
    expect(r.saturated).toBe(true);
    expect(r.lastSeen).toBe(100 + PREVALENCE_DEVICE_CAP + 5);
    // A device already kept still moves its first sighting earlier.
    expect(mergePrevalence(r, [{ tmid: 'd3', first: 1, last: 1 }])!.devices[3]).toEqual(['d3', 1]);
    expect(mergePrevalence(r, [])).toBe(r);
  });
});
