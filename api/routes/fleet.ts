/**
 * Fleet management (issue 16, docs/FLEET.md): a tenant's fleet policy
 * (block / non-block mode, log tuning filters, USB allow-list) pushed to its
 * agents, the volume tuning saves, the fleet alerts device control raises,
 * agent versions and staged upgrade rollouts, and the inventory ledger as
 * CSV. Every change is audited; changes to the policy reach connected
 * agents at once (`policy` frame) and the others at their next `welcome`.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { TuningFilter, UsbAllowRule } from '../../core/contracts.js';
import type { RolloutMove } from '../../storage/index.js';
import { LEDGER_KINDS, ledgerCounts, ledgerTable, toCsv } from '../ledger.js';
import { defineRoute, type ApiDeps, type Route } from '../route-kit.js';
import { agentPackage, assertTenant, supportIdParam } from './shared.js';

const glob = z.string().min(1).max(512);
const tuningFilter = z
  .object({ id: z.string().min(1).max(64).optional(), kind: glob.optional(), image: glob.optional(), path: glob.optional(), keyPrefix: z.string().min(1).max(512).optional(), note: z.string().max(500).optional() })
  .strict()
  .refine((f) => f.kind !== undefined || f.image !== undefined || f.path !== undefined || f.keyPrefix !== undefined, 'a filter needs at least one of kind, image, path, keyPrefix');
const usbRule = z
  .object({
    id: z.string().min(1).max(64).optional(),
    vendorId: z.string().regex(/^[0-9A-Fa-f*?]{1,8}$/, 'hex digits, * or ?'),
    productId: z.string().regex(/^[0-9A-Fa-f*?]{1,8}$/, 'hex digits, * or ?').optional(),
    serial: z.string().min(1).max(128).optional(),
    note: z.string().max(500).optional(),
  })
  .strict();
const policyBody = z
  .object({
    mode: z.enum(['block', 'non-block']).optional(),
    tuning: z.array(tuningFilter).max(200).optional(),
    usb: z.object({ control: z.boolean().optional(), allow: z.array(usbRule).max(1000).optional() }).strict().optional(),
  })
  .strict();

const stage = z.union([
  z.object({ percent: z.number().gt(0).max(100) }).strict(),
  z.object({ devices: z.array(z.string().min(1).max(64)).min(1).max(10_000) }).strict(),
]);
const rolloutBody = z.object({ target: agentPackage, previous: agentPackage, stages: z.array(stage).min(1).max(20) }).strict();
const rolloutParams = z.object({ supportId: z.string().min(1).max(64), id: z.string().min(1).max(64) });
const dayText = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD');

/** The tenant named in the path, checked against the user's scope (404 for another tenant's, as for none). */
function tenantOf(deps: ApiDeps, user: Parameters<typeof assertTenant>[0], supportId: string): string {
  const t = deps.store.tenants.get(supportId);
  assertTenant(user, t?.supportId);
  return t!.supportId;
}

function rolloutOf(deps: ApiDeps, user: Parameters<typeof assertTenant>[0], supportId: string, id: string) {
  const r = deps.store.rollouts.get(id);
  assertTenant(user, r?.supportId === supportId ? r.supportId : undefined);
  return r!;
}

/** Hands devices with new upgrade commands to the agent server, like any other command. */
function deliver(deps: ApiDeps, move: RolloutMove): RolloutMove {
  for (const tmid of move.queued) deps.deliverCommands(tmid);
  return move;
}

const ROLLOUT_ACTIONS = ['advance', 'pause', 'resume', 'rollback'] as const;

