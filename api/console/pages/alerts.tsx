/**
 * Alerts: the list with filters (verdict, state, dates; tenant for
 * operators) and paging, and one alert's quick report: the eight sections
 * with their evidence, the process tree as an SVG graph, a timeline of the
 * trail around the detection, revisions, the verdict history, and the
 * analyst's verdict and comments (operators).
 */
import type { Hono } from 'hono';
import type { EvidenceItem, QuickReport } from '../../../core/contracts.js';
import { KisekiError } from '../../../core/errors.js';
import type { EffectiveAlert } from '../../../storage/index.js';
import { decodeCursor, encodeCursor } from '../../route-kit.js';
import { assertTenant, collect } from '../../routes/shared.js';
import { auditAs, filteredAlerts, type AlertFilter } from '../../services.js';
import { formatTime } from '../i18n.js';
import { page, type ConsoleDeps } from '../kit.js';
import { Csrf, Layout, VerdictBadge, type Ui } from '../layout.js';
import { ProcessGraph } from '../process-graph.js';
import { ReportSections } from '../report-document.js';

const PAGE_SIZE = 50;
const VERDICTS = ['black', 'gray', 'white'] as const;
const STATES = ['reported', 'suppressed', 'tuning'] as const;

/** A YYYY-MM-DD date as the start of that day in Asia/Tokyo, ms; undefined when absent or malformed. */
export function jstDayStart(day: string | undefined): number | undefined {
  if (day === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const ms = Date.parse(`${day}T00:00:00+09:00`);
  return Number.isFinite(ms) ? ms : undefined;
}

function AlertRows({ ui, items, showTenant }: { ui: Ui; items: EffectiveAlert[]; showTenant: boolean }) {
  const { t } = ui;
  return (
    <table id="alerts-table">
      <caption class="visually-hidden">{t.alertsTitle}</caption>
      <thead>
        <tr>
          <th scope="col">{t.detectedAt}</th>
          {showTenant ? <th scope="col">{t.tenant}</th> : null}
          <th scope="col">{t.computer}</th>
          <th scope="col">{t.verdict}</th>
          <th scope="col">{t.alertState}</th>
          <th scope="col">{t.threat}</th>
          <th scope="col">{t.path}</th>
        </tr>
      </thead>
      <tbody>
        {items.map((a) => (
          <tr>
            <td>
              <a href={`/alerts/${encodeURIComponent(a.id)}`}>{formatTime(a.detectedAt)}</a>
            </td>
            {showTenant ? <td>{a.supportId}</td> : null}
            <td>{a.computer}</td>
            <td>
              <VerdictBadge ui={ui} verdict={a.verdict} />
            </td>
            <td>{a.state}</td>
            <td>{a.threat}</td>
            <td class="mono">{a.path}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Every evidence item of the report in time order (deduplicated by seq): the trail around the detection. */
export function timelineOf(report: QuickReport): EvidenceItem[] {
  const seen = new Map<string, EvidenceItem>();
  for (const s of report.sections) for (const it of s.items) seen.set(`${it.ref.tmid}:${it.ref.seq}:${it.ref.k}`, it);
  seen.set(`${report.detection.ref.tmid}:${report.detection.ref.seq}:${report.detection.ref.k}`, report.detection);
  return [...seen.values()].sort((a, b) => a.ref.ts - b.ref.ts || a.ref.seq - b.ref.seq);
}

/** Registers the alert list, the report page and the analyst's forms. */
export function mountAlertPages(app: Hono, deps: ConsoleDeps): void {
  app.get(
    '/alerts',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const q = c.req.query();
      const verdict = VERDICTS.find((v) => v === q.verdict);
      const state = STATES.find((s) => s === q.state);
      const from = jstDayStart(q.from);
      const to = jstDayStart(q.to);
      const filter: AlertFilter = {
        ...(user.role === 'operator' && q.tenant ? { supportId: q.tenant } : {}),
        ...(verdict === undefined ? {} : { verdict }),
        ...(state === undefined ? {} : { state }),
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { before: to + 86_400_000 }),
      };
      const cursor = decodeCursor(q.cursor);
      const after = cursor === undefined ? undefined : { createdAt: Number(cursor[0]), id: String(cursor[1]) };
      const items = collect(filteredAlerts(d.api, user, filter, after), PAGE_SIZE, (a) => a);
      const more = items.length > PAGE_SIZE;
      const shown = items.slice(0, PAGE_SIZE);
      const nextQuery = new URLSearchParams({ ...q, cursor: more ? encodeCursor([shown.at(-1)!.createdAt, shown.at(-1)!.id]) : '' });
      return (
        <Layout ui={ui} title={t.alertsTitle} section="alerts">
          <form method="get" action="/alerts" class="filters" role="search" aria-label={t.filter}>
            {user.role === 'operator' ? (
              <label>
                {t.tenant}
                <input name="tenant" value={q.tenant ?? ''} maxlength={64} />
              </label>
            ) : null}
            <label>
              {t.verdict}
              <select name="verdict">
                <option value="">{t.any}</option>
                {VERDICTS.map((v) => (
                  <option value={v} selected={v === verdict}>
                    {t[v]}
                  </option>
                ))}
              </select>
            </label>
            <label>
              {t.alertState}
              <select name="state">
                <option value="">{t.any}</option>
                {STATES.map((s) => (
                  <option value={s} selected={s === state}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <label>
              {t.fromDate}
              <input type="date" name="from" value={q.from ?? ''} />
            </label>
            <label>
              {t.toDate}
              <input type="date" name="to" value={q.to ?? ''} />
            </label>
            <button type="submit">{t.filter}</button>
          </form>
          {shown.length === 0 ? <p>{t.noItems}</p> : <AlertRows ui={ui} items={shown} showTenant={user.role === 'operator'} />}
          <nav class="pager" aria-label="pager">
            {q.cursor ? <a href={`/alerts?${new URLSearchParams({ ...q, cursor: '' }).toString()}`}>{t.first}</a> : null}
            {more ? <a href={`/alerts?${nextQuery.toString()}`}>{t.next}</a> : null}
          </nav>
        </Layout>
      );
    }),
  );

  app.get(
    '/alerts/:id',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const view = d.api.store.alerts.view((c.req.param('id') ?? ''));
      assertTenant(user, view?.alert.supportId);
      const { alert, revisions, verdicts, comments } = view!;
      const wanted = Number(c.req.query('rev'));
      const report = revisions.find((r) => r.revision === wanted) ?? revisions.at(-1);
      return (
        <Layout ui={ui} title={`${t.reportTitle}: ${alert.computer}`} section="alerts">
          <dl class="facts" id="alert-facts">
            <dt>{t.verdict}</dt>
            <dd>
              <VerdictBadge ui={ui} verdict={alert.verdict} /> ({alert.verdictBy})
            </dd>
            <dt>{t.score}</dt>
            <dd>{alert.score}</dd>
            <dt>{t.threat}</dt>
            <dd>{alert.threat}</dd>
            <dt>{t.path}</dt>
            <dd class="mono">{alert.path}</dd>
            <dt>SHA-256</dt>
            <dd class="mono">{alert.sha256}</dd>
            <dt>{t.detectedAt}</dt>
            <dd>{formatTime(alert.detectedAt)}</dd>
            <dt>{t.computer}</dt>
            <dd>
              <a href={`/devices/${encodeURIComponent(alert.tmid)}`}>{alert.computer}</a>
            </dd>
            <dt>{t.alertState}</dt>
            <dd>{alert.state}</dd>
          </dl>
          {report === undefined ? (
            <p>{t.noItems}</p>
          ) : (
            <>
              <h2 id="rules">{t.rules}</h2>
              <ul>
                {report.rules.map((r) => (
                  <li>
                    <strong>{r.ruleId}</strong>: {r.description}
                    {r.outcome !== undefined ? ` → ${t[r.outcome]}` : ''}
                    {r.weight !== undefined ? ` (${r.weight})` : ''}
                  </li>
                ))}
              </ul>
              <h2 id="graph">{t.processGraph}</h2>
              <ProcessGraph report={report} title={t.processGraph} desc={t.processGraphDesc} />
              <h2 id="sections">
                {t.reportTitle} ({t.revision} {report.revision})
              </h2>
              <ReportSections t={t} report={report} />
              <h2 id="timeline">{t.timeline}</h2>
              <ol class="timeline">
                {timelineOf(report).map((it) => (
                  <li>
                    <time datetime={new Date(it.ref.ts).toISOString()}>{formatTime(it.ref.ts)}</time> {it.ref.k} #{it.ref.seq}{' '}
                    <span class="mono">{String(it.event.image ?? it.event.path ?? it.event.key ?? it.event.rhost ?? it.event.rip ?? it.event.qname ?? '')}</span>
                  </li>
                ))}
              </ol>
            </>
          )}
          <h2 id="revisions">{t.revisions}</h2>
          <ul>
            {revisions.map((r) => (
              <li>
                <a href={`/alerts/${encodeURIComponent(alert.id)}?rev=${r.revision}`} aria-current={r === report ? 'true' : undefined}>
                  {t.revision} {r.revision}
                </a>{' '}
                {formatTime(r.createdAt)} <VerdictBadge ui={ui} verdict={r.verdict} />
              </li>
            ))}
          </ul>
          <h2 id="verdicts">{t.verdictHistory}</h2>
          <ul>
            {verdicts.map((v) => (
              <li>
                {formatTime(v.at)} {v.from === null ? '-' : t[v.from]} → {t[v.to]} ({v.by}){v.comment !== undefined ? `: ${v.comment}` : ''}
              </li>
            ))}
          </ul>
          <h2 id="comments">{t.comments}</h2>
          <ul id="comment-list">
            {comments.map((cm) => (
              <li>
                {formatTime(cm.at)} {cm.author}: {cm.text}
              </li>
            ))}
          </ul>
          {user.role === 'operator' ? (
            <div class="grid2">
              <form method="post" action={`/alerts/${encodeURIComponent(alert.id)}/verdict`} class="stack">
                <Csrf ui={ui} />
                <label>
                  {t.verdict}
                  <select name="verdict">
                    {VERDICTS.map((v) => (
                      <option value={v} selected={v === alert.verdict}>
                        {t[v]}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  {t.comment}
                  <textarea name="comment" maxlength={10000} rows={3} />
                </label>
                <button type="submit" class="primary">
                  {t.setVerdict}
                </button>
              </form>
              <form method="post" action={`/alerts/${encodeURIComponent(alert.id)}/comments`} class="stack">
                <Csrf ui={ui} />
                <label>
                  {t.comment}
                  <textarea name="text" required maxlength={10000} rows={3} />
                </label>
                <button type="submit">{t.addComment}</button>
              </form>
            </div>
          ) : null}
        </Layout>
      );
    }),
  );

  app.post(
    '/alerts/:id/verdict',
    page(deps, { roles: ['operator'] }, async ({ c, user, form, from, deps: d }) => {
      const verdict = VERDICTS.find((v) => v === form.verdict);
      if (verdict === undefined) throw new KisekiError('ERR_NOT_FOUND');
      const comment = (form.comment ?? '').trim().slice(0, 10_000);
      const changed = await d.api.store.alerts.setVerdict({ alertId: (c.req.param('id') ?? ''), at: d.api.clock.now(), by: user.id, verdict, ...(comment === '' ? {} : { comment }) });
      if (changed === undefined) throw new KisekiError('ERR_NOT_FOUND');
      await auditAs(d.api, user, from, 'alert.verdict_changed', changed.alert.id, changed.alert.supportId, { from: changed.before, to: verdict });
      return c.redirect(`/alerts/${encodeURIComponent(changed.alert.id)}`, 303);
    }),
  );
  app.post(
    '/alerts/:id/comments',
    page(deps, { roles: ['operator'] }, async ({ c, user, form, from, deps: d }) => {
      const text = (form.text ?? '').trim().slice(0, 10_000);
      const a = d.api.store.alerts.get((c.req.param('id') ?? ''));
      if (a === undefined) throw new KisekiError('ERR_NOT_FOUND');
      if (text !== '') {
        const comment = await d.api.store.alerts.addComment({ alertId: a.id, at: d.api.clock.now(), author: user.id, text });
        if (comment !== undefined) await auditAs(d.api, user, from, 'alert.commented', a.id, a.supportId, { comment: comment.id });
      }
      return c.redirect(`/alerts/${encodeURIComponent(a.id)}#comments`, 303);
    }),
  );
}
