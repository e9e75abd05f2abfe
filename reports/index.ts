/**
 * Public surface of reports/: the report figures, the interface of the HTML
 * templates (the console implements it), the Chromium PDF renderer, generation of monthly, weekly and incident reports,
 * and their scheduler.
 */
export { computeFigures, severityOf } from './figures.js';
export type { ReportFigures, Severity } from './figures.js';
export type { ReportTemplates } from './templates.js';
export { createPdfRenderer, findChromium, CHROMIUM_CANDIDATES } from './pdf.js';
export type { PdfRenderer, RenderOptions } from './pdf.js';
export { generateIncidentReport, generatePeriodicReport, quickReportPdf, reportId, INCIDENT_WINDOW_MS } from './generate.js';
export type { ReportContext } from './generate.js';
export { monthOf, previousPeriod, thirteenMonthsAfter, weekOf } from './periods.js';
export type { Period } from './periods.js';
export { createReportScheduler } from './scheduler.js';
export type { ReportScheduler, ReportSchedulerOptions, ReportRound } from './scheduler.js';
