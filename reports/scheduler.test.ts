import { describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { createSilentLogger } from '../core/logger.js';
import { createReportTemplates } from '../api/index.js';
import type { HotStore } from '../storage/index.js';
import type { PdfRenderer } from './pdf.js';
import { createReportScheduler, MAX_REPORT_DEFERRAL_MS } from './scheduler.js';
import { useTempStore } from '../test/support/temp-store.js';

const jst = (iso: string): number => Date.parse(`${iso}+09:00`);

/** Records the HTML it was given; the PDF itself is tested in reports.test.ts with Chromium. */
function fakePdf(): PdfRenderer & { rendered: string[] } {
  const rendered: string[] = [];
  return { rendered, render: async (html) => (rendered.push(html), Buffer.from('%PDF-fake')), close: async () => undefined };
}

describe('report scheduler', () => {
  let store: HotStore;
  useTempStore('kiseki-report-sched-', (s) => (store = s));

  it('makes each period report once, at the JST period start, and an incident report per black alert, remade after a comment', async () => {
    await store.tenants.create({ supportId: 'TA', name: 'A', now: jst('2026-09-01T00:00:00') });
    const black = { id: 'al_b', tmid: 'D1', supportId: 'TA', computer: 'PC', sha256: 'a'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked', detectedAt: jst('2026-10-30T09:00:00'), createdAt: jst('2026-10-30T09:00:00'), state: 'reported' as const, verdict: 'black' as const, score: 90, revision: 1, repeats: 0, openUntil: 0, isolationRequested: false };
    await store.transaction(() => {
      store.alerts.saveSync(black);
      store.alerts.indexSync(black);
      store.alerts.saveSync({ ...black, id: 'al_g', verdict: 'gray' });
      store.alerts.indexSync({ ...black, id: 'al_g', verdict: 'gray' });
    });
    const clock = createManualClock(jst('2026-10-31T23:59:00'));
    const pdf = fakePdf();
    const s = createReportScheduler({ store, pdf, templates: createReportTemplates(), clock, logger: createSilentLogger() });
    // Saturday 31 Oct: September and the week of 19 Oct are due (the week of 26 Oct has not ended).
    expect((await s.runOnce()).generated.sort()).toEqual(['rp_TA_incident_al_b', 'rp_TA_monthly_2026-09', 'rp_TA_weekly_2026-W43']);
    expect((await s.runOnce()).generated).toEqual([]);
    clock.set(jst('2026-11-01T00:00:30'));
    expect((await s.runOnce()).generated).toEqual(['rp_TA_monthly_2026-10']);
    clock.set(jst('2026-11-02T00:00:30'));
    expect((await s.runOnce()).generated).toEqual(['rp_TA_weekly_2026-W44']);
    await store.alerts.addComment({ alertId: 'al_b', at: clock.now(), author: 'op', text: '詳細分析を追記' });
    clock.advance(1000);
    expect((await s.runOnce()).generated).toEqual(['rp_TA_incident_al_b']);
    expect(pdf.rendered.at(-1)).toContain('詳細分析を追記');
    // Newest period start first.
    expect(store.periodicReports.listTenant('TA').map((r) => r.id)).toEqual([
      'rp_TA_incident_al_b',
      'rp_TA_weekly_2026-W44',
      'rp_TA_weekly_2026-W43',
      'rp_TA_monthly_2026-10',
      'rp_TA_monthly_2026-09',
    ]);
  });

  it('makes at most incidentReportsPerRound incident reports a round, newest alert first, and the rest in later rounds', async () => {
    await store.tenants.create({ supportId: 'TB', name: 'B', now: jst('2026-10-31T00:00:00') });
    const at = jst('2026-10-31T09:00:00');
    const black = (i: number) => ({ id: `al_${i}`, tmid: 'D1', supportId: 'TB', computer: 'PC', sha256: 'b'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked', detectedAt: at + i, createdAt: at + i, state: 'reported' as const, verdict: 'black' as const, score: 90, revision: 1, repeats: 0, openUntil: 0, isolationRequested: false });
    await store.transaction(() => {
      for (let i = 1; i <= 5; i++) {
        store.alerts.saveSync(black(i));
        store.alerts.indexSync(black(i));
      }
    });
    const clock = createManualClock(jst('2026-10-31T10:00:00'));
    const s = createReportScheduler({ store, pdf: fakePdf(), templates: createReportTemplates(), clock, logger: createSilentLogger(), kinds: [], incidentReportsPerRound: 2 });
    expect(await s.runOnce()).toMatchObject({ generated: ['rp_TB_incident_al_5', 'rp_TB_incident_al_4'], incidentsDeferred: 3 });
    expect(await s.runOnce()).toMatchObject({ generated: ['rp_TB_incident_al_3', 'rp_TB_incident_al_2'], incidentsDeferred: 1 });
    expect(await s.runOnce()).toMatchObject({ generated: ['rp_TB_incident_al_1'], incidentsDeferred: 0 });
    expect(await s.runOnce()).toMatchObject({ generated: [], incidentsDeferred: 0 });
  });

  it('makes no report while the service is busy, for an hour at most, then makes them whatever the load', async () => {
    await store.tenants.create({ supportId: 'TC', name: 'C', now: jst('2026-09-01T00:00:00') });
    const at = jst('2026-10-31T09:00:00');
    const black = { id: 'al_c', tmid: 'D1', supportId: 'TC', computer: 'PC', sha256: 'c'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked', detectedAt: at, createdAt: at, state: 'reported' as const, verdict: 'black' as const, score: 90, revision: 1, repeats: 0, openUntil: 0, isolationRequested: false };
    await store.transaction(() => {
      store.alerts.saveSync(black);
      store.alerts.indexSync(black);
    });
    const clock = createManualClock(jst('2026-10-31T10:00:00'));
    let busy = true;
    const pdf = fakePdf();
    const s = createReportScheduler({ store, pdf, templates: createReportTemplates(), clock, logger: createSilentLogger(), kinds: ['monthly'], busy: () => busy });
    expect(await s.runOnce()).toMatchObject({ generated: [], incidentsDeferred: 1, heldForLoad: true });
    clock.advance(MAX_REPORT_DEFERRAL_MS - 60_000);
    expect(await s.runOnce()).toMatchObject({ generated: [], incidentsDeferred: 1, heldForLoad: true });
    expect(pdf.rendered).toHaveLength(0);
    // An hour of load: made anyway.
    clock.advance(60_000);
    expect((await s.runOnce()).generated.sort()).toEqual(['rp_TC_incident_al_c', 'rp_TC_monthly_2026-09']);
    // Still busy after the hour: rounds keep making what is due.
    clock.advance(1000);
    await store.alerts.addComment({ alertId: 'al_c', at: clock.now(), author: 'op', text: 'more' });
    clock.advance(1000);
    expect(await s.runOnce()).toMatchObject({ generated: ['rp_TC_incident_al_c'], heldForLoad: false });
    // A quiet round ends the wait; the next busy round waits again, from its own start.
    busy = false;
    expect(await s.runOnce()).toMatchObject({ generated: [], heldForLoad: false });
    await store.alerts.addComment({ alertId: 'al_c', at: clock.now() + 500, author: 'op', text: 'again' });
    clock.advance(1000);
    busy = true;
    expect(await s.runOnce()).toMatchObject({ generated: [], incidentsDeferred: 1, heldForLoad: true });
  });
});
