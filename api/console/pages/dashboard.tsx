/**
 * The dashboard: 90 days of alerts per day by verdict, devices online /
 * offline / isolated, received batches per day (operators: the log is not
 * split by tenant), a tenant's failed logons and threshold alerts per day
 * (streaming analytics), and the top threats and rules. Figures come from the
 * storage repositories through the same scoped reads as the lists; the
 * charts are uPlot, drawn from a JSON data block, with the numbers also in
 * a table for screen readers and for browsers without JavaScript.
 */
import type { Hono } from 'hono';
import type { UserRecord } from '../../../storage/index.js';
import type { ApiDeps } from '../../route-kit.js';
import { filteredAlerts, filteredDevices } from '../../services.js';
import { page, type ConsoleDeps } from '../kit.js';
import { Layout, type Ui } from '../layout.js';

const DAYS = 90;
const DAY_MS = 86_400_000;
const JST_MS = 9 * 3600_000;
/** Reports read for the top-rules table, newest first: bounds the dashboard's cost on busy tenants. */
const MAX_REPORTS_FOR_RULES = 2000;

export interface DashboardData {
  /** Start of each JST day, seconds (uPlot's x axis), oldest first. */
  days: number[];
  alerts: { black: number[]; gray: number[]; white: number[] };
  batches: number[] | null;
  devices: { online: number; offline: number; isolated: number };
  topThreats: [string, number][];
  topRules: [string, number][];
  /** A tenant's streaming-analytics counters per day (admins and viewers: one tenant); null for operators. */
  analytics: { failedLogons: number[]; thresholdAlerts: number[] } | null;
}

function top(map: Map<string, number>, n: number): [string, number][] {
  return [...map.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n);
}

/** The dashboard's figures for a user's scope at `now`. */
export function dashboardData(api: ApiDeps, user: UserRecord, now: number): DashboardData {
  const todayStart = Math.floor((now + JST_MS) / DAY_MS) * DAY_MS - JST_MS;
  const first = todayStart - (DAYS - 1) * DAY_MS;
  const days = Array.from({ length: DAYS }, (_, i) => (first + i * DAY_MS) / 1000);
  const alerts = { black: new Array<number>(DAYS).fill(0), gray: new Array<number>(DAYS).fill(0), white: new Array<number>(DAYS).fill(0) };
  const threats = new Map<string, number>();
  const rules = new Map<string, number>();
  let reportsRead = 0;
  for (const a of filteredAlerts(api, user, { from: first })) {
    const i = Math.floor((a.createdAt - first) / DAY_MS);
    if (i >= 0 && i < DAYS) alerts[a.verdict][i]!++;
    threats.set(a.threat, (threats.get(a.threat) ?? 0) + 1);
    if (reportsRead < MAX_REPORTS_FOR_RULES) {
      reportsRead++;
      for (const r of api.store.alerts.revision(a.id, a.revision)?.rules ?? []) rules.set(r.ruleId, (rules.get(r.ruleId) ?? 0) + 1);
    }
  }
  const devices = { online: 0, offline: 0, isolated: 0 };
  for (const d of filteredDevices(api, user, {})) {
    if (d.connected) devices.online++;
    else devices.offline++;
    if (d.isolation === 'isolated') devices.isolated++;
  }
  let batches: number[] | null = null;
  if (user.role === 'operator') {
    // The log is ordered by receive time: one binary search per day boundary counts the day's batches.
    const bounds = Array.from({ length: DAYS + 1 }, (_, i) => api.store.log.lsnReceivedAtOrAfter(first + i * DAY_MS));
    batches = days.map((_, i) => bounds[i + 1]! - bounds[i]!);
  }
  let analytics: DashboardData['analytics'] = null;
  if (user.role !== 'operator' && user.supportId !== null) {
    const labels = days.map(dayLabel);
    analytics = {
      failedLogons: api.store.analytics.series(user.supportId, undefined, 'failedLogons', labels),
      thresholdAlerts: api.store.analytics.series(user.supportId, undefined, 'thresholdAlerts', labels),
    };
  }
  return { days, alerts, batches, devices, topThreats: top(threats, 10), topRules: top(rules, 10), analytics };
}

/** A chart container and its data block (JSON, not code: the CSP allows it). */
function Chart({ id, label, spec }: { id: string; label: string; spec: unknown }) {
  const json = JSON.stringify(spec).replace(/</g, '\\u003c');
  return (
    <>
      <div class="chart" data-chart={`${id}-data`} role="img" aria-label={label} id={id} />
      <script type="application/json" id={`${id}-data`} dangerouslySetInnerHTML={{ __html: json }} />
    </>
  );
}

