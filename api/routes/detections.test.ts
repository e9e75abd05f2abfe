import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import type { SigmaDetection, SigmaSeverity } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, type HotStore } from '../../storage/index.js';
import { createHttpApp } from '../http-app.js';

const T0 = Date.UTC(2026, 10, 1);
const PW = 'initial-pass-1';
const NEW_PW = 'Changed pass 2!';

let dir: string;
let store: HotStore;
let app: ReturnType<typeof createHttpApp>;
const tokens: Record<string, string> = {};

function detection(i: number, supportId: string, tmid: string, ruleId: string, severity: SigmaSeverity): SigmaDetection {
  const at = T0 + i * 1000;
  return {
    id: `sd_${supportId}${String(i).padStart(4, '0')}`,
    supportId,
    tmid,
    computer: 'PC',
    ruleId,
    title: `rule ${ruleId}`,
    level: 'high',
    severity,
    tags: ['attack.execution'],
    author: 'a',
    lsn: i,
    event: { tmid, seq: i, ts: at, k: 'proc.start' },
    pg: '{p}',
    image: 'C:\\x.exe',
    at,
    createdAt: at,
    repeats: 0,
  };
}

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

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-api-det-'));
  store = openHotStore({ dataDir: dir });
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: createManualClock(T0), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
  });
  await store.tenants.create({ supportId: 'TA', name: 'A', now: T0 });
  await store.tenants.create({ supportId: 'TB', name: 'B', now: T0 });
  const all: SigmaDetection[] = [];
  // Tenant A: 30 detections over two devices and two rules; tenant B: 5.
  for (let i = 0; i < 30; i++) all.push(detection(i, 'TA', i % 2 === 0 ? 'tmid-a1' : 'tmid-a2', i % 3 === 0 ? 'rule-x' : 'rule-y', i % 5 === 0 ? 'Critical' : 'Medium'));
  for (let i = 0; i < 5; i++) all.push(detection(i, 'TB', 'tmid-b1', 'rule-x', 'Critical'));
  await store.transaction(() => {
    for (const d of all) {
      store.detections.saveSync(d);
      store.detections.indexSync(d);
    }
  });
  await store.identity.createUser({ id: 'op.sato', role: 'operator', supportId: null, password: PW, now: T0 });
  await store.identity.createUser({ id: 'admin.a', role: 'admin', supportId: 'TA', password: PW, now: T0 });
  await store.identity.createUser({ id: 'viewer.a', role: 'viewer', supportId: 'TA', password: PW, now: T0 });
  for (const id of ['op.sato', 'admin.a', 'viewer.a']) tokens[id] = await login(id);
}, 60_000);

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function all(path: string, token: string): Promise<SigmaDetection[]> {
  const out: SigmaDetection[] = [];
  let cursor: string | null = null;
  do {
    const r: { status: number; json: any } = await call('GET', `${path}${path.includes('?') ? '&' : '?'}limit=7${cursor === null ? '' : `&cursor=${cursor}`}`, token);
    expect(r.status).toBe(200);
    out.push(...r.json.items);
    cursor = r.json.nextCursor;
  } while (cursor !== null);
  return out;
}

describe('GET /detections', () => {
  it("pages through a tenant's detections newest first, each once, never another tenant's", async () => {
    const items = await all('/api/v1/detections', tokens['viewer.a']!);
    expect(items).toHaveLength(30);
    expect(new Set(items.map((d) => d.id)).size).toBe(30);
    expect(items.every((d) => d.supportId === 'TA')).toBe(true);
    expect(items.map((d) => d.at)).toEqual([...items.map((d) => d.at)].sort((a, b) => b - a));
    expect((await call('GET', '/api/v1/detections?supportId=TB', tokens['viewer.a'])).json.items).toEqual([]);
  });

  it('filters by device, rule, severity and event time', async () => {
    const t = tokens['admin.a']!;
    expect((await all('/api/v1/detections?tmid=tmid-a1', t)).every((d) => d.tmid === 'tmid-a1')).toBe(true);
    expect(await all('/api/v1/detections?tmid=tmid-a1', t)).toHaveLength(15);
    expect(await all('/api/v1/detections?rule=rule-x', t)).toHaveLength(10);
    expect(await all('/api/v1/detections?severity=Critical', t)).toHaveLength(6);
    const window = await all(`/api/v1/detections?from=${T0 + 10_000}&to=${T0 + 19_000}`, t);
    expect(window.map((d) => d.at)).toEqual(Array.from({ length: 10 }, (_, i) => T0 + 19_000 - i * 1000));
    expect(await all(`/api/v1/detections?rule=rule-x&tmid=tmid-a1&from=${T0 + 10_000}`, t)).toHaveLength(3);
    expect((await call('GET', '/api/v1/detections?severity=Bad', t)).status).toBe(400);
  });

  it('lets operators see every tenant, or one', async () => {
    expect(await all('/api/v1/detections', tokens['op.sato']!)).toHaveLength(35);
    expect(await all('/api/v1/detections?supportId=TB', tokens['op.sato']!)).toHaveLength(5);
  });

  it("answers 404 for another tenant's detection, like a missing one", async () => {
    expect((await call('GET', '/api/v1/detections/sd_TB0001', tokens['viewer.a'])).status).toBe(404);
    expect((await call('GET', '/api/v1/detections/sd_TA0001', tokens['viewer.a'])).json.ruleId).toBe('rule-y');
    expect((await call('GET', '/api/v1/detections/sd_TB0001', tokens['op.sato'])).status).toBe(200);
  });
});

describe('/tenants/{supportId}/sigma', () => {
  it('stores the settings the shards apply; admins of the tenant and operators only', async () => {
    expect((await call('GET', '/api/v1/tenants/TA/sigma', tokens['viewer.a'])).json).toEqual({ enabled: true, disabledRules: [] });
    expect((await call('PUT', '/api/v1/tenants/TA/sigma', tokens['viewer.a'], { enabled: false })).status).toBe(403);
    expect((await call('PUT', '/api/v1/tenants/TB/sigma', tokens['admin.a'], { enabled: false })).status).toBe(404);
    const r = await call('PUT', '/api/v1/tenants/TA/sigma', tokens['admin.a'], { disabledRules: ['rule-y', 'rule-x', 'rule-y'] });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ enabled: true, disabledRules: ['rule-x', 'rule-y'] });
    expect((await call('PUT', '/api/v1/tenants/TA/sigma', tokens['op.sato'], { enabled: false })).json).toEqual({ enabled: false, disabledRules: ['rule-x', 'rule-y'] });
    expect(store.detections.settings('TA')).toEqual({ enabled: false, disabledRules: ['rule-x', 'rule-y'] });
    expect(store.detections.settings('TB')).toEqual({ enabled: true, disabledRules: [] });
    expect((await call('PUT', '/api/v1/tenants/TA/sigma', tokens['op.sato'], {})).status).toBe(400);
  });
});
