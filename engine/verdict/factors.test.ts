import { describe, expect, it } from 'vitest';
import type { EvidenceItem, ReportSection, ReportSectionId, RuleHit, SigmaReportHit } from '../../core/contracts.js';
import { verdictFactors, type FactorInput } from './factors.js';
import { decideVerdict } from './model.js';

let seq = 0;
const it_ = (k: string, event: Record<string, unknown>, note?: string): EvidenceItem => {
  seq++;
  return { ref: { tmid: 'T', seq, ts: 1_000_000 + seq * 1000, k }, event: { k, ...event }, ...(note === undefined ? {} : { note }) };
};
const FILE_REF = { tmid: 'T', seq: 999, ts: 0, k: 'av.detect' };

function input(sections: Partial<Record<ReportSectionId, EvidenceItem[]>>, over: Partial<FactorInput> = {}): FactorInput {
  const ids: ReportSectionId[] = ['origin', 'chain', 'descendants', 'filesWritten', 'registry', 'filesRead', 'network', 'attributes', 'processAccess', 'imageLoads', 'pipes'];
  const list: ReportSection[] = ids.map((id) => ({ id, title: id, summary: '', items: sections[id] ?? [] }));
  return { sections: list, path: 'C:\\Users\\a\\AppData\\Local\\Temp\\x.exe', executed: true, how: 'process', originKind: 'unknown', sig: undefined, signer: undefined, originalFileName: undefined, sigma: undefined, fileRef: FILE_REF, motwDeleted: undefined, ...over };
}
const ids = (hits: RuleHit[]) => hits.map((h) => h.ruleId).sort();
const PG = '{p}';
const start = (image: string, cmd: string, extra: Record<string, unknown> = {}) => it_('proc.start', { pg: PG, image, cmd, ...extra });

