/**
 * /reports: a tenant's monthly, weekly and incident reports (kept 13
 * months), and /reports/:id, one report drawn with the same components the
 * PDF is printed from (api/console/report-document.tsx), with its PDF and
 * HTML downloads. Periodic reports show the figures stored with the report
 * (what the PDF and the API say); their detection list shows each alert's
 * verdict as it is now.
 */
import type { Hono } from 'hono';
import { severityOf, type ReportFigures } from '../../../reports/index.js';
import type { AlertView, PeriodicReportRecord } from '../../../storage/index.js';
import { assertTenant, scopeOf } from '../../routes/shared.js';
import { formatTime, type Messages } from '../i18n.js';
import { page, type ConsoleDeps } from '../kit.js';
import { Layout } from '../layout.js';
import { IncidentReportBody, PeriodicReportBody, periodicTitle } from '../report-document.js';

const KIND_KEYS = { monthly: 'rptMonthly', weekly: 'rptWeekly', incident: 'rptIncident' } as const;

/** The title of a report, as its PDF prints it. */
function titleOf(t: Messages, r: PeriodicReportRecord): string {
  return r.kind === 'incident' ? `${t.rptIncident} ${r.label}` : periodicTitle(t, r.kind, r.label);
}

/** Registers /reports and /reports/:id. */
export function mountReportPages(app: Hono, deps: ConsoleDeps): void {
  app.get(
    '/reports',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      // Operators pick a tenant (?supportId=); everyone else sees their own.
      const scope = scopeOf(user) ?? c.req.query('supportId') ?? '';
      const reports = scope === '' ? [] : d.api.store.periodicReports.listTenant(scope);
      return (
        <Layout ui={ui} title={t.reportsTitle} section="reports">
          {scopeOf(user) === null ? (
            <form method="get" action="/reports" class="filters">
              <label>
                {t.tenant}
                <input name="supportId" value={scope} required />
              </label>
              <button type="submit">{t.filter}</button>
            </form>
          ) : null}
          {reports.length === 0 ? (
            <p>{t.noItems}</p>
          ) : (
            <table id="reports-table">
              <thead>
                <tr>
                  <th scope="col">{t.kind}</th>
                  <th scope="col">{t.rptPeriod}</th>
                  <th scope="col">{t.rptCreated}</th>
                  <th scope="col">{t.rptKeptUntil}</th>
                  <th scope="col">{t.download}</th>
                </tr>
              </thead>
              <tbody>
                {reports.map((r) => (
                  <tr>
                    <td>
                      <a href={`/reports/${encodeURIComponent(r.id)}`}>{titleOf(t, r)}</a>
                    </td>
                    <td>
                      {formatTime(r.periodStart)} 〜 {formatTime(r.periodEnd)}
                    </td>
                    <td>{formatTime(r.createdAt)}</td>
                    <td>{formatTime(r.expiresAt)}</td>
                    <td>
                      <a href={`/api/v1/reports/${encodeURIComponent(r.id)}.pdf`}>{t.rptPdf}</a> <a href={`/api/v1/reports/${encodeURIComponent(r.id)}.html`}>{t.rptHtml}</a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Layout>
      );
    }),
  );

  app.get(
    '/reports/:id',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const { store } = d.api;
      const record = store.periodicReports.get(c.req.param('id') ?? '');
      assertTenant(user, record?.supportId);
      const r = record!;
      const alertIds = Array.isArray(r.figures.alertIds) ? (r.figures.alertIds as string[]) : [];
      let body;
      if (r.kind === 'incident') {
        const views = alertIds.map((id) => store.alerts.view(id)).filter((v): v is AlertView => v !== undefined);
        body = views.length === 0 ? <p>{t.noItems}</p> : <IncidentReportBody t={t} views={views} answers={views.flatMap((v) => store.answers.of(v.alert.id))} />;
      } else {
        const stored = r.figures as unknown as Omit<ReportFigures, 'alerts'>;
        const alerts: ReportFigures['alerts'] = [];
        for (const id of alertIds) {
          const a = store.alerts.effective(id);
          if (a !== undefined) alerts.push({ id, createdAt: a.createdAt, computer: a.computer, threat: a.threat, verdict: a.verdict, severity: severityOf(a.score) });
        }
        body = <PeriodicReportBody t={t} figures={{ ...stored, alerts }} />;
      }
      return (
        <Layout ui={ui} title={titleOf(t, r)} section="reports">
          <p class="no-print">
            <a href={`/api/v1/reports/${encodeURIComponent(r.id)}.pdf`}>{t.rptPdf}</a> ／ <a href={`/api/v1/reports/${encodeURIComponent(r.id)}.html`}>{t.rptPrint}</a> ／{' '}
            {t[KIND_KEYS[r.kind]]} ／ {t.rptCreated} {formatTime(r.createdAt)}
          </p>
          {body}
        </Layout>
      );
    }),
  );
}
