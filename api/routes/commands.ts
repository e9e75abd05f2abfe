/** Response actions: request one for a device, list a device's, read one, cancel one (the lifecycle is storage's commands module). */
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { defineRoute, type Route } from '../route-kit.js';
import { requestCommand, type CommandAsk } from '../services.js';
import { agentPackage, assertTenant, idParam, tmidParam } from './shared.js';

const allowEntry = z.object({
  cidr: z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, 'an IP address or CIDR'),
  port: z.number().int().min(1).max(65535).optional(),
});
const commandBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('isolate'), args: z.object({ allow: z.array(allowEntry).max(64).default([]) }).strict().default({ allow: [] }) }).strict(),
  z.object({ kind: z.literal('release'), args: z.object({}).strict().default({}) }).strict(),
  z.object({ kind: z.literal('delete-file'), args: z.object({ path: z.string().min(3).max(1024), sha256: z.string().regex(/^[0-9a-fA-F]{64}$/) }).strict() }).strict(),
  z.object({ kind: z.literal('collect-file'), args: z.object({ path: z.string().min(3).max(1024), sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).optional() }).strict() }).strict(),
  z.object({ kind: z.literal('set-policy'), args: z.record(z.string(), z.unknown()) }).strict(),
  // One device, outside any rollout (docs/FLEET.md): install this agent version from this package.
  z.object({ kind: z.literal('upgrade'), args: agentPackage }).strict(),
]);

export const COMMAND_ROUTES: Route[] = [
  defineRoute({
    method: 'post',
    path: '/devices/:tmid/commands',
    summary: 'Request a response action: isolate (with an allow-list), release, delete-file, collect-file, set-policy, upgrade.',
    tag: 'commands',
    roles: ['operator', 'admin'],
    params: tmidParam,
    body: commandBody,
    responses: { 202: 'Queued (sent at once when the device is connected)', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, from }) {
      return c.json(await requestCommand(deps, user, from, params.tmid, body as CommandAsk), 202);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/devices/:tmid/commands',
    summary: "A device's commands and their states.",
    tag: 'commands',
    params: tmidParam,
    responses: { 200: 'The commands, oldest first', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const d = deps.store.devices.get(params.tmid);
      assertTenant(user, d?.supportId);
      return c.json({ items: deps.store.commands.forDevice(d!.tmid) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/commands/:id',
    summary: 'One command: state (queued → sent → acknowledged → done / failed / expired, or cancelled) and result.',
    tag: 'commands',
    params: idParam,
    responses: { 200: 'The command', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const cmd = deps.store.commands.get(params.id);
      assertTenant(user, cmd?.supportId);
      return c.json(cmd);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/commands/:id/cancel',
    summary: 'Cancel a command still queued, or sent but not acknowledged: it becomes cancelled and is never delivered again.',
    tag: 'commands',
    roles: ['operator', 'admin'],
    params: idParam,
    responses: { 200: 'Cancelled: the command', 404: 'Not found', 409: 'Acknowledged or ended already (details.state)' },
    async handler({ c, deps, user, params, audit }) {
      const existing = deps.store.commands.get(params.id);
      assertTenant(user, existing?.supportId);
      const outcome = await deps.store.commands.cancel(params.id, user.id, deps.clock.now());
      if (outcome === undefined) throw new KisekiError('ERR_NOT_FOUND');
      if (!outcome.cancelled) throw new KisekiError('ERR_COMMAND_NOT_CANCELLABLE', { state: outcome.command.state });
      // An API node: the ingest nodes must hear of it before they send the command (ERR_CLUSTER_UNAVAILABLE if not).
      await deps.shareCommand?.(outcome.command);
      await audit('command.cancelled', outcome.command.id, outcome.command.supportId, { kind: outcome.command.kind, tmid: outcome.command.tmid });
      return c.json(outcome.command);
    },
  }),
];
