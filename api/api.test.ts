import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import type { AlertRecord } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { createHttpApp } from './http-app.js';
import { ROUTES } from './routes/index.js';
import { EXPORT_ROUTES } from './routes/exports.js';

const T0 = Date.UTC(2026, 10, 1);
const PW = 'initial-pass-1';
const NEW_PW = 'Changed pass 2!';

interface World {
  dir: string;
  store: HotStore;
  app: ReturnType<typeof createHttpApp>;
  delivered: string[];
  devicesA: string[];
  deviceB: string;
  alertB: string;
  alertA: string;
  commandB: string;
  exceptionB: string;
  tokens: Record<string, string>;
}

let w: World;

function alertOf(id: string, tmid: string, supportId: string, at: number): AlertRecord {
  return {
    id,
    tmid,
    supportId,
    computer: 'PC',
    sha256: 'a'.repeat(64),
    path: 'C:\\x.exe',
    threat: 'T',
    engine: 'E',
    action: 'blocked',
    detectedAt: at,
    createdAt: at,
    state: 'reported',
    verdict: 'gray',
    score: 0,
    revision: 0,
    repeats: 0,
    openUntil: at,
    isolationRequested: false,
  };
}

async function call(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await w.app.request(path, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

async function login(id: string, password = PW): Promise<string> {
  const r = await call('POST', '/api/v1/auth/login', undefined, { id, password });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  let token = r.json.token as string;
  if (r.json.mustChangePassword) {
    const c = await call('POST', '/api/v1/auth/password', token, { currentPassword: password, newPassword: NEW_PW });
    expect(c.status).toBe(204);
    token = (await call('POST', '/api/v1/auth/login', undefined, { id, password: NEW_PW })).json.token;
  }
  return token;
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-api-'));
  const store = openHotStore({ dataDir: dir });
  const clock = createManualClock(T0);
  const delivered: string[] = [];
  const app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock, logger: createSilentLogger(), deliverCommands: (tmid) => delivered.push(tmid), requireClientCert: false },
  });
  const { tenant: a } = await store.tenants.create({ supportId: 'TA', name: 'Tenant A', now: T0 });
  const { tenant: b } = await store.tenants.create({ supportId: 'TB', name: 'Tenant B', now: T0 });
  const devicesA: string[] = [];
  for (let i = 0; i < 25; i++) {
    const { device } = await store.devices.enroll(a, { computer: `A-PC-${String(i).padStart(2, '0')}`, agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, T0 + i);
    devicesA.push(device.tmid);
  }
  const { device: db } = await store.devices.enroll(b, { computer: 'B-PC-1', agentVersion: '3', os: 'Windows 10', ips: [], macs: [] }, T0);
  const alertA = 'al_a0000000000000000000001';
  const alertB = 'al_b0000000000000000000001';
  for (const [id, tmid, sid] of [
    [alertA, devicesA[0]!, 'TA'],
    [alertB, db.tmid, 'TB'],
  ] as const) {
    const rec = alertOf(id, tmid, sid, T0 + 100);
    await store.transaction(() => {
      store.alerts.saveSync(rec);
      store.alerts.indexSync(rec);
    });
  }
  const commandB = (await store.commands.queue({ tmid: db.tmid, supportId: 'TB', kind: 'release', args: {}, requestedBy: 'op', requestedAt: T0, expiresAt: T0 + 1e9 })).id;
  const exceptionB = (await store.exceptions.add({ supportId: 'TB', sha256: 'b'.repeat(64), reason: 'r', createdAt: T0, createdBy: 'op' })).id;
  await store.identity.createUser({ id: 'op.sato', role: 'operator', supportId: null, password: PW, now: T0 });
  await store.identity.createUser({ id: 'admin.a', role: 'admin', supportId: 'TA', password: PW, now: T0 });
  await store.identity.createUser({ id: 'viewer.a', role: 'viewer', supportId: 'TA', password: PW, now: T0 });
  await store.identity.createUser({ id: 'admin.b', role: 'admin', supportId: 'TB', password: PW, now: T0 });
  await store.identity.createUser({ id: 'locked.a', role: 'viewer', supportId: 'TA', password: PW, now: T0 });
  w = { dir, store, app, delivered, devicesA, deviceB: db.tmid, alertA, alertB, commandB, exceptionB, tokens: {} };
  for (const id of ['op.sato', 'admin.a', 'viewer.a', 'admin.b']) w.tokens[id] = await login(id);
}, 60_000);

