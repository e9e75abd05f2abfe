import { encode } from '@msgpack/msgpack';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createManualClock } from '../core/clock.js';
import type { TrailEvent } from '../core/contracts.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { alertIdFor, Correlator } from './correlator.js';
import { ShardCore } from './shard-core.js';
import { createSigmaRuleSource } from './sigma-rules.js';
import { SIGMA_DEDUP_WINDOW_MS, SigmaStage } from './sigma-stage.js';
import { createThreatIntel } from './intel/index.js';

const T0 = Date.UTC(2026, 10, 20, 1, 0, 0);
const WORD = '{22222222-0000-0000-0000-000000000001}';
const PWSH = '{22222222-0000-0000-0000-000000000002}';
const PAYLOAD = '{22222222-0000-0000-0000-000000000003}';
const RULE_ID = '5b7b1c3e-0000-4000-8000-00000000e1c0';
const WORD_IMAGE = 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE';
const PWSH_IMAGE = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';
const PAYLOAD_PATH = 'C:\\Users\\taro\\AppData\\Local\\Temp\\payload.exe';

/** A rule of our own: encoded PowerShell started by Word (the parent read through the resolver or the event's copy). */
const RULE = `title: Encoded PowerShell from Word
id: ${RULE_ID}
status: test
level: high
author: kiseki tests
tags:
  - attack.execution
  - attack.t1059.001
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\\powershell.exe'
    CommandLine|contains: ' -enc '
    ParentImage|endswith: '\\WINWORD.EXE'
  condition: selection
`;

let seq = 0;
function ev(k: string, fields: Record<string, unknown>, ts?: number): TrailEvent {
  seq++;
  return { ts: ts ?? T0 + seq * 1000, k, seq, ...fields } as TrailEvent;
}
const wordStart = () => ev('proc.start', { pg: WORD, pid: 10, image: WORD_IMAGE, cmd: 'WINWORD.EXE' });
const pwshStart = (pg = PWSH, ts?: number) =>
  ev('proc.start', { pg, pid: 11, ppg: WORD, pimage: WORD_IMAGE, image: PWSH_IMAGE, cmd: 'powershell.exe -nop -enc SQBFAFgA' }, ts);

interface Rig {
  dir: string;
  rulesDir: string;
  store: HotStore;
  tmid: string;
  lsn: number;
  clock: ReturnType<typeof createManualClock>;
  core: ShardCore;
  sigma: SigmaStage;
  /** Commits a batch to the log and has the shard process it (and flush unless told not to). */
  feed(events: TrailEvent[], flush?: boolean): Promise<number>;
  /** A new shard over the same store, as after a crash: recovers from the checkpoints. */
  restart(): Promise<void>;
}

let r: Rig;

async function rig(): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-sigma-stage-'));
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'encoded-from-word.yml'), RULE);
  const store = openHotStore({ dataDir: join(dir, 'data') });
  const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'Tenant One', now: T0 });
  const { device } = await store.devices.enroll(tenant, { computer: 'PC-0001', agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, T0);
  const clock = createManualClock(T0 + 3_600_000);
  const make = () => {
    const sigma = new SigmaStage({ store, clock });
    sigma.setMatcher(createSigmaRuleSource({ defaultPack: false, dir: rulesDir }).load(sigma.resolver).matcher);
    const correlator = new Correlator({ store, intel: createThreatIntel(undefined), clock, sigma });
    return { sigma, core: new ShardCore({ store, index: 0, workers: 1, correlator, clock }) };
  };
  const x: Rig = {
    dir,
    rulesDir,
    store,
    tmid: device.tmid,
    lsn: 0,
    clock,
    ...make(),
    async feed(events, flush = true) {
      const lsn = ++x.lsn;
      const bytes = encode(events);
      const id = lsn.toString(16).padStart(32, '0');
      const record = { tmid: x.tmid, id, sentAt: 0, recvAt: clock.now(), first: events[0]!.seq, last: events.at(-1)!.seq, n: events.length, z: compress(bytes) };
      await store.log.commitBatches([{ lsn, record }]);
      x.core.processBatch(lsn, x.tmid, bytes, record.recvAt);
      if (flush) await x.core.flush();
      return lsn;
    },
    async restart() {
      Object.assign(x, make());
      x.core.recover();
      await x.core.flush();
    },
  };
  x.core.recover();
  return x;
}

beforeEach(async () => {
  seq = 0;
  r = await rig();
});
afterEach(async () => {
  await r.store.close();
  rmSync(r.dir, { recursive: true, force: true });
});

function stored() {
  return [...r.store.detections.scanTenant('T1')];
}

