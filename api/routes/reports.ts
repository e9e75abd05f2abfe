/**
 * /reports: a tenant's periodic and incident reports (list, one with its
 * figures, download as `.pdf` or `.html`), and the customer's answer on an
 * alert (`POST /alerts/:id/answers`), which stops the gray → white clock.
 * The figures returned are the ones the PDF prints.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import type { PeriodicReportRecord } from '../../storage/index.js';
import { defineRoute, type Route } from '../route-kit.js';
import { assertTenant, idParam, scopeOf } from './shared.js';

const FORMATS = { '.pdf': { format: 'pdf', type: 'application/pdf' }, '.html': { format: 'html', type: 'text/html; charset=utf-8' } } as const;

const reportView = (r: PeriodicReportRecord) => ({
  ...r,
  links: { pdf: `/api/v1/reports/${r.id}.pdf`, html: `/api/v1/reports/${r.id}.html` },
});

export const REPORT_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/reports',
    summary: 'Monthly, weekly and incident reports of a tenant, newest period first (kept 13 months).',
    tag: 'reports',
    query: z.object({ supportId: z.string().max(64).optional(), kind: z.enum(['monthly', 'weekly', 'incident']).optional() }),
    responses: { 200: 'The reports', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const scope = scopeOf(user) ?? query.supportId;
      if (scope === undefined) throw new KisekiError('ERR_VALIDATION', { reason: 'supportId is required for operators' });
      if (scopeOf(user) !== null && query.supportId !== undefined && query.supportId !== scope) return c.json({ items: [] });
      const items = deps.store.periodicReports.listTenant(scope).filter((r) => query.kind === undefined || r.kind === query.kind);
      return c.json({ items: items.map(reportView) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/reports/:id',
    summary: 'One report with its figures; `/reports/:id.pdf` and `/reports/:id.html` download the rendered file.',
    tag: 'reports',
    params: idParam,
    responses: { 200: 'The report, or its PDF / HTML', 404: 'Not found' },
    produces: 'application/json, application/pdf, text/html',
    handler({ c, deps, user, params }) {
      const ext = params.id.endsWith('.pdf') ? '.pdf' : params.id.endsWith('.html') ? '.html' : undefined;
      const id = ext === undefined ? params.id : params.id.slice(0, -ext.length);
      const record = deps.store.periodicReports.get(id);
      assertTenant(user, record?.supportId);
      if (ext === undefined) return c.json(reportView(record!));
      const { format, type } = FORMATS[ext];
      const bytes = deps.store.periodicReports.file(id, format);
      if (bytes === undefined) throw new KisekiError('ERR_NOT_FOUND');
      return new Response(new Uint8Array(bytes), {
        status: 200,
        headers: {
          'content-type': type,
          'content-length': String(bytes.length),
          'content-disposition': `${format === 'pdf' ? 'attachment' : 'inline'}; filename="${id}.${format}"`,
          // The stored document carries the console's stylesheet inline (it is printed from memory); no scripts, nothing fetched.
          ...(format === 'html' ? { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'" } : {}),
        },
      });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/alerts/:id/answers',
    summary: "The customer's answer on an alert (a gray alert with an answer does not turn white by itself).",
    tag: 'alerts',
    roles: ['operator', 'admin', 'viewer'],
    params: idParam,
    body: z.object({ text: z.string().min(1).max(10_000) }).strict(),
    responses: { 201: 'Recorded', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const a = deps.store.alerts.get(params.id);
      assertTenant(user, a?.supportId);
      const answer = await deps.store.answers.add({ alertId: a!.id, supportId: a!.supportId, at: deps.clock.now(), by: user.id, text: body.text });
      await audit('alert.answered', a!.id, a!.supportId, { answer: answer.id });
      return c.json(answer, 201);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/alerts/:id/answers',
    summary: "The customer's answers on an alert, oldest first.",
    tag: 'alerts',
    params: idParam,
    responses: { 200: 'The answers', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const a = deps.store.alerts.get(params.id);
      assertTenant(user, a?.supportId);
      return c.json({ items: deps.store.answers.of(a!.id) });
    },
  }),
];
