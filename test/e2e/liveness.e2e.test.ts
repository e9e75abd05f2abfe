/**
 * End to end with simulated agents against the real service (agent server,
 * shards, API): an agent stopped outside a maintenance window raises exactly
 * one offline alert, inside a window none; 200 agents dropped at once raise
 * one mass-offline event and no alert each; failed-logon bursts reach the
 * daily counters and a threshold alert; agents that go offline come back as
 * the same devices. Time is a manual clock (lastSeen, the liveness check),
 * so nothing depends on how fast the machine is; waits are bounded polls.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSimulation, type SimulationOptions } from '../../agent/index.js';
import { startService, type RunningService } from '../../bin/service.js';
import { createManualClock } from '../../core/clock.js';
import { loadConfig } from '../../core/config.js';
import { createSilentLogger } from '../../core/logger.js';
import { jstDay } from '../../engine/index.js';
import type { OpsAlert } from '../../storage/index.js';
import { eventually } from '../support/cli.js';

const MIN = 60_000;
/** Monday 2026-11-30 10:00 JST. */
const T0 = Date.parse('2026-11-30T01:00:00Z');
const PW = 'initial-pass-1';
/** Polls of 100 ms before a wait gives up: generous, the machine may be loaded. */
const BOUND = 1200;

let dir: string;
let service: RunningService;
let token: string;
const clock = createManualClock(T0);

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${service.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

async function tenant(supportId: string): Promise<string> {
  return (await service.store.tenants.create({ supportId, name: supportId, now: clock.now() })).enrollKey;
}

function simulate(enrollKey: string, agents: number, extra: Partial<SimulationOptions> = {}) {
  return runSimulation({
    url: `ws://127.0.0.1:${service.ingestPort}/agent/v1`,
    enrollKey,
    agents,
    eps: 5,
    durationSec: 1,
    batchMs: 250,
    seed: agents,
    statePath: join(dir, `sim-${enrollKey.slice(-8)}.json`),
    drainTimeoutSec: 60,
    connectConcurrency: 50,
    ...extra,
  });
}

/** Waits (bounded) until none of the tenant's devices is connected: the server has seen every socket close. */
async function allDisconnected(supportId: string, count: number): Promise<void> {
  await eventually(async () => {
    const list = [...service.store.devices.scanTenant(supportId)];
    return list.length === count && list.every((d) => !d.connected) ? true : undefined;
  }, BOUND);
}

const alertsOf = async (supportId: string): Promise<OpsAlert[]> => (await http('GET', `/api/v1/ops-alerts?supportId=${supportId}&limit=1000`)).json.items;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-liveness-e2e-'));
  const config = loadConfig({
    dataDir: dir,
    logLevel: 'silent',
    ingest: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    engine: { shards: 1 },
    storage: { mapSizeBytes: 256 * 1024 * 1024 },
    reports: { enabled: false },
    // The timer never fires within the test: each check is run by hand at a chosen clock time.
    // The notifier consumes the feed (and drops what it has read) on its timer; the tests read the feed itself, so it waits.
    notify: { intervalMs: 3_600_000 },
    liveness: { checkIntervalMs: 3_600_000, offlineAfterMs: 60 * MIN, massOfflineShare: 0.5, massOfflineMinDevices: 50, massOfflineWindowMs: 5 * MIN },
  });
  service = await startService({ config, logger: createSilentLogger(), clock, defaultMetrics: false });
  await service.store.identity.createUser({ id: 'op.ito', role: 'operator', supportId: null, password: PW, now: T0 });
  const login = async (password: string) =>
    (await (await fetch(`http://127.0.0.1:${service.httpPort}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'op.ito', password }) })).json()) as { token: string };
  token = (await login(PW)).token;
  expect((await http('POST', '/api/v1/auth/password', { currentPassword: PW, newPassword: 'second-pass' })).status).toBe(204);
  token = (await login('second-pass')).token;
}, 120_000);

afterAll(async () => {
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('liveness end to end', () => {
  it('raises exactly one offline alert for an agent stopped outside a maintenance window, resolved when it returns', async () => {
    const key = await tenant('LV01');
    const run = await simulate(key, 1);
    expect(run.batchesUnacked).toBe(0);
    await allDisconnected('LV01', 1);
    const [device] = [...service.store.devices.scanTenant('LV01')];
    clock.advance(59 * MIN);
    await service.liveness!.check();
    expect(await alertsOf('LV01')).toEqual([]);
    clock.advance(2 * MIN);
    await service.liveness!.check();
    clock.advance(30 * MIN);
    await service.liveness!.check();
    const alerts = await alertsOf('LV01');
    expect(alerts).toMatchObject([{ kind: 'agent.offline', tmid: device!.tmid, state: 'open' }]);
    expect((await http('GET', '/api/v1/devices?supportId=LV01&state=offline')).json.items).toHaveLength(1);
    expect(service.store.notify.feedAfter(0, 10_000).filter((e) => e.supportId === 'LV01').map((e) => e.kind)).toEqual(['device.offline']);

    // The agent comes back: while it is connected, the check resolves the alert and feeds a recovery notice.
    const stop = new AbortController();
    const back = simulate(key, 1, { durationSec: 120, signal: stop.signal });
    await eventually(async () => (service.store.devices.get(device!.tmid)?.connected === true ? true : undefined), BOUND);
    clock.advance(MIN);
    expect((await service.liveness!.check()).recoveries).toBe(1);
    expect((await http('GET', `/api/v1/ops-alerts/${alerts[0]!.id}`)).json).toMatchObject({ state: 'resolved' });
    expect(service.store.notify.feedAfter(0, 10_000).filter((e) => e.supportId === 'LV01').map((e) => e.kind)).toEqual(['device.offline', 'device.online']);
    const metrics = await (await fetch(`http://127.0.0.1:${service.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/kiseki_liveness_offline_alerts_total 1\b/);
    expect(metrics).toMatch(/kiseki_liveness_devices\{state="online"\} 1\b/);
    expect(metrics).toMatch(/^kiseki_notify_feed_lag_events \d+$/m);
    expect(metrics).toMatch(/^kiseki_notify_feed_lag_seconds [\d.e+-]+$/m);
    stop.abort();
    await back;
    await allDisconnected('LV01', 1);
  }, 180_000);

  it('raises no alert for an agent stopped inside a maintenance window', async () => {
    const key = await tenant('LV02');
    expect((await http('PUT', '/api/v1/tenants/LV02/liveness', { windows: [{ kind: 'once', from: clock.now(), to: clock.now() + 3 * 60 * MIN, label: 'patching' }] })).status).toBe(200);
    await simulate(key, 1);
    await allDisconnected('LV02', 1);
    for (let i = 0; i < 3; i++) {
      clock.advance(50 * MIN);
      await service.liveness!.check();
    }
    expect(await alertsOf('LV02')).toEqual([]);
    expect(service.store.notify.feedAfter(0, 10_000).filter((e) => e.supportId === 'LV02')).toEqual([]);
  }, 180_000);

  it('makes 200 agents dropped at once one mass-offline event, and no alert per agent', async () => {
    const key = await tenant('LV03');
    // Generation runs until every agent is connected, then all stop at once.
    const stop = new AbortController();
    const running = simulate(key, 200, { durationSec: 600, eps: 1, batchMs: 500, stopGeneration: stop.signal });
    await eventually(async () => ([...service.store.devices.scanTenant('LV03')].filter((d) => d.connected).length === 200 ? true : undefined), BOUND);
    stop.abort();
    const run = await running;
    expect(run.enrolled).toBe(200);
    await allDisconnected('LV03', 200);
    clock.advance(MIN);
    expect((await service.liveness!.check()).massOfflineAlerts).toBe(1);
    clock.advance(2 * 60 * MIN);
    await service.liveness!.check();
    const alerts = await alertsOf('LV03');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ kind: 'agent.mass_offline', state: 'open', details: { devices: 200, tenantDevices: 200 } });
    expect(service.store.notify.feedAfter(0, 10_000).filter((e) => e.supportId === 'LV03').map((e) => e.kind)).toEqual(['tenant.mass_offline']);
  }, 300_000);
});