afterAll(async () => {
  await w.store.close();
  rmSync(w.dir, { recursive: true, force: true });
});

describe('authentication', () => {
  it('refuses requests without a valid token, with problem+json', async () => {
    for (const token of [undefined, 'kss_nope']) {
      const r = await call('GET', '/api/v1/devices', token);
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.json).toMatchObject({ status: 401, code: 'ERR_UNAUTHENTICATED' });
    }
  });

  it('forces a password change before anything else', async () => {
    await w.store.identity.createUser({ id: 'fresh.a', role: 'viewer', supportId: 'TA', password: PW, now: T0 });
    const r = await call('POST', '/api/v1/auth/login', undefined, { id: 'fresh.a', password: PW });
    expect(r.json.mustChangePassword).toBe(true);
    expect((await call('GET', '/api/v1/devices', r.json.token)).json.code).toBe('ERR_PASSWORD_CHANGE_REQUIRED');
    expect((await call('GET', '/api/v1/auth/me', r.json.token)).status).toBe(200);
    const bad = await call('POST', '/api/v1/auth/password', r.json.token, { currentPassword: PW, newPassword: 'short' });
    expect(bad.status).toBe(400);
    expect((await call('POST', '/api/v1/auth/password', r.json.token, { currentPassword: PW, newPassword: 'tab\tnot printable' })).status).toBe(400);
    expect((await call('POST', '/api/v1/auth/password', r.json.token, { currentPassword: PW, newPassword: NEW_PW })).status).toBe(204);
    expect((await call('GET', '/api/v1/devices', r.json.token)).status).toBe(200);
  });

  it('locks an account after five failed logins, even for the right password, and audits it', async () => {
    for (let i = 0; i < 4; i++) expect((await call('POST', '/api/v1/auth/login', undefined, { id: 'locked.a', password: 'wrong-pass' })).status).toBe(401);
    expect((await call('POST', '/api/v1/auth/login', undefined, { id: 'locked.a', password: 'wrong-pass' })).status).toBe(423);
    const r = await call('POST', '/api/v1/auth/login', undefined, { id: 'locked.a', password: PW });
    expect(r.status).toBe(423);
    expect(r.json.code).toBe('ERR_ACCOUNT_LOCKED');
    const audit = await call('GET', '/api/v1/audit?action=auth.login_locked', w.tokens['op.sato']);
    expect(audit.json.items.some((a: { actor: string }) => a.actor === 'locked.a')).toBe(true);
  });

  it('gives the same answer for an unknown ID as for a wrong password', async () => {
    const r = await call('POST', '/api/v1/auth/login', undefined, { id: 'nobody', password: 'whatever' });
    expect(r.status).toBe(401);
    expect(r.json.code).toBe('ERR_INVALID_CREDENTIALS');
  });

  it('issues bearer tokens for scripts and ends sessions on logout', async () => {
    const t = await call('POST', '/api/v1/auth/tokens', w.tokens['admin.a'], { label: 'nightly export' });
    expect(t.status).toBe(201);
    expect((await call('GET', '/api/v1/devices', t.json.token)).status).toBe(200);
    const session = await login('viewer.a', NEW_PW);
    expect((await call('POST', '/api/v1/auth/logout', session)).status).toBe(204);
    expect((await call('GET', '/api/v1/devices', session)).status).toBe(401);
  });
});

