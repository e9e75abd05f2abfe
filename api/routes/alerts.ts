/**
 * /alerts: list (newest first, with the effective verdict), one alert with
 * its report revisions, verdict history and comments, and the analysts'
 * verdict changes and comments. The effective verdict is storage's
 * (`alerts.effective`), the same one the CLI shows.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { filteredAlerts, type AlertFilter } from '../services.js';
import { assertTenant, collect, idParam, page, verdict } from './shared.js';

export const ALERT_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/alerts',
    summary: 'Alerts, newest first, with their current verdict.',
    tag: 'alerts',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      verdict: verdict.optional(),
      state: z.enum(['reported', 'suppressed', 'tuning']).optional(),
      tmid: z.string().max(64).optional(),
    }),
    responses: { 200: 'A page of alerts', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const cursor = decodeCursor(query.cursor);
      const after =
        cursor === undefined ? undefined : { createdAt: typeof cursor[0] === 'number' ? cursor[0] : Infinity, id: typeof cursor[1] === 'string' ? cursor[1] : '\uffff' };
      const filter: AlertFilter = {
        ...(query.supportId === undefined ? {} : { supportId: query.supportId }),
        ...(query.verdict === undefined ? {} : { verdict: query.verdict }),
        ...(query.state === undefined ? {} : { state: query.state }),
        ...(query.tmid === undefined ? {} : { tmid: query.tmid }),
      };
      const items = collect(filteredAlerts(deps, user, filter, after), query.limit, (a) => a);
      return c.json(page(items, query.limit, (a) => [a.createdAt, a.id]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/alerts/:id',
    summary: 'One alert with every quick-report revision, the verdict history and analyst comments.',
    tag: 'alerts',
    params: idParam,
    responses: { 200: 'The alert', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const view = deps.store.alerts.view(params.id);
      assertTenant(user, view?.alert.supportId);
      return c.json({
        alert: view!.alert,
        report: view!.revisions.at(-1) ?? null,
        revisions: view!.revisions,
        verdictHistory: view!.verdicts,
        comments: view!.comments,
      });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/alerts/:id/verdict',
    summary: "Confirm or change an alert's verdict (operators).",
    tag: 'alerts',
    roles: ['operator'],
    params: idParam,
    body: z.object({ verdict, comment: z.string().max(10_000).optional() }).strict(),
    responses: { 200: 'The alert with its new verdict', 400: 'Invalid request', 403: 'Operators only', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const changed = await deps.store.alerts.setVerdict({
        alertId: params.id,
        at: deps.clock.now(),
        by: user.id,
        verdict: body.verdict,
        ...(body.comment === undefined ? {} : { comment: body.comment }),
      });
      if (changed === undefined) throw new KisekiError('ERR_NOT_FOUND');
      deps.shareAnalysis?.({ kind: 'verdict', verdict: changed.record });
      await audit('alert.verdict_changed', changed.alert.id, changed.alert.supportId, { from: changed.before, to: body.verdict });
      return c.json(changed.alert);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/alerts/:id/comments',
    summary: 'Add an analyst comment to an alert (operators).',
    tag: 'alerts',
    roles: ['operator'],
    params: idParam,
    body: z.object({ text: z.string().min(1).max(10_000) }).strict(),
    responses: { 201: 'Added', 400: 'Invalid request', 403: 'Operators only', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const a = deps.store.alerts.get(params.id);
      if (a === undefined) throw new KisekiError('ERR_NOT_FOUND');
      const comment = await deps.store.alerts.addComment({ alertId: a.id, at: deps.clock.now(), author: user.id, text: body.text });
      if (comment === undefined) throw new KisekiError('ERR_NOT_FOUND');
      deps.shareAnalysis?.({ kind: 'comment', comment });
      await audit('alert.commented', a.id, a.supportId, { comment: comment.id });
      return c.json(comment, 201);
    },
  }),
];
