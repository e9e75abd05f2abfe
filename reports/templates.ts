/**
 * What reports/ needs from the templates that print a report: complete,
 * self-contained HTML documents (styles inline, no scripts, no external
 * fetches: Chromium prints them from memory and the API serves them as they
 * are). The console implements them (api/console/report-document.tsx) with
 * its own components, stylesheet and messages, so the console's report page
 * and the PDF are the same document; reports/ takes them as a dependency
 * rather than importing the console, which itself lists the reports.
 */
import type { AlertView, CustomerAnswer } from '../storage/index.js';
import type { ReportFigures } from './figures.js';

/** The report templates (see the console's `createReportTemplates`). */
export interface ReportTemplates {
  /** A tenant's monthly or weekly report. */
  periodic(kind: 'monthly' | 'weekly', label: string, figures: ReportFigures): string | Promise<string>;
  /** The detailed (incident) report: the main alert first, then the alerts merged into it. */
  incident(views: AlertView[], answers: CustomerAnswer[]): string | Promise<string>;
  /** The quick report of an alert (its latest revision): the notification mail's attachment. */
  quick(view: AlertView): string | Promise<string>;
}
