import { describe, expect, it } from 'vitest';
import type { AlertRecord, QuickReport, VerdictChange } from '../core/contracts.js';
import type { HotStore } from './hot-store.js';
import { useTempStore } from '../test/support/temp-store.js';

function alertOf(id: string, supportId: string, createdAt: number, tmid = 'D1'): AlertRecord {
  return {
    id, tmid, supportId, computer: 'PC', sha256: 'a'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked',
    detectedAt: createdAt - 5, createdAt, state: 'reported', verdict: 'gray', score: 0, revision: 1, repeats: 0, openUntil: createdAt, isolationRequested: false,
  };
}

describe('alert repository', () => {
  let store: HotStore;
  useTempStore('kiseki-alerts-', (s) => (store = s));

  async function add(...alerts: AlertRecord[]): Promise<void> {
    await store.transaction(() => {
      for (const a of alerts) {
        store.alerts.saveSync(a);
        store.alerts.indexSync(a);
      }
    });
  }

  it('lists a tenant newest first, pages strictly after a cursor, and keeps tenants apart', async () => {
    // Two alerts share a creation time: the id breaks the tie.
    await add(alertOf('al_1', 'TA', 1000), alertOf('al_2', 'TA', 3000), alertOf('al_3', 'TA', 2000), alertOf('al_4', 'TA', 3000), alertOf('al_b', 'TB', 2500));
    const ids = (it: Iterable<{ id: string }>) => [...it].map((a) => a.id);
    expect(ids(store.alerts.scanTenant('TA'))).toEqual(['al_4', 'al_2', 'al_3', 'al_1']);
    expect(ids(store.alerts.scanTenant('TA', { createdAt: 3000, id: 'al_4' }))).toEqual(['al_2', 'al_3', 'al_1']);
    expect(ids(store.alerts.scanTenant('TA', { createdAt: 3000, id: 'al_2' }))).toEqual(['al_3', 'al_1']);
    expect(ids(store.alerts.scanAll())).toEqual(['al_4', 'al_2', 'al_b', 'al_3', 'al_1']);
    expect(ids(store.alerts.scanAll({ createdAt: 2500, id: 'al_b' }))).toEqual(['al_3', 'al_1']);
    expect(store.alerts.latest('TA', 2).map((a) => a.id)).toEqual(['al_4', 'al_2']);
    expect(store.alerts.recentOfDevice('D1', 2)).toEqual([
      { alertId: 'al_4', detectedAt: 2995 },
      { alertId: 'al_2', detectedAt: 2995 },
    ]);
  });

  it("makes the analyst's last verdict the effective one everywhere, and fills the history's from", async () => {
    await add(alertOf('al_1', 'TA', 1000));
    const engine: VerdictChange = { alertId: 'al_1', at: 1000, revision: 1, from: null, to: 'gray', by: 'engine' };
    await store.transaction(() => store.alerts.putVerdictChangeSync(engine));
    expect(store.alerts.effective('al_1')).toMatchObject({ verdict: 'gray', engineVerdict: 'gray', verdictBy: 'engine' });

    expect(await store.alerts.setVerdict({ alertId: 'al_1', at: 2000, by: 'op.sato', verdict: 'black' })).toMatchObject({ before: 'gray', alert: { verdict: 'black' } });
    expect(await store.alerts.setVerdict({ alertId: 'al_1', at: 3000, by: 'op.kato', verdict: 'white', comment: 'known tool' })).toMatchObject({ before: 'black' });
    // A later engine revision changes the engine's verdict, not the effective one.
    await store.transaction(() => store.alerts.putVerdictChangeSync({ ...engine, at: 4000, revision: 2, from: 'gray', to: 'black' }));

    expect(store.alerts.effective('al_1')).toMatchObject({ verdict: 'white', engineVerdict: 'gray', verdictBy: 'op.kato' });
    expect(store.alerts.latest('TA')[0]).toMatchObject({ verdict: 'white', verdictBy: 'op.kato' });
    expect([...store.alerts.scanTenant('TA')][0]).toMatchObject({ verdict: 'white' });
    const view = store.alerts.view('al_1')!;
    expect(view.alert.verdict).toBe('white');
    expect(view.verdicts.map((v) => [v.at, v.revision, v.from, v.to, v.by])).toEqual([
      [1000, 1, null, 'gray', 'engine'],
      [2000, null, 'gray', 'black', 'op.sato'],
      [3000, null, 'black', 'white', 'op.kato'],
      [4000, 2, 'gray', 'black', 'engine'],
    ]);
    expect(view.verdicts[2]!.comment).toBe('known tool');
    expect(await store.alerts.setVerdict({ alertId: 'al_none', at: 1, by: 'x', verdict: 'black' })).toBeUndefined();
  });

  it('keeps comments in time order per alert', async () => {
    await add(alertOf('al_1', 'TA', 1000), alertOf('al_2', 'TA', 1000));
    await store.alerts.addComment({ alertId: 'al_1', at: 20, author: 'a', text: 'second' });
    await store.alerts.addComment({ alertId: 'al_1', at: 10, author: 'a', text: 'first' });
    await store.alerts.addComment({ alertId: 'al_2', at: 15, author: 'a', text: 'other' });
    expect(store.alerts.comments('al_1').map((c) => c.text)).toEqual(['first', 'second']);
    expect(await store.alerts.addComment({ alertId: 'al_none', at: 1, author: 'a', text: 'x' })).toBeUndefined();
  });

  it('mirrors alerts of other nodes: indexed once, the newest version kept, reports stored, no feed entry', async () => {
    const report = (alertId: string, revision: number) => ({ alertId, revision, createdAt: 1000 + revision, tmid: 'D1', supportId: 'TA' }) as unknown as QuickReport;
    const a = alertOf('al_m', 'TA', 1000);
    expect(await store.alerts.mirror([{ alert: a, report: report('al_m', 1) }, { alert: alertOf('al_n', 'TA', 2000) }])).toBe(2);
    // A later revision replaces it; an older one (a replay published late) and a repeat-less copy do not.
    expect(await store.alerts.mirror([{ alert: { ...a, revision: 2, repeats: 1, verdict: 'black' }, report: report('al_m', 2) }])).toBe(0);
    expect(await store.alerts.mirror([{ alert: a, report: report('al_m', 1) }, { alert: { ...a, revision: 2 } }])).toBe(0);
    expect(store.alerts.get('al_m')).toMatchObject({ revision: 2, repeats: 1, verdict: 'black' });
    expect(store.alerts.revision('al_m', 2)).toMatchObject({ alertId: 'al_m', revision: 2 });
    expect([...store.alerts.scanTenant('TA')].map((x) => x.id)).toEqual(['al_n', 'al_m']);
    expect(store.alerts.recentOfDevice('D1', 10)).toHaveLength(2);
    expect(store.notify.feedAfter(0, 10)).toEqual([]);
  });

  it("seeds a shard node with other nodes' alerts: the newest version kept, each its file's latest dedup entry, no feed entry", async () => {
    const first = { ...alertOf('al_1', 'TA', 1000), path: 'C:\\Evil.exe', sha256: '' };
    const later = { ...alertOf('al_2', 'TA', 9000), path: 'c:\\evil.exe', sha256: '' };
    expect(await store.alerts.seed([later, first])).toBe(2);
    // The file's dedup entry is its latest detection on the device, whatever the order the copies came in.
    expect(store.alerts.dedup('D1', 'c:\\evil.exe')).toEqual({ alertId: 'al_2', at: 8995 });
    expect(store.alerts.dedup('D1', 'a'.repeat(64))).toBeUndefined();
    // A repeat counted elsewhere replaces the copy; an older copy (published late) does not.
    expect(await store.alerts.seed([{ ...first, repeats: 2 }])).toBe(0);
    expect(await store.alerts.seed([first])).toBe(0);
    expect(store.alerts.get('al_1')).toMatchObject({ repeats: 2 });
    expect(store.alerts.dedup('D1', 'c:\\evil.exe')).toEqual({ alertId: 'al_2', at: 8995 });
    expect([...store.alerts.scanTenant('TA')].map((x) => x.id)).toEqual(['al_2', 'al_1']);
    expect(store.notify.feedAfter(0, 10)).toEqual([]);
  });

  it("mirrors with notifyFrom: the engine's alert.new and alert.verdict entries for changes since then, none for older ones or after an analyst's verdict", async () => {
    const report = (alertId: string, revision: number, createdAt: number) => ({ alertId, revision, createdAt, tmid: 'D1', supportId: 'TA' }) as unknown as QuickReport;
    const since = { notifyFrom: 1500 };
    const old = alertOf('al_old', 'TA', 1000);
    const fresh = alertOf('al_new', 'TA', 2000);
    const kept = alertOf('al_kept', 'TA', 2100);
    // A copy of the bucket's history: only the alert created since notifyFrom is announced.
    await store.alerts.mirror([{ alert: old, report: report('al_old', 1, 1001) }, { alert: fresh, report: report('al_new', 1, 2001) }, { alert: kept }], since);
    // Later revisions: a verdict change (announced), one from before notifyFrom (not), a repeat keeping the verdict (not).
    await store.alerts.mirror([{ alert: { ...fresh, revision: 2, verdict: 'black' }, report: report('al_new', 2, 2500) }], since);
    await store.alerts.mirror([{ alert: { ...old, revision: 2, verdict: 'black' }, report: report('al_old', 2, 1400) }], since);
    await store.alerts.mirror([{ alert: { ...fresh, revision: 2, repeats: 1, verdict: 'black' } }], since);
    // A replay published late (older revision) changes nothing and announces nothing.
    await store.alerts.mirror([{ alert: fresh, report: report('al_new', 1, 2001) }], since);
    // An analyst's verdict here wins over the engine's: a later engine change is not announced (as on a shard node).
    await store.alerts.setVerdict({ alertId: 'al_kept', at: 2200, by: 'op', verdict: 'white' });
    await store.alerts.mirror([{ alert: { ...kept, revision: 2, verdict: 'black' }, report: report('al_kept', 2, 2300) }], since);
    // Without notifyFrom, a copy announces nothing.
    await store.alerts.mirror([{ alert: alertOf('al_quiet', 'TA', 3000) }]);

    const feed = store.notify.feedAfter(0, 100).map(({ seq: _seq, ...e }) => e);
    expect(feed).toEqual([
      { kind: 'alert.new', supportId: 'TA', at: 2000, alertId: 'al_new', tmid: 'D1', verdict: 'gray', state: 'reported', by: 'engine' },
      { kind: 'alert.new', supportId: 'TA', at: 2100, alertId: 'al_kept', tmid: 'D1', verdict: 'gray', state: 'reported', by: 'engine' },
      { kind: 'alert.verdict', supportId: 'TA', at: 2500, alertId: 'al_new', tmid: 'D1', verdict: 'black', from: 'gray', by: 'engine' },
      { kind: 'alert.verdict', supportId: 'TA', at: 2200, alertId: 'al_kept', tmid: 'D1', verdict: 'white', from: 'gray', by: 'op' },
    ]);
    expect(store.alerts.get('al_old')).toMatchObject({ revision: 2, verdict: 'black' });
  });

  it("copies analysts' verdicts and comments of other API nodes once, announcing a copied change like setVerdict within the horizon", async () => {
    await add(alertOf('al_1', 'TA', 1000), alertOf('al_2', 'TA', 1000));
    const verdict = (id: string, alertId: string, at: number, v: 'black' | 'white') => ({ kind: 'verdict' as const, verdict: { id, alertId, at, by: 'op.b', verdict: v, from: 'gray' as const } });
    expect(await store.alerts.mirrorAnalysis(verdict('av_1', 'al_1', 2000, 'black'), { notifyFrom: 1500 })).toBe(true);
    // Held already: nothing written twice, nothing announced twice.
    expect(await store.alerts.mirrorAnalysis(verdict('av_1', 'al_1', 2000, 'black'), { notifyFrom: 1500 })).toBe(false);
    // Before the horizon: stored, not announced; an older verdict arriving late is not the latest: not announced.
    expect(await store.alerts.mirrorAnalysis(verdict('av_2', 'al_2', 1200, 'white'), { notifyFrom: 1500 })).toBe(true);
    expect(await store.alerts.mirrorAnalysis(verdict('av_0', 'al_1', 1800, 'white'), { notifyFrom: 1500 })).toBe(true);
    const comment = { kind: 'comment' as const, comment: { id: 'co_1', alertId: 'al_1', at: 2100, author: 'op.b', text: 'seen' } };
    expect(await store.alerts.mirrorAnalysis(comment)).toBe(true);
    expect(await store.alerts.mirrorAnalysis(comment)).toBe(false);

    expect(store.alerts.effective('al_1')).toMatchObject({ verdict: 'black', verdictBy: 'op.b' });
    expect(store.alerts.effective('al_2')).toMatchObject({ verdict: 'white' });
    expect(store.alerts.comments('al_1')).toEqual([comment.comment]);
    const changes = store.notify.feedAfter(0, 10).filter((e) => e.kind === 'alert.verdict');
    expect(changes.map((e) => [e.alertId, e.verdict, e.from, e.by])).toEqual([['al_1', 'black', 'gray', 'op.b']]);
    expect([...store.alerts.analysisRecords()].map((r) => (r.kind === 'verdict' ? r.verdict.id : r.comment.id))).toEqual(['av_0', 'av_1', 'av_2', 'co_1']);
  });
});
