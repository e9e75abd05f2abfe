import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp, createReportTemplates } from '../api/index.js';
import { createManualClock } from '../core/clock.js';
import type { AlertRecord } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { generateIncidentReport, generatePeriodicReport, quickReportPdf } from './generate.js';
import { createPdfRenderer, findChromium, type PdfRenderer } from './pdf.js';
import { monthOf, previousPeriod, thirteenMonthsAfter, weekOf } from './periods.js';

const hasPdftotext = spawnSync('pdftotext', ['-v']).error === undefined;
const chromium = findChromium();
const missing = [chromium === undefined ? 'chromium' : '', hasPdftotext ? '' : 'poppler-utils (pdftotext)'].filter(Boolean);
if (missing.length > 0) console.log(`skipping report PDF tests: install ${missing.join(' and ')} (apt-get install chromium fonts-noto-cjk poppler-utils)`);

const jst = (iso: string): number => Date.parse(`${iso}+09:00`);
const NOW = jst('2026-11-01T00:10:00');

function alert(id: string, createdAt: number, verdict: AlertRecord['verdict'], score: number, threat: string, extra: Partial<AlertRecord> = {}): AlertRecord {
  return {
    id, tmid: 'D1', supportId: 'TA', computer: 'PC-経理-01', sha256: 'a'.repeat(64), path: 'C:\\Users\\u\\x.exe', threat, engine: 'Defender', action: 'blocked',
    detectedAt: createdAt - 1000, createdAt, state: 'reported', verdict, score, revision: 1, repeats: 0, openUntil: createdAt, isolationRequested: false, ...extra,
  };
}

function pdfText(pdf: Buffer, dir: string): string {
  const path = join(dir, `r-${Math.random().toString(36).slice(2)}.pdf`);
  writeFileSync(path, pdf);
  return execFileSync('pdftotext', ['-layout', path, '-'], { encoding: 'utf8' });
}

describe('periods (JST)', () => {
  it.each([
    ['2026-11-01T00:10:00', 'monthly', '2026-10', '2026-10-01T00:00:00', '2026-11-01T00:00:00'],
    ['2027-01-01T00:00:00', 'monthly', '2026-12', '2026-12-01T00:00:00', '2027-01-01T00:00:00'],
    ['2026-11-02T00:05:00', 'weekly', '2026-W44', '2026-10-26T00:00:00', '2026-11-02T00:00:00'],
  ] as const)('at %s the %s report covers %s', (at, kind, label, start, end) => {
    expect(previousPeriod(kind, jst(at))).toEqual({ kind, label, start: jst(start), end: jst(end) });
  });
  it('cuts months and weeks at JST midnight, not UTC', () => {
    expect(monthOf(jst('2026-10-31T23:59:59')).label).toBe('2026-10');
    expect(monthOf(jst('2026-11-01T00:00:00')).label).toBe('2026-11');
    expect(weekOf(jst('2026-11-01T23:00:00')).label).toBe('2026-W44');
    expect(thirteenMonthsAfter(jst('2026-11-01T00:00:00'))).toBe(jst('2027-12-01T00:00:00'));
    expect(thirteenMonthsAfter(jst('2026-10-31T12:00:00'))).toBe(jst('2027-11-30T12:00:00'));
  });
});

