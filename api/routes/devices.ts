/** /devices: list with filters (tenant, connection, isolation, computer name, state) and read one. */
import { z } from 'zod';
import { decodeCursor, defineRoute, pageQuery, type Route } from '../route-kit.js';
import { filteredDevices, type DeviceFilter } from '../services.js';
import { assertTenant, collect, deviceView, page, tmidParam } from './shared.js';

export const DEVICE_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/devices',
    summary: 'Devices with last communication, agent version, connection, isolation and state (online, offline, isolated, error).',
    tag: 'devices',
    query: pageQuery.extend({
      supportId: z.string().max(64).optional(),
      connected: z.enum(['true', 'false']).optional(),
      isolated: z.enum(['true', 'false']).optional(),
      computer: z.string().max(256).optional(),
      state: z.enum(['online', 'offline', 'isolated', 'error']).optional(),
    }),
    responses: { 200: 'A page of devices', 400: 'Invalid query' },
    handler({ c, deps, user, query }) {
      const after = decodeCursor(query.cursor)?.[0];
      const filter: DeviceFilter = {
        ...(query.supportId === undefined ? {} : { supportId: query.supportId }),
        ...(query.connected === undefined ? {} : { connected: query.connected === 'true' }),
        ...(query.isolated === undefined ? {} : { isolated: query.isolated === 'true' }),
        ...(query.computer === undefined ? {} : { computer: query.computer }),
        ...(query.state === undefined ? {} : { state: query.state }),
      };
      const items = collect(filteredDevices(deps, user, filter, typeof after === 'string' ? after : undefined), query.limit, (d) => d);
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
