/**
 * Users and roles (a tenant admin manages its own tenant's users), the audit
 * log and the exception list (the reports pages are pages/reports.tsx).
 */
import type { Hono } from 'hono';
import { isKisekiError } from '../../../core/errors.js';
import type { ExceptionEntry } from '../../../core/contracts.js';
import type { Role } from '../../../storage/index.js';
import { decodeCursor, encodeCursor } from '../../route-kit.js';
import { collect, scopeOf } from '../../routes/shared.js';
import { createUserAs } from '../../services.js';
import { formatTime } from '../i18n.js';
import { page, type ConsoleDeps } from '../kit.js';
import { Csrf, Layout } from '../layout.js';

const PAGE_SIZE = 100;
const ROLE_KEYS = { operator: 'roleOperator', admin: 'roleAdmin', viewer: 'roleViewer' } as const;

/** Registers /users, /audit and /exceptions. */
export function mountAdminPages(app: Hono, deps: ConsoleDeps): void {
  app.get(
    '/users',
    page(deps, { roles: ['operator', 'admin'] }, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const scope = scopeOf(user);
      const users = collect(d.api.store.identity.scanUsers(), 1000, (u) => (scope !== null && u.supportId !== scope ? undefined : u));
      const roles: Role[] = user.role === 'operator' ? ['operator', 'admin', 'viewer'] : ['admin', 'viewer'];
      const flash = c.req.query('flash');
      return (
        <Layout ui={ui} title={t.usersTitle} section="users">
          {flash === 'created' ? (
            <p class="notice" role="status">
              {t.created}
            </p>
          ) : flash === 'invalid' ? (
            <p class="error" role="alert">
              {t.invalidRequest}
            </p>
          ) : null}
          <table id="users-table">
            <thead>
              <tr>
                <th scope="col">{t.userId}</th>
                <th scope="col">{t.role}</th>
                <th scope="col">{t.tenant}</th>
                <th scope="col">{t.mustChange}</th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <tr>
                  <td>{u.id}</td>
                  <td>{t[ROLE_KEYS[u.role]]}</td>
                  <td>{u.supportId ?? '-'}</td>
                  <td>{u.mustChangePassword ? t.yes : t.no}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2 id="create-user">{t.createUser}</h2>
          <form method="post" action="/users" class="stack">
            <Csrf ui={ui} />
            <label>
              {t.userId}
              <input name="id" required minlength={3} maxlength={64} autocomplete="off" />
            </label>
            <label>
              {t.role}
              <select name="role">
                {roles.map((r) => (
                  <option value={r}>{t[ROLE_KEYS[r]]}</option>
                ))}
              </select>
            </label>
            {user.role === 'operator' ? (
              <label>
                {t.tenant}
                <input name="supportId" maxlength={64} />
              </label>
            ) : null}
            <label>
              {t.tempPassword}
              <input name="password" type="password" required minlength={6} maxlength={128} autocomplete="new-password" />
            </label>
            <button type="submit" class="primary">
              {t.createUser}
            </button>
          </form>
        </Layout>
      );
    }),
  );
  app.post(
    '/users',
    page(deps, { roles: ['operator', 'admin'] }, async ({ c, user, form, from, deps: d }) => {
      const role = (['operator', 'admin', 'viewer'] as const).find((r) => r === form.role);
      const supportId = user.role === 'admin' ? user.supportId : form.supportId || null;
      if (role === undefined || !/^[\x20-\x7e]{6,128}$/.test(form.password ?? '') || (form.id ?? '').length < 3) return c.redirect('/users?flash=invalid', 303);
      try {
        await createUserAs(d.api, user, from, { id: form.id!.slice(0, 64), role, supportId: role === 'operator' ? null : supportId, password: form.password! });
      } catch (err) {
        if (isKisekiError(err) && err.status !== 404 && err.status !== 403) return c.redirect('/users?flash=invalid', 303);
        throw err;
      }
      return c.redirect('/users?flash=created', 303);
    }),
  );
  app.get(
    '/audit',
    page(deps, { roles: ['operator', 'admin'] }, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const scope = scopeOf(user);
      const cursor = decodeCursor(c.req.query('cursor') || undefined);
      const after = cursor === undefined ? undefined : { at: Number(cursor[0]), id: String(cursor[1]) };
      const items = collect(d.api.store.identity.scanAudit(after), PAGE_SIZE, (a) => (scope !== null && a.supportId !== scope ? undefined : a));
      const more = items.length > PAGE_SIZE;
      const shown = items.slice(0, PAGE_SIZE);
      return (
        <Layout ui={ui} title={t.auditTitle} section="audit">
          <table id="audit-table">
            <thead>
              <tr>
                <th scope="col">{t.at}</th>
                <th scope="col">{t.actor}</th>
                <th scope="col">{t.action}</th>
                <th scope="col">{t.target}</th>
                <th scope="col">{t.tenant}</th>
                <th scope="col">{t.from}</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((a) => (
                <tr>
                  <td>{formatTime(a.at)}</td>
                  <td>
                    {a.actor} ({a.role})
                  </td>
                  <td>{a.action}</td>
                  <td class="mono">{a.target}</td>
                  <td>{a.supportId ?? '-'}</td>
                  <td>{a.from}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav class="pager" aria-label="pager">
            {more ? <a href={`/audit?cursor=${encodeCursor([shown.at(-1)!.at, shown.at(-1)!.id])}`}>{t.next}</a> : null}
          </nav>
        </Layout>
      );
    }),
  );
  app.get(
    '/exceptions',
    page(deps, {}, ({ c, ui, user, deps: d }) => {
      const { t } = ui;
      const scope = scopeOf(user);
      const tenants = scope !== null ? [scope] : c.req.query('tenant') ? [c.req.query('tenant')!] : [...d.api.store.tenants.scan()].map((x) => x.supportId);
      const entries: ExceptionEntry[] = tenants.flatMap((s) => d.api.store.exceptions.list(s));
      return (
        <Layout ui={ui} title={t.exceptionsTitle} section="exceptions">
          {entries.length === 0 ? (
            <p>{t.noItems}</p>
          ) : (
            <table id="exceptions-table">
              <thead>
                <tr>
                  <th scope="col">{t.tenant}</th>
                  <th scope="col">SHA-256 / {t.path} / signer</th>
                  <th scope="col">{t.comment}</th>
                  <th scope="col">{t.requestedBy}</th>
                  <th scope="col">{t.expires}</th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => (
                  <tr>
                    <td>{e.supportId}</td>
                    <td class="mono">{e.sha256 ?? e.pathPattern ?? e.signer}</td>
                    <td>{e.reason}</td>
                    <td>
                      {e.createdBy} {formatTime(e.createdAt)}
                    </td>
                    <td>{formatTime(e.expiresAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Layout>
      );
    }),
  );
}
