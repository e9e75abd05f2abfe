/**
 * /tenants/:supportId/exceptions: the tenant's exception list (list, add, remove). On a cluster API node
 * changes go to the shared bucket first (`sharedSettings`), and are answered once NATS acked them.
 */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { defineRoute, type Route } from '../route-kit.js';
import { assertTenant, supportIdParam } from './shared.js';

export const EXCEPTION_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/exceptions',
    summary: "The tenant's exception list.",
    tag: 'exceptions',
    params: supportIdParam,
    responses: { 200: 'The entries', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      return c.json({ items: deps.store.exceptions.list(params.supportId) });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/tenants/:supportId/exceptions',
    summary: 'Add an exception-list entry (hash, path pattern and/or signer, optional expiry).',
    tag: 'exceptions',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: z
      .object({
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).optional(),
        pathPattern: z.string().min(1).max(1024).optional(),
        signer: z.string().min(1).max(256).optional(),
        expiresAt: z.number().int().optional(),
        reason: z.string().min(1).max(1000),
      })
      .strict()
      .refine((b) => b.sha256 !== undefined || b.pathPattern !== undefined || b.signer !== undefined, 'sha256, pathPattern or signer is required'),
    responses: { 201: 'Added', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const input = {
        supportId: params.supportId,
        ...(body.sha256 === undefined ? {} : { sha256: body.sha256 }),
        ...(body.pathPattern === undefined ? {} : { pathPattern: body.pathPattern }),
        ...(body.signer === undefined ? {} : { signer: body.signer }),
        ...(body.expiresAt === undefined ? {} : { expiresAt: body.expiresAt }),
        reason: body.reason,
        createdAt: deps.clock.now(),
        createdBy: user.id,
      };
      // On a cluster API node the entry goes to the shared bucket first (the shard nodes' engines apply it).
      let entry;
      if (deps.sharedSettings === undefined) entry = await deps.store.exceptions.add(input);
      else {
        entry = deps.store.exceptions.prepare(input);
        await deps.sharedSettings.addException(entry);
      }
      await audit('exception.added', entry.id, params.supportId, { sha256: entry.sha256, pathPattern: entry.pathPattern, signer: entry.signer });
      return c.json(entry, 201);
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/tenants/:supportId/exceptions/:id',
    summary: 'Remove an exception-list entry.',
    tag: 'exceptions',
    roles: ['operator', 'admin'],
    params: supportIdParam.extend({ id: z.string().min(1).max(128) }),
    responses: { 204: 'Removed', 404: 'Not found' },
    async handler({ c, deps, user, params, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const removed =
        deps.sharedSettings === undefined
          ? await deps.store.exceptions.remove(params.supportId, params.id)
          : deps.store.exceptions.get(params.supportId, params.id) !== undefined && (await deps.sharedSettings.removeException(params.supportId, params.id, user.id, deps.clock.now()));
      if (!removed) throw new KisekiError('ERR_NOT_FOUND');
      await audit('exception.removed', params.id, params.supportId);
      return c.body(null, 204);
    },
  }),
];