function dayLabel(sec: number): string {
  return new Date(sec * 1000 + JST_MS).toISOString().slice(0, 10);
}

function DashboardPage({ ui, data }: { ui: Ui; data: DashboardData }) {
  const { t } = ui;
  const alertSpec = {
    x: data.days,
    series: [
      { label: t.black, color: '#111', values: data.alerts.black },
      { label: t.gray, color: '#8a6d00', values: data.alerts.gray },
      { label: t.white, color: '#2e7d32', values: data.alerts.white },
    ],
  };
  return (
    <Layout ui={ui} title={t.dashboardTitle} section="dashboard" scripts={['uplot.min.js', 'console.js']} styles={['uplot.min.css']}>
      <h2>{t.devicesState}</h2>
      <div class="cards" id="device-cards">
        <div class="card">
          {t.online}
          <div class="figure" data-figure="online">
            {data.devices.online}
          </div>
        </div>
        <div class="card">
          {t.offline}
          <div class="figure" data-figure="offline">
            {data.devices.offline}
          </div>
        </div>
        <div class="card">
          {t.isolated}
          <div class="figure" data-figure="isolated">
            {data.devices.isolated}
          </div>
        </div>
      </div>
      <div class="grid2">
        <section aria-labelledby="h-alerts">
          <h2 id="h-alerts">{t.alertsByDay}</h2>
          <Chart id="chart-alerts" label={t.alertsByDay} spec={alertSpec} />
          <details>
            <summary>{t.dataTable}</summary>
            <table>
              <thead>
                <tr>
                  <th scope="col">{t.day}</th>
                  <th scope="col">{t.black}</th>
                  <th scope="col">{t.gray}</th>
                  <th scope="col">{t.white}</th>
                </tr>
              </thead>
              <tbody>
                {data.days.map((d, i) =>
                  data.alerts.black[i]! + data.alerts.gray[i]! + data.alerts.white[i]! === 0 ? null : (
                    <tr>
                      <td>{dayLabel(d)}</td>
                      <td>{data.alerts.black[i]}</td>
                      <td>{data.alerts.gray[i]}</td>
                      <td>{data.alerts.white[i]}</td>
                    </tr>
                  ),
                )}
              </tbody>
            </table>
          </details>
        </section>
        {data.batches !== null ? (
          <section aria-labelledby="h-batches">
            <h2 id="h-batches">{t.eventsByDay}</h2>
            <Chart id="chart-batches" label={t.eventsByDay} spec={{ x: data.days, series: [{ label: t.count, color: '#0b57d0', values: data.batches }] }} />
          </section>
        ) : null}
        {data.analytics !== null ? (
          <section aria-labelledby="h-failed-logons">
            <h2 id="h-failed-logons">{t.failedLogonsByDay}</h2>
            <Chart
              id="chart-failed-logons"
              label={t.failedLogonsByDay}
              spec={{
                x: data.days,
                series: [
                  { label: t.failedLogons, color: '#b3261e', values: data.analytics.failedLogons },
                  { label: t.thresholdAlerts, color: '#8a6d00', values: data.analytics.thresholdAlerts },
                ],
              }}
            />
          </section>
        ) : null}
      </div>
      <div class="grid2">
        <TopTable id="top-threats" title={t.topThreats} column={t.threat} countLabel={t.count} rows={data.topThreats} />
        <TopTable id="top-rules" title={t.topRules} column={t.rules} countLabel={t.count} rows={data.topRules} />
      </div>
    </Layout>
  );
}

/** Registers the dashboard at `/`. */
export function mountDashboard(app: Hono, deps: ConsoleDeps): void {
  app.get(
    '/',
    page(deps, {}, ({ ui, user, deps: d }) => <DashboardPage ui={ui} data={dashboardData(d.api, user, d.api.clock.now())} />),
  );
}

/** A top-N table (threats, rules) of the dashboard: name and count, with its own heading. */
function TopTable(props: { id: string; title: string; column: string; countLabel: string; rows: readonly (readonly [string, number])[] }) {
  return (
    <section aria-labelledby={`h-${props.id}`}>
      <h2 id={`h-${props.id}`}>{props.title}</h2>
      <table id={props.id}>
        <thead>
          <tr>
            <th scope="col">{props.column}</th>
            <th scope="col">{props.countLabel}</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map(([k, n]) => (
            <tr>
              <td>{k}</td>
              <td>{n}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