describe('tenant scoping: a tenant-A user never sees tenant B', () => {
  const byId = (): [string, () => string][] => [
    ['tenant', () => '/api/v1/tenants/TB'],
    ['device', () => `/api/v1/devices/${w.deviceB}`],
    ['device commands', () => `/api/v1/devices/${w.deviceB}/commands`],
    ['command', () => `/api/v1/commands/${w.commandB}`],
    ['alert', () => `/api/v1/alerts/${w.alertB}`],
    ['exception list', () => '/api/v1/tenants/TB/exceptions'],
  ];
  it.each(['admin.a', 'viewer.a'])('%s gets 404 for every tenant-B resource by id', async (user) => {
    for (const [name, path] of byId()) {
      const r = await call('GET', path(), w.tokens[user]);
      expect(r.status, name).toBe(404);
      expect(r.json.code, name).toBe('ERR_NOT_FOUND');
    }
  });

  it('admin.a gets 404 for every state change on tenant B', async () => {
    const token = w.tokens['admin.a'];
    expect((await call('POST', `/api/v1/devices/${w.deviceB}/commands`, token, { kind: 'release' })).status).toBe(404);
    expect((await call('PUT', '/api/v1/tenants/TB/policy', token, { isolateOnBlack: true })).status).toBe(404);
    expect((await call('POST', '/api/v1/tenants/TB/exceptions', token, { sha256: 'c'.repeat(64), reason: 'x' })).status).toBe(404);
    expect((await call('DELETE', `/api/v1/tenants/TB/exceptions/${w.exceptionB}`, token)).status).toBe(404);
    expect((await call('POST', '/api/v1/users', token, { id: 'sneaky.b', role: 'admin', supportId: 'TB', password: PW })).status).toBe(404);
    expect(w.store.exceptions.get('TB', w.exceptionB)).toBeDefined();
  });

  it('shows tenant A only in every list, even when asked for tenant B', async () => {
    const token = w.tokens['admin.a'];
    const lists: [string, (x: any) => string | null][] = [
      ['/api/v1/devices?limit=1000', (d) => d.supportId],
      ['/api/v1/devices?limit=1000&supportId=TB', (d) => d.supportId],
      ['/api/v1/alerts?limit=1000', (a) => a.supportId],
      ['/api/v1/alerts?supportId=TB', (a) => a.supportId],
      ['/api/v1/tenants', (t) => t.supportId],
      ['/api/v1/users', (u) => u.supportId],
      ['/api/v1/audit?limit=1000', (a) => a.supportId],
    ];
    for (const [path, tenantOf] of lists) {
      const r = await call('GET', path, token);
      expect(r.status, path).toBe(200);
      for (const item of r.json.items) expect(tenantOf(item), path).toBe('TA');
    }
    expect((await call('GET', '/api/v1/alerts', token)).json.items.map((a: AlertRecord) => a.id)).toEqual([w.alertA]);
  });

  it('lets operators see every tenant', async () => {
    const r = await call('GET', '/api/v1/alerts', w.tokens['op.sato']);
    expect(r.json.items.map((a: AlertRecord) => a.id).sort()).toEqual([w.alertA, w.alertB].sort());
    expect((await call('GET', `/api/v1/devices/${w.deviceB}`, w.tokens['op.sato'])).status).toBe(200);
  });
});

describe('roles', () => {
  it('keeps viewers read-only and verdicts to operators', async () => {
    expect((await call('POST', `/api/v1/devices/${w.devicesA[0]}/commands`, w.tokens['viewer.a'], { kind: 'release' })).status).toBe(403);
    expect((await call('POST', `/api/v1/alerts/${w.alertA}/verdict`, w.tokens['admin.a'], { verdict: 'white' })).status).toBe(403);
    expect((await call('GET', '/api/v1/audit', w.tokens['viewer.a'])).status).toBe(403);
    expect((await call('POST', '/api/v1/tenants', w.tokens['admin.a'], { supportId: 'TC', name: 'C' })).status).toBe(403);
  });

  it('records an operator verdict change over the engine verdict, with history and comments', async () => {
    const op = w.tokens['op.sato'];
    const r = await call('POST', `/api/v1/alerts/${w.alertA}/verdict`, op, { verdict: 'black', comment: 'C2 confirmed' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ verdict: 'black', engineVerdict: 'gray', verdictBy: 'op.sato' });
    expect((await call('POST', `/api/v1/alerts/${w.alertA}/comments`, op, { text: 'Customer informed.' })).status).toBe(201);
    const view = await call('GET', `/api/v1/alerts/${w.alertA}`, w.tokens['viewer.a']);
    expect(view.json.alert.verdict).toBe('black');
    expect(view.json.verdictHistory.at(-1)).toMatchObject({ to: 'black', by: 'op.sato' });
    expect(view.json.comments).toEqual([expect.objectContaining({ text: 'Customer informed.', author: 'op.sato' })]);
    expect((await call('GET', '/api/v1/alerts?verdict=black', op)).json.items.map((a: AlertRecord) => a.id)).toEqual([w.alertA]);
  });
});

