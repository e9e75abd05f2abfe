/**
 * Devices: the list with search and filters (state, agent version, last
 * communication; tenant for operators) paged by TMID so a page reads only
 * what it shows even at 20,000 devices, and one device's page: facts,
 * inventory (applications, Windows Update, USB), recent alerts, isolation
 * with its allow-list editor, release, and the command history with states.
 * The isolation block refreshes itself with htmx while a command is pending.
 */
import type { Hono } from 'hono';
import { KisekiError } from '../../../core/errors.js';
import type { UserRecord } from '../../../storage/index.js';
import { decodeCursor, encodeCursor, type ApiDeps } from '../../route-kit.js';
import { assertTenant, collect, deviceView } from '../../routes/shared.js';
import { filteredDevices, requestCommand, type DeviceFilter, type DeviceListItem, type ScanBudget } from '../../services.js';
import { formatTime } from '../i18n.js';
import { page, type ConsoleDeps } from '../kit.js';
import { Csrf, Layout, VerdictBadge, type Ui } from '../layout.js';

export const DEVICE_PAGE_SIZE = 50;
/**
 * Devices read per request at most: a filter that matches few of 20,000
 * devices would otherwise read them all (measured 345 ms median in
 * bench/micro/console-devices.bench.ts); past this the page offers to
 * continue the search from where it stopped.
 */
export const DEVICE_SCAN_BUDGET = 5000;

/** One page of the devices list. */
export interface DevicesResult {
  items: DeviceListItem[];
  /** Cursor of the next page (or of the rest of the search), null at the end. */
  next: string | null;
  /** Devices read for this page. */
  scanned: number;
  /** The scan budget ran out: `next` continues the search. */
  partial: boolean;
}

/** The query of the devices page, as the form sends it. */
export interface DevicesQuery {
  q?: string;
  state?: string;
  version?: string;
  seen?: string;
  tenant?: string;
  cursor?: string;
}

/** One page of devices for the list: the rows shown and the cursor of the next page (null at the end). */
export function devicesPage(api: ApiDeps, user: UserRecord, query: DevicesQuery): DevicesResult {
  const seenDays = Number(query.seen);
  const filter: DeviceFilter = {
    ...(user.role === 'operator' && query.tenant ? { supportId: query.tenant } : {}),
    ...(query.q ? { computer: query.q } : {}),
    ...(query.version ? { agentVersion: query.version } : {}),
    ...(query.state === 'online' ? { connected: true } : query.state === 'offline' ? { connected: false } : query.state === 'isolated' ? { isolated: true } : {}),
    ...(Number.isInteger(seenDays) && seenDays > 0 ? { lastSeenFrom: api.clock.now() - seenDays * 86_400_000 } : {}),
  };
  const after = decodeCursor(query.cursor || undefined)?.[0];
  const budget: ScanBudget = { max: DEVICE_SCAN_BUDGET, scanned: 0, exhausted: false };
  const items = collect(filteredDevices(api, user, filter, typeof after === 'string' ? after : undefined, budget), DEVICE_PAGE_SIZE, (d) => d);
  const more = items.length > DEVICE_PAGE_SIZE;
  const shown = items.slice(0, DEVICE_PAGE_SIZE);
  if (more) return { items: shown, next: encodeCursor([shown.at(-1)!.tmid]), scanned: budget.scanned, partial: false };
  // The budget ran out before the page filled: offer to continue from the last device read.
  if (budget.exhausted && budget.last !== undefined) return { items: shown, next: encodeCursor([budget.last]), scanned: budget.scanned, partial: true };
  return { items: shown, next: null, scanned: budget.scanned, partial: false };
}

function isolationWord(ui: Ui, state: string): string {
  return state === 'isolated' ? ui.t.isoIsolated : state === 'released' ? ui.t.isoReleased : ui.t.isoNone;
}

