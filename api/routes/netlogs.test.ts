import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import type { NetworkLogRecord } from '../../core/contracts.js';
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

const rec = (supportId: string, i: number): NetworkLogRecord => ({
  supportId,
  receivedAt: T0 + i * 1000 + 5,
  ts: T0 + i * 1000,
  format: i % 3 === 0 ? 'cef' : 'squid',
  sourceAddress: '192.0.2.1',
  action: 'allowed',
  ...(i % 4 === 0 ? { dstIp: '203.0.113.9', domain: 'evil.example' } : { domain: 'example.com' }),
  raw: `line ${i}`,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-api-netlog-'));
  store = openHotStore({ dataDir: dir });
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: createManualClock(T0), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
  });
  await store.tenants.create({ supportId: 'TA', name: 'A', now: T0 });
  await store.tenants.create({ supportId: 'TB', name: 'B', now: T0 });
  const records = [...Array.from({ length: 24 }, (_, i) => rec('TA', i)), ...Array.from({ length: 3 }, (_, i) => rec('TB', i))];
  await store.netlog.append(records, [
    { supportId: 'TA', reason: 'bad_field', count: 2 },
    { supportId: '', reason: 'unknown_tenant', count: 5 },
  ]);
  await store.identity.createUser({ id: 'op.sato', role: 'operator', supportId: null, password: PW, now: T0 });
  await store.identity.createUser({ id: 'viewer.a', role: 'viewer', supportId: 'TA', password: PW, now: T0 });
  for (const id of ['op.sato', 'viewer.a']) tokens[id] = await login(id);
}, 60_000);

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function all(path: string, token: string): Promise<(NetworkLogRecord & { seq: number })[]> {
  const out: (NetworkLogRecord & { seq: number })[] = [];
  let cursor: string | null = null;
  do {
    const r: { status: number; json: any } = await call('GET', `${path}${path.includes('?') ? '&' : '?'}limit=5${cursor === null ? '' : `&cursor=${cursor}`}`, token);
    expect(r.status).toBe(200);
    out.push(...r.json.items);
    cursor = r.json.nextCursor;
  } while (cursor !== null);
  return out;
}

describe('GET /netlogs', () => {
  it("pages through a viewer's own tenant newest first, each record once", async () => {
    const items = await all('/api/v1/netlogs', tokens['viewer.a']!);
    expect(items).toHaveLength(24);
    expect(new Set(items.map((r) => r.seq)).size).toBe(24);
    expect(items.every((r) => r.supportId === 'TA')).toBe(true);
    expect(items.map((r) => r.ts)).toEqual([...items.map((r) => r.ts)].sort((a, b) => b - a));
  });
  it('never shows another tenant to a viewer', async () => {
    expect((await call('GET', '/api/v1/netlogs?supportId=TB', tokens['viewer.a'])).json.items).toEqual([]);
  });
  it('filters by receive time, destination (IP or domain) and format', async () => {
    const op = tokens['op.sato']!;
    expect(await all(`/api/v1/netlogs?tenant=TA&from=${T0 + 10_000}&to=${T0 + 12_000}`, op)).toHaveLength(2); // receive times T0+10005, T0+11005
    const evil = await all('/api/v1/netlogs?supportId=TA&dst=Evil.Example', op);
    expect(evil.map((r) => r.ts)).toEqual([20, 16, 12, 8, 4, 0].map((i) => T0 + i * 1000));
    expect(await all('/api/v1/netlogs?supportId=TA&dst=203.0.113.9', op)).toHaveLength(6);
    expect((await all('/api/v1/netlogs?supportId=TA&format=cef', op)).every((r) => r.format === 'cef')).toBe(true);
    expect(await all('/api/v1/netlogs?supportId=TA&format=cef', op)).toHaveLength(8);
  });
  it('asks an operator to name the tenant', async () => {
    expect((await call('GET', '/api/v1/netlogs', tokens['op.sato'])).status).toBe(400);
  });
});

describe('GET /netlogs/stats', () => {
  it('counts stored records and failures by reason; operators also see unrouted lines', async () => {
    expect((await call('GET', '/api/v1/netlogs/stats', tokens['viewer.a'])).json).toEqual({ tenants: [{ supportId: 'TA', stored: 24, failed: { bad_field: 2 } }] });
    expect((await call('GET', '/api/v1/netlogs/stats', tokens['op.sato'])).json).toEqual({
      tenants: [
        { supportId: '', stored: 0, failed: { unknown_tenant: 5 } },
        { supportId: 'TA', stored: 24, failed: { bad_field: 2 } },
        { supportId: 'TB', stored: 3, failed: {} },
      ],
    });
  });
});
