/**
 * Reports as console components: the monthly / weekly report, the incident
 * (detailed) report and the quick report, each a body the console's report
 * page puts inside its Layout and `ReportDocument` puts inside a bare,
 * self-contained document (the console's stylesheet inline, no menus, no
 * scripts) that Chromium prints to PDF and the API serves as the report's
 * HTML. One set of components, one stylesheet (its print rules drop the
 * console's chrome), one message catalogue: the page and the PDF say the
 * same thing in the same words. Reports for customers are printed in
 * Japanese; the page follows the reader's language.
 */
import type { Child } from 'hono/jsx';
import type { EvidenceItem, QuickReport } from '../../core/contracts.js';
import type { ReportFigures, ReportTemplates, Severity } from '../../reports/index.js';
import type { AlertView, CustomerAnswer } from '../../storage/index.js';
import { CONSOLE_CSS } from './assets.js';
import { CATALOGUE, formatTime, type Lang, type MessageKey, type Messages } from './i18n.js';

const SEVERITY_KEYS: Record<Severity, MessageKey> = { high: 'sevHigh', medium: 'sevMedium', low: 'sevLow' };

/** The title of a periodic report, e.g. `月次レポート 2026-10`. */
export function periodicTitle(t: Messages, kind: 'monthly' | 'weekly', label: string): string {
  return `${kind === 'monthly' ? t.rptMonthly : t.rptWeekly} ${label}`;
}

