import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import type { NetworkIntelAlert } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, type HotStore } from '../../storage/index.js';
import { createHttpApp } from '../http-app.js';

const NOW = Date.UTC(2026, 10, 30, 3);
let dir: string;
let store: HotStore;
let app: ReturnType<typeof createHttpApp>;
const tokens: Record<string, string> = {};

const call = (method: string, path: string, who: string, body?: unknown) =>
  app.request(path, { method, headers: { authorization: `Bearer ${tokens[who]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

const alert = (id: string, supportId: string, createdAt: number, over: Partial<NetworkIntelAlert> = {}): NetworkIntelAlert => ({
  id,
  supportId,
  createdAt,
  at: createdAt - 500,
  severity: 'Serious',
  confidence: 90,
  hits: [{ kind: 'ip', observed: '203.0.113.45', value: '203.0.113.45', source: 'list:ips.txt', confidence: 90, labels: [] }],
  network: { supportId, receivedAt: createdAt, ts: createdAt - 500, format: 'suricata', sourceAddress: '10.0.0.2', srcIp: '10.0.4.23', srcPort: 5, dstIp: '203.0.113.45', dstPort: 443, action: 'alert', raw: '{}' },
  repeats: 0,
  ...over,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-intel-api-'));
  store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
  await store.tenants.create({ supportId: 'TA', name: 'A', now: NOW });
  await store.tenants.create({ supportId: 'TB', name: 'B', now: NOW });
  for (const [id, role, supportId] of [['op.x', 'operator', null], ['admin.a', 'admin', 'TA'], ['viewer.a', 'viewer', 'TA']] as const) {
    await store.identity.createUser({ id, role, supportId, password: 'pass-word', now: NOW, mustChangePassword: false });
    tokens[id] = await store.identity.createSession(id, 'token', NOW, 3_600_000);
  }
  await store.intelAlerts.record(alert('ni_a1', 'TA', NOW), 'k1', 3600_000);
  await store.intelAlerts.record(
    alert('ni_a2', 'TA', NOW + 1000, {
      severity: 'Critical',
      device: { tmid: 'D1', computer: 'PC-1', matchedBy: 'connection' },
      endpoint: { tmid: 'D1', computer: 'PC-1', pg: '{p}', ts: NOW, seq: 1, lsn: 1, lip: '10.0.4.23', lport: 5, rip: '203.0.113.45', rport: 443 },
    }),
    'k2',
    3600_000,
  );
  await store.intelAlerts.record(alert('ni_b1', 'TB', NOW + 2000), 'k3', 3600_000);
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

describe('/intel-alerts', () => {
  it('lists newest first with filters and paging, scoped to the tenant', async () => {
    const all = (await (await call('GET', '/api/v1/intel-alerts', 'op.x')).json()) as { items: NetworkIntelAlert[] };
    expect(all.items.map((a) => a.id)).toEqual(['ni_b1', 'ni_a2', 'ni_a1']);
    const own = (await (await call('GET', '/api/v1/intel-alerts', 'viewer.a')).json()) as { items: NetworkIntelAlert[] };
    expect(own.items.map((a) => a.id)).toEqual(['ni_a2', 'ni_a1']);
    const critical = (await (await call('GET', '/api/v1/intel-alerts?severity=Critical&linked=true', 'admin.a')).json()) as { items: NetworkIntelAlert[] };
    expect(critical.items.map((a) => a.id)).toEqual(['ni_a2']);
    const first = (await (await call('GET', '/api/v1/intel-alerts?limit=1', 'admin.a')).json()) as { items: NetworkIntelAlert[]; nextCursor: string };
    const second = (await (await call('GET', `/api/v1/intel-alerts?limit=1&cursor=${first.nextCursor}`, 'admin.a')).json()) as { items: NetworkIntelAlert[] };
    expect([first.items[0]!.id, second.items[0]!.id]).toEqual(['ni_a2', 'ni_a1']);
  });

  it('shows one alert with both pieces of evidence; another tenant gets 404', async () => {
    const res = await call('GET', '/api/v1/intel-alerts/ni_a2', 'viewer.a');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ network: { format: 'suricata', raw: '{}' }, endpoint: { pg: '{p}' } });
    expect((await call('GET', '/api/v1/intel-alerts/ni_b1', 'viewer.a')).status).toBe(404);
  });
});

describe('SIEM destinations in notification settings', () => {
  it('takes tcp/tls/udp/https destinations with a format, hides their headers, refuses files and a missing format', async () => {
    const put = await call('PUT', '/api/v1/tenants/TA/notifications', 'admin.a', {
      recipients: [{ id: 'siem', channel: 'siem', to: 'https://es.example:9200/logs-kiseki/_bulk', events: ['intel.hit', 'detection.new'], siem: { format: 'ecs', http: 'elastic-bulk', headers: { authorization: 'ApiKey c2VjcmV0' } } }],
    });
    expect(put.status).toBe(200);
    const text = await put.text();
    expect(text).not.toContain('c2VjcmV0');
    expect(JSON.parse(text)).toMatchObject({ recipients: [{ id: 'siem', siem: { format: 'ecs', http: 'elastic-bulk', hasHeaders: true } }] });
    // Headers kept when not given again.
    await call('PUT', '/api/v1/tenants/TA/notifications', 'admin.a', { recipients: [{ id: 'siem', channel: 'siem', to: 'https://es.example:9200/x/_bulk', events: ['intel.hit'], siem: { format: 'ecs', http: 'elastic-bulk' } }] });
    expect(store.notify.settings('TA')!.recipients[0]!.siem!.headers).toEqual({ authorization: 'ApiKey c2VjcmV0' });
    expect((await call('PUT', '/api/v1/tenants/TA/notifications', 'admin.a', { recipients: [{ channel: 'siem', to: 'file:///etc/passwd', events: ['intel.hit'], siem: { format: 'ecs' } }] })).status).toBe(400);
    expect((await call('PUT', '/api/v1/tenants/TA/notifications', 'admin.a', { recipients: [{ channel: 'siem', to: 'tcp://siem.example:514', events: ['intel.hit'] }] })).status).toBe(400);
    expect((await call('PUT', '/api/v1/tenants/TA/notifications', 'admin.a', { recipients: [{ channel: 'siem', to: 'tls://siem.example:6514', events: ['intel.hit'], siem: { format: 'cef', insecure: true } }] })).status).toBe(400);
  });
});
