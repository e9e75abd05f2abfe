/**
 * Login (ID + password; the TLS client certificate where configured), the
 * forced password change at first login, logout, and the language switch.
 */
import type { Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { isKisekiError } from '../../../core/errors.js';
import { SESSION_COOKIE } from '../../route-kit.js';
import { changeOwnPassword, loginWithPassword } from '../../services.js';
import { clientAddress, clientCertVerified, messagePage, page, publicForm, render, safeNext, uiOf, type ConsoleDeps } from '../kit.js';
import { LANG_COOKIE, type MessageKey } from '../i18n.js';
import { Csrf, Layout, type Ui } from '../layout.js';
import { setSecurityHeaders } from '../security.js';

function LoginPage({ ui, next, error, requireCert }: { ui: Ui; next: string; error?: MessageKey; requireCert: boolean }) {
  const { t } = ui;
  return (
    <Layout ui={ui} title={t.loginTitle}>
      {requireCert ? <p class="notice">{t.loginCert}</p> : null}
      {error !== undefined ? (
        <p class="error" role="alert" id="login-error">
          {t[error]}
        </p>
      ) : null}
      <form method="post" action="/login" class="stack">
        <input type="hidden" name="next" value={next} />
        <label>
          {t.loginId}
          <input name="id" autocomplete="username" required maxlength={64} autofocus />
        </label>
        <label>
          {t.password}
          <input name="password" type="password" autocomplete="current-password" required maxlength={128} />
        </label>
        <button type="submit" class="primary">
          {t.loginButton}
        </button>
      </form>
    </Layout>
  );
}

function PasswordPage({ ui, error, forced }: { ui: Ui; error?: MessageKey; forced: boolean }) {
  const { t } = ui;
  return (
    <Layout ui={ui} title={t.passwordTitle}>
      {forced ? <p class="notice">{t.passwordForced}</p> : null}
      {error !== undefined ? (
        <p class="error" role="alert">
          {t[error]}
        </p>
      ) : null}
      <form method="post" action="/password" class="stack">
        <Csrf ui={ui} />
        <label>
          {t.currentPassword}
          <input name="currentPassword" type="password" autocomplete="current-password" required maxlength={128} autofocus />
        </label>
        <label>
          {t.newPassword}
          <input name="newPassword" type="password" autocomplete="new-password" required minlength={6} maxlength={128} aria-describedby="pw-hint" />
          <small id="pw-hint">{t.newPasswordHint}</small>
        </label>
        <label>
          {t.confirmPassword}
          <input name="confirmPassword" type="password" autocomplete="new-password" required minlength={6} maxlength={128} />
        </label>
        <button type="submit" class="primary">
          {t.change}
        </button>
      </form>
    </Layout>
  );
}

/** Registers the login, password, logout and language routes. */
export function mountAuthPages(app: Hono, deps: ConsoleDeps): void {
  const loginGuard = async (c: Context): Promise<Response | undefined> => {
    setSecurityHeaders(c);
    c.header('cache-control', 'no-store');
    if (deps.api.requireClientCert && !clientCertVerified(c)) return messagePage(c, uiOf(c, deps, undefined, undefined), 401, 'certMissing');
    return undefined;
  };
  app.get('/login', async (c) => {
    const refused = await loginGuard(c);
    if (refused !== undefined) return refused;
    const ui = uiOf(c, deps, undefined, undefined);
    return render(c, <LoginPage ui={ui} next={safeNext(c.req.query('next'))} requireCert={deps.api.requireClientCert} />);
  });
  app.post('/login', async (c) => {
    const refused = await loginGuard(c);
    if (refused !== undefined) return refused;
    const ui = uiOf(c, deps, undefined, undefined);
    const form = await publicForm(c);
    if (form === undefined) return messagePage(c, ui, 403, 'csrf');
    const next = safeNext(form.next);
    try {
      const { user } = await loginWithPassword(c, deps.api, (form.id ?? '').slice(0, 64), (form.password ?? '').slice(0, 128), clientAddress(c));
      return c.redirect(user.mustChangePassword ? '/password' : next, 303);
    } catch (err) {
      if (!isKisekiError(err)) throw err;
      const locked = err.code === 'ERR_ACCOUNT_LOCKED';
      return render(c, <LoginPage ui={ui} next={next} error={locked ? 'locked' : 'badCredentials'} requireCert={deps.api.requireClientCert} />, locked ? 423 : 401);
    }
  });
  app.get(
    '/password',
    page(deps, { beforePasswordChange: true }, ({ ui, user }) => <PasswordPage ui={ui} forced={user.mustChangePassword} />),
  );
  app.post(
    '/password',
    page(deps, { beforePasswordChange: true }, async ({ c, ui, user, form, from, deps: d }) => {
      const forced = user.mustChangePassword;
      const fail = (error: MessageKey) => render(c, <PasswordPage ui={ui} forced={forced} error={error} />, 400);
      const current = form.currentPassword ?? '';
      const next = form.newPassword ?? '';
      if (next !== form.confirmPassword) return fail('passwordMismatch');
      if (!/^[\x20-\x7e]{6,128}$/.test(next)) return fail('passwordRule');
      try {
        await changeOwnPassword(d.api, user, from, current, next, getCookie(c, SESSION_COOKIE));
      } catch (err) {
        if (!isKisekiError(err)) throw err;
        return fail(err.code === 'ERR_INVALID_CREDENTIALS' || err.code === 'ERR_ACCOUNT_LOCKED' ? 'passwordWrong' : 'passwordRule');
      }
      return c.redirect('/', 303);
    }),
  );
  app.post(
    '/logout',
    page(deps, { beforePasswordChange: true }, async ({ c, user, from, deps: d }) => {
      const token = getCookie(c, SESSION_COOKIE);
      if (token !== undefined) await d.api.store.identity.revokeSession(token);
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      await d.api.store.identity.appendAudit({ at: d.api.clock.now(), actor: user.id, role: user.role, supportId: user.supportId, action: 'auth.logout', target: 'session', from });
      return c.redirect('/login', 303);
    }),
  );
  // The language is a display preference, not server state: a plain link sets it and comes back.
  app.get('/lang', (c) => {
    setSecurityHeaders(c);
    const to = c.req.query('to');
    if (to === 'ja' || to === 'en') {
      setCookie(c, LANG_COOKIE, to, { path: '/', sameSite: 'Lax', maxAge: 365 * 86_400, secure: new URL(c.req.url).protocol === 'https:' });
    }
    return c.redirect(safeNext(c.req.query('back')), 303);
  });
}