describe('response actions', () => {
  it('queues an isolation with its allow-list, hands it to delivery and audits who asked', async () => {
    const tmid = w.devicesA[1]!;
    const r = await call('POST', `/api/v1/devices/${tmid}/commands`, w.tokens['admin.a'], { kind: 'isolate', args: { allow: [{ cidr: '10.0.0.0/8', port: 443 }] } });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ tmid, kind: 'isolate', state: 'queued', requestedBy: 'admin.a', args: { allow: [{ cidr: '10.0.0.0/8', port: 443 }] } });
    expect(w.delivered).toContain(tmid);
    expect((await call('GET', `/api/v1/commands/${r.json.id}`, w.tokens['viewer.a'])).json.state).toBe('queued');
    const audit = await call('GET', '/api/v1/audit?action=command.requested', w.tokens['admin.a']);
    expect(audit.json.items[0]).toMatchObject({ actor: 'admin.a', target: r.json.id, supportId: 'TA' });
  });

  it.each([
    [{ kind: 'explode' }, 'unknown kind'],
    [{ kind: 'delete-file', args: { path: 'C:\\x.exe' } }, 'delete-file without sha256'],
    [{ kind: 'isolate', args: { allow: [{ cidr: 'not-an-ip' }] } }, 'bad allow entry'],
    ['{not json', 'a body that is not JSON'],
  ])('rejects %j (%s) with a validation problem', async (body, _why) => {
    const r = await call('POST', `/api/v1/devices/${w.devicesA[2]}/commands`, w.tokens['admin.a'], body);
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('ERR_VALIDATION');
  });
});

describe('pagination and validation', () => {
  it('pages through every device exactly once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const r: { json: { items: { tmid: string }[]; nextCursor: string | null } } = await call('GET', `/api/v1/devices?limit=10${cursor ? `&cursor=${cursor}` : ''}`, w.tokens['admin.a']);
      seen.push(...r.json.items.map((d) => d.tmid));
      cursor = r.json.nextCursor;
      if (cursor === null) break;
    }
    expect(seen).toHaveLength(25);
    expect(new Set(seen)).toEqual(new Set(w.devicesA));
  });

  it('filters devices by computer name', async () => {
    const r = await call('GET', '/api/v1/devices?computer=a-pc-07', w.tokens['admin.a']);
    expect(r.json.items.map((d: { computer: string }) => d.computer)).toEqual(['A-PC-07']);
  });

  it.each([
    ['/api/v1/devices?limit=0', 'limit below 1'],
    ['/api/v1/devices?limit=abc', 'limit not a number'],
    ['/api/v1/devices?cursor=@@@', 'a cursor we never issued'],
    ['/api/v1/alerts?verdict=purple', 'an unknown verdict'],
  ])('answers %s (%s) with 400 problem+json', async (path) => {
    const r = await call('GET', path, w.tokens['admin.a']);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ status: 400, code: 'ERR_VALIDATION' });
  });
});

describe('OpenAPI document', () => {
  it('lists exactly the routes served, each with its responses', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).json as { openapi: string; paths: Record<string, Record<string, { responses: object; operationId: string }>> };
    expect(doc.openapi).toBe('3.1.0');
    const served = new Set(
      w.app.routes
        .filter((r) => r.path.startsWith('/api/v1/') && r.path !== '/api/v1/openapi.json')
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`),
    );
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)));
    expect(documented).toEqual(served);
    expect(served.size).toBe(ROUTES.length + EXPORT_ROUTES.length);
    const ids = new Set<string>();
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
      }
    }
  });
});