describe('verdict factors', () => {
  it('credential access: LSASS opened for reading, comsvcs MiniDump, a hive copy', () => {
    const lsass = verdictFactors(input({ chain: [start('C:\\t\\x.exe', 'x.exe')], processAccess: [it_('proc.access', { pg: PG, timage: 'C:\\Windows\\system32\\lsass.exe', access: '0x1410' })] }));
    expect(lsass.find((h) => h.ruleId === 'behaviour.credential-access')?.detail).toContain('PROCESS_VM_READ');
    expect(ids(verdictFactors(input({ chain: [start('C:\\t\\x.exe', 'x')], descendants: [start('C:\\W\\rundll32.exe', 'rundll32.exe C:\\windows\\System32\\comsvcs.dll, MiniDump 624 C:\\t\\l.dmp full')] })))).toContain(
      'behaviour.credential-access',
    );
    expect(ids(verdictFactors(input({}, { path: 'C:\\ProgramData\\SAM', executed: false, how: undefined })))).toContain('behaviour.credential-access');
    // Querying LSASS's name only is no credential access.
    expect(ids(verdictFactors(input({ chain: [start('C:\\t\\x.exe', 'x')], processAccess: [it_('proc.access', { pg: PG, timage: 'C:\\Windows\\system32\\lsass.exe', access: '0x1000' })] })))).not.toContain(
      'behaviour.credential-access',
    );
  });

  it('defence tampering: the event log cleared, Defender disabled by registry', () => {
    expect(ids(verdictFactors(input({ chain: [start('C:\\t\\x.exe', 'x')], descendants: [start('C:\\W\\wevtutil.exe', '"wevtutil.exe" cl Security')] })))).toContain('behaviour.defence-tampering');
    const reg = it_('reg.set', { key: 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender', value: 'DisableAntiSpyware', data: 'DWORD (0x00000001)' });
    expect(ids(verdictFactors(input({ registry: [reg] })))).toContain('behaviour.defence-tampering');
  });

  it('persistence and fileless payloads: a Run value that runs an encoded PowerShell, a user COM override', () => {
    const run = it_('reg.set', { key: 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run', value: 'Updater', data: 'powershell -nop -enc SQBFAFgA' });
    expect(ids(verdictFactors(input({ registry: [run] })))).toEqual(expect.arrayContaining(['behaviour.persistence', 'behaviour.fileless-payload']));
    const com = it_('reg.set', { key: 'HKU\\S-1-5-21-1_Classes\\CLSID\\{BCDE0395-E52F-467C-8E3D-C4579291692E}\\InprocServer32', value: '(Default)', data: 'C:\\ProgramData\\demo.dll' });
    expect(ids(verdictFactors(input({ registry: [com] })))).toContain('behaviour.persistence');
    // The kernel's background activity records are no service.
    const bam = it_('reg.set', { key: 'HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\S-1-5-21-1', value: 'x.exe', data: 'Binary Data' });
    expect(ids(verdictFactors(input({ registry: [bam] })))).not.toContain('behaviour.persistence');
  });

  it('a DLL or script run by a LOLBin from a user-writable folder counts like an EXE such a host started there', () => {
    const host = start('C:\\Windows\\SysWOW64\\rundll32.exe', 'rundll32.exe C:\\PROGRA~3\\DATAUS~1.DLL f8755');
    const hosted = (path: string) => ids(verdictFactors(input({ chain: [host] }, { path, how: 'hosted' })));
    expect(hosted('C:\\ProgramData\\datausage.dll')).toContain('chain.script-host-parent');
    // The same host running an installed DLL vouches for nothing either way.
    expect(hosted('C:\\Program Files\\Vendor\\tool.dll')).not.toContain('chain.script-host-parent');
    const explorer = start('C:\\Windows\\explorer.exe', 'explorer.exe');
    expect(ids(verdictFactors(input({ chain: [explorer] }, { path: 'C:\\ProgramData\\x.dll', how: 'hosted' })))).not.toContain('chain.script-host-parent');
  });

  it('C2: a nameless IP on an unusual port, and a beacon', () => {
    const c2 = it_('net.conn', { pg: PG, dir: 'out', rip: '198.51.100.20', rport: 8443 });
    expect(verdictFactors(input({ network: [c2] })).find((h) => h.ruleId === 'behaviour.c2-unusual-port')?.detail).toBe('198.51.100.20:8443');
    const named = it_('net.conn', { pg: PG, dir: 'out', rip: '198.51.100.21', rport: 8443 }, '198.51.100.21 is cdn.example.com');
    expect(ids(verdictFactors(input({ network: [named] })))).not.toContain('behaviour.c2-unusual-port');
    const beacon = Array.from({ length: 6 }, (_, i) => ({ ...it_('net.conn', { pg: PG, dir: 'out', rip: '10.10.10.5', rport: 80 }), ref: { tmid: 'T', seq: 500 + i, ts: i * 5000, k: 'net.conn' } }));
    expect(ids(verdictFactors(input({ network: beacon })))).toContain('behaviour.beaconing');
  });

  it('injection, side-loading, timestomping, self-deletion, drops-and-runs', () => {
    const thread = it_('proc.remote_thread', { pg: PG, timage: 'C:\\Windows\\explorer.exe' });
    const side = it_('image.load', { pg: PG, path: 'C:\\Users\\a\\AppData\\Roaming\\v\\version.dll', image: 'C:\\Users\\a\\AppData\\Roaming\\v\\app.exe' }, 'side-loading: unsigned DLL from a user-writable folder loaded by the signed app.exe');
    const stomp = it_('file.time', { pg: PG, path: 'C:\\Users\\a\\x.dll' });
    const stompCache = it_('file.time', { pg: PG, path: 'C:\\Users\\a\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\CustomDestinations\\X.temp' });
    const self = it_('file.delete', { pg: PG, path: 'C:\\Users\\a\\AppData\\Local\\Temp\\x.exe' });
    const drop = it_('file.create', { pg: PG, path: 'C:\\t\\go.bat' });
    const ran = start('C:\\Windows\\System32\\cmd.exe', 'cmd /c C:\\t\\go.bat');
    const hits = ids(verdictFactors(input({ chain: [start('C:\\Users\\a\\AppData\\Local\\Temp\\x.exe', 'x.exe')], descendants: [ran], processAccess: [thread], imageLoads: [side], filesWritten: [stomp, stompCache, self, drop] })));
    expect(hits).toEqual(expect.arrayContaining(['behaviour.injection', 'behaviour.side-loading', 'behaviour.timestomp', 'behaviour.self-delete', 'behaviour.drops-and-runs']));
    const stompHit = verdictFactors(input({ filesWritten: [stompCache] }));
    expect(ids(stompHit)).not.toContain('behaviour.timestomp');
  });

  it('provenance: user-writable and unsigned only once it ran; masquerading by name or version resource', () => {
    expect(ids(verdictFactors(input({}, { sig: 'unsigned' })))).toEqual(['provenance.unsigned', 'provenance.user-writable']);
    expect(ids(verdictFactors(input({}, { sig: 'unsigned', executed: false, how: undefined })))).toEqual([]);
    expect(verdictFactors(input({}, { path: 'C:\\Users\\a\\svchost.exe' })).find((h) => h.ruleId === 'provenance.masquerading')?.detail).toBe('svchost.exe outside the Windows folders');
    expect(verdictFactors(input({}, { originalFileName: 'CALC.EXE' })).find((h) => h.ruleId === 'provenance.masquerading')?.detail).toBe('x.exe is calc.exe renamed');
  });

  it('signer: Microsoft-signed and installed with an installed parent weighs white; an abused script host does not', () => {
    const chain = [it_('proc.start', { pg: '{q}', image: 'C:\\Program Files\\Agent\\host.exe', cmd: 'host.exe' }), start('C:\\Windows\\System32\\cscript.exe', 'cscript /nologo x.vbs', { pimage: 'C:\\Program Files\\Agent\\host.exe' })];
    const white = verdictFactors(input({ chain }, { path: 'C:\\Windows\\System32\\cscript.exe', sig: 'trusted', signer: 'Microsoft Windows' }));
    expect(ids(white)).toEqual(['chain.signed-parent', 'signer.installed', 'signer.microsoft']);
    const abused = [start('C:\\Windows\\System32\\mshta.exe', 'mshta vbscript:Execute("x")', { pimage: 'C:\\Windows\\System32\\cmd.exe' })];
    expect(ids(verdictFactors(input({ chain: abused }, { path: 'C:\\Windows\\System32\\mshta.exe', sig: 'trusted', signer: 'Microsoft Windows' })))).toEqual([]);
  });

  it('Sigma detections weigh by level, a little more per further distinct rule', () => {
    const hit = (ruleId: string, level: string): SigmaReportHit => ({ detectionId: ruleId, ruleId, title: ruleId, level, severity: 'Serious', tags: [], pg: PG, image: '', event: FILE_REF });
    const hits = verdictFactors(input({}, { executed: false, how: undefined, sigma: [hit('a', 'high'), hit('b', 'high'), hit('a', 'high'), hit('c', 'critical'), hit('d', 'informational')] }));
    expect(hits.map((h) => [h.ruleId, h.weight])).toEqual([
      ['sigma.critical', 40],
      ['sigma.high', 30],
      ['sigma.low', 3],
    ]);
  });
});

describe('fleet prevalence factors', () => {
  const DAY = 24 * 3600 * 1000;
  const AT = Date.UTC(2026, 10, 20);
  const fleet = (devices: number, days: number, over: Partial<NonNullable<FactorInput['prevalence']>> = {}): NonNullable<FactorInput['prevalence']> => ({
    devices,
    saturated: false,
    otherDevices: devices - 1,
    firstSeen: AT - days * DAY,
    signer: undefined,
    sig: undefined,
    minDevices: 5,
    minDays: 14,
    detectedAt: AT,
    ...over,
  });
  const ms = { sig: 'trusted', signer: 'Microsoft Corporation' };
  const hit = (hits: RuleHit[], id: string) => hits.find((h) => h.ruleId === id);
  it.each([
    ['Microsoft-signed on 8 devices for 30 days', fleet(8, 30), ms, 'prevalence.trusted', -40],
    ['the signature known only from other devices', fleet(8, 30, { sig: 'trusted', signer: 'Microsoft Windows' }), {}, 'prevalence.trusted', -40],
    ['unsigned on 8 devices for 30 days: mitigating only', fleet(8, 30), { sig: 'unsigned' }, 'prevalence.common', -15],
    ['signed by another vendor', fleet(8, 30), { sig: 'trusted', signer: 'Vendor Inc.' }, 'prevalence.common', -15],
    ['on 4 devices: not prevalent', fleet(4, 30), ms, undefined, 0],
    ['for 13 days: not prevalent yet', fleet(8, 13), ms, undefined, 0],
    ['on this device only', fleet(1, 30), ms, 'prevalence.new-to-fleet', 0],
    ['never reported with its hash', fleet(0, 0, { firstSeen: undefined, otherDevices: 0 }), ms, 'prevalence.new-to-fleet', 0],
  ])('%s', (_name, prevalence, sig, id, weight) => {
    const hits = verdictFactors(input({}, { prevalence, ...sig }));
    const p = hits.filter((h) => h.group === 'prevalence');
    expect(p.map((h) => h.ruleId)).toEqual(id === undefined ? [] : [id]);
    if (id !== undefined) expect(p[0]!.weight).toBe(weight);
  });
  it('lists the evidence in words: devices and first seen', () => {
    const hits = verdictFactors(input({}, { prevalence: fleet(8, 30, { saturated: true }), ...ms }));
    expect(hit(hits, 'prevalence.trusted')?.detail).toBe('seen on 8 or more devices of the tenant since 2026-10-21 (30 days before the detection), signed by Microsoft Corporation');
    expect(hit(verdictFactors(input({}, { prevalence: fleet(1, 2), ...ms })), 'prevalence.new-to-fleet')?.detail).toBe('first seen on this device 2026-11-18');
  });
  it('an abused script host gets no prevalence factor: it is on every device', () => {
    const chain = [start('C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', 'powershell.exe -nop -enc SQBFAFgA')];
    const hits = verdictFactors(input({ chain }, { path: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', prevalence: fleet(50, 300), ...ms }));
    expect(hits.filter((h) => h.group === 'prevalence')).toEqual([]);
  });
});

describe('decideVerdict', () => {
  const T = { black: 60, white: -40, confidentWhite: -50 };
  const f = (ruleId: string, weight: number, group = ruleId.slice(0, ruleId.indexOf('.'))): RuleHit => ({ ruleId, description: '', weight, group, evidence: [] });
  it('black needs the file to have run, intel or a behaviour; thin evidence stays gray with low confidence', () => {
    expect(decideVerdict(T, [], [f('sigma.critical', 40), f('sigma.high', 25)], false).verdict).toBe('gray');
    expect(decideVerdict(T, [], [f('sigma.critical', 40), f('sigma.high', 25)], true).verdict).toBe('black');
    expect(decideVerdict(T, [], [f('behaviour.credential-access', 50), f('provenance.x', 10)], false)).toMatchObject({ verdict: 'black', confidence: { level: 'medium' } });
    expect(decideVerdict(T, [{ ruleId: 'origin.internet', description: '', weight: 15, evidence: [] }], [], false)).toMatchObject({ verdict: 'gray', confidence: { level: 'low' } });
  });
  it('white is refused while a behaviour or a critical Sigma detection stands', () => {
    expect(decideVerdict(T, [], [f('signer.microsoft', -60)], true)).toMatchObject({ verdict: 'white', confidence: { level: 'high' } });
    expect(decideVerdict(T, [], [f('signer.microsoft', -90), f('behaviour.injection', 40)], true).verdict).toBe('gray');
    expect(decideVerdict(T, [], [f('signer.microsoft', -90), f('sigma.critical', 40)], true).verdict).toBe('gray');
  });
  it('a trusted prevalent file with nothing malicious is white; malicious signs always win and take the weight off prevalence', () => {
    const fleet = f('prevalence.trusted', -40);
    const signs: RuleHit[] = [{ ruleId: 'origin.internet', description: '', weight: 15, evidence: [] }, { ruleId: 'persistence.run-key', description: '', weight: 30, evidence: [] }];
    // Score 5: gray on the score, white on prevalence.
    expect(decideVerdict(T, signs, [fleet], true)).toMatchObject({ verdict: 'white', score: 5, confidence: { level: 'medium' } });
    expect(decideVerdict(T, signs, [], true).verdict).toBe('gray');
    for (const bad of [f('behaviour.credential-access', 50), f('behaviour.defence-tampering', 40), f('sigma.high', 25), f('sigma.critical', 40)]) {
      const out = decideVerdict(T, signs, [fleet, bad], true);
      expect(out.verdict).not.toBe('white');
      expect(out.hits.find((h) => h.ruleId === 'prevalence.trusted')).toMatchObject({ weight: 0, detail: expect.stringContaining('not weighed') });
    }
    expect(decideVerdict(T, [{ ruleId: 'intel.ip', description: '', weight: 60, evidence: [] }], [fleet], true)).toMatchObject({ verdict: 'black', score: 60 });
    expect(decideVerdict(T, [{ ruleId: 'lolbin.mshta', description: '', weight: 25, evidence: [] }], [fleet], true).verdict).toBe('gray');
    // Unsigned but common: mitigating only, never white on its own.
    expect(decideVerdict(T, signs, [f('prevalence.common', -15)], true)).toMatchObject({ verdict: 'gray', score: 30 });
    // New to the fleet: a note, no weight.
    expect(decideVerdict(T, signs, [f('prevalence.new-to-fleet', 0)], true)).toMatchObject({ verdict: 'gray', score: 45 });
  });
  it('a decisive rule decides with high confidence', () => {
    expect(decideVerdict(T, [{ ruleId: 'intel.sha256', description: '', outcome: 'black', evidence: [] }], [f('signer.microsoft', -60)], false)).toMatchObject({ verdict: 'black', confidence: { level: 'high' } });
  });
});
