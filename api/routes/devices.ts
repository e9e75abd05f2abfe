/** /devices: list with filters (tenant, connection, isolation, computer name) and read one. */
import { z } from 'zod';
import type { DeviceRecord } from '../../storage/index.js';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { assertTenant, collect, deviceView, page, scopeOf, tmidParam } from './shared.js';

export const DEVICE_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/devices',
    summary: 'Devices with last communication, agent version, connection and isolation state.',
    tag: 'devices',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      connected: z.enum(['true', 'false']).optional(),
      isolated: z.enum(['true', 'false']).optional(),
      computer: z.string().max(256).optional(),
    }),
    responses: { 200: 'A page of devices', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const scope = scopeOf(user) ?? query.supportId ?? null;
      if (scopeOf(user) !== null && query.supportId !== undefined && query.supportId !== scopeOf(user)) return c.json({ items: [], nextCursor: null });
      const after = decodeCursor(query.cursor)?.[0];
      const afterTmid = typeof after === 'string' ? after : undefined;
      const computer = query.computer?.toLowerCase();
      const view = (d: DeviceRecord) => {
        if (query.connected !== undefined && String(d.connected) !== query.connected) return undefined;
        if (computer !== undefined && !d.computer.toLowerCase().includes(computer)) return undefined;
        const v = deviceView(deps.store, d, false);
        if (query.isolated !== undefined && String(v.isolation === 'isolated') !== query.isolated) return undefined;
        return v;
      };
      const source = scope !== null ? deps.store.devices.scanTenant(scope, afterTmid) : deps.store.devices.scan(afterTmid);
      const items = collect(source, query.limit, view);
      return c.json(page(items, query.limit, (d) => [d.tmid]));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/devices/:tmid',
    summary: 'One device with seq ranges and gaps, inventory and isolation allow-list.',
    tag: 'devices',
    params: tmidParam,
    responses: { 200: 'The device', 404: 'Not found' },
    handler({ c, deps, user, params }) {
      const d = deps.store.devices.get(params.tmid);
      assertTenant(user, d?.supportId);
      return c.json(deviceView(deps.store, d!, true));
    },
  }),
];