describe('Sigma in the shard', () => {
  it('a matching trail event yields exactly one stored detection, with rule, level, severity, tags, event, device and process', async () => {
    await r.feed([wordStart(), pwshStart(), ev('file.read', { pg: PWSH, path: 'C:\\x.txt' })]);
    const all = stored();
    expect(all).toHaveLength(1);
    const d = all[0]!;
    expect(d).toMatchObject({
      supportId: 'T1',
      tmid: r.tmid,
      computer: 'PC-0001',
      ruleId: RULE_ID,
      title: 'Encoded PowerShell from Word',
      level: 'high',
      severity: 'Serious',
      tags: ['attack.execution', 'attack.t1059.001'],
      author: 'kiseki tests',
      pg: PWSH,
      image: PWSH_IMAGE,
      event: { tmid: r.tmid, seq: 2, k: 'proc.start' },
      repeats: 0,
    });
    expect(r.store.detections.ofDevice(r.tmid, 0).map((x) => x.id)).toEqual([d.id]);
  });

  it('a replay after a crash stores no detection twice, and one lost before its flush exactly once', async () => {
    await r.feed([wordStart(), pwshStart()]);
    // Processed, never flushed: the crash loses it with the checkpoint.
    await r.feed([pwshStart('{22222222-0000-0000-0000-0000000000aa}')], false);
    await r.restart();
    const all = stored();
    expect(all.map((d) => d.pg).sort()).toEqual([PWSH, '{22222222-0000-0000-0000-0000000000aa}'].sort());
    await r.restart();
    expect(stored()).toHaveLength(2);
    expect(r.store.detections.count()).toBe(2);
  });

  it('deduplicates per device, rule and process for 72 h: later hits are repeats of the first', async () => {
    await r.feed([wordStart(), pwshStart(PWSH, T0 + 10_000)]);
    await r.feed([pwshStart(PWSH, T0 + 20_000)]);
    await r.feed([pwshStart(PWSH, T0 + 10_000 + SIGMA_DEDUP_WINDOW_MS - 1)]);
    let all = stored();
    expect(all).toHaveLength(1);
    expect(all[0]!.repeats).toBe(2);
    expect(all[0]!.lastRepeatAt).toBe(T0 + 10_000 + SIGMA_DEDUP_WINDOW_MS - 1);
    // Past the window: a new detection.
    await r.feed([pwshStart(PWSH, T0 + 10_000 + SIGMA_DEDUP_WINDOW_MS + 1)]);
    all = stored();
    expect(all).toHaveLength(2);
    // Another process of the same device is a detection of its own.
    await r.feed([pwshStart('{22222222-0000-0000-0000-0000000000bb}', T0 + 30_000)]);
    expect(stored()).toHaveLength(3);
  });

  it('counts every repeat once whether hits share a flush or not, and stores the last count', async () => {
    // First detection and two repeats in one batch, two more repeats in an unflushed batch, then a flush.
    await r.feed([wordStart(), pwshStart(PWSH, T0 + 10_000), pwshStart(PWSH, T0 + 11_000), pwshStart(PWSH, T0 + 12_000)], false);
    await r.feed([pwshStart(PWSH, T0 + 13_000), pwshStart(PWSH, T0 + 14_000)], false);
    await r.core.flush();
    let all = stored();
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ repeats: 4, lastRepeatAt: T0 + 14_000 });
    // A flush captured the detection: a repeat after it changes a copy, and the next flush stores it.
    await r.feed([pwshStart(PWSH, T0 + 15_000)]);
    all = stored();
    expect(all[0]).toMatchObject({ repeats: 5, lastRepeatAt: T0 + 15_000 });
    expect(r.sigma.stats).toMatchObject({ detections: 1, repeats: 5 });
  });

  it('repeats after their first detection was flushed read neither it nor its dedup entry back from LMDB, and still count right across flushes and a restart', async () => {
    await r.feed([wordStart(), pwshStart(PWSH, T0 + 10_000)]);
    const reads = { get: 0, dedup: 0 };
    const { get, dedup } = r.store.detections;
    r.store.detections.get = (id) => (reads.get++, get(id));
    r.store.detections.dedup = (...a) => (reads.dedup++, dedup(...a));
    for (let i = 1; i <= 3; i++) await r.feed([pwshStart(PWSH, T0 + 10_000 + i * 1000)]);
    expect(reads).toEqual({ get: 0, dedup: 0 });
    expect(stored()[0]).toMatchObject({ repeats: 3, lastRepeatAt: T0 + 13_000 });
    // A new shard (after a crash) knows nothing in memory: it reads LMDB once, then counts on from what is stored.
    await r.restart();
    await r.feed([pwshStart(PWSH, T0 + 14_000)]);
    await r.feed([pwshStart(PWSH, T0 + 15_000)]);
    expect(reads.dedup).toBe(1);
    expect(stored()).toHaveLength(1);
    expect(stored()[0]).toMatchObject({ repeats: 5, lastRepeatAt: T0 + 15_000 });
  });

  it("applies a tenant's settings: the pack off, or one rule off, stores nothing", async () => {
    await r.store.detections.setSettings('T1', { enabled: false, disabledRules: [] });
    r.sigma.refreshSettings();
    await r.feed([wordStart(), pwshStart()]);
    expect(stored()).toHaveLength(0);
    await r.store.detections.setSettings('T1', { enabled: true, disabledRules: [RULE_ID] });
    r.sigma.refreshSettings();
    await r.feed([pwshStart('{22222222-0000-0000-0000-0000000000cc}')]);
    expect(stored()).toHaveLength(0);
    expect(r.sigma.stats.disabled).toBe(1);
    await r.store.detections.setSettings('T1', { enabled: true, disabledRules: [] });
    r.sigma.refreshSettings();
    await r.feed([pwshStart('{22222222-0000-0000-0000-0000000000dd}')]);
    expect(stored()).toHaveLength(1);
  });

  it('the quick report of a detection whose process tree holds a Sigma hit lists it under rules that fired', async () => {
    const start = pwshStart();
    const detect = ev('av.detect', { pg: PAYLOAD, engine: 'Defender', threat: 'Trojan:Win32/X', path: PAYLOAD_PATH, action: 'quarantined' });
    await r.feed([
      wordStart(),
      start,
      ev('file.create', { pg: PWSH, path: PAYLOAD_PATH, size: 10 }),
      ev('proc.start', { pg: PAYLOAD, pid: 12, ppg: PWSH, pimage: PWSH_IMAGE, image: PAYLOAD_PATH, cmd: PAYLOAD_PATH }),
      detect,
    ]);
    const view = r.store.alerts.view(alertIdFor(r.tmid, detect.seq));
    const report = view!.revisions.at(-1)!;
    expect(report.sigma).toHaveLength(1);
    expect(report.sigma![0]).toMatchObject({ ruleId: RULE_ID, severity: 'Serious', pg: PWSH, event: { seq: start.seq } });
    expect(report.sigma![0]!.detectionId).toBe(stored()[0]!.id);
  });

  it('a report whose tree the hit does not touch lists no rule', async () => {
    const other = '{22222222-0000-0000-0000-0000000000ee}';
    const detect = ev('av.detect', { pg: other, engine: 'Defender', threat: 'X', path: 'C:\\other.exe', action: 'quarantined' });
    await r.feed([wordStart(), pwshStart(), ev('proc.start', { pg: other, pid: 13, image: 'C:\\other.exe', cmd: 'other.exe' }), detect]);
    expect(stored()).toHaveLength(1);
    const report = r.store.alerts.view(alertIdFor(r.tmid, detect.seq))!.revisions.at(-1)!;
    expect(report.sigma).toEqual([]);
  });
});