describe('streaming analytics end to end', () => {
  it('counts failed-logon bursts per device and day, raises the threshold alert, and lets dropped agents come back as themselves', async () => {
    const key = await tenant('AN01');
    const run = await simulate(key, 4, { durationSec: 4, failedLogonBursts: { share: 0.5, everySec: 1, size: 12 }, dropouts: { share: 0.5, afterSec: 1, downSec: 1 } });
    expect(run.failedLogonBursts).toBeGreaterThanOrEqual(2);
    expect(run.dropouts).toBe(2);
    // Same identities after the dropouts: 4 enrollments, 4 devices.
    expect(run.enrolled).toBe(4);
    expect([...service.store.devices.scanTenant('AN01')]).toHaveLength(4);
    await service.drained();
    const today = jstDay(clock.now());
    const series = await eventually(async () => {
      const r = await http('GET', `/api/v1/analytics/series?tenant=AN01&metric=failedLogons&from=${today}&to=${today}`);
      return r.json.points[0].value >= 12 * run.failedLogonBursts ? r.json : undefined;
    }, BOUND);
    expect(series.points).toHaveLength(1);
    const events = (await http('GET', `/api/v1/analytics/series?tenant=AN01&metric=events&from=${today}&to=${today}`)).json.points[0].value;
    // Every acked event is counted; a batch committed just before a dropout closed its socket may be counted unacked.
    expect(events).toBeGreaterThanOrEqual(run.eventsAcked);
    expect(events).toBeLessThanOrEqual(run.eventsSent);
    const thresholds = (await alertsOf('AN01')).filter((a) => a.kind === 'analytics.threshold' && a.details.ruleId === 'failed-logons');
    expect(thresholds.length).toBeGreaterThanOrEqual(1);
    const summary = (await http('GET', `/api/v1/analytics/summary?tenant=AN01&from=${today}&to=${today}`)).json;
    expect(summary.totals.thresholdAlerts).toBeGreaterThanOrEqual(thresholds.length);
  }, 180_000);
});
