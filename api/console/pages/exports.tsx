/**
 * Exports: the daily downloads with their expiry and the log-spot jobs
 * (30 days of all devices, or one device's year), with forms to request
 * them and live progress (htmx polls the job list while a job runs).
 * Downloads go through the API's file route, which the session cookie
 * authorizes, so ranges and auditing stay in one place.
 */
import type { Hono } from 'hono';
import { isKisekiError } from '../../../core/errors.js';
import { listJobs, type ExportJob } from '../../../export/index.js';
import type { UserRecord } from '../../../storage/index.js';
import type { ApiDeps } from '../../route-kit.js';
import { jobView } from '../../routes/exports.js';
import { requestSpotJob } from '../../services.js';
import { formatTime } from '../i18n.js';
import { page, type ConsoleDeps } from '../kit.js';
import { Csrf, Layout, type Ui } from '../layout.js';

function jobsOf(api: ApiDeps, user: UserRecord, tenant: string | undefined): ExportJob[] {
  if (api.exports === undefined) return [];
  const scope = user.role === 'operator' ? tenant || undefined : (user.supportId ?? '');
  return listJobs(api.exports.dataDir, scope).filter((j) => j.expiresAt > api.clock.now());
}

function JobsTable({ ui, jobs, id, caption }: { ui: Ui; jobs: ExportJob[]; id: string; caption: string }) {
  const { t } = ui;
  if (jobs.length === 0) return <p>{t.noItems}</p>;
  return (
    <table id={id}>
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">{t.kind}</th>
          <th scope="col">{t.tenant}</th>
          <th scope="col">{t.requestedAt}</th>
          <th scope="col">{t.status}</th>
          <th scope="col">{t.progress}</th>
          <th scope="col">{t.download}</th>
          <th scope="col">{t.expires}</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((job) => {
          const v = jobView(job);
          const p = job.progress;
          return (
            <tr data-job={job.id}>
              <td>
                {job.kind} {Object.values(job.params).join(' ')}
              </td>
              <td>{job.supportId}</td>
              <td>{formatTime(job.createdAt)}</td>
              <td data-status={job.status}>{job.status}</td>
              <td>{p === undefined || job.status !== 'running' ? '-' : <progress max={Math.max(1, p.total)} value={p.done} aria-label={t.progress}>{`${p.done}/${p.total}`}</progress>}</td>
              <td>
                <ul>
                  {v.files.map((f) => (
                    <li>
                      <a href={f.url} download={f.name}>
                        {f.name}
                      </a>{' '}
                      ({f.bytes.toLocaleString('en-US')} B)
                    </li>
                  ))}
                </ul>
              </td>
              <td>{formatTime(job.expiresAt)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** The two job tables; polls itself every 2 s while a job is queued or running. */
function JobsBlock({ ui, jobs, tenant }: { ui: Ui; jobs: ExportJob[]; tenant: string }) {
  const running = jobs.some((j) => j.status !== 'done' && j.status !== 'failed');
  const daily = jobs.filter((j) => j.kind === 'daily');
  const spots = jobs.filter((j) => j.kind !== 'daily');
  return (
    <div id="jobs-block" aria-live="polite" {...(running ? { 'hx-get': `/exports/jobs?tenant=${encodeURIComponent(tenant)}`, 'hx-trigger': 'every 2s', 'hx-swap': 'outerHTML' } : {})}>
      <h2>{ui.t.dailyDownloads}</h2>
      <JobsTable ui={ui} jobs={daily} id="daily-table" caption={ui.t.dailyDownloads} />
      <h2>{ui.t.spotJobs}</h2>
      <JobsTable ui={ui} jobs={spots} id="spot-table" caption={ui.t.spotJobs} />
    </div>
  );
}

/** Registers the exports page, its live fragment and the log-spot forms. */
export function mountExportPages(app: Hono, deps: ConsoleDeps): void {
  app.get(
    '/exports/jobs',
    page(deps, {}, ({ c, ui, user, deps: d }) => <JobsBlock ui={ui} jobs={jobsOf(d.api, user, c.req.query('tenant'))} tenant={c.req.query('tenant') ?? ''} />),
  );
  app.get(
    '/exports',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const tenant = c.req.query('tenant') ?? '';
      const canRequest = user.role === 'operator' || user.role === 'admin';
      const flash = c.req.query('flash');
      return (
        <Layout ui={ui} title={t.exportsTitle} section="exports" scripts={['htmx.min.js']}>
          {d.api.exports === undefined ? <p class="notice">{t.exportsUnavailable}</p> : null}
          {flash === 'queued' ? (
            <p class="notice" role="status">
              {t.queued}
            </p>
          ) : flash === 'invalid' ? (
            <p class="error" role="alert">
              {t.invalidRequest}
            </p>
          ) : null}
          {user.role === 'operator' ? (
            <form method="get" action="/exports" class="filters" role="search" aria-label={t.filter}>
              <label>
                {t.tenant}
                <input name="tenant" value={tenant} maxlength={64} />
              </label>
              <button type="submit">{t.filter}</button>
            </form>
          ) : null}
          <JobsBlock ui={ui} jobs={jobsOf(d.api, user, tenant)} tenant={tenant} />
          {canRequest && d.api.exports !== undefined ? (
            <div class="grid2">
              <form method="post" action="/exports/spot30" class="stack" id="spot30-form">
                <h2>{t.spot30}</h2>
                <Csrf ui={ui} />
                {user.role === 'operator' ? (
                  <label>
                    {t.tenant}
                    <input name="supportId" required maxlength={64} value={tenant} />
                  </label>
                ) : null}
                <label>
                  {t.fromDate}
                  <input type="date" name="from" required />
                </label>
                <label>
                  {t.toDate}
                  <input type="date" name="to" required />
                </label>
                <button type="submit">{t.request}</button>
              </form>
              <form method="post" action="/exports/spot1y" class="stack" id="spot1y-form">
                <h2>{t.spot1y}</h2>
                <Csrf ui={ui} />
                {user.role === 'operator' ? (
                  <label>
                    {t.tenant}
                    <input name="supportId" required maxlength={64} value={tenant} />
                  </label>
                ) : null}
                <label>
                  {t.tmid}
                  <input name="tmid" required maxlength={64} class="mono" />
                </label>
                <label>
                  {t.computer}
                  <input name="computer" maxlength={256} />
                </label>
                <button type="submit">{t.request}</button>
              </form>
            </div>
          ) : null}
        </Layout>
      );
    }),
  );
  for (const kind of ['spot30', 'spot1y'] as const) {
    app.post(
      `/exports/${kind}`,
      page(deps, { roles: ['operator', 'admin'] }, async ({ c, user, form, from, deps: d }) => {
        const supportId = form.supportId ? { supportId: form.supportId } : {};
        try {
          await requestSpotJob(
            d.api,
            user,
            from,
            kind === 'spot30' ? { kind, ...supportId, from: form.from ?? '', to: form.to ?? '' } : { kind, ...supportId, tmid: form.tmid ?? '', ...(form.computer ? { computer: form.computer } : {}) },
          );
        } catch (err) {
          if (isKisekiError(err) && err.code === 'ERR_VALIDATION') return c.redirect('/exports?flash=invalid', 303);
          throw err;
        }
        return c.redirect(`/exports?flash=queued${user.role === 'operator' && form.supportId ? `&tenant=${encodeURIComponent(form.supportId)}` : ''}`, 303);
      }),
    );
  }
}
