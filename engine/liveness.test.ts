import { beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import type { DeviceRecord, HotStore, MaintenanceWindow } from '../storage/index.js';
import { createLivenessMonitor, inMaintenance, silenceStart } from './liveness.js';
import { useTempStore } from '../test/support/temp-store.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
/** Monday 2026-11-30 00:00 JST. */
const MONDAY_JST = Date.parse('2026-11-29T15:00:00Z');

describe('maintenance windows', () => {
  const weekly: MaintenanceWindow = { kind: 'weekly', days: [1], start: '22:00', end: '02:00' };
  const once: MaintenanceWindow = { kind: 'once', from: MONDAY_JST + 10 * HOUR, to: MONDAY_JST + 11 * HOUR };
  it.each([
    ['Monday 21:59 JST', MONDAY_JST + 22 * HOUR - MIN, false],
    ['Monday 22:00 JST', MONDAY_JST + 22 * HOUR, true],
    ['Tuesday 01:59 JST (crosses midnight)', MONDAY_JST + 26 * HOUR - MIN, true],
    ['Tuesday 02:00 JST', MONDAY_JST + 26 * HOUR, false],
    ['Monday 10:30 JST (one-off)', MONDAY_JST + 10.5 * HOUR, true],
    ['next Monday 23:00 JST', MONDAY_JST + 7 * 24 * HOUR + 23 * HOUR, true],
    ['Sunday 23:00 JST', MONDAY_JST - HOUR, false],
  ])('%s → %s', (_label, t, want) => {
    expect(inMaintenance([weekly, once], t)).toBe(want);
  });

  it('restarts a silence at the end of the last window that overlapped it', () => {
    const lastSeen = MONDAY_JST + 23 * HOUR;
    expect(silenceStart([weekly], lastSeen, MONDAY_JST + 30 * HOUR)).toBe(MONDAY_JST + 26 * HOUR);
    expect(silenceStart([weekly], MONDAY_JST + 3 * HOUR, MONDAY_JST + 5 * HOUR)).toBe(MONDAY_JST + 3 * HOUR);
    expect(silenceStart([once], MONDAY_JST + 9 * HOUR, MONDAY_JST + 12 * HOUR)).toBe(MONDAY_JST + 11 * HOUR);
  });
});

describe('liveness monitor', () => {
  let store: HotStore;
  useTempStore('kiseki-liveness-', (s) => (store = s));
  const clock = createManualClock(MONDAY_JST + 9 * HOUR);
  const config = loadConfig({ liveness: { offlineAfterMs: HOUR, massOfflineShare: 0.5, massOfflineMinDevices: 5, massOfflineWindowMs: 5 * MIN } }).liveness;
  const monitor = () => createLivenessMonitor({ store, clock, logger: createSilentLogger(), config });

  beforeEach(async () => {
    clock.set(MONDAY_JST + 9 * HOUR);
    await store.tenants.create({ supportId: 'TA', name: 'A', now: 0 });
  });

  async function devices(n: number): Promise<DeviceRecord[]> {
    const list: DeviceRecord[] = [];
    for (let i = 0; i < n; i++) {
      list.push({ tmid: `D${String(i).padStart(4, '0')}`, supportId: 'TA', computer: `PC-${i}`, agentVersion: '1', os: 'W', ips: [], macs: [], tokenHash: '', firstSeen: 0, lastSeen: clock.now(), connected: true });
    }
    await store.devices.saveAll(list);
    return list;
  }
  const drop = (d: DeviceRecord, at: number) => store.devices.update({ ...d, connected: false, lastSeen: at });
  const back = (d: DeviceRecord) => store.devices.update({ ...d, connected: true, lastSeen: clock.now() });
  const feedKinds = () => store.notify.feedAfter(0, 1000).map((e) => `${e.kind}:${e.tmid ?? e.devices}`);

  it('raises one offline alert per silence, resolves it on return, and raises again for a new silence', async () => {
    const [d] = await devices(1);
    const m = monitor();
    await drop(d!, clock.now());
    clock.advance(HOUR - 1);
    expect((await m.check()).offlineAlerts).toBe(0);
    clock.advance(1);
    expect((await m.check()).offlineAlerts).toBe(1);
    clock.advance(HOUR);
    expect((await m.check()).offlineAlerts).toBe(0);
    const [alert] = [...store.opsAlerts.scan('TA')];
    expect(alert).toMatchObject({ kind: 'agent.offline', tmid: d!.tmid, state: 'open' });
    expect((await m.check()).states).toEqual({ online: 0, offline: 1, isolated: 0, error: 0 });

    await back(d!);
    const r = await m.check();
    expect(r.recoveries).toBe(1);
    expect(r.states.online).toBe(1);
    expect(store.opsAlerts.get(alert!.id)).toMatchObject({ state: 'resolved', resolvedAt: clock.now() });

    await drop(d!, clock.now());
    clock.advance(2 * HOUR);
    expect((await m.check()).offlineAlerts).toBe(1);
    expect(feedKinds()).toEqual([`device.offline:${d!.tmid}`, `device.online:${d!.tmid}`, `device.offline:${d!.tmid}`]);
  });

  it('raises nothing for a silence inside a maintenance window, and counts it only from the window end', async () => {
    const [d] = await devices(1);
    // Monday 10:00–12:00 JST.
    await store.liveness.putSettings({ supportId: 'TA', windows: [{ kind: 'weekly', days: [1], start: '10:00', end: '12:00' }], updatedAt: 0, updatedBy: 't' });
    const m = monitor();
    clock.set(MONDAY_JST + 10 * HOUR);
    await drop(d!, clock.now());
    clock.set(MONDAY_JST + 11.5 * HOUR);
    expect((await m.check()).offlineAlerts).toBe(0);
    clock.set(MONDAY_JST + 12.5 * HOUR);
    expect((await m.check()).offlineAlerts).toBe(0);
    clock.set(MONDAY_JST + 13 * HOUR);
    expect((await m.check()).offlineAlerts).toBe(1);
  });

  it('makes many devices dropped at once one mass-offline event, not one alert each, and resolves it when they return', async () => {
    const list = await devices(20);
    const m = monitor();
    for (const d of list.slice(0, 12)) await drop(d, clock.now());
    clock.advance(MIN);
    const first = await m.check();
    expect(first).toMatchObject({ massOfflineAlerts: 1, offlineAlerts: 0 });
    clock.advance(2 * HOUR);
    expect(await m.check()).toMatchObject({ massOfflineAlerts: 0, offlineAlerts: 0 });
    const alerts = [...store.opsAlerts.scan('TA')];
    expect(alerts.map((a) => a.kind)).toEqual(['agent.mass_offline']);
    expect(alerts[0]!.details).toMatchObject({ devices: 12, tenantDevices: 20 });

    for (const d of list.slice(0, 8)) await back(d);
    expect((await m.check()).tenantsRecovered).toBe(1);
    expect(store.opsAlerts.get(alerts[0]!.id)).toMatchObject({ state: 'resolved', details: { stillOffline: 4 } });
    expect(feedKinds()).toEqual(['tenant.mass_offline:12', 'tenant.recovered:4']);
  });

  it('leaves a small drop to per-device alerts', async () => {
    const list = await devices(20);
    const m = monitor();
    for (const d of list.slice(0, 3)) await drop(d, clock.now());
    clock.advance(MIN);
    expect((await m.check()).massOfflineAlerts).toBe(0);
    clock.advance(HOUR);
    expect((await m.check()).offlineAlerts).toBe(3);
  });

  it('reads a large fleet in pages, counting every device once, and lets the event loop run between pages', async () => {
    const list = await devices(1_250);
    // Silent devices on every page: the first, the last, and each side of the page boundaries (500, 1,000).
    const silent = [0, 499, 500, 999, 1_000, 1_249].map((i) => list[i]!);
    for (const d of silent) await drop(d, clock.now());
    let pages = 0;
    const paged: HotStore = { ...store, devices: { ...store.devices, scan: (after) => (pages++, store.devices.scan(after)) } };
    const m = createLivenessMonitor({ store: paged, clock, logger: createSilentLogger(), config });
    let pagesWhenOtherWorkRan = -1;
    setImmediate(() => (pagesWhenOtherWorkRan = pages));
    clock.advance(HOUR);
    const r = await m.check();
    // At most 500 devices a page, fewer when a page runs out of its 5 ms.
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(pagesWhenOtherWorkRan).toBeGreaterThanOrEqual(1);
    expect(pagesWhenOtherWorkRan).toBeLessThan(pages);
    expect(r.states).toEqual({ online: 1_244, offline: 6, isolated: 0, error: 0 });
    expect(r.offlineAlerts).toBe(6);
    expect(new Set([...store.opsAlerts.scan('TA')].map((a) => a.tmid))).toEqual(new Set(silent.map((d) => d.tmid)));
  });
});
