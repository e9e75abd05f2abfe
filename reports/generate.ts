/**
 * Builds and stores reports: the figures from storage, the HTML from the
 * console's templates (passed in as `templates`), the PDF from Chromium,
 * then one repository write of the record and both files. Report ids are deterministic per tenant, kind and period (or
 * alert), so running a generation twice replaces instead of duplicating.
 */
import type { Clock } from '../core/clock.js';
import type { HotStore, PeriodicReportRecord } from '../storage/index.js';
import { computeFigures } from './figures.js';
import type { PdfRenderer } from './pdf.js';
import { thirteenMonthsAfter, type Period } from './periods.js';
import type { ReportTemplates } from './templates.js';

export interface ReportContext {
  store: HotStore;
  pdf: PdfRenderer;
  clock: Clock;
  /** The console's report templates (api/console `createReportTemplates`). */
  templates: ReportTemplates;
}

/** Alerts of the same device within this long of a black alert belong to its incident. */
export const INCIDENT_WINDOW_MS = 24 * 3600_000;

/** The id of a tenant's periodic report. */
export function reportId(supportId: string, kind: PeriodicReportRecord['kind'], label: string): string {
  return `rp_${supportId}_${kind}_${label}`;
}

/** Generates (or regenerates) a tenant's monthly or weekly report and stores it. */
export async function generatePeriodicReport(ctx: ReportContext, supportId: string, period: Period): Promise<PeriodicReportRecord> {
  const figures = computeFigures(ctx.store, supportId, period.start, period.end);
  const html = await ctx.templates.periodic(period.kind, period.label, figures);
  const pdf = await ctx.pdf.render(html);
  const { alerts: _list, ...summary } = figures;
  const record: PeriodicReportRecord = {
    id: reportId(supportId, period.kind, period.label),
    supportId,
    kind: period.kind,
    periodStart: period.start,
    periodEnd: period.end,
    label: period.label,
    createdAt: ctx.clock.now(),
    expiresAt: thirteenMonthsAfter(period.end),
    htmlBytes: Buffer.byteLength(html),
    pdfBytes: pdf.length,
    figures: { ...summary, alertIds: figures.alerts.map((a) => a.id) },
  };
  await ctx.store.periodicReports.put(record, Buffer.from(html), pdf);
  return record;
}

/**
 * Generates the detailed (incident) report of an alert: the alert and every
 * other alert of its device within INCIDENT_WINDOW_MS, merged, with the
 * analysts' history and comments and the customer's answers.
 * Returns undefined for an unknown alert.
 */
export async function generateIncidentReport(ctx: ReportContext, alertId: string): Promise<PeriodicReportRecord | undefined> {
  const main = ctx.store.alerts.view(alertId);
  if (main === undefined) return undefined;
  const a = main.alert;
  const related = ctx.store.alerts
    .recentOfDevice(a.tmid, 200)
    .filter((r) => r.alertId !== a.id && Math.abs(r.detectedAt - a.detectedAt) <= INCIDENT_WINDOW_MS)
    .map((r) => ctx.store.alerts.view(r.alertId))
    .filter((v) => v !== undefined)
    .sort((x, y) => x.alert.detectedAt - y.alert.detectedAt);
  const views = [main, ...related];
  const answers = views.flatMap((v) => ctx.store.answers.of(v.alert.id));
  const html = await ctx.templates.incident(views, answers);
  const pdf = await ctx.pdf.render(html);
  const start = Math.min(...views.map((v) => v.alert.createdAt));
  const end = Math.max(...views.map((v) => v.alert.createdAt)) + 1;
  const record: PeriodicReportRecord = {
    id: reportId(a.supportId, 'incident', a.id),
    supportId: a.supportId,
    kind: 'incident',
    periodStart: start,
    periodEnd: end,
    label: a.id,
    createdAt: ctx.clock.now(),
    expiresAt: thirteenMonthsAfter(end),
    htmlBytes: Buffer.byteLength(html),
    pdfBytes: pdf.length,
    figures: { alertIds: views.map((v) => v.alert.id), verdict: a.verdict, comments: views.reduce((n, v) => n + v.comments.length, 0), answers: answers.length },
  };
  await ctx.store.periodicReports.put(record, Buffer.from(html), pdf);
  return record;
}

/**
 * The quick report of an alert as PDF (the notification mail's attachment);
 * undefined for an unknown alert. It goes before report renders in the
 * Chromium queue: a mail waits on it.
 */
export async function quickReportPdf(ctx: Pick<ReportContext, 'store' | 'pdf' | 'templates'>, alertId: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  const view = ctx.store.alerts.view(alertId);
  if (view === undefined) return undefined;
  return ctx.pdf.render(await ctx.templates.quick(view), { priority: 'high', ...(signal === undefined ? {} : { signal }) });
}