/** The devices list page (exported for the benchmark). */
export function DevicesPage({ ui, user, query, result }: { ui: Ui; user: UserRecord; query: DevicesQuery; result: DevicesResult }) {
  const { t } = ui;
  const operator = user.role === 'operator';
  const base = { ...query } as Record<string, string>;
  delete base.cursor;
  return (
    <Layout ui={ui} title={t.devicesTitle} section="devices">
      <form method="get" action="/devices" class="filters" role="search" aria-label={t.filter}>
        {operator ? (
          <label>
            {t.tenant}
            <input name="tenant" value={query.tenant ?? ''} maxlength={64} />
          </label>
        ) : null}
        <label>
          {t.computer}
          <input name="q" type="search" value={query.q ?? ''} maxlength={256} />
        </label>
        <label>
          {t.state}
          <select name="state">
            <option value="">{t.any}</option>
            <option value="online" selected={query.state === 'online'}>
              {t.online}
            </option>
            <option value="offline" selected={query.state === 'offline'}>
              {t.offline}
            </option>
            <option value="isolated" selected={query.state === 'isolated'}>
              {t.isolated}
            </option>
          </select>
        </label>
        <label>
          {t.agentVersion}
          <input name="version" value={query.version ?? ''} maxlength={64} />
        </label>
        <label>
          {t.lastSeenWithin} ({t.days})
          <input name="seen" type="number" min={1} max={365} value={query.seen ?? ''} />
        </label>
        <button type="submit">{t.filter}</button>
      </form>
      {result.partial ? (
        <p class="notice" role="status" id="search-partial">
          {t.searchPartial.replace('{n}', result.scanned.toLocaleString('en-US'))}
        </p>
      ) : null}
      {result.items.length === 0 ? (
        <p>{result.partial ? '' : t.noItems}</p>
      ) : (
        <table id="devices-table">
          <caption class="visually-hidden">{t.devicesTitle}</caption>
          <thead>
            <tr>
              <th scope="col">{t.computer}</th>
              {operator ? <th scope="col">{t.tenant}</th> : null}
              <th scope="col">{t.state}</th>
              <th scope="col">{t.isolationState}</th>
              <th scope="col">{t.agentVersion}</th>
              <th scope="col">{t.lastSeen}</th>
              <th scope="col">{t.events}</th>
              <th scope="col">{t.seqGaps}</th>
            </tr>
          </thead>
          <tbody>
            {result.items.map((d) => (
              <tr>
                <td>
                  <a href={`/devices/${encodeURIComponent(d.tmid)}`}>{d.computer}</a>
                </td>
                {operator ? <td>{d.supportId}</td> : null}
                <td>{d.connected ? t.online : t.offline}</td>
                <td>{isolationWord(ui, d.isolation)}</td>
                <td>{d.agentVersion}</td>
                <td>{formatTime(d.lastCommunication)}</td>
                <td>{d.events}</td>
                <td>{d.seqGaps}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="pager">
        {query.cursor ? <a href={`/devices?${new URLSearchParams(base).toString()}`}>{t.first}</a> : null}
        {result.next !== null ? <a href={`/devices?${new URLSearchParams({ ...base, cursor: result.next }).toString()}`}>{result.partial ? t.continueSearch : t.next}</a> : null}
      </nav>
    </Layout>
  );
}

/** The isolation state and the commands, refreshed by htmx every 2 s while a command is in flight. */
function IsolationBlock({ ui, api, tmid }: { ui: Ui; api: ApiDeps; tmid: string }) {
  const { t } = ui;
  const iso = api.store.commands.isolation(tmid);
  const commands = api.store.commands.forDevice(tmid);
  const pending = commands.some((cmd) => cmd.state === 'queued' || cmd.state === 'sent' || cmd.state === 'acknowledged');
  return (
    <div id="isolation-block" {...(pending ? { 'hx-get': `/devices/${encodeURIComponent(tmid)}/isolation`, 'hx-trigger': 'every 2s', 'hx-swap': 'outerHTML' } : {})} aria-live="polite">
      <p>
        {t.isolationState}: <strong id="isolation-state">{isolationWord(ui, iso?.state ?? 'none')}</strong>
        {iso !== undefined ? ` (${formatTime(iso.since)})` : ''}
        {iso?.state === 'isolated' && iso.allow.length > 0 ? ` — ${iso.allow.map((a) => (a.port === undefined ? a.cidr : `${a.cidr}:${a.port}`)).join(', ')}` : ''}
      </p>
      <h2 id="commands">{t.commands}</h2>
      <table id="commands-table">
        <thead>
          <tr>
            <th scope="col">{t.requestedAt}</th>
            <th scope="col">{t.kind}</th>
            <th scope="col">{t.requestedBy}</th>
            <th scope="col">{t.commandState}</th>
          </tr>
        </thead>
        <tbody>
          {[...commands].reverse().map((cmd) => (
            <tr>
              <td>{formatTime(cmd.requestedAt)}</td>
              <td>{cmd.kind}</td>
              <td>{cmd.requestedBy}</td>
              <td data-state={cmd.state}>{cmd.state}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Parses the allow-list editor: one `IP[/bits][:port]` (or `[v6]:port`) per line. */
export function parseAllowList(text: string): { cidr: string; port?: number }[] | undefined {
  const out: { cidr: string; port?: number }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const v6 = /^\[([0-9a-fA-F:.]+(?:\/\d{1,3})?)\](?::(\d{1,5}))?$/.exec(line);
    const v4 = /^([0-9.]+(?:\/\d{1,2})?)(?::(\d{1,5}))?$/.exec(line);
    const bare6 = /^([0-9a-fA-F:]+:[0-9a-fA-F:.]*(?:\/\d{1,3})?)$/.exec(line);
    const m = v6 ?? v4;
    const cidr = m?.[1] ?? bare6?.[1];
    const port = m?.[2] === undefined ? undefined : Number(m[2]);
    if (cidr === undefined || (port !== undefined && (port < 1 || port > 65535))) return undefined;
    out.push(port === undefined ? { cidr } : { cidr, port });
    if (out.length > 64) return undefined;
  }
  return out;
}

type Inventory = { apps?: { name?: string; version?: string; publisher?: string }[]; usb?: Record<string, unknown>[]; windowsUpdate?: Record<string, unknown>; model?: string; osVersion?: string };

/** Registers the devices list, a device's page, its isolation fragment and the isolate / release forms. */
export function mountDevicePages(app: Hono, deps: ConsoleDeps): void {
  app.get(
    '/devices',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const query = c.req.query() as DevicesQuery;
      return <DevicesPage ui={ui} user={user} query={query} result={devicesPage(d.api, user, query)} />;
    }),
  );
  app.get(
    '/devices/:tmid/isolation',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const device = d.api.store.devices.get(c.req.param('tmid') ?? '');
      assertTenant(user, device?.supportId);
      return <IsolationBlock ui={ui} api={d.api} tmid={device!.tmid} />;
    }),
  );
  app.get(
    '/devices/:tmid',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const device = d.api.store.devices.get(c.req.param('tmid') ?? '');
      assertTenant(user, device?.supportId);
      const v = deviceView(d.api.store, device!, true);
      const inv = (v.inventory ?? {}) as Inventory;
      const alerts = d.api.store.alerts.recentOfDevice(device!.tmid, 20).map((r) => d.api.store.alerts.effective(r.alertId)).filter((a) => a !== undefined);
      const canAct = user.role === 'operator' || user.role === 'admin';
      const flash = c.req.query('flash');
      return (
        <Layout ui={ui} title={`${t.deviceTitle}: ${v.computer}`} section="devices" scripts={['htmx.min.js', 'console.js']}>
          {flash === 'queued' ? (
            <p class="notice" role="status">
              {t.queued}
            </p>
          ) : flash === 'invalid' ? (
            <p class="error" role="alert">
              {t.invalidAllow}
            </p>
          ) : null}
          <dl class="facts">
            <dt>{t.tmid}</dt>
            <dd class="mono">{v.tmid}</dd>
            <dt>{t.tenant}</dt>
            <dd>{v.supportId}</dd>
            <dt>{t.state}</dt>
            <dd>{v.connected ? t.online : t.offline}</dd>
            <dt>{t.agentVersion}</dt>
            <dd>{v.agentVersion}</dd>
            <dt>OS</dt>
            <dd>{v.os}</dd>
            <dt>IP</dt>
            <dd>{v.ips.join(', ')}</dd>
            <dt>{t.lastSeen}</dt>
            <dd>{formatTime(v.lastCommunication)}</dd>
            <dt>{t.events}</dt>
            <dd>{v.events}</dd>
            <dt>{t.seqGaps}</dt>
            <dd>{v.seqGaps}</dd>
          </dl>
          <h2 id="isolation">{t.isolation}</h2>
          <IsolationBlock ui={ui} api={d.api} tmid={v.tmid} />
          {canAct ? (
            <div class="grid2">
              <form method="post" action={`/devices/${encodeURIComponent(v.tmid)}/isolate`} class="stack" id="isolate-form">
                <Csrf ui={ui} />
                <label>
                  {t.allowList}
                  <textarea name="allow" rows={4} class="mono">
                    {(v.isolationAllow ?? []).map((a) => (a.port === undefined ? a.cidr : `${a.cidr.includes(':') ? `[${a.cidr}]` : a.cidr}:${a.port}`)).join('\n')}
                  </textarea>
                </label>
                <button type="submit" class="danger">
                  {t.isolate}
                </button>
              </form>
              <form method="post" action={`/devices/${encodeURIComponent(v.tmid)}/release`} class="stack" id="release-form">
                <Csrf ui={ui} />
                <button type="submit">{t.release}</button>
              </form>
            </div>
          ) : null}
          <h2 id="recent-alerts">{t.recentAlerts}</h2>
          {alerts.length === 0 ? (
            <p>{t.noItems}</p>
          ) : (
            <ul>
              {alerts.map((a) => (
                <li>
                  <a href={`/alerts/${encodeURIComponent(a.id)}`}>{formatTime(a.detectedAt)}</a> <VerdictBadge ui={ui} verdict={a.verdict} /> {a.threat}
                </li>
              ))}
            </ul>
          )}
          <h2 id="inventory">{t.inventory}</h2>
          <p>
            {inv.model ?? '-'} / {inv.osVersion ?? '-'}
          </p>
          <h3>{t.apps}</h3>
          <ul>
            {(inv.apps ?? []).map((a) => (
              <li>
                {a.name ?? '?'} {a.version ?? ''} {a.publisher !== undefined ? `(${a.publisher})` : ''}
              </li>
            ))}
          </ul>
          <h3>{t.updates}</h3>
          <p class="mono">{inv.windowsUpdate === undefined ? '-' : JSON.stringify(inv.windowsUpdate)}</p>
          <h3>{t.usb}</h3>
          <ul>
            {(inv.usb ?? []).map((u) => (
              <li class="mono">{JSON.stringify(u)}</li>
            ))}
          </ul>
        </Layout>
      );
    }),
  );
  app.post(
    '/devices/:tmid/isolate',
    page(deps, { roles: ['operator', 'admin'] }, async ({ c, user, form, from, deps: d }) => {
      const tmid = c.req.param('tmid') ?? '';
      const allow = parseAllowList(form.allow ?? '');
      if (allow === undefined) {
        assertTenant(user, d.api.store.devices.get(tmid)?.supportId);
        return c.redirect(`/devices/${encodeURIComponent(tmid)}?flash=invalid`, 303);
      }
      await requestCommand(d.api, user, from, tmid, { kind: 'isolate', args: { allow } });
      return c.redirect(`/devices/${encodeURIComponent(tmid)}?flash=queued#isolation`, 303);
    }),
  );
  app.post(
    '/devices/:tmid/release',
    page(deps, { roles: ['operator', 'admin'] }, async ({ c, user, from, deps: d }) => {
      const tmid = c.req.param('tmid') ?? '';
      if (tmid === '') throw new KisekiError('ERR_NOT_FOUND');
      await requestCommand(d.api, user, from, tmid, { kind: 'release', args: {} });
      return c.redirect(`/devices/${encodeURIComponent(tmid)}?flash=queued#isolation`, 303);
    }),
  );
}
