/**
 * /tenants/:supportId/notifications: who a tenant's notifications go to
 * (e-mail addresses, webhook URLs with their HMAC secrets) and what each
 * wants (events, verdicts), the hourly limit before digests, and the dead
 * letters. Secrets are write-only: the API answers `hasSecret` instead.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import type { NotifySettings } from '../../storage/index.js';
import { defineRoute, type Route } from '../route-kit.js';
import { assertTenant, supportIdParam, verdict } from './shared.js';

const eventKind = z.enum(['alert.new', 'alert.verdict', 'device.isolated', 'device.offline', 'report.incident', 'intel.hit', 'detection.new', 'device.online', 'tenant.mass_offline', 'tenant.recovered', 'analytics.threshold', 'intel.endpoint']);
/** A tenant's SIEM destination options (docs/SIEM.md); CA files and `insecure` are the operator's (global destinations). */
const siemTarget = z
  .object({
    format: z.enum(['rfc5424', 'cef', 'ecs', 'ocsf']),
    framing: z.enum(['octet-counting', 'newline']).optional(),
    http: z.enum(['ndjson', 'elastic-bulk']).optional(),
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(4096)).optional(),
  })
  .strict();
const recipient = z
  .object({
    id: z.string().regex(/^[a-z0-9_-]{1,32}$/).optional(),
    channel: z.enum(['email', 'webhook', 'siem']),
    to: z.string().min(3).max(2048),
    secret: z.string().min(16).max(256).optional(),
    events: z.array(eventKind).min(1),
    verdicts: z.array(verdict).default(['black', 'gray', 'white']),
    siem: siemTarget.optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.channel === 'siem' && !/^(tcp|tls|udp|https?):\/\/[^/]/.test(r.to)) ctx.addIssue({ code: 'custom', message: 'to must be a tcp://, tls://, udp:// or http(s):// address', path: ['to'] });
    if ((r.channel === 'siem') !== (r.siem !== undefined)) ctx.addIssue({ code: 'custom', message: 'siem is required with channel siem, and only with it', path: ['siem'] });
    if (r.channel === 'email' && !/^[^\s@]+@[^\s@]+$/.test(r.to)) ctx.addIssue({ code: 'custom', message: 'to must be an e-mail address', path: ['to'] });
    if (r.channel === 'webhook' && !/^https?:\/\//.test(r.to)) ctx.addIssue({ code: 'custom', message: 'to must be an http(s) URL', path: ['to'] });
  });

const view = (s: NotifySettings) => ({
  ...s,
  // SIEM headers hold API keys: write-only like webhook secrets.
  recipients: s.recipients.map(({ secret, siem, ...r }) => {
    const { headers, ...target } = siem ?? { format: undefined };
    return { ...r, hasSecret: secret !== undefined, ...(siem === undefined ? {} : { siem: { ...target, hasHeaders: headers !== undefined } }) };
  }),
});

export const NOTIFICATION_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/notifications',
    summary: "A tenant's notification recipients and limits (secrets not shown).",
    tag: 'notifications',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    responses: { 200: 'The settings', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const s = deps.store.notify.settings(params.supportId) ?? { supportId: params.supportId, recipients: [], maxPerHour: 20, updatedAt: 0, updatedBy: '' };
      return c.json(view(s));
    },
  }),
  defineRoute({
    method: 'put',
    path: '/tenants/:supportId/notifications',
    summary: "Replaces a tenant's notification recipients (a webhook keeps its secret when none is given).",
    tag: 'notifications',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body: z.object({ recipients: z.array(recipient).max(50), maxPerHour: z.number().int().min(1).max(10_000).default(20) }).strict(),
    responses: { 200: 'The settings', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const prev = deps.store.notify.settings(params.supportId);
      const ids = new Set<string>();
      const recipients = body.recipients.map((r) => {
        const id = r.id ?? `r${randomBytes(4).toString('hex')}`;
        if (ids.has(id)) throw new KisekiError('ERR_VALIDATION', { reason: `recipient id ${id} is used twice` });
        ids.add(id);
        const secret = r.secret ?? prev?.recipients.find((p) => p.id === id)?.secret;
        // A SIEM destination keeps its headers (API keys) when none are given, like a webhook its secret.
        const headers = r.siem?.headers ?? prev?.recipients.find((p) => p.id === id)?.siem?.headers;
        const siem = r.siem === undefined ? undefined : { ...r.siem, ...(headers === undefined ? {} : { headers }) };
        return { id, channel: r.channel, to: r.to, events: r.events, verdicts: r.verdicts, ...(secret === undefined ? {} : { secret }), ...(siem === undefined ? {} : { siem }) };
      });
      const settings: NotifySettings = { supportId: params.supportId, recipients, maxPerHour: body.maxPerHour, updatedAt: deps.clock.now(), updatedBy: user.id };
      await deps.store.notify.putSettings(settings);
      await audit('notify.settings_changed', params.supportId, params.supportId, { recipients: recipients.length });
      // On an API node: the other API nodes apply them too (503 when NATS did not take them; shared once it does).
      await deps.shareNotifySettings?.(settings);
      return c.json(view(settings));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/notifications/dead-letters',
    summary: "A tenant's notifications that failed every attempt, newest first.",
    tag: 'notifications',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    responses: { 200: 'The dead letters', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      return c.json({ items: deps.store.notify.deadLetters(params.supportId) });
    },
  }),
];
