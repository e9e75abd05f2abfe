import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, type HotStore } from '../../storage/index.js';
import { createHttpApp } from '../http-app.js';

const NOW = Date.UTC(2026, 10, 20, 3);
let dir: string;
let store: HotStore;
let app: ReturnType<typeof createHttpApp>;
const tokens: Record<string, string> = {};

const call = (method: string, path: string, who: string, body?: unknown) =>
  app.request(path, { method, headers: { authorization: `Bearer ${tokens[who]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-notify-api-'));
  store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
  await store.tenants.create({ supportId: 'TA', name: 'A', now: NOW });
  await store.tenants.create({ supportId: 'TB', name: 'B', now: NOW });
  for (const [id, role, supportId] of [['op.x', 'operator', null], ['admin.a', 'admin', 'TA'], ['viewer.a', 'viewer', 'TA'], ['admin.b', 'admin', 'TB']] as const) {
    await store.identity.createUser({ id, role, supportId, password: 'pass-word', now: NOW, mustChangePassword: false });
    tokens[id] = await store.identity.createSession(id, 'token', NOW, 3_600_000);
  }
  const a = { id: 'al_1', tmid: 'D1', supportId: 'TA', computer: 'PC', sha256: 'a'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked', detectedAt: NOW, createdAt: NOW, state: 'reported' as const, verdict: 'gray' as const, score: 60, revision: 1, repeats: 0, openUntil: NOW, isolationRequested: false };
  await store.transaction(() => {
    store.alerts.saveSync(a);
    store.alerts.indexSync(a);
  });
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: createManualClock(NOW), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
  });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('/tenants/:supportId/notifications', () => {
  it('stores recipients, never shows a webhook secret, keeps it when not given again, and scopes tenants', async () => {
    const put = await call('PUT', '/api/v1/tenants/TA/notifications', 'admin.a', {
      recipients: [
        { id: 'mail', channel: 'email', to: 'soc@a.example.jp', events: ['alert.new'], verdicts: ['black', 'gray'] },
        { id: 'hook', channel: 'webhook', to: 'https://hooks.a.example.jp/k', secret: 'a-long-enough-secret', events: ['alert.new', 'alert.verdict'] },
      ],
      maxPerHour: 5,
    });
    expect(put.status).toBe(200);
    const body = (await put.json()) as { recipients: Record<string, unknown>[] };
    expect(body.recipients[1]).toMatchObject({ id: 'hook', hasSecret: true, verdicts: ['black', 'gray', 'white'] });
    expect(JSON.stringify(body)).not.toContain('a-long-enough-secret');
    // A second PUT without the secret keeps it.
    await call('PUT', '/api/v1/tenants/TA/notifications', 'op.x', { recipients: [{ id: 'hook', channel: 'webhook', to: 'https://hooks.a.example.jp/k2', events: ['alert.new'] }] });
    expect(store.notify.settings('TA')!.recipients).toMatchObject([{ id: 'hook', to: 'https://hooks.a.example.jp/k2', secret: 'a-long-enough-secret' }]);
    expect((await call('GET', '/api/v1/tenants/TA/notifications', 'admin.b')).status).toBe(404);
    expect((await call('GET', '/api/v1/tenants/TA/notifications', 'viewer.a')).status).toBe(403);
    expect((await call('PUT', '/api/v1/tenants/TA/notifications', 'admin.a', { recipients: [{ channel: 'email', to: 'not-an-address', events: ['alert.new'] }] })).status).toBe(400);
    expect([...store.identity.scanAudit()].filter((r) => r.action === 'notify.settings_changed')).toHaveLength(2);
    expect(((await (await call('GET', '/api/v1/tenants/TA/notifications/dead-letters', 'admin.a')).json()) as { items: unknown[] }).items).toEqual([]);
  });

  it("records the customer's answer on the tenant's own alert only", async () => {
    expect((await call('POST', '/api/v1/alerts/al_1/answers', 'admin.b', { text: 'x' })).status).toBe(404);
    const res = await call('POST', '/api/v1/alerts/al_1/answers', 'viewer.a', { text: '社内の検証用ツールです' });
    expect(res.status).toBe(201);
    expect(store.answers.has('al_1')).toBe(true);
    const list = (await (await call('GET', '/api/v1/alerts/al_1/answers', 'op.x')).json()) as { items: { by: string; text: string }[] };
    expect(list.items).toMatchObject([{ by: 'viewer.a', text: '社内の検証用ツールです' }]);
  });
});
