/**
 * How a console page is served: security headers, the TLS client
 * certificate where configured, the session (else a redirect to the login
 * page), the forced password change, roles, CSRF on every POST, and errors
 * rendered as pages (another tenant's resource is a 404 exactly like a
 * missing one). Pages get a `Ui` and return JSX or a Response.
 */
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { isKisekiError } from '../../core/errors.js';
import type { Role, UserRecord } from '../../storage/index.js';
import { SESSION_COOKIE, type ApiDeps } from '../route-kit.js';
import type { ConsoleAssets } from './assets.js';
import { CATALOGUE, LANG_COOKIE, pickLang, type MessageKey } from './i18n.js';
import { Layout, type Ui } from './layout.js';
import { csrfToken, csrfValid, sameOrigin, setSecurityHeaders } from './security.js';

export interface ConsoleDeps {
  api: ApiDeps;
  assets: ConsoleAssets;
  reportsAvailable: boolean;
}

export interface PageOptions {
  /** Roles allowed; all when absent. */
  roles?: Role[];
  /** Served before the forced password change (the change page itself, logout). */
  beforePasswordChange?: boolean;
}

/** The result of a page handler: HTML (JSX) or a ready response (redirect, download). */
export type PageResult = Response | { toString(): string | Promise<string> };

export interface PageArgs {
  c: Context;
  ui: Ui;
  user: UserRecord;
  deps: ConsoleDeps;
  /** The client address as the server sees it. */
  from: string;
  /** The parsed form body of a POST (CSRF already checked). */
  form: Record<string, string>;
}

export function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

export function clientCertVerified(c: Context): boolean {
  const socket = (c.env as { incoming?: { socket?: { authorized?: boolean } } } | undefined)?.incoming?.socket;
  return socket?.authorized === true;
}

/** The Ui of a request, before or after the user is known. */
export function uiOf(c: Context, deps: ConsoleDeps, user: UserRecord | undefined, session: string | undefined): Ui {
  const lang = pickLang(getCookie(c, LANG_COOKIE), c.req.header('accept-language'));
  const url = new URL(c.req.url);
  return { lang, t: CATALOGUE[lang], user, csrf: session === undefined ? '' : csrfToken(session), path: url.pathname + url.search, assets: deps.assets, reportsAvailable: deps.reportsAvailable };
}

/** Sends rendered JSX as HTML; a whole document gets its doctype (standards mode), a fragment (htmx) not. */
export async function render(c: Context, out: { toString(): string | Promise<string> }, status: 200 | 400 | 401 | 403 | 404 | 423 = 200): Promise<Response> {
  const html = await out.toString();
  return c.html(html.startsWith('<html') ? `<!DOCTYPE html>${html}` : html, status);
}

/** A page holding only a message, with a status (404, 403, 400). */
export async function messagePage(c: Context, ui: Ui, status: 400 | 401 | 403 | 404, key: MessageKey): Promise<Response> {
  setSecurityHeaders(c);
  return render(
    c,
    <Layout ui={ui} title={ui.t[key]}>
      <p>
        <a href="/">{ui.t.navDashboard}</a>
      </p>
    </Layout>,
    status,
  );
}

/** The path a login should come back to: a local path only (never another site). */
export function safeNext(next: string | undefined): string {
  return next !== undefined && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}

async function formOf(c: Context): Promise<Record<string, string>> {
  const body = await c.req.parseBody({ all: false });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Wraps a page handler with the checks every authenticated console page needs. */
export function page(deps: ConsoleDeps, options: PageOptions, handler: (args: PageArgs) => PageResult | Promise<PageResult>) {
  return async (c: Context): Promise<Response> => {
    setSecurityHeaders(c);
    c.header('cache-control', 'no-store');
    if (deps.api.requireClientCert && !clientCertVerified(c)) return messagePage(c, uiOf(c, deps, undefined, undefined), 401, 'certMissing');
    const token = getCookie(c, SESSION_COOKIE);
    const resolved = token === undefined ? undefined : deps.api.store.identity.resolveSession(token, deps.api.clock.now());
    if (resolved === undefined || token === undefined) {
      const url = new URL(c.req.url);
      return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    const user = resolved.user;
    const ui = uiOf(c, deps, user, token);
    if (user.mustChangePassword && options.beforePasswordChange !== true) return c.redirect('/password', 303);
    let form: Record<string, string> = {};
    if (c.req.method === 'POST') {
      form = await formOf(c);
      if (!sameOrigin(c) || !csrfValid(token, form._csrf)) return messagePage(c, ui, 403, 'csrf');
    }
    if (options.roles !== undefined && !options.roles.includes(user.role)) return messagePage(c, ui, 403, 'forbidden');
    try {
      const out = await handler({ c, ui, user, deps, from: clientAddress(c), form });
      if (out instanceof Response) return out;
      return await render(c, out);
    } catch (err) {
      if (isKisekiError(err) && err.status === 404) return messagePage(c, ui, 404, 'notFound');
      if (isKisekiError(err) && err.status === 403) return messagePage(c, ui, 403, 'forbidden');
      throw err;
    }
  };
}

/** Reads the public form of a page without a session (login): security headers and Origin check only. */
export async function publicForm(c: Context): Promise<Record<string, string> | undefined> {
  if (!sameOrigin(c)) return undefined;
  return formOf(c);
}
