import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, type DailyDelta, type DeviceRecord, type HotStore, type OpsAlert } from '../../storage/index.js';
import { dashboardData } from '../console/index.js';
import { createHttpApp } from '../http-app.js';

/** 2026-11-30 12:00 JST. */
const T0 = Date.parse('2026-11-30T03:00:00Z');
const PW = 'initial-pass-1';
const NEW_PW = 'Changed pass 2!';

let dir: string;
let store: HotStore;
let app: ReturnType<typeof createHttpApp>;
const tokens: Record<string, string> = {};

async function call(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await app.request(path, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

async function login(id: string): Promise<string> {
  let token = (await call('POST', '/api/v1/auth/login', undefined, { id, password: PW })).json.token as string;
  await call('POST', '/api/v1/auth/password', token, { currentPassword: PW, newPassword: NEW_PW });
  token = (await call('POST', '/api/v1/auth/login', undefined, { id, password: NEW_PW })).json.token;
  return token;
}

const delta = (events: number, failedLogons: number): DailyDelta => ({
  events,
  kinds: new Map([['logon', failedLogons]]),
  procStarts: 0,
  failedLogons,
  usbInsertions: 0,
  fileDeletes: 0,
  destinations: new Set(['203.0.113.1']),
  thresholdAlerts: 0,
});
const device = (tmid: string, supportId: string, connected: boolean): DeviceRecord => ({ tmid, supportId, computer: tmid, agentVersion: '1', os: 'W', ips: [], macs: [], tokenHash: '', firstSeen: 0, lastSeen: 0, connected });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-api-analytics-'));
  store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: createManualClock(T0), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
  });
  await store.tenants.create({ supportId: 'TA', name: 'A', now: T0 });
  await store.tenants.create({ supportId: 'TB', name: 'B', now: T0 });
  await store.devices.saveAll([device('A1', 'TA', true), device('A2', 'TA', false), device('B1', 'TB', true)]);
  await store.transaction(() => {
    store.analytics.addDailySync('2026-11-29', 'TA', 'A1', delta(10, 1));
    store.analytics.addDailySync('2026-11-30', 'TA', 'A1', delta(20, 4));
    store.analytics.addDailySync('2026-11-30', 'TA', 'A2', delta(5, 0));
    store.analytics.addDailySync('2026-11-30', 'TB', 'B1', delta(99, 9));
  });
  const alert = (id: string, supportId: string, createdAt: number, kind: OpsAlert['kind']): OpsAlert => ({ id, kind, supportId, createdAt, state: 'open', title: id, details: {} });
  await store.liveness.commit({ states: [], feed: [], massOpen: [], alerts: [alert('o1', 'TA', T0 - 2, 'agent.offline'), alert('o2', 'TA', T0 - 1, 'agent.mass_offline'), alert('o3', 'TB', T0, 'agent.offline')] });
  await store.identity.createUser({ id: 'op.sato', role: 'operator', supportId: null, password: PW, now: T0 });
  await store.identity.createUser({ id: 'admin.a', role: 'admin', supportId: 'TA', password: PW, now: T0 });
  await store.identity.createUser({ id: 'viewer.a', role: 'viewer', supportId: 'TA', password: PW, now: T0 });
  for (const id of ['op.sato', 'admin.a', 'viewer.a']) tokens[id] = await login(id);
}, 60_000);

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('analytics API', () => {
  it('charts a tenant or a device per JST day, zero on days without counts', async () => {
    const r = await call('GET', '/api/v1/analytics/series?metric=failedLogons&from=2026-11-28&to=2026-11-30', tokens['viewer.a']);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ tenant: 'TA', device: null, metric: 'failedLogons', step: 'day', points: [{ day: '2026-11-28', value: 0 }, { day: '2026-11-29', value: 1 }, { day: '2026-11-30', value: 4 }] });
    const dev = await call('GET', '/api/v1/analytics/series?tenant=TA&device=A2&metric=events&from=2026-11-30&to=2026-11-30', tokens['op.sato']);
    expect(dev.json.points).toEqual([{ day: '2026-11-30', value: 5 }]);
    expect((await call('GET', '/api/v1/analytics/series?metric=kind:logon&from=2026-11-30&to=2026-11-30', tokens['viewer.a'])).json.points[0].value).toBe(4);
    // Defaults: the last 30 days to today (JST).
    const def = await call('GET', '/api/v1/analytics/series', tokens['viewer.a']);
    expect(def.json.points).toHaveLength(30);
    expect(def.json.points.at(-1)).toEqual({ day: '2026-11-30', value: 25 });
  });

  it("never shows another tenant's counters, and refuses bad ranges", async () => {
    expect((await call('GET', '/api/v1/analytics/series?tenant=TB', tokens['viewer.a'])).status).toBe(404);
    expect((await call('GET', '/api/v1/analytics/series?device=B1', tokens['viewer.a'])).status).toBe(404);
    expect((await call('GET', '/api/v1/analytics/series', tokens['op.sato'])).status).toBe(400);
    expect((await call('GET', '/api/v1/analytics/series?from=2026-12-01&to=2026-11-30', tokens['viewer.a'])).status).toBe(400);
    expect((await call('GET', '/api/v1/analytics/series?metric=tokenHash', tokens['viewer.a'])).status).toBe(400);
  });

  it('sums a tenant over a range', async () => {
    const r = await call('GET', '/api/v1/analytics/summary?from=2026-11-29&to=2026-11-30', tokens['viewer.a']);
    expect(r.json).toMatchObject({ supportId: 'TA', devices: 2, totals: { events: 35, failedLogons: 5, destinations: 3 }, topFailedLogons: [{ tmid: 'A1', failedLogons: 5 }] });
  });

  it('keeps threshold rules as data: defaults until replaced, validated, audited', async () => {
    const before = await call('GET', '/api/v1/tenants/TA/analytics/rules', tokens['viewer.a']);
    expect(before.json.defaults).toBe(true);
    expect(before.json.rules.map((r: { id: string }) => r.id)).toEqual(['failed-logons', 'file-deletion-burst', 'new-destination-net16']);
    const rules = [{ id: 'failed-logons', title: '5 failures in 2 min', kind: 'logon', where: { ok: false }, threshold: 5, windowMs: 120_000 }];
    expect((await call('PUT', '/api/v1/tenants/TA/analytics/rules', tokens['viewer.a'], { rules })).status).toBe(403);
    expect((await call('PUT', '/api/v1/tenants/TA/analytics/rules', tokens['admin.a'], { rules: [{ id: 'x', title: 'x', kind: 'logon' }] })).status).toBe(400);
    const put = await call('PUT', '/api/v1/tenants/TA/analytics/rules', tokens['admin.a'], { rules });
    expect(put.status).toBe(200);
    expect(store.analytics.rules('TA')?.rules).toEqual([{ ...rules[0], enabled: true }]);
    expect((await call('GET', '/api/v1/tenants/TB/analytics/rules', tokens['admin.a'])).status).toBe(404);
  });

  it('sets liveness settings with defaults filled in', async () => {
    const get = await call('GET', '/api/v1/tenants/TA/liveness', tokens['viewer.a']);
    expect(get.json).toMatchObject({ supportId: 'TA', offlineAfterMs: 86_400_000, windows: [], massOfflineMinDevices: 10 });
    const windows = [
      { kind: 'weekly', days: [2], start: '22:00', end: '02:00', label: 'patch night' },
      { kind: 'once', from: T0, to: T0 + 3_600_000 },
    ];
    const put = await call('PUT', '/api/v1/tenants/TA/liveness', tokens['admin.a'], { offlineAfterMs: 3_600_000, windows });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ offlineAfterMs: 3_600_000, windows, massOfflineShare: 0.2, updatedBy: 'admin.a' });
    expect((await call('PUT', '/api/v1/tenants/TA/liveness', tokens['admin.a'], { windows: [{ kind: 'weekly', days: [7], start: '25:00', end: '02:00' }] })).status).toBe(400);
    expect((await call('PUT', '/api/v1/tenants/TA/liveness', tokens['admin.a'], { windows: [{ kind: 'once', from: 10, to: 5 }] })).status).toBe(400);
  });

  it("lists operational alerts newest first within the user's scope", async () => {
    const a = await call('GET', '/api/v1/ops-alerts', tokens['viewer.a']);
    expect(a.json.items.map((x: OpsAlert) => x.id)).toEqual(['o2', 'o1']);
    const op = await call('GET', '/api/v1/ops-alerts?kind=agent.offline&limit=1', tokens['op.sato']);
    expect(op.json.items.map((x: OpsAlert) => x.id)).toEqual(['o3']);
    const next = await call('GET', `/api/v1/ops-alerts?kind=agent.offline&limit=1&cursor=${op.json.nextCursor}`, tokens['op.sato']);
    expect(next.json.items.map((x: OpsAlert) => x.id)).toEqual(['o1']);
    expect((await call('GET', '/api/v1/ops-alerts/o3', tokens['viewer.a'])).status).toBe(404);
  });

  it('shows and filters device states', async () => {
    const off = await call('GET', '/api/v1/devices?state=offline', tokens['viewer.a']);
    expect(off.json.items.map((d: { tmid: string; state: string }) => [d.tmid, d.state])).toEqual([['A2', 'offline']]);
    const on = await call('GET', '/api/v1/devices?state=online', tokens['viewer.a']);
    expect(on.json.items.map((d: { tmid: string }) => d.tmid)).toEqual(['A1']);
  });

  it("charts a tenant's failed logons per day on the console dashboard (not for operators)", () => {
    const api = { store, clock: createManualClock(T0), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false };
    const viewer = dashboardData(api, store.identity.user('viewer.a')!, T0);
    expect(viewer.analytics?.failedLogons).toHaveLength(90);
    expect(viewer.analytics?.failedLogons.slice(-2)).toEqual([1, 4]);
    expect(dashboardData(api, store.identity.user('op.sato')!, T0).analytics).toBeNull();
  });
});