describe('createSigmaRuleSource', () => {
  it('sees a rule file added, changed or removed, and loads the new set', async () => {
    const source = createSigmaRuleSource({ defaultPack: false, dir: r.rulesDir });
    const stage = new SigmaStage({ store: r.store, clock: r.clock });
    expect(source.load(stage.resolver).rules.map((x) => x.info.id)).toEqual([RULE_ID]);
    expect(source.changed()).toBe(false);
    const second = RULE.replace(RULE_ID, '5b7b1c3e-0000-4000-8000-00000000e1c1').replace('Encoded PowerShell from Word', 'Second');
    writeFileSync(join(r.rulesDir, 'second.yml'), second);
    expect(source.changed()).toBe(true);
    expect(source.changed()).toBe(false);
    expect(source.load(stage.resolver).rules).toHaveLength(2);
    rmSync(join(r.rulesDir, 'second.yml'));
    expect(source.changed()).toBe(true);
    expect(source.load(stage.resolver).rules).toHaveLength(1);
  });

  it('with the default pack on, loads its rules besides the directory', () => {
    const stage = new SigmaStage({ store: r.store, clock: r.clock });
    const loaded = createSigmaRuleSource({ defaultPack: true, dir: r.rulesDir }).load(stage.resolver);
    expect(loaded.rules.length).toBeGreaterThan(1);
    expect(loaded.rules.some((x) => x.info.id === RULE_ID)).toBe(true);
  });

  it('watches the directory beside the default pack (the pack itself changes only with the program)', () => {
    const stage = new SigmaStage({ store: r.store, clock: r.clock });
    const packOnly = createSigmaRuleSource({ defaultPack: true });
    const both = createSigmaRuleSource({ defaultPack: true, dir: r.rulesDir });
    const before = both.load(stage.resolver).rules.length;
    expect(packOnly.changed()).toBe(false);
    writeFileSync(join(r.rulesDir, 'second.yml'), RULE.replace(RULE_ID, '5b7b1c3e-0000-4000-8000-00000000e1c2').replace('Encoded PowerShell from Word', 'Second'));
    expect(both.changed()).toBe(true);
    expect(both.load(stage.resolver).rules).toHaveLength(before + 1);
    expect(packOnly.changed()).toBe(false);
  });
});
