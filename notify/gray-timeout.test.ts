import { describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import type { HotStore } from '../storage/index.js';
import { applyGrayTimeouts, GRAY_TIMEOUT_ACTOR } from './gray-timeout.js';
import { testAlert } from './test-support.js';
import { useTempStore } from '../test/support/temp-store.js';

const jst = (iso: string): number => Date.parse(`${iso}+09:00`);

describe('gray → white after 3 business days without an answer', () => {
  let store: HotStore;
  useTempStore('kiseki-gray-', (s) => (store = s));

  it('waits across a weekend and a national holiday, skips answered alerts, and records who and from', async () => {
    // Thursday 19 Nov 2026: Fri 20 counts, Sat 21 / Sun 22 / Mon 23 (勤労感謝の日) do not, Tue 24, Wed 25 → due Thu 26 00:00 JST.
    const created = jst('2026-11-19T15:00:00');
    await store.transaction(() => {
      for (const a of [testAlert('al_gray', 'TA', created, 'gray'), testAlert('al_answered', 'TA', created + 1, 'gray'), testAlert('al_black', 'TA', created + 2, 'black')]) {
        store.alerts.saveSync(a);
        store.alerts.indexSync(a);
      }
    });
    await store.answers.add({ alertId: 'al_answered', supportId: 'TA', at: created + 3_600_000, by: 'customer.admin', text: '社内ツールです' });
    const clock = createManualClock(jst('2026-11-24T12:00:00'));
    // A naive "3 calendar days" or "weekends only" rule would already have fired here.
    expect(await applyGrayTimeouts({ store, clock })).toEqual([]);
    clock.set(jst('2026-11-25T23:59:59'));
    expect(await applyGrayTimeouts({ store, clock })).toEqual([]);
    clock.set(jst('2026-11-26T00:00:00'));
    expect(await applyGrayTimeouts({ store, clock })).toEqual(['al_gray']);
    expect(await applyGrayTimeouts({ store, clock })).toEqual([]);

    expect(store.alerts.effective('al_gray')).toMatchObject({ verdict: 'white', engineVerdict: 'gray', verdictBy: GRAY_TIMEOUT_ACTOR });
    expect(store.alerts.effective('al_answered')).toMatchObject({ verdict: 'gray' });
    expect(store.alerts.effective('al_black')).toMatchObject({ verdict: 'black' });
    const history = store.alerts.view('al_gray')!.verdicts;
    expect(history.at(-1)).toMatchObject({ from: 'gray', to: 'white', by: GRAY_TIMEOUT_ACTOR, at: jst('2026-11-26T00:00:00') });
    expect([...store.identity.scanAudit()].map((a) => [a.action, a.target, a.actor])).toEqual([['alert.verdict_changed', 'al_gray', GRAY_TIMEOUT_ACTOR]]);
    // The change is in the notification feed.
    expect(store.notify.feedAfter(0, 10).filter((e) => e.kind === 'alert.verdict')).toMatchObject([{ alertId: 'al_gray', from: 'gray', verdict: 'white', by: GRAY_TIMEOUT_ACTOR }]);
  });
});