/** A plain table of rows; numbers right-aligned; `rptNone` when empty. */
export function ReportTable({ t, head, rows, id }: { t: Messages; head: string[]; rows: (string | number)[][]; id?: string }) {
  if (rows.length === 0) return <p>{t.rptNone}</p>;
  return (
    <table id={id}>
      <thead>
        <tr>
          {head.map((h) => (
            <th scope="col">{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr>
            {r.map((cell) => (
              <td class={typeof cell === 'number' ? 'n' : undefined}>{String(cell)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The evidence of a report section (the alert page shows the same table). */
export function EvidenceTable({ items }: { items: EvidenceItem[] }) {
  if (items.length === 0) return <p>-</p>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">ts</th>
          <th scope="col">k</th>
          <th scope="col">seq</th>
          <th scope="col">fields</th>
        </tr>
      </thead>
      <tbody>
        {items.map((it) => {
          const { ts: _ts, k: _k, seq: _seq, ...rest } = it.event;
          return (
            <tr>
              <td>{formatTime(it.ref.ts)}</td>
              <td>{it.ref.k}</td>
              <td>{it.ref.seq}</td>
              <td class="mono">
                {it.note !== undefined ? <strong>{it.note} </strong> : null}
                {JSON.stringify(rest)}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** A section's title in the reader's language (the engine's id when the catalogue has none). */
export function sectionTitle(t: Messages, id: string): string {
  return t[`sec_${id}` as MessageKey] ?? id;
}

/** Evidence rows per section in printed reports: a PDF stays a few pages (and quick to print); the alert page has them all. */
export const PRINTED_ITEMS_PER_SECTION = 30;

/** The eight sections of a quick report revision (the alert page and the printed reports, these with at most `maxItems` rows each). */
export function ReportSections({ t, report, headingLevel = 3, maxItems }: { t: Messages; report: QuickReport; headingLevel?: 2 | 3; maxItems?: number }) {
  return (
    <>
      {report.sections.map((s) => (
        <section class="report-section" aria-labelledby={`sec-${report.alertId}-${s.id}`} data-section={s.id}>
          {headingLevel === 2 ? <h2 id={`sec-${report.alertId}-${s.id}`}>{sectionTitle(t, s.id)}</h2> : <h3 id={`sec-${report.alertId}-${s.id}`}>{sectionTitle(t, s.id)}</h3>}
          <p>
            <span class="visually-hidden">{t.engineSummary}: </span>
            {s.summary}
          </p>
          <EvidenceTable items={maxItems === undefined ? s.items : s.items.slice(0, maxItems)} />
          {maxItems !== undefined && s.items.length > maxItems ? <p>{t.rptMore.replace('{n}', String(s.items.length - maxItems))}</p> : null}
        </section>
      ))}
    </>
  );
}

/** The body of a monthly or weekly report. */
export function PeriodicReportBody({ t, figures: f }: { t: Messages; figures: ReportFigures }) {
  return (
    <>
      <p class="report-meta">
        {f.tenantName} ({f.supportId}) ／ {t.rptPeriod}: {formatTime(f.periodStart)} 〜 {formatTime(f.periodEnd)} (JST)
      </p>
      <h2>{t.rptDetections}</h2>
      <ReportTable
        t={t}
        id="report-detections"
        head={[t.rptCategory, t.count]}
        rows={[
          [t.rptDetections, f.detections],
          [`${t.verdict}: ${t.black}`, f.byVerdict.black],
          [`${t.verdict}: ${t.gray}`, f.byVerdict.gray],
          [`${t.verdict}: ${t.white}`, f.byVerdict.white],
        ]}
      />
      <h2>{t.rptBySeverity}</h2>
      <ReportTable t={t} head={[t.rptSeverity, t.count]} rows={(['high', 'medium', 'low'] as const).map((s) => [t[SEVERITY_KEYS[s]], f.bySeverity[s]])} />
      <h2>{t.rptTopThreats}</h2>
      <ReportTable t={t} head={[t.threat, t.count]} rows={f.topThreats.map((x) => [x.name, x.count])} />
      <h2>{t.rptTopRules}</h2>
      <ReportTable t={t} head={[t.rptRule, t.count]} rows={f.topRules.map((r) => [r.ruleId, r.count])} />
      <h2>{t.rptDevicesAgents}</h2>
      <ReportTable
        t={t}
        head={[t.rptCategory, t.rptValue]}
        rows={[
          [t.rptDevices, f.devices],
          [t.rptIsolations, f.isolations],
          [t.rptExceptionsAdded, f.exceptionsAdded],
          [t.rptLogVolume, f.logEvents],
        ]}
      />
      <ReportTable t={t} head={[t.rptAgentVersion, t.rptDevices]} rows={f.agentVersions.map((v) => [v.version, v.count])} />
      <h2>{t.rptOffline}</h2>
      <ReportTable t={t} head={[t.computer, t.tmid, t.rptLastSeen]} rows={f.offlineDevices.map((d) => [d.computer, d.tmid, formatTime(d.lastSeen)])} />
      <h2>{t.rptAlertList}</h2>
      <ReportTable
        t={t}
        id="report-alerts"
        head={[t.rptTime, t.computer, t.threat, t.verdict, t.rptSeverity]}
        rows={f.alerts.map((a) => [formatTime(a.createdAt), a.computer, a.threat, t[a.verdict], t[SEVERITY_KEYS[a.severity]]])}
      />
    </>
  );
}

/** The body of the detailed (incident) report: the main alert first, then the ones merged into it. */
export function IncidentReportBody({ t, views, answers }: { t: Messages; views: AlertView[]; answers: CustomerAnswer[] }) {
  const main = views[0]!.alert;
  const history = views.flatMap((v) => v.verdicts).sort((x, y) => x.at - y.at);
  const comments = views.flatMap((v) => v.comments).sort((x, y) => x.at - y.at);
  return (
    <>
      <p class="report-meta">
        {main.supportId} ／ {main.computer} ／ {t.rptBasedOn}: {views.length}
      </p>
      <h2>{t.rptSummary}</h2>
      <ReportTable
        t={t}
        head={[t.rptAlert, t.rptTime, t.threat, t.rptFile, t.verdict]}
        rows={views.map((v) => [v.alert.id, formatTime(v.alert.detectedAt), v.alert.threat, v.alert.path, t[v.alert.verdict]])}
      />
      <h2>{t.verdictHistory}</h2>
      <ReportTable
        t={t}
        head={[t.rptTime, t.rptAlert, t.rptBefore, t.rptAfter, t.rptBy]}
        rows={history.map((h) => [formatTime(h.at), h.alertId, h.from === null ? '-' : t[h.from], t[h.to], h.by])}
      />
      <h2>{t.rptComments}</h2>
      <ReportTable t={t} head={[t.rptTime, t.rptAnalyst, t.comment]} rows={comments.map((c) => [formatTime(c.at), c.author, c.text])} />
      <h2>{t.rptAnswers}</h2>
      <ReportTable t={t} head={[t.rptTime, t.rptAnswerBy, t.rptAnswer]} rows={answers.map((a) => [formatTime(a.at), a.by, a.text])} />
      {views.map((v) => {
        const r = v.revisions.at(-1);
        return r === undefined ? null : (
          <>
            <h2>
              {t.rptQuickOf} {v.alert.id}
            </h2>
            <ReportSections t={t} report={r} maxItems={PRINTED_ITEMS_PER_SECTION} />
          </>
        );
      })}
    </>
  );
}

/** The body of a quick report: the alert's facts and its latest revision's sections. */
export function QuickReportBody({ t, view }: { t: Messages; view: AlertView }) {
  const a = view.alert;
  const r = view.revisions.at(-1);
  return (
    <>
      <p class="report-meta">
        {a.supportId} ／ {a.computer} ／ {t.detectedAt} {formatTime(a.detectedAt)} (JST) ／ {t.revision} {a.revision}
      </p>
      <ReportTable
        t={t}
        head={[t.rptItem, t.rptValue]}
        rows={[
          [t.threat, a.threat],
          [t.rptFile, a.path],
          ['SHA-256', a.sha256],
          [t.verdict, t[a.verdict]],
          [t.score, a.score],
          [t.rptResponse, a.action],
        ]}
      />
      {r === undefined ? null : <ReportSections t={t} report={r} headingLevel={2} maxItems={PRINTED_ITEMS_PER_SECTION} />}
    </>
  );
}

/** A report as a document of its own: the console's stylesheet inline, no menus or scripts (what the PDF prints). */
export function ReportDocument({ lang, title, children }: { lang: Lang; title: string; children?: Child }) {
  return (
    <html lang={lang}>
      <head>
        <meta charset="utf-8" />
        <title>{title}</title>
        {/* Inline: Chromium prints from memory and a downloaded report has no server to fetch from. Trusted constant. */}
        <style dangerouslySetInnerHTML={{ __html: CONSOLE_CSS }} />
      </head>
      <body class="report">
        <main id="main">
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  );
}

const documentOf = async (lang: Lang, title: string, body: Child): Promise<string> =>
  `<!DOCTYPE html>${await (
    <ReportDocument lang={lang} title={title}>
      {body}
    </ReportDocument>
  ).toString()}`;

/** The report templates reports/ prints with (Japanese by default, the customers' language). */
export function createReportTemplates(lang: Lang = 'ja'): ReportTemplates {
  const t = CATALOGUE[lang];
  return {
    periodic: (kind, label, figures) => documentOf(lang, periodicTitle(t, kind, label), <PeriodicReportBody t={t} figures={figures} />),
    incident: (views, answers) => documentOf(lang, `${t.rptIncident} ${views[0]!.alert.id}`, <IncidentReportBody t={t} views={views} answers={answers} />),
    quick: (view) => documentOf(lang, `${t.reportTitle} ${view.alert.id}`, <QuickReportBody t={t} view={view} />),
  };
}
