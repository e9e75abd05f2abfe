/**
 * /tenants/:supportId/liveness: a tenant's offline delay, maintenance
 * windows (weekly in JST, or one-off ranges) and mass-offline thresholds
 * (engine/liveness.ts applies them; docs/ANALYTICS.md). Absent fields take
 * the server's defaults, which the answer shows filled in.
 */
import { z } from 'zod';
import { DEFAULTS } from '../../core/config.js';
import { effectiveLivenessSettings } from '../../engine/index.js';
import type { LivenessSettings } from '../../storage/index.js';
import { defineRoute, type Route } from '../route-kit.js';
import { assertTenant, supportIdParam } from './shared.js';

const clockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (JST)');
const window = z.union([
  z.object({ kind: z.literal('weekly'), days: z.array(z.number().int().min(0).max(6)).min(1).max(7), start: clockTime, end: clockTime, label: z.string().max(200).optional() }).strict(),
  z
    .object({ kind: z.literal('once'), from: z.number().int().min(0), to: z.number().int().min(0), label: z.string().max(200).optional() })
    .strict()
    .refine((w) => w.to > w.from, { message: 'to must be after from' }),
]);

const body = z
  .object({
    offlineAfterMs: z.number().int().min(60_000).max(30 * 86_400_000).optional(),
    windows: z.array(window).max(100).default([]),
    massOfflineShare: z.number().min(0).max(1).optional(),
    massOfflineMinDevices: z.number().int().min(2).max(1_000_000).optional(),
    massOfflineWindowMs: z.number().int().min(60_000).max(86_400_000).optional(),
  })
  .strict();

export const LIVENESS_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/tenants/:supportId/liveness',
    summary: "A tenant's liveness settings (offline delay, maintenance windows, mass-offline thresholds), defaults filled in.",
    tag: 'liveness',
    params: supportIdParam,
    responses: { 200: 'The settings', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      const s = deps.store.liveness.settings(params.supportId);
      return c.json({ ...effectiveLivenessSettings(s, params.supportId, deps.liveness ?? DEFAULTS.liveness), updatedAt: s?.updatedAt ?? null, updatedBy: s?.updatedBy ?? null });
    },
  }),
  defineRoute({
    method: 'put',
    path: '/tenants/:supportId/liveness',
    summary: "Replaces a tenant's liveness settings; fields left out take the server's defaults.",
    tag: 'liveness',
    roles: ['operator', 'admin'],
    params: supportIdParam,
    body,
    responses: { 200: 'The settings', 400: 'Invalid request', 404: 'Not found' },
    async handler({ c, deps, user, params, body, audit }) {
      assertTenant(user, deps.store.tenants.get(params.supportId)?.supportId);
      let settings: LivenessSettings = {
        supportId: params.supportId,
        windows: body.windows,
        ...(body.offlineAfterMs === undefined ? {} : { offlineAfterMs: body.offlineAfterMs }),
        ...(body.massOfflineShare === undefined ? {} : { massOfflineShare: body.massOfflineShare }),
        ...(body.massOfflineMinDevices === undefined ? {} : { massOfflineMinDevices: body.massOfflineMinDevices }),
        ...(body.massOfflineWindowMs === undefined ? {} : { massOfflineWindowMs: body.massOfflineWindowMs }),
        updatedAt: deps.clock.now(),
        updatedBy: user.id,
      };
      // On a cluster API node the settings go to the shared bucket first (every API node shows them).
      if (deps.sharedSettings !== undefined) settings = await deps.sharedSettings.setLivenessSettings(settings);
      else await deps.store.liveness.putSettings(settings);
      await audit('liveness.settings_changed', params.supportId, params.supportId, { windows: settings.windows.length });
      return c.json({ ...effectiveLivenessSettings(settings, params.supportId, deps.liveness ?? DEFAULTS.liveness), updatedAt: settings.updatedAt, updatedBy: settings.updatedBy });
    },
  }),
];
