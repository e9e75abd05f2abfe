import { encode } from '@msgpack/msgpack';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createManualClock } from '../core/clock.js';
import type { QuickReport, TrailEvent } from '../core/contracts.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { alertIdFor, Correlator } from './correlator.js';
import { createThreatIntel } from './intel/index.js';
import { PrevalenceStage } from './prevalence-stage.js';
import { renderReportText } from './report-text.js';
import { ShardCore } from './shard-core.js';

const DAY = 24 * 3600 * 1000;
const T0 = Date.UTC(2026, 10, 20, 1, 0, 0);
const SHA = 'c0ffee'.padEnd(64, '7');
const SETUP = 'C:\\Users\\taro\\Downloads\\TeamsSetup.exe';
const EXPLORER = '{11111111-0000-0000-0000-000000000001}';
const CHROME = '{11111111-0000-0000-0000-000000000002}';
const RUN = '{11111111-0000-0000-0000-000000000003}';
const CHILD = '{11111111-0000-0000-0000-000000000004}';
const MS = { sig: 'trusted', signer: 'Microsoft Corporation' };

/** One tenant, eight devices, one shard (real ShardCore, Correlator and LMDB). */
async function fleetRig() {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-prevalence-'));
  const store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
  const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'Tenant One', now: T0 - 60 * DAY });
  const tmids: string[] = [];
  for (let i = 0; i < 8; i++) tmids.push((await store.devices.enroll(tenant, { computer: `PC-${i}`, agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, T0 - 60 * DAY)).device.tmid);
  const clock = createManualClock(T0 + 3_600_000);
  const prevalence = new PrevalenceStage({ store });
  const correlator = new Correlator({ store, intel: createThreatIntel(undefined), clock, prevalence });
  const core = new ShardCore({ store, index: 0, workers: 1, correlator, clock });
  core.recover();
  const seqs = new Map<string, number>();
  let lsn = 0;
  return {
    dir,
    store,
    tmids,
    prevalence,
    /** Commits one batch of a device to the log and has the shard process and flush it; events get the device's next seq numbers. */
    async feed(tmid: string, events: Omit<TrailEvent, 'seq'>[]): Promise<TrailEvent[]> {
      let seq = seqs.get(tmid) ?? 0;
      const withSeq = events.map((e) => ({ ...e, seq: ++seq }) as TrailEvent);
      seqs.set(tmid, seq);
      const bytes = encode(withSeq);
      const id = (++lsn).toString(16).padStart(32, '0');
      const record = { tmid, id, sentAt: 0, recvAt: clock.now(), first: withSeq[0]!.seq, last: seq, n: withSeq.length, z: compress(bytes) };
      await store.log.commitBatches([{ lsn, record }]);
      core.processBatch(lsn, tmid, bytes, record.recvAt);
      await core.flush();
      return withSeq;
    },
  };
}
type FleetRig = Awaited<ReturnType<typeof fleetRig>>;