export const FLEET_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/fleet-policy',
    summary: "The tenant's fleet policy: block or non-block mode, log tuning filters, USB device control (version increases with every change).",
    tag: 'fleet',
    params: supportIdParam,
    responses: { 200: 'The policy', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      return c.json(deps.store.fleet.policy(tenantOf(deps, user, params.supportId)));
    },
  }),
  defineRoute({
    method: 'put',
    path: '/tenants/:supportId/fleet-policy',
    summary: 'Change the fleet policy (fields left out stay); connected agents get it at once, the others at their next connection.',
    tag: 'fleet',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: policyBody,
    responses: { 200: 'The new policy', 400: 'Invalid request', 404: 'Not found', 503: 'Cluster mode: NATS did not take it' },
    async handler({ c, deps, user, params, body, audit }) {
      const supportId = tenantOf(deps, user, params.supportId);
      const withId = <T extends { id?: string | undefined }>(x: T, prefix: string): T & { id: string } => ({ ...x, id: x.id ?? `${prefix}_${randomBytes(6).toString('hex')}` });
      const change = {
        ...(body.mode === undefined ? {} : { mode: body.mode }),
        ...(body.tuning === undefined ? {} : { tuning: body.tuning.map((f) => withId(f, 'tf') as TuningFilter) }),
        ...(body.usb === undefined
          ? {}
          : { usb: { ...(body.usb.control === undefined ? {} : { control: body.usb.control }), ...(body.usb.allow === undefined ? {} : { allow: body.usb.allow.map((r) => withId(r, 'ua') as UsbAllowRule) }) } }),
      };
      const policy =
        deps.sharedTenants === undefined
          ? await deps.store.fleet.setPolicy(supportId, change, user.id, deps.clock.now())
          : await deps.sharedTenants.setFleetPolicy(supportId, change, user.id, deps.clock.now());
      await audit('fleet.policy_changed', supportId, supportId, { version: policy.version, ...change });
      deps.pushFleetPolicy?.(supportId);
      return c.json(policy);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/tuning/savings',
    summary: 'Events and bytes the tuning filters kept out of storage, per day (Asia/Tokyo): dropped by the agents, and by the shards.',
    tag: 'fleet',
    params: supportIdParam,
    query: z.object({ from: dayText.optional(), to: dayText.optional() }),
    responses: { 200: 'Days and their total', 404: 'Not found' },
    handler({ c, deps, user, params, query }) {
      const days = deps.store.fleet.savings(tenantOf(deps, user, params.supportId), query.from, query.to);
      const total = { agentEvents: 0, agentBytes: 0, shardEvents: 0, shardBytes: 0, events: 0, bytes: 0 };
      for (const d of days) {
        total.agentEvents += d.agentEvents;
        total.agentBytes += d.agentBytes;
        total.shardEvents += d.shardEvents;
        total.shardBytes += d.shardBytes;
      }
      total.events = total.agentEvents + total.shardEvents;
      total.bytes = total.agentBytes + total.shardBytes;
      return c.json({ days, total });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/fleet-alerts',
    summary: 'Fleet alerts, newest first: USB devices off the allow-list (usb.blocked in block mode, usb.unallowed in non-block mode).',
    tag: 'fleet',
    params: supportIdParam,
    query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
    responses: { 200: 'The alerts', 404: 'Not found' },
    handler({ c, deps, user, params, query }) {
      return c.json({ items: deps.store.fleet.alerts(tenantOf(deps, user, params.supportId), query.limit) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/agent-versions',
    summary: "The tenant's devices per agent version, as their agents last said in hello.",
    tag: 'fleet',
    params: supportIdParam,
    responses: { 200: 'Devices per version', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      return c.json({ versions: deps.store.rollouts.versions(tenantOf(deps, user, params.supportId)) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/rollouts',
    summary: "The tenant's rollouts, newest first.",
    tag: 'fleet',
    params: supportIdParam,
    responses: { 200: 'The rollouts', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      return c.json({ items: deps.store.rollouts.forTenant(tenantOf(deps, user, params.supportId)) });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/tenants/:supportId/rollouts',
    summary: 'Start a staged upgrade: stage 0 (a percentage of devices by a stable hash of the TMID, or named devices) gets upgrade commands now.',
    tag: 'fleet',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: rolloutBody,
    responses: { 201: 'Created: the rollout and the devices queued', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      const supportId = tenantOf(deps, user, params.supportId);
      const move = await deps.store.rollouts.create({ supportId, target: body.target, previous: body.previous, stages: body.stages, by: user.id, now: deps.clock.now() });
      await audit('rollout.created', move.rollout.id, supportId, { target: body.target.version, previous: body.previous.version, stages: body.stages.length, queued: move.queued.length });
      return c.json(deliver(deps, move), 201);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/rollouts/:id',
    summary: 'A rollout and where it stands: devices in the stage, upgrade and rollback commands by state, devices per agent version.',
    tag: 'fleet',
    params: rolloutParams,
    responses: { 200: 'The status', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const r = rolloutOf(deps, user, params.supportId, params.id);
      return c.json(deps.store.rollouts.status(r.id));
    },
  }),
  ...ROLLOUT_ACTIONS.map((action) =>
    defineRoute({
      method: 'post',
      path: `/tenants/:supportId/rollouts/:id/${action}`,
      summary: {
        advance: 'Move to the next stage: its devices get upgrade commands.',
        pause: 'Pause: upgrades not yet acknowledged are cancelled.',
        resume: 'Resume at the current stage: cancelled upgrades are sent again.',
        rollback: 'Roll back: pending upgrades are cancelled and the devices that took the target get the previous version.',
      }[action],
      tag: 'fleet',
      roles: ['operator', 'admin'],
      params: rolloutParams,
      responses: { 200: 'The rollout and the devices queued', 404: 'Not found', 409: "The rollout's state does not allow it" },
      async handler({ c, deps, user, params, audit }) {
        const r = rolloutOf(deps, user, params.supportId, params.id);
        const move = await deps.store.rollouts[action](r.id, user.id, deps.clock.now());
        await audit(`rollout.${action}`, r.id, r.supportId, { stage: move.rollout.stage, queued: move.queued.length });
        return c.json(deliver(deps, move));
      },
    }),
  ),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/ledger',
    summary: 'Row counts of the inventory ledger (apps, updates, drives, usb) and how many devices sent an inventory.',
    tag: 'fleet',
    params: supportIdParam,
    responses: { 200: 'The counts', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      return c.json(ledgerCounts(deps.store, tenantOf(deps, user, params.supportId)));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/ledger.csv',
    summary: 'The inventory ledger of one kind as CSV (RFC 4180, UTF-8 with BOM, header row): apps, updates, drives or usb, one row per item per device.',
    tag: 'fleet',
    params: supportIdParam,
    query: z.object({ kind: z.enum(LEDGER_KINDS) }),
    produces: 'text/csv',
    responses: { 200: 'The CSV file', 400: 'Unknown kind', 404: 'Not found' },
    handler({ c, deps, user, params, query }) {
      const supportId = tenantOf(deps, user, params.supportId);
      const csv = toCsv(ledgerTable(deps.store, supportId, query.kind));
      return c.body(csv, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${supportId}-ledger-${query.kind}.csv"` });
    },
  }),
];
