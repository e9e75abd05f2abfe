import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import type { NetworkLogRecord } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { openHotStore, type HotStore, type NetConnEntry } from '../../storage/index.js';
import { createThreatIntel } from './intel-dir.js';
import { createNetworkIntelMatcher, intelSeverity } from './network-matcher.js';

describe('intel severity', () => {
  it.each([
    [90, 'allowed', true, 'Critical'],
    [90, 'alert', false, 'Serious'],
    [90, 'blocked', true, 'Serious'],
    [90, 'blocked', false, 'Medium'],
    [60, 'allowed', true, 'Serious'],
    [60, 'unknown', false, 'Medium'],
    [60, 'blocked', true, 'Medium'],
    [60, 'blocked', false, 'Information'],
    [30, 'allowed', true, 'Medium'],
    [30, 'allowed', false, 'Information'],
    [30, 'blocked', true, 'Information'],
    [30, 'blocked', false, 'Information'],
  ] as const)('confidence %i, %s, process known %s → %s', (confidence, action, endpointProcess, severity) => {
    expect(intelSeverity({ confidence, action, endpointProcess })).toBe(severity);
  });
});

describe('network-intel matcher', () => {
  let dir: string;
  let store: HotStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-nim-'));
    store = openHotStore({ dataDir: join(dir, 'data'), mapSizeBytes: 32 * 1024 * 1024 });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const T = 1_800_000_000_000;
  const record = (over: Partial<NetworkLogRecord> = {}): NetworkLogRecord => ({
    supportId: 'T1',
    receivedAt: T,
    ts: T,
    format: 'squid',
    sourceAddress: '10.0.0.3',
    srcIp: '10.0.9.9',
    srcPort: 50000,
    dstIp: '192.0.2.10',
    dstPort: 80,
    domain: 'dl.bad.example',
    url: 'http://dl.bad.example/a.exe',
    action: 'allowed',
    raw: 'line',
    ...over,
  });

  it('links a log to its process when the connection arrives later, counts repeats, falls back to the device by IP', async () => {
    const intelDir = join(dir, 'intel');
    rmSync(intelDir, { recursive: true, force: true });
    mkdirSync(intelDir);
    writeFileSync(join(intelDir, 'domains.txt'), 'bad.example\n');
    writeFileSync(join(intelDir, 'ips.txt'), '198.51.100.0/24\n');
    const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'T', now: 0 });
    const { device } = await store.devices.enroll(tenant, { computer: 'PC-9', agentVersion: '3', os: 'W', ips: ['10.0.9.9'], macs: [] }, 0);
    const clock = createManualClock(T + 1000);
    const m = createNetworkIntelMatcher({ store, intel: createThreatIntel(intelDir, { clock }), clock, logger: createSilentLogger(), relinkForMs: 60_000 });

    // No connection indexed yet: the device by its reported IP, no process; severity without it.
    const [a] = await m.onRecords([record()]);
    expect(a).toMatchObject({ severity: 'Serious', device: { tmid: device.tmid, computer: 'PC-9', matchedBy: 'device-ip' } });
    expect(a!.endpoint).toBeUndefined();
    expect(a!.hits.map((h) => [h.kind, h.value, h.observed])).toEqual([['domain', 'bad.example', 'dl.bad.example']]);
    // The same indicator from the same address within the hour: a repeat, not a second alert.
    expect(await m.onRecords([record({ ts: T + 10_000, raw: 'line 2' })])).toEqual([]);
    expect(store.intelAlerts.get(a!.id)!.repeats).toBe(1);

    // The agent's trail arrives: the shard indexes the connection; the next round links it and raises the severity.
    const conn: NetConnEntry = { supportId: 'T1', tmid: device.tmid, ts: T - 200, seq: 7, lsn: 3, pg: '{p}', pid: 42, image: 'C:\\x\\dl.exe', lip: '10.0.9.9', lport: 50000, rip: '192.0.2.10', rport: 80 };
    await store.transaction(() => store.netConns.recordSync(conn));
    // A connection of another tenant with the same private address never links.
    await store.transaction(() => store.netConns.recordSync({ ...conn, supportId: 'T2', tmid: 'other', ts: T }));
    expect(await m.relinkPending()).toBe(1);
    expect(store.intelAlerts.get(a!.id)).toMatchObject({ severity: 'Critical', endpoint: { tmid: device.tmid, pg: '{p}', image: 'C:\\x\\dl.exe', computer: 'PC-9' }, device: { matchedBy: 'connection' } });
    expect(await m.relinkPending()).toBe(0);
    // Two intel.hit feed events: the alert, and the raised severity.
    expect(store.notify.feedAfter(0, 10).filter((e) => e.kind === 'intel.hit').map((e) => e.severity)).toEqual(['Serious', 'Critical']);

    // Inbound from a listed network, blocked: the local end is the destination.
    const [b] = await m.onRecords([record({ srcIp: '198.51.100.7', srcPort: 4444, dstIp: '10.0.9.9', dstPort: 3389, domain: undefined, url: undefined, action: 'blocked', raw: 'inbound' })]);
    expect(b).toMatchObject({ severity: 'Medium', confidence: 80, device: { matchedBy: 'device-ip' } });
    expect(b!.hits[0]).toMatchObject({ kind: 'ip', value: '198.51.100.0/24', observed: '198.51.100.7', source: 'list:ips.txt' });

    // Past relinkForMs an alert is no longer retried.
    const [c] = await m.onRecords([record({ srcIp: '10.0.9.50', raw: 'late', domain: 'x.bad.example' })]);
    clock.advance(61_000);
    await store.transaction(() => store.netConns.recordSync({ ...conn, lip: '10.0.9.50' }));
    expect(await m.relinkPending()).toBe(0);
    expect(store.intelAlerts.get(c!.id)!.endpoint).toBeUndefined();
  });
});