describe.skipIf(missing.length > 0)('monthly and incident reports (HTML + PDF through Chromium, read back with pdftotext)', { timeout: 180_000 }, () => {
  let dir: string;
  let store: HotStore;
  let pdf: PdfRenderer;
  let app: ReturnType<typeof createHttpApp>;
  const tokens: Record<string, string> = {};
  const clock = createManualClock(NOW);
  const templates = createReportTemplates();
  const get = (path: string, who: string) => app.request(path, { headers: { authorization: `Bearer ${tokens[who]}` } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-reports-'));
    store = openHotStore({ dataDir: join(dir, 'db'), mapSizeBytes: 64 * 1024 * 1024 });
    pdf = createPdfRenderer();
    const { tenant } = await store.tenants.create({ supportId: 'TA', name: '株式会社サンプル', now: jst('2026-09-01T00:00:00') });
    await store.tenants.create({ supportId: 'TB', name: 'B', now: NOW });
    const facts = { computer: 'PC-経理-01', agentVersion: '2.1.0', os: 'Windows 11', ips: [], macs: [] };
    const d1 = await store.devices.enroll(tenant, facts, jst('2026-09-01T00:00:00'));
    await store.devices.enroll(tenant, { ...facts, computer: 'PC-02', agentVersion: '2.0.3' }, jst('2026-09-02T00:00:00'));
    for (const [id, role, supportId] of [['op.x', 'operator', null], ['admin.a', 'admin', 'TA'], ['admin.b', 'admin', 'TB']] as const) {
      await store.identity.createUser({ id, role, supportId, password: 'pass-word', now: NOW, mustChangePassword: false });
      tokens[id] = await store.identity.createSession(id, 'token', NOW, 3_600_000);
    }
    const alerts = [
      alert('al_sep', jst('2026-09-30T23:59:00'), 'black', 95, 'Trojan:Win32/Old'),
      alert('al_1', jst('2026-10-01T00:00:00'), 'black', 95, 'Trojan:Win32/Emotet'),
      alert('al_2', jst('2026-10-05T10:00:00'), 'black', 85, 'Trojan:Win32/Emotet'),
      alert('al_3', jst('2026-10-12T10:00:00'), 'gray', 60, 'PUA:Win32/Toolbar'),
      alert('al_4', jst('2026-10-20T10:00:00'), 'gray', 55, 'PUA:Win32/Toolbar'),
      alert('al_5', jst('2026-10-31T23:59:00'), 'white', 10, 'HackTool:Win32/Mimikatz'),
      alert('al_sup', jst('2026-10-15T10:00:00'), 'black', 99, 'Trojan:Win32/Suppressed', { state: 'suppressed' }),
      alert('al_nov', jst('2026-11-01T00:00:00'), 'black', 95, 'Trojan:Win32/New'),
    ].map((a) => ({ ...a, tmid: d1.device.tmid }));
    await store.transaction(() => {
      for (const a of alerts) {
        store.alerts.saveSync(a);
        store.alerts.indexSync(a);
      }
    });
    // An analyst turns one gray black: the report counts the effective verdict.
    await store.alerts.setVerdict({ alertId: 'al_4', at: jst('2026-10-21T10:00:00'), by: 'op.x', verdict: 'black', comment: '外部通信を確認' });
    await store.alerts.addComment({ alertId: 'al_2', at: jst('2026-10-05T12:00:00'), author: 'op.x', text: '添付ファイル経由の感染と判断' });
    await store.answers.add({ alertId: 'al_2', supportId: 'TA', at: jst('2026-10-06T09:00:00'), by: 'admin.a', text: '該当端末を回収しました' });
    await store.exceptions.add({ supportId: 'TA', sha256: 'b'.repeat(64), reason: '業務ツール', createdBy: 'op.x', createdAt: jst('2026-10-10T00:00:00') });
    await store.exceptions.add({ supportId: 'TA', sha256: 'c'.repeat(64), reason: 'old', createdBy: 'op.x', createdAt: jst('2026-09-10T00:00:00') });
    app = createHttpApp({
      metrics: createMetrics({ defaultMetrics: false }),
      health: { problems: () => [], details: () => ({}) },
      api: { store, clock, logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
    });
  });
  afterAll(async () => {
    await pdf?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the Japanese headings and the counts the API returns', async () => {
    const record = await generatePeriodicReport({ store, pdf, clock, templates }, 'TA', previousPeriod('monthly', NOW));
    expect(record).toMatchObject({ id: 'rp_TA_monthly_2026-10', label: '2026-10', expiresAt: Date.parse('2027-11-30T15:00:00Z') });

    const list = (await (await get('/api/v1/reports', 'admin.a')).json()) as { items: { id: string; links: { pdf: string } }[] };
    expect(list.items.map((r) => r.id)).toEqual(['rp_TA_monthly_2026-10']);
    expect(((await (await get('/api/v1/reports', 'admin.b')).json()) as { items: unknown[] }).items).toEqual([]);
    expect((await get(`/api/v1/reports/${record.id}`, 'admin.b')).status).toBe(404);
    const api = (await (await get(`/api/v1/reports/${record.id}`, 'admin.a')).json()) as { figures: Record<string, unknown> & { byVerdict: Record<string, number>; bySeverity: Record<string, number> } };
    expect(api.figures).toMatchObject({
      detections: 5,
      byVerdict: { black: 3, gray: 1, white: 1 },
      bySeverity: { high: 2, medium: 2, low: 1 },
      devices: 2,
      exceptionsAdded: 1,
      topThreats: [{ name: 'PUA:Win32/Toolbar', count: 2 }, { name: 'Trojan:Win32/Emotet', count: 2 }, { name: 'HackTool:Win32/Mimikatz', count: 1 }],
      agentVersions: [{ version: '2.0.3', count: 1 }, { version: '2.1.0', count: 1 }],
    });
    // The same counts from the alert list API, month by month.
    const alerts = (await (await get('/api/v1/alerts?limit=100', 'admin.a')).json()) as { items: { createdAt: number; verdict: string; state: string }[] };
    const october = alerts.items.filter((a) => a.state === 'reported' && a.createdAt >= jst('2026-10-01T00:00:00') && a.createdAt < jst('2026-11-01T00:00:00'));
    expect(october.length).toBe(api.figures.detections);
    for (const v of ['black', 'gray', 'white']) expect(october.filter((a) => a.verdict === v).length).toBe(api.figures.byVerdict[v]);

    const res = await get(list.items[0]!.links.pdf, 'admin.a');
    expect(res.headers.get('content-type')).toBe('application/pdf');
    const text = pdfText(Buffer.from(await res.arrayBuffer()), dir);
    for (const heading of ['月次レポート 2026-10', '株式会社サンプル', '検知件数', '重要度別', '脅威の上位', 'オフライン端末', '検知一覧']) expect(text).toContain(heading);
    expect(text).toMatch(new RegExp(`検知件数\\s+${api.figures.detections}\\b`));
    expect(text).toMatch(new RegExp(`判定: 黒\\s+${api.figures.byVerdict.black}\\b`));
    // The console's word for gray: the report prints with the console's catalogue.
    expect(text).toMatch(new RegExp(`判定: グレー\\s+${api.figures.byVerdict.gray}\\b`));
    expect(text).toMatch(new RegExp(`判定: 白\\s+${api.figures.byVerdict.white}\\b`));
    expect(text).toMatch(/例外の追加\s+1\b/);
    expect(text).toMatch(/Trojan:Win32\/Emotet\s+2\b/);
    expect(text).not.toContain('Trojan:Win32/Suppressed');
    expect(text).not.toContain('Trojan:Win32/New');

    const html = await get(`/api/v1/reports/${record.id}.html`, 'admin.a');
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.headers.get('content-security-policy')).toContain("style-src 'unsafe-inline'");
    expect(html.headers.get('content-security-policy')).toContain("default-src 'none'");
    const stored = await html.text();
    expect(stored).toContain('<h1>月次レポート 2026-10</h1>');

    // The console's report page is the same document: its content after the title equals the stored one's, but for the download links.
    const page = await app.request(`http://console.test/reports/${record.id}`, { headers: { host: 'console.test', cookie: `kiseki_session=${tokens['admin.a']}` } });
    expect(page.status).toBe(200);
    const content = (doc: string): string => /<h1>[^<]*<\/h1>([\s\S]*)<\/main>/.exec(doc)?.[1] ?? 'missing';
    const onPage = content(await page.text()).replace(/^<p class="no-print">[\s\S]*?<\/p>/, '');
    expect(onPage).toContain('<h2>検知件数</h2>');
    expect(onPage).toBe(content(stored));
    // Both use the console's stylesheet: inline in the document, linked from the page.
    expect(stored).toContain('@media print');
    const listPage = await app.request('http://console.test/reports', { headers: { host: 'console.test', cookie: `kiseki_session=${tokens['admin.a']}` } });
    expect(await listPage.text()).toContain(`/api/v1/reports/${record.id}.pdf`);
    expect((await app.request(`http://console.test/reports/${record.id}`, { headers: { host: 'console.test', cookie: `kiseki_session=${tokens['admin.b']}` } })).status).toBe(404);

    // Kept 13 months after the period, then swept.
    expect(await store.periodicReports.sweep(Date.parse('2027-11-30T14:59:59Z'))).toBe(0);
    expect(await store.periodicReports.sweep(Date.parse('2027-11-30T15:00:00Z'))).toBe(1);
    expect((await get(`/api/v1/reports/${record.id}`, 'admin.a')).status).toBe(404);
  });

  it('merges an incident: the alerts of the device around it, verdict history with who and from, comments and the customer answer', async () => {
    const record = (await generateIncidentReport({ store, pdf, clock, templates }, 'al_2'))!;
    expect(record).toMatchObject({ kind: 'incident', label: 'al_2' });
    expect(record.figures).toMatchObject({ alertIds: ['al_2'], comments: 1, answers: 1 });
    const text = pdfText(store.periodicReports.file(record.id, 'pdf')!, dir);
    for (const s of ['インシデントレポート', '判定の履歴', '分析者のコメント', '添付ファイル経由の感染と判断', 'お客様からの回答', '該当端末を回収しました']) expect(text).toContain(s);

    const merged = (await generateIncidentReport({ store, pdf, clock, templates }, 'al_sep'))!;
    expect(merged.figures).toMatchObject({ alertIds: ['al_sep', 'al_1'] });
    const quick = await quickReportPdf({ store, pdf, templates }, 'al_1');
    expect(pdfText(quick!, dir)).toContain('速報レポート');
  });

  it('prints on a pool of reused pages: quick reports first and newest first, and a render nobody waits for any more is dropped unstarted', async () => {
    const one = createPdfRenderer({ pages: 1 });
    try {
      const done: string[] = [];
      const doc = (s: string): string => `<!DOCTYPE html><html lang="ja"><body><p>${s}</p></body></html>`;
      const abandoned = new AbortController();
      // The one page opens asynchronously: all three are queued before it is free.
      const a = one.render(doc('normal-a')).then((b) => (done.push('a'), b));
      const b = one.render(doc('normal-b'), { signal: abandoned.signal }).then(() => done.push('b'), (err: { code?: string }) => done.push(`b:${err.code}`));
      const c = one.render(doc('high-c'), { priority: 'high' }).then((b) => (done.push('c'), b));
      const d = one.render(doc('high-d'), { priority: 'high' }).then((b) => (done.push('d'), b));
      abandoned.abort();
      const [pa, , pc] = await Promise.all([a, b, c, d]);
      // Quick reports newest first (the newest mail still has its whole wait ahead), then the rest in order.
      expect(done).toEqual(['b:ERR_REPORT_RENDER', 'd', 'c', 'a']);
      expect(pdfText(pa, dir)).toContain('normal-a');
      expect(pdfText(pc, dir)).toContain('high-c');
      // The page is reused: a fourth render needs no new page and still prints.
      expect(pdfText(await one.render(doc('again')), dir)).toContain('again');
    } finally {
      await one.close();
    }
  });
});
