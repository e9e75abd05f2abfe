import { encode } from '@msgpack/msgpack';
import { beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createManualClock } from '../core/clock.js';
import type { DeviceRecord, HotStore } from '../storage/index.js';
import { domainOf, jstDay, net16, StreamingAnalytics } from './analytics.js';
import { ShardCore } from './shard-core.js';
import type { ThreatIntel } from './intel/index.js';
import { useTempStore } from '../test/support/temp-store.js';

const MIN = 60_000;
const DAY = 86_400_000;
/** 2026-11-30 10:00 JST. */
const T0 = Date.parse('2026-11-30T01:00:00Z');

async function commit(store: HotStore, lsn: number, tmid: string, events: object[], recvAt: number): Promise<Uint8Array> {
  const bytes = encode(events);
  await store.log.commitBatches([{ lsn, record: { tmid, id: lsn.toString(16).padStart(32, '0'), sentAt: recvAt, recvAt, first: 1, last: events.length, n: events.length, z: compress(bytes) } }]);
  return bytes;
}

const failedLogon = (ts: number) => ({ ts, k: 'logon', seq: 1, user: 'S-1-0-0', userName: 'admin', logonType: 3, logonId: '0x0', ok: false });

describe('helpers', () => {
  it.each([
    ['203.0.113.45', '203.0.0.0/16'],
    ['10.1.2.3', '10.1.0.0/16'],
    ['fe80::1', undefined],
    ['nonsense', undefined],
  ])('net16(%s) = %s', (ip, want) => expect(net16(ip)).toBe(want));
  it.each([
    ['cdn-update.Example.net', 'example.net'],
    ['localhost', undefined],
  ])('domainOf(%s) = %s', (host, want) => expect(domainOf(host)).toBe(want));
  it('names JST days', () => {
    expect(jstDay(Date.parse('2026-11-30T14:59:59Z'))).toBe('2026-11-30');
    expect(jstDay(Date.parse('2026-11-30T15:00:00Z'))).toBe('2026-12-01');
  });
});

