import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, type DeviceRecord, type HotStore } from '../../storage/index.js';
import { createHttpApp } from '../http-app.js';

const T0 = Date.UTC(2026, 10, 1);
const PW = 'initial-pass-1';
const PKG = (version: string) => ({ version, url: `https://updates.example/${version}.msi`, sha256: 'A'.repeat(64) });

let dir: string;
let store: HotStore;
let app: ReturnType<typeof createHttpApp>;
const pushed: string[] = [];
const delivered: string[] = [];
const tokens: Record<string, string> = {};

async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-api-fleet-'));
  store = openHotStore({ dataDir: dir });
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: createManualClock(T0), logger: createSilentLogger(), deliverCommands: (t) => delivered.push(t), pushFleetPolicy: (s) => pushed.push(s), requireClientCert: false },
  });
  await store.tenants.create({ supportId: 'TA', name: 'A', now: T0 });
  await store.tenants.create({ supportId: 'TB', name: 'B', now: T0 });
  const device = (tmid: string, supportId: string): DeviceRecord => ({ tmid, supportId, computer: `PC-${tmid}`, agentVersion: '3.2.1', os: 'Windows 11', ips: [], macs: [], tokenHash: 'x', firstSeen: T0, lastSeen: T0, connected: true });
  await store.devices.saveAll([device('A-1', 'TA'), device('A-2', 'TA'), device('B-1', 'TB')]);
  await store.devices.setInventory('A-1', { receivedAt: T0, apps: [{ name: 'Zoom, "Workplace"', version: '5.17', publisher: 'Zoom' }, { name: '=cmd', version: '1' }], drives: [{ letter: 'C:', type: 'fixed', sizeBytes: 100 }], usb: [{ vendorId: '0951', productId: '1666', serial: 'S1' }], windowsUpdate: { pending: ['KB1'], installed: [{ kb: 'KB0', title: 'Cumulative' }] } });
  await store.identity.createUser({ id: 'op.sato', role: 'operator', supportId: null, password: PW, now: T0, mustChangePassword: false });
  await store.identity.createUser({ id: 'admin.b', role: 'admin', supportId: 'TB', password: PW, now: T0, mustChangePassword: false });
  await store.identity.createUser({ id: 'viewer.a', role: 'viewer', supportId: 'TA', password: PW, now: T0, mustChangePassword: false });
  for (const id of ['op.sato', 'admin.b', 'viewer.a']) tokens[id] = await store.identity.createSession(id, 'session', T0, 3_600_000);
}, 60_000);

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fleet routes', () => {
  it('changes the fleet policy, pushes it and audits it; scoped and validated', async () => {
    const put = await call('PUT', '/api/v1/tenants/TA/fleet-policy', tokens['op.sato']!, { mode: 'non-block', tuning: [{ kind: 'file.read', image: '*\\SearchIndexer.exe' }], usb: { control: true, allow: [{ vendorId: '0951', serial: 'S*' }] } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ version: 1, mode: 'non-block', tuning: [{ id: expect.stringMatching(/^tf_/), kind: 'file.read' }], usb: { control: true, allow: [{ id: expect.stringMatching(/^ua_/), vendorId: '0951' }] } });
    expect(pushed).toEqual(['TA']);
    expect([...store.identity.scanAudit()].some((a) => a.action === 'fleet.policy_changed' && a.supportId === 'TA')).toBe(true);
    expect((await call('GET', '/api/v1/tenants/TA/fleet-policy', tokens['viewer.a']!)).json.version).toBe(1);
    // A viewer may not change it; another tenant's admin sees 404; a filter without criteria is refused.
    expect((await call('PUT', '/api/v1/tenants/TA/fleet-policy', tokens['viewer.a']!, { mode: 'block' })).status).toBe(403);
    expect((await call('PUT', '/api/v1/tenants/TA/fleet-policy', tokens['admin.b']!, { mode: 'block' })).status).toBe(404);
    expect((await call('GET', '/api/v1/tenants/TA/fleet-policy', tokens['admin.b']!)).status).toBe(404);
    expect((await call('PUT', '/api/v1/tenants/TA/fleet-policy', tokens['op.sato']!, { tuning: [{ note: 'nothing' }] })).status).toBe(400);
    expect((await call('PUT', '/api/v1/tenants/TA/fleet-policy', tokens['op.sato']!, { usb: { allow: [{ vendorId: 'zz' }] } })).status).toBe(400);
  });

  it('runs a rollout through its states and refuses moves its state does not allow', async () => {
    const bad = await call('POST', '/api/v1/tenants/TA/rollouts', tokens['op.sato']!, { target: { ...PKG('3.3.0'), url: 'http://x/y' }, previous: PKG('3.2.1'), stages: [{ percent: 10 }] });
    expect(bad.status).toBe(400);
    const created = await call('POST', '/api/v1/tenants/TA/rollouts', tokens['op.sato']!, { target: PKG('3.3.0'), previous: PKG('3.2.1'), stages: [{ devices: ['A-2'] }, { percent: 100 }] });
    expect(created.status).toBe(201);
    expect(created.json.queued).toEqual(['A-2']);
    expect(delivered).toEqual(['A-2']);
    const id = created.json.rollout.id as string;
    expect(store.commands.forDevice('A-2')[0]!.args).toMatchObject({ version: '3.3.0', sha256: 'a'.repeat(64), rolloutId: id });
    expect((await call('GET', `/api/v1/tenants/TA/rollouts/${id}`, tokens['viewer.a']!)).json).toMatchObject({ devicesInStage: 1, targets: 1, upgrades: { queued: 1 }, versions: { '3.2.1': 2 } });
    expect((await call('GET', `/api/v1/tenants/TB/rollouts/${id}`, tokens['admin.b']!)).status).toBe(404);
    expect((await call('POST', `/api/v1/tenants/TA/rollouts/${id}/resume`, tokens['op.sato']!)).json.code).toBe('ERR_ROLLOUT_STATE');
    expect((await call('POST', `/api/v1/tenants/TA/rollouts/${id}/pause`, tokens['op.sato']!)).json.rollout.state).toBe('paused');
    expect(store.commands.forDevice('A-2')[0]!.state).toBe('cancelled');
    expect((await call('POST', `/api/v1/tenants/TA/rollouts/${id}/resume`, tokens['op.sato']!)).json.queued).toEqual(['A-2']);
    const advanced = await call('POST', `/api/v1/tenants/TA/rollouts/${id}/advance`, tokens['op.sato']!);
    expect(advanced.json).toMatchObject({ rollout: { stage: 1 }, queued: ['A-1'] });
    expect((await call('POST', `/api/v1/tenants/TA/rollouts/${id}/advance`, tokens['op.sato']!)).status).toBe(409);
    expect((await call('POST', `/api/v1/tenants/TA/rollouts/${id}/rollback`, tokens['op.sato']!)).json.rollout.state).toBe('rolled-back');
    expect((await call('GET', '/api/v1/tenants/TA/rollouts', tokens['viewer.a']!)).json.items).toHaveLength(1);
    expect((await call('GET', '/api/v1/tenants/TA/agent-versions', tokens['viewer.a']!)).json).toEqual({ versions: { '3.2.1': 2 } });
  });

  it('serves the ledger as CSV with counts, and the savings and fleet alerts', async () => {
    expect((await call('GET', '/api/v1/tenants/TA/ledger', tokens['viewer.a']!)).json).toEqual({ devices: 2, withInventory: 1, apps: 2, updates: 2, drives: 1, usb: 1 });
    const apps = await call('GET', '/api/v1/tenants/TA/ledger.csv?kind=apps', tokens['viewer.a']!);
    expect(apps.text.split('\r\n')[1]).toBe('PC-A-1,A-1,"Zoom, ""Workplace""",5.17,Zoom,,2026-11-01T00:00:00.000Z');
    expect(apps.text.split('\r\n')[2]).toBe("PC-A-1,A-1,'=cmd,1,,,2026-11-01T00:00:00.000Z");
    const usb = await call('GET', '/api/v1/tenants/TA/ledger.csv?kind=usb', tokens['viewer.a']!);
    expect(usb.text.split('\r\n')[1]).toBe('PC-A-1,A-1,0951,1666,S1,,,,yes,2026-11-01T00:00:00.000Z');
    const updates = await call('GET', '/api/v1/tenants/TA/ledger.csv?kind=updates', tokens['viewer.a']!);
    expect(updates.text.split('\r\n').slice(1, 3)).toEqual(['PC-A-1,A-1,KB0,installed,Cumulative,,,,2026-11-01T00:00:00.000Z', 'PC-A-1,A-1,KB1,pending,,,,,2026-11-01T00:00:00.000Z']);
    expect((await call('GET', '/api/v1/tenants/TA/ledger.csv?kind=printers', tokens['viewer.a']!)).status).toBe(400);
    expect((await call('GET', '/api/v1/tenants/TA/ledger.csv?kind=apps', tokens['admin.b']!)).status).toBe(404);

    await store.fleet.addSavings([{ supportId: 'TA', day: '2026-11-01', delta: { agentEvents: 5, agentBytes: 500, shardEvents: 1, shardBytes: 90 } }]);
    expect((await call('GET', '/api/v1/tenants/TA/tuning/savings?from=2026-11-01', tokens['viewer.a']!)).json.total).toEqual({ agentEvents: 5, agentBytes: 500, shardEvents: 1, shardBytes: 90, events: 6, bytes: 590 });
    expect((await call('GET', '/api/v1/tenants/TA/fleet-alerts', tokens['viewer.a']!)).json).toEqual({ items: [] });
  });
});
