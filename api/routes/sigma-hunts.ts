/**
 * /sigma/hunts: hunting history as a job. POST starts a hunt of Sigma rules
 * (the server's set, one rule of it, or rules sent as YAML) over a tenant's
 * stored trails, hot store and cold archives (engine/sigma-hunt-job.ts);
 * GET follows it: status, progress, counts per rule, and its hits in the
 * order found, a page at a time. Tenant-scoped like /detections: another
 * tenant's hunt answers 404.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { startSigmaHunt, type HuntRuleChoice } from '../../engine/index.js';
import type { SigmaHuntRecord } from '../../storage/index.js';
import { decodeCursor, defineRoute, encodeCursor, type Route } from '../route-kit.js';
import { assertTenant, idParam, scopeOf } from './shared.js';

/** Default look-back of a hunt without `since`: 7 days, as `kiseki sigma hunt`. */
export const DEFAULT_HUNT_LOOKBACK_MS = 7 * 86_400_000;

const huntBody = z
  .object({
    /** The tenant (support ID); admins may leave it out. */
    supportId: z.string().min(1).max(64).optional(),
    /** Event time bounds, ms since the epoch (since: default 7 days back). */
    since: z.number().int().min(0).optional(),
    until: z.number().int().min(0).optional(),
    /** One rule id of the server's rule set. */
    rule: z.string().min(1).max(128).optional(),
    /** Sigma rules as YAML text (several separated by `---`). */
    rules: z.string().min(1).max(1_000_000).optional(),
  })
  .strict();

function huntView(job: SigmaHuntRecord) {
  return {
    id: job.id,
    supportId: job.supportId,
    status: job.status,
    requestedBy: job.requestedBy,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt ?? null,
    since: job.sinceMs,
    until: job.untilMs ?? null,
    ruleSet: job.ruleSet,
    progress: job.progress,
    batches: job.batches,
    events: job.events,
    hits: job.hits,
    truncated: job.truncated,
    byRule: job.byRule,
    error: job.error ?? null,
  };
}

export const SIGMA_HUNT_ROUTES: Route[] = [
  defineRoute({
    method: 'post',
    path: '/sigma/hunts',
    summary: "Start a Sigma hunt over a tenant's stored trails (hot store and cold archives).",
    tag: 'detections',
    roles: ['operator', 'admin'],
    body: huntBody,
    responses: { 202: 'Started; follow GET /sigma/hunts/{id}', 400: 'Invalid request or no usable rule', 404: 'No such tenant' },
    async handler({ c, deps, user, body, audit }) {
      const own = scopeOf(user);
      const supportId = own ?? body.supportId;
      if (supportId === undefined) throw new KisekiError('ERR_VALIDATION', { field: 'supportId', reason: 'operators name the tenant' });
      if (own !== null && body.supportId !== undefined && body.supportId !== own) throw new KisekiError('ERR_NOT_FOUND');
      assertTenant(user, deps.store.tenants.get(supportId)?.supportId);
      if (body.rule !== undefined && body.rules !== undefined) throw new KisekiError('ERR_VALIDATION', { reason: 'rule and rules exclude each other' });
      const choice: HuntRuleChoice = body.rules !== undefined ? { kind: 'rules', yaml: body.rules } : body.rule !== undefined ? { kind: 'rule', ruleId: body.rule } : { kind: 'all' };
      const now = deps.clock.now();
      const started = await startSigmaHunt({
        store: deps.store,
        dataDir: deps.exports?.dataDir ?? deps.store.dataDir,
        clock: deps.clock,
        supportId,
        requestedBy: user.id,
        sinceMs: body.since ?? now - DEFAULT_HUNT_LOOKBACK_MS,
        ...(body.until === undefined ? {} : { untilMs: body.until }),
        choice,
        ruleSource: deps.sigmaRules ?? { defaultPack: true },
      });
      started.done.then(
        (job) => deps.logger.info({ hunt: job.id, status: job.status, hits: job.hits, events: job.events }, 'Sigma hunt finished.'),
        (err: unknown) => deps.logger.error({ err, hunt: started.job.id }, 'Sigma hunt failed.'),
      );
      await audit('sigma.hunt_started', started.job.id, supportId, { rule: body.rule ?? null, rules: started.job.ruleSet.rules, since: started.job.sinceMs, until: body.until ?? null });
      return c.json(huntView(started.job), 202);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/sigma/hunts/:id',
    summary: 'A Sigma hunt: status, progress, counts per rule, and a page of its hits in the order found.',
    tag: 'detections',
    params: idParam,
    query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100), cursor: z.string().max(512).optional() }),
    responses: { 200: 'The hunt with a page of hits', 404: 'Not found' },
    handler({ c, deps, user, params, query }) {
      const job = deps.store.sigmaHunts.get(params.id);
      assertTenant(user, job?.supportId);
      const after = decodeCursor(query.cursor);
      const offset = typeof after?.[0] === 'number' && after[0] >= 0 ? after[0] : 0;
      const items = deps.store.sigmaHunts.hits(job!.id, offset, query.limit);
      const next = offset + items.length;
      // Past the stored hits there is no more; while the hunt runs, a client polls again with the same cursor.
      const more = items.length === query.limit;
      return c.json({ ...huntView(job!), items, nextCursor: more ? encodeCursor([next]) : null });
    },
  }),
];
