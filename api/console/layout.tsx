/**
 * The page shell every console page shares: landmarks (banner, navigation,
 * main), a skip link, the main menu for the user's role, the language
 * switch and the logout form. Scripts are external files only (the CSP
 * forbids inline code); a page asks for htmx or uPlot when it needs them,
 * so most pages send a few kilobytes of JavaScript at most.
 */
import type { Child } from 'hono/jsx';
import type { UserRecord } from '../../storage/index.js';
import type { AssetName, ConsoleAssets } from './assets.js';
import type { Lang, Messages } from './i18n.js';

/** What a page knows about its request: language, messages, user, CSRF token, path. */
export interface Ui {
  lang: Lang;
  t: Messages;
  user: UserRecord | undefined;
  csrf: string;
  /** Path and query of the request (the language switch comes back to it). */
  path: string;
  assets: ConsoleAssets;
  /** The periodic-reports API exists on this server. */
  reportsAvailable: boolean;
}

export interface LayoutProps {
  ui: Ui;
  title: string;
  /** The menu entry to mark as current. */
  section?: string;
  scripts?: AssetName[];
  styles?: AssetName[];
  children?: Child;
}

/** The hidden CSRF field every state-changing form carries. */
export function Csrf({ ui }: { ui: Ui }) {
  return <input type="hidden" name="_csrf" value={ui.csrf} />;
}

function menu(ui: Ui): { href: string; key: keyof Messages; id: string }[] {
  const role = ui.user?.role;
  const items: { href: string; key: keyof Messages; id: string }[] = [
    { href: '/', key: 'navDashboard', id: 'dashboard' },
    { href: '/devices', key: 'navDevices', id: 'devices' },
    { href: '/alerts', key: 'navAlerts', id: 'alerts' },
    { href: '/exceptions', key: 'navExceptions', id: 'exceptions' },
    { href: '/exports', key: 'navExports', id: 'exports' },
  ];
  if (role === 'operator' || role === 'admin') items.push({ href: '/users', key: 'navUsers', id: 'users' }, { href: '/audit', key: 'navAudit', id: 'audit' });
  items.push({ href: '/reports', key: 'navReports', id: 'reports' });
  return items;
}

/** The full HTML document of a console page. */
export function Layout({ ui, title, section, scripts = [], styles = [], children }: LayoutProps) {
  const { t } = ui;
  const other: Lang = ui.lang === 'ja' ? 'en' : 'ja';
  const switchHref = `/lang?to=${other}&back=${encodeURIComponent(ui.path)}`;
  return (
    <html lang={ui.lang}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} — ${t.appName}`}</title>
        <link rel="stylesheet" href={ui.assets.url('console.css')} />
        {styles.map((s) => (
          <link rel="stylesheet" href={ui.assets.url(s)} />
        ))}
      </head>
      <body>
        <a class="skip" href="#main">
          {t.skip}
        </a>
        <header class="top">
          <a class="brand" href="/">
            {t.appName}
          </a>
          {ui.user !== undefined && !ui.user.mustChangePassword ? (
            <nav class="main" aria-label={t.navMain}>
              <ul>
                {menu(ui).map((m) => (
                  <li>
                    <a href={m.href} aria-current={m.id === section ? 'page' : undefined}>
                      {t[m.key]}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          ) : null}
          <div class="who">
            {ui.user !== undefined ? (
              <span>
                <span class="visually-hidden">{t.loggedInAs} </span>
                {ui.user.id}
                {ui.user.supportId !== null ? ` (${ui.user.supportId})` : ''}
              </span>
            ) : null}
            <a href={switchHref} lang={other} hreflang={other} id="lang-switch">
              {t.switchTo}
            </a>
            {ui.user !== undefined ? (
              <form method="post" action="/logout">
                <Csrf ui={ui} />
                <button type="submit" class="link">
                  {t.logout}
                </button>
              </form>
            ) : null}
          </div>
        </header>
        <main id="main" tabindex={-1}>
          <h1>{title}</h1>
          {children}
        </main>
        {scripts.map((s) => (
          <script src={ui.assets.url(s)} defer />
        ))}
      </body>
    </html>
  );
}

/** A verdict as a coloured badge with its word (never colour alone). */
export function VerdictBadge({ ui, verdict }: { ui: Ui; verdict: 'black' | 'gray' | 'white' }) {
  return <span class={`verdict verdict-${verdict}`}>{ui.t[verdict]}</span>;
}