describe('streaming analytics in a shard', () => {
  let store: HotStore;
  useTempStore('kiseki-analytics-', (s) => (store = s));
  const clock = createManualClock(T0);
  const device = (tmid: string): DeviceRecord => ({ tmid, supportId: 'TA', computer: tmid, agentVersion: '1', os: 'W', ips: [], macs: [], tokenHash: '', firstSeen: 0, lastSeen: 0, connected: true });
  const shard = () => new ShardCore({ store, index: 0, workers: 1, clock, analytics: new StreamingAnalytics({ store, clock }) });

  beforeEach(async () => {
    clock.set(T0);
    await store.tenants.create({ supportId: 'TA', name: 'A', now: 0 });
    await store.devices.saveAll([device('DEV-A'), device('DEV-B')]);
  });

  it('counts per device and JST day at the flush, exactly once across a crash and replay', async () => {
    const events = [
      { ts: T0, k: 'proc.start', seq: 1 },
      { ts: T0, k: 'net.conn', seq: 2, rip: '203.0.113.45' },
      { ts: T0, k: 'net.conn', seq: 3, rip: '203.0.113.45' },
      { ts: T0, k: 'net.conn', seq: 4, rip: '198.51.100.7' },
      { ts: T0, k: 'usb.connect', seq: 5 },
      { ts: T0, k: 'file.delete', seq: 6 },
      { ts: T0, k: 'logon', seq: 7, ok: true },
      failedLogon(T0),
    ];
    const b1 = await commit(store, 1, 'DEV-A', events, T0);
    const first = shard();
    first.recover();
    await first.flush();
    expect(store.analytics.daily('2026-11-30', 'TA', 'DEV-A')).toMatchObject({
      events: 8,
      kinds: { 'proc.start': 1, 'net.conn': 3, 'usb.connect': 1, 'file.delete': 1, logon: 2 },
      procStarts: 1,
      failedLogons: 1,
      usbInsertions: 1,
      fileDeletes: 1,
      destinations: 2,
      destinationsCapped: false,
    });
    expect(b1.byteLength).toBeGreaterThan(0);

    // The next day's batch is processed, then the shard "crashes" before its flush.
    const b2 = await commit(store, 2, 'DEV-A', [{ ts: T0 + DAY, k: 'net.conn', seq: 9, rip: '192.0.2.1' }], T0 + DAY);
    first.processBatch(2, 'DEV-A', b2, T0 + DAY);
    const second = shard();
    expect(second.recover()).toBe(1);
    await second.flush();
    expect(store.analytics.daily('2026-11-30', 'TA', 'DEV-A')?.events).toBe(8);
    expect(store.analytics.daily('2026-12-01', 'TA', 'DEV-A')).toMatchObject({ events: 1, destinations: 1 });
    expect(store.analytics.series('TA', 'DEV-A', 'events', ['2026-11-29', '2026-11-30', '2026-12-01'])).toEqual([0, 8, 1]);
    expect(store.analytics.series('TA', undefined, 'kind:net.conn', ['2026-11-30', '2026-12-01'])).toEqual([3, 1]);
    expect(store.analytics.summary('TA', ['2026-11-30', '2026-12-01'])).toMatchObject({ devices: 1, totals: { events: 9, failedLogons: 1 }, topFailedLogons: [{ tmid: 'DEV-A', failedLogons: 1 }] });

    const swept = await store.analytics.sweep('2026-12-01', '2026-12-01');
    expect(swept).toEqual({ daily: 1, dests: 1 });
    expect(store.analytics.daily('2026-11-30', 'TA', 'DEV-A')).toBeUndefined();
  });

  it('raises one intel.endpoint alert per device and indicator for a listed IP, DNS name or file hash, without any detection', async () => {
    const listed = new Map([
      ['ip', new Set(['203.0.113.66'])],
      ['domain', new Set(['c2.evil.example'])],
      ['sha256', new Set(['ab'.repeat(32)])],
    ]);
    const intel: ThreatIntel = {
      has: (kind, value) => listed.get(kind)?.has(value.toLowerCase()) ?? false,
      reloadIfChanged: () => false,
      counts: () => ({ sha256: 1, domain: 1, ip: 1, url: 0 }),
      index: () => {
        throw new Error('not used');
      },
    };
    const core = new ShardCore({ store, index: 0, workers: 1, clock, analytics: new StreamingAnalytics({ store, clock, intel }) });
    core.recover();
    const events = [
      { ts: T0, k: 'net.conn', seq: 1, pg: '{p}', image: 'C:\\x.exe', rip: '203.0.113.66', rport: 8443 },
      { ts: T0 + 1000, k: 'net.conn', seq: 2, pg: '{p}', rip: '203.0.113.66', rport: 8443 },
      { ts: T0, k: 'net.dns', seq: 3, qname: 'C2.evil.example' },
      { ts: T0, k: 'file.create', seq: 4, path: 'C:\\Users\\a\\x.exe', sha256: 'AB'.repeat(32) },
      { ts: T0, k: 'net.conn', seq: 5, rip: '198.51.100.1' },
    ];
    core.processBatch(1, 'DEV-A', await commit(store, 1, 'DEV-A', events, T0), T0);
    // Another device hitting the same indicator gets its own alert.
    core.processBatch(2, 'DEV-B', await commit(store, 2, 'DEV-B', [{ ts: T0, k: 'net.conn', seq: 1, rip: '203.0.113.66' }], T0), T0);
    await core.flush();
    const alerts = [...store.opsAlerts.scan('TA')].filter((a) => a.kind === 'intel.endpoint');
    expect(alerts.map((a) => `${a.tmid} ${a.details.indicator} ${a.details.value}`).sort()).toEqual([
      'DEV-A domain C2.evil.example',
      'DEV-A ip 203.0.113.66',
      `DEV-A sha256 ${'AB'.repeat(32)}`,
      'DEV-B ip 203.0.113.66',
    ]);
    expect(alerts.find((a) => a.tmid === 'DEV-A' && a.details.indicator === 'ip')?.details).toMatchObject({ image: 'C:\\x.exe', rport: 8443, seq: 1 });
    expect(store.notify.feedAfter(0, 10).filter((f) => f.kind === 'intel.endpoint')).toHaveLength(4);
    // A replay of the same batches writes the same alert ids: still four.
    const again = new ShardCore({ store, index: 0, workers: 1, clock, analytics: new StreamingAnalytics({ store, clock, intel }) });
    again.recover();
    again.processBatch(1, 'DEV-A', await commit(store, 1, 'DEV-A', events, T0), T0);
    await again.flush();
    expect([...store.opsAlerts.scan('TA')].filter((a) => a.kind === 'intel.endpoint')).toHaveLength(4);
  });

  it('splits kind counts at midnight when one flush holds two days of a device', async () => {
    const core = shard();
    core.recover();
    core.processBatch(1, 'DEV-A', await commit(store, 1, 'DEV-A', [{ ts: T0, k: 'proc.start', seq: 1 }, { ts: T0, k: 'net.dns', seq: 2 }], T0), T0);
    core.processBatch(2, 'DEV-A', await commit(store, 2, 'DEV-A', [{ ts: T0 + DAY, k: 'proc.start', seq: 3 }], T0 + DAY), T0 + DAY);
    core.processBatch(3, 'DEV-A', await commit(store, 3, 'DEV-A', [{ ts: T0 + DAY, k: 'file.delete', seq: 4 }], T0 + DAY), T0 + DAY);
    await core.flush();
    expect(store.analytics.daily('2026-11-30', 'TA', 'DEV-A')).toMatchObject({ events: 2, kinds: { 'proc.start': 1, 'net.dns': 1 } });
    expect(store.analytics.daily('2026-12-01', 'TA', 'DEV-A')).toMatchObject({ events: 2, kinds: { 'proc.start': 1, 'file.delete': 1 }, fileDeletes: 1 });
    expect(store.analytics.daily('2026-12-01', 'TA', 'DEV-A')?.kinds['net.dns']).toBeUndefined();
  });

  it('raises one alert for 10 failed logons within 5 minutes, none for 9, and none again on replay', async () => {
    const core = shard();
    core.recover();
    // DEV-B: 9 failures spread over 5 minutes, then one more 6 minutes later: the window never holds 10.
    const slow = Array.from({ length: 9 }, (_, i) => failedLogon(T0 + i * 30_000)).concat([failedLogon(T0 + 6 * MIN)]);
    core.processBatch(1, 'DEV-B', await commit(store, 1, 'DEV-B', slow, T0), T0);
    // DEV-A: 12 failures within a minute: one alert (the window goes quiet after firing).
    const burst = Array.from({ length: 12 }, (_, i) => failedLogon(T0 + i * 5_000));
    core.processBatch(2, 'DEV-A', await commit(store, 2, 'DEV-A', burst, T0), T0);
    expect(core.hasUrgentWrites()).toBe(true);
    await core.flush();
    const alerts = [...store.opsAlerts.scan('TA')];
    expect(alerts).toMatchObject([{ kind: 'analytics.threshold', tmid: 'DEV-A', details: { ruleId: 'failed-logons', count: 10, windowMs: 5 * MIN } }]);
    expect(store.notify.feedAfter(0, 10)).toMatchObject([{ kind: 'analytics.threshold', tmid: 'DEV-A', opsAlertId: alerts[0]!.id }]);
    expect(store.analytics.daily('2026-11-30', 'TA', 'DEV-A')).toMatchObject({ failedLogons: 12, thresholdAlerts: 1 });

    // A crash after the flush: the next shard replays nothing already checkpointed.
    const again = shard();
    expect(again.recover()).toBe(0);
    await again.flush();
    expect(store.opsAlerts.count()).toBe(1);
  });

  it('follows a tenant’s own rules, and raises first-seen destinations only after learning', async () => {
    await store.analytics.putRules({
      supportId: 'TA',
      rules: [
        { id: 'deletes', title: '3 deletions in a minute', enabled: true, kind: 'file.delete', threshold: 3, windowMs: MIN },
        { id: 'new-net', title: 'new /16', enabled: true, kind: 'net.conn', firstSeen: 'net16', learnDays: 1 },
      ],
      updatedAt: 0,
      updatedBy: 't',
    });
    const core = shard();
    core.recover();
    const b1 = [
      { ts: T0, k: 'net.conn', seq: 1, rip: '203.0.113.45' },
      { ts: T0, k: 'file.delete', seq: 2 },
      { ts: T0 + 1, k: 'file.delete', seq: 3 },
      { ts: T0 + 2, k: 'file.delete', seq: 4 },
      // 10 failed logons: the tenant's rules replace the defaults.
      ...Array.from({ length: 10 }, (_, i) => failedLogon(T0 + i)),
    ];
    core.processBatch(1, 'DEV-A', await commit(store, 1, 'DEV-A', b1, T0), T0);
    const b2 = [
      { ts: T0 + 2 * DAY, k: 'net.conn', seq: 20, rip: '203.0.200.1' },
      { ts: T0 + 2 * DAY, k: 'net.conn', seq: 21, rip: '198.51.100.7' },
    ];
    core.processBatch(2, 'DEV-A', await commit(store, 2, 'DEV-A', b2, T0 + 2 * DAY), T0 + 2 * DAY);
    await core.flush();
    const alerts = [...store.opsAlerts.scan('TA')].map((a) => a.details.ruleId);
    expect(alerts.sort()).toEqual(['deletes', 'new-net']);
    expect([...store.opsAlerts.scan('TA', { kind: 'analytics.threshold' })].find((a) => a.details.ruleId === 'new-net')?.details).toMatchObject({ net16: '198.51.0.0/16' });
    expect(store.analytics.known('DEV-A', 'net16')?.values.sort()).toEqual(['198.51.0.0/16', '203.0.0.0/16']);
  });
});