/** A Microsoft-signed installer a browser downloaded, run by the user: gray on its own (downloaded, user folder). */
function installerRun(ts: number, extra: (ts: number) => Omit<TrailEvent, 'seq'>[] = () => []): Omit<TrailEvent, 'seq'>[] {
  return [
    { ts, k: 'proc.start', pg: EXPLORER, image: 'C:\\Windows\\explorer.exe', cmd: 'C:\\Windows\\explorer.exe', ...MS },
    { ts: ts + 1000, k: 'proc.start', pg: CHROME, ppg: EXPLORER, image: 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', cmd: 'chrome.exe', sig: 'trusted', signer: 'Google LLC' },
    { ts: ts + 2000, k: 'file.create', pg: CHROME, path: SETUP, sha256: SHA, size: 1000, vol: 'fixed', originUrl: 'https://downloads.example.com/TeamsSetup.exe', zone: 3 },
    { ts: ts + 3000, k: 'proc.start', pg: RUN, ppg: EXPLORER, pimage: 'C:\\Windows\\explorer.exe', image: SETUP, cmd: `"${SETUP}"`, sha256: SHA, ...MS },
    ...extra(ts + 4000),
  ];
}

function detect(ts: number): Omit<TrailEvent, 'seq'> {
  return { ts, k: 'av.detect', pg: RUN, engine: 'E', threat: 'PUA:Win32/Bundler', path: SETUP, sha256: SHA, action: 'allowed' };
}

async function detectOn(r: FleetRig, tmid: string, extra?: (ts: number) => Omit<TrailEvent, 'seq'>[]): Promise<QuickReport> {
  const events = await r.feed(tmid, [...installerRun(T0, extra), detect(T0 + 60_000)]);
  const alert = r.store.alerts.view(alertIdFor(tmid, events.at(-1)!.seq))!;
  return alert.revisions[0]!;
}

/** LSASS opened with full rights and the Security log cleared: black whatever else holds. */
const dumpsLsass = (ts: number): Omit<TrailEvent, 'seq'>[] => [
  { ts, k: 'proc.access', pg: RUN, tpg: '{22222222-0000-0000-0000-0000000000aa}', timage: 'C:\\Windows\\system32\\lsass.exe', access: '0x1FFFFF' },
  { ts: ts + 1000, k: 'proc.start', pg: CHILD, ppg: RUN, pimage: SETUP, image: 'C:\\Windows\\System32\\wevtutil.exe', cmd: 'wevtutil cl Security', ...MS },
];

const factor = (report: QuickReport, id: string) => report.rules.find((h) => h.ruleId === id);

describe('fleet prevalence through a shard', () => {
  let r: FleetRig;
  beforeEach(async () => {
    r = await fleetRig();
  });
  afterEach(async () => {
    await r.store.close();
    rmSync(r.dir, { recursive: true, force: true });
  });

  /** Seven other devices ran the installer 30 days before, and again 10 days before. */
  async function spread(): Promise<void> {
    for (const tmid of r.tmids.slice(1)) {
      await r.feed(tmid, installerRun(T0 - 30 * DAY));
      await r.feed(tmid, installerRun(T0 - 10 * DAY));
    }
  }

  it('records devices, first and last seen and the signer, once per device and day', async () => {
    await spread();
    // 7 devices × 2 days × (the download, then the signed start: a sighting with the signature is still news that day).
    expect(r.prevalence.stats.sightings).toBe(28);
    const rec = r.store.prevalence.get('T1', SHA)!;
    expect(rec.devices.map((d) => d[0]).sort()).toEqual(r.tmids.slice(1).sort());
    expect(rec).toMatchObject({ saturated: false, firstSeen: T0 - 30 * DAY + 2000, lastSeen: T0 - 10 * DAY + 3000, signer: 'Microsoft Corporation', sig: 'trusted' });
    // The same device and day again: no sighting, nothing to write.
    await r.feed(r.tmids[1]!, installerRun(T0 - 10 * DAY + 60_000));
    expect(r.prevalence.stats.sightings).toBe(28);
    expect(r.prevalence.hasPendingWrites()).toBe(false);
  });

  it('keeps no cache for a device until one of its batches has a file hash to record', async () => {
    const tmid = r.tmids[0]!;
    await r.feed(tmid, [
      { ts: T0, k: 'net.conn', pg: RUN, lip: '10.0.0.5', lport: 50000, rip: '203.0.113.9', rport: 443 },
      { ts: T0, k: 'file.write', pg: CHROME, path: 'C:\\Users\\taro\\notes.txt', sha256: 'ab'.repeat(32) },
    ]);
    expect(r.prevalence.cachedDevices()).toBe(0);
    await r.feed(tmid, installerRun(T0));
    expect(r.prevalence.cachedDevices()).toBe(1);
    // The same file again that day: remembered, so nothing new to record.
    const before = r.prevalence.stats.sightings;
    await r.feed(tmid, installerRun(T0 + 60_000));
    expect(r.prevalence.stats.sightings).toBe(before);
  });

  it('counts written files only when they can run, and leaves malformed hashes out', async () => {
    const tmid = r.tmids[0]!;
    const txt = 'ab'.repeat(32);
    const dll = 'cd'.repeat(32);
    await r.feed(tmid, [
      { ts: T0, k: 'file.write', pg: CHROME, path: 'C:\\Users\\taro\\notes.txt', sha256: txt },
      { ts: T0, k: 'file.create', pg: CHROME, path: 'C:\\Users\\taro\\x.DLL', sha256: dll.toUpperCase() },
      { ts: T0, k: 'proc.start', pg: RUN, image: 'C:\\x.exe', sha256: 'not-a-hash' },
      { ts: T0, k: 'net.conn', pg: RUN, sha256: SHA },
    ]);
    expect(r.store.prevalence.get('T1', txt)).toBeUndefined();
    expect(r.store.prevalence.get('T1', SHA)).toBeUndefined();
    expect(r.store.prevalence.get('T1', dll)).toMatchObject({ devices: [[tmid, T0]] });
    expect(r.prevalence.stats).toEqual({ sightings: 1, writes: 1 });
  });

  it('a Microsoft-signed file seen on 8 devices for 30 days, with benign behaviour, is white; on one device it stays gray, new to the fleet', async () => {
    const alone = await detectOn(r, r.tmids[0]!);
    expect(alone.verdict).toBe('gray');
    expect(factor(alone, 'prevalence.new-to-fleet')).toMatchObject({ weight: 0, group: 'prevalence', detail: 'first seen on this device 2026-11-20' });
    expect(factor(alone, 'prevalence.trusted')).toBeUndefined();

    await spread();
    // A device that had not had it yet: now the file is on 8 devices, first seen 30 days before.
    const fresh = await r.store.devices.enroll(r.store.tenants.get('T1')!, { computer: 'PC-NEW', agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, T0);
    const prevalent = await detectOn(r, fresh.device.tmid);
    expect(prevalent.verdict).toBe('white');
    expect(factor(prevalent, 'prevalence.trusted')).toMatchObject({
      weight: -40,
      detail: 'seen on 9 devices of the tenant since 2026-10-21 (30 days before the detection), signed by Microsoft Corporation',
    });
    expect(factor(prevalent, 'prevalence.trusted')!.evidence).toHaveLength(1);
    // `kiseki report` lists it with the other factors, its evidence in words.
    const text = (rep: QuickReport) => renderReportText(r.store.alerts.get(rep.alertId)!, rep, []);
    expect(text(prevalent)).toContain('prevalence.trusted (-40): The file is signed by a trusted signer and was seen on many of the tenant\'s devices for weeks before the detection. seen on 9 devices');
    expect(text(alone)).toContain('prevalence.new-to-fleet (note, no weight): The file is new to the fleet');
    // Every other factor as on the lone device.
    const others = (rep: QuickReport) => rep.rules.filter((h) => h.group !== 'prevalence').map((h) => h.ruleId).sort();
    expect(others(prevalent)).toEqual(others(alone));
  });

  it('the same prevalent file opening LSASS and clearing the event log stays black', async () => {
    const alone = await detectOn(r, r.tmids[0]!, dumpsLsass);
    expect(alone.verdict).toBe('black');
    await spread();
    const fresh = await r.store.devices.enroll(r.store.tenants.get('T1')!, { computer: 'PC-NEW', agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, T0);
    const prevalent = await detectOn(r, fresh.device.tmid, dumpsLsass);
    expect(prevalent.verdict).toBe('black');
    expect(factor(prevalent, 'behaviour.credential-access')).toBeDefined();
    expect(factor(prevalent, 'prevalence.trusted')).toMatchObject({ weight: 0, detail: expect.stringContaining('not weighed: malicious signs stand') });
    expect(prevalent.score).toBe(alone.score);
  });
});
