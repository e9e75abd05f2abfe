/** /tenants: list, create, read one, and change the tenant policy (hearing sheet). */
import { z } from 'zod';
import type { TenantPolicy } from '../../core/contracts.js';
import { KisekiError } from '../../core/errors.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { assertTenant, collect, page, scopeOf, supportIdParam } from './shared.js';

export const TENANT_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/tenants',
    summary: 'Tenants: all for operators, the own one otherwise.',
    tag: 'tenants',
    query: pageQuery,
    responses: { 200: 'A page of tenants' },
    handler({ c, deps, user, query }) {
      const scope = scopeOf(user);
      const after = decodeCursor(query.cursor)?.[0];
      const items = collect(deps.store.tenants.scan(typeof after === 'string' ? after : undefined), query.limit, (t) =>
        scope !== null && t.supportId !== scope ? undefined : { supportId: t.supportId, name: t.name, createdAt: t.createdAt, policy: deps.store.tenants.policy(t.supportId) },
      );
      return c.json(page(items, query.limit, (t) => [t.supportId]));
    },
  }),
  defineRoute({
    method: 'post',
    path: '/tenants',
    summary: 'Create a tenant; the enrollment key for its agents is returned once.',
    tag: 'tenants',
    roles: ['operator'],
    body: z.object({ supportId: z.string().min(1).max(64), name: z.string().min(1).max(200) }).strict(),
    responses: { 201: 'Created', 400: 'Invalid request', 409: 'Support ID taken', 503: 'Cluster mode: NATS did not take it' },
    async handler({ c, deps, body, audit }) {
      const input = { ...body, now: deps.clock.now() };
      let created;
      if (deps.sharedTenants === undefined) created = await deps.store.tenants.create(input);
      else {
        // Cluster: the shared bucket decides whether the support ID is free, on every node at once.
        created = deps.store.tenants.prepare(input);
        if (deps.store.tenants.get(input.supportId) !== undefined) throw new KisekiError('ERR_TENANT_EXISTS', { supportId: input.supportId });
        await deps.sharedTenants.create(created.tenant);
      }
      const { tenant, enrollKey } = created;
      await audit('tenant.created', tenant.supportId, tenant.supportId);
      return c.json({ supportId: tenant.supportId, name: tenant.name, createdAt: tenant.createdAt, enrollKey }, 201);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId',
    summary: 'One tenant with its policy.',
    tag: 'tenants',
    params: supportIdParam,
    responses: { 200: 'The tenant', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const t = deps.store.tenants.get(params.supportId);
      assertTenant(user, t?.supportId);
      return c.json({ supportId: t!.supportId, name: t!.name, createdAt: t!.createdAt, policy: deps.store.tenants.policy(t!.supportId) });
    },
  }),
  defineRoute({
    method: 'put',
    path: '/tenants/:supportId/policy',
    summary: 'Change the tenant policy (hearing sheet): isolation on black, automatic exceptions, tuning period.',
    tag: 'tenants',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: z.object({ isolateOnBlack: z.boolean().optional(), autoExceptWhite: z.boolean().optional(), tuningUntil: z.number().int().nullable().optional() }).strict(),
    responses: { 200: 'The new policy', 400: 'Invalid request', 404: 'Not found', 503: 'Cluster mode: NATS did not take it' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const change: Partial<TenantPolicy> = {};
      if (body.isolateOnBlack !== undefined) change.isolateOnBlack = body.isolateOnBlack;
      if (body.autoExceptWhite !== undefined) change.autoExceptWhite = body.autoExceptWhite;
      if (body.tuningUntil !== undefined) change.tuningUntil = body.tuningUntil;
      const policy =
        deps.sharedTenants === undefined
          ? await deps.store.tenants.setPolicy(params.supportId, change, deps.clock.now())
          : await deps.sharedTenants.setPolicy(params.supportId, change, deps.clock.now());
      await audit('tenant.policy_changed', params.supportId, params.supportId, change as Record<string, unknown>);
      return c.json(policy);
    },
  }),
];
