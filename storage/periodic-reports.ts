/**
 * Periodic reports (monthly, weekly, incident): their index with the figures
 * they print, and the rendered HTML and PDF bytes. Kept until `expiresAt`
 * (13 months after the period), then swept.
 *
 * Key layouts (kiseki.lmdb):
 *   periodic-reports  report id                      -> PeriodicReportRecord
 *   tenant-reports    [supportId, periodStart, id]   -> id (a tenant's reports in period order)
 *   report-files      [report id, 'html' | 'pdf']    -> bytes
 *
 * Report ids are deterministic (`rp_<supportId>_<kind>_<label>`), so a
 * scheduler that runs twice for one period overwrites instead of duplicating.
 */
import { appendFeedSync } from './feed.js';
import type { Verdict } from '../core/contracts.js';
import type { PeriodicReportRecord } from './records.js';
import type { Tables } from './tables.js';

export interface PeriodicReportRepository {
  get(id: string): PeriodicReportRecord | undefined;
  /** A tenant's reports, newest period first. */
  listTenant(supportId: string): PeriodicReportRecord[];
  /** One rendered file of a report. */
  file(id: string, format: 'html' | 'pdf'): Buffer | undefined;
  /**
   * Stores (or replaces) a report with its two files in one transaction. The
   * first version of an incident report also appends `report.incident` to
   * the notification feed, in the same transaction: it is mailed once, and
   * never lost to a crash between storing and queueing.
   */
  put(record: PeriodicReportRecord, html: Buffer, pdf: Buffer): Promise<void>;
  /** Deletes every report whose `expiresAt` is at or before `now`; returns how many. */
  sweep(now: number): Promise<number>;
}

/** The periodic report repository over the hot store's tables (called by openHotStore). */
export function createPeriodicReportRepository(t: Tables): PeriodicReportRepository {
  const { periodicReports, tenantReports, reportFiles, root } = t;
  return {
    get: (id) => periodicReports.get(id),
    listTenant(supportId) {
      const out: PeriodicReportRecord[] = [];
      for (const { value } of tenantReports.getRange({ start: [supportId, Infinity], end: [supportId], reverse: true })) {
        const r = periodicReports.get(value);
        if (r !== undefined) out.push(r);
      }
      return out;
    },
    file: (id, format) => reportFiles.get([id, format]),
    put: (record, html, pdf) =>
      root.transaction(() => {
        const prev = periodicReports.get(record.id);
        if (prev !== undefined) tenantReports.removeSync([prev.supportId, prev.periodStart, prev.id]);
        if (prev === undefined && record.kind === 'incident') {
          const verdict = record.figures.verdict as Verdict | undefined;
          appendFeedSync(t, { kind: 'report.incident', supportId: record.supportId, at: record.createdAt, alertId: record.label, reportId: record.id, ...(verdict === undefined ? {} : { verdict }), by: 'system:reports' });
        }
        periodicReports.putSync(record.id, record);
        tenantReports.putSync([record.supportId, record.periodStart, record.id], record.id);
        reportFiles.putSync([record.id, 'html'], html);
        reportFiles.putSync([record.id, 'pdf'], pdf);
      }),
    sweep: (now) =>
      root.transaction(() => {
        let n = 0;
        for (const { key, value } of periodicReports.getRange({})) {
          if (value.expiresAt > now) continue;
          periodicReports.removeSync(key);
          tenantReports.removeSync([value.supportId, value.periodStart, value.id]);
          reportFiles.removeSync([value.id, 'html']);
          reportFiles.removeSync([value.id, 'pdf']);
          n++;
        }
        return n;
      }),
  };
}
