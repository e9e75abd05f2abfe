import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compileFilter, compileRule, severityOf, type CompiledRule } from './compile.js';
import { parseRuleText } from './loader.js';
import { createSigmaMatcher } from './matcher.js';
import type { ProcessFacts } from './types.js';

function rule(yaml: string): CompiledRule {
  const c = compileRule(parse(yaml), 'test.yml');
  if (!c.ok) throw new Error(`${c.refusal.reason}: ${c.refusal.detail}`);
  return c.rule;
}

function refusal(yaml: string): string {
  const c = compileRule(parse(yaml), 'test.yml');
  return c.ok ? 'loaded' : `${c.refusal.reason}: ${c.refusal.detail}`;
}

const WHOAMI = `
title: Whoami Execution
id: 11111111-0000-4000-8000-000000000001
status: test
logsource: { category: process_creation, product: windows }
detection:
    selection:
        Image: 'C:\\Windows\\System32\\whoami.exe'
    condition: selection
level: high
tags: [attack.discovery, attack.t1033]
`;

const OFFICE_CHILD = `
title: Office spawns a script host
id: 11111111-0000-4000-8000-000000000002
logsource: { category: process_creation, product: windows }
detection:
    selection_parent:
        ParentImage|endswith: ['\\WINWORD.EXE', '\\EXCEL.EXE']
    selection_child:
        - Image|endswith: ['\\powershell.exe', '\\wscript.exe']
        - OriginalFileName: ['PowerShell.EXE', 'wscript.exe']
    filter_main_signed:
        CommandLine|contains: 'harmless'
    condition: all of selection_* and not 1 of filter_main_*
level: critical
`;

const RUN_KEY = `
title: Run key written
id: 11111111-0000-4000-8000-000000000003
logsource: { category: registry_set, product: windows }
detection:
    selection:
        TargetObject|contains: '\\CurrentVersion\\Run\\'
        Image|endswith: '\\odupdate.exe'
    condition: selection
level: medium
`;

const PS = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

describe('compileRule', () => {
  it('keeps the metadata and maps the level to the four severities', () => {
    const r = rule(WHOAMI);
    expect(r.info).toMatchObject({ id: '11111111-0000-4000-8000-000000000001', title: 'Whoami Execution', level: 'high', severity: 'Serious', status: 'test', tags: ['attack.discovery', 'attack.t1033'], kinds: ['proc.start'], logsource: 'process_creation' });
    expect([severityOf('critical'), severityOf('high'), severityOf('medium'), severityOf('low'), severityOf('informational'), severityOf(undefined)]).toEqual(['Critical', 'Serious', 'Medium', 'Information', 'Information', 'Information']);
  });

  it.each([
    ['a logsource kiseki has no events for', WHOAMI.replace('category: process_creation', 'category: ps_script'), 'unsupported_logsource'],
    ['another product', WHOAMI.replace('product: windows', 'product: linux'), 'unsupported_logsource'],
    ['a field the trail lacks', WHOAMI.replace("Image: 'C", "TerminalSessionId: 1\n        Image: 'C"), 'field_not_mapped: process_creation: TerminalSessionId'],
    ['an unknown modifier', WHOAMI.replace('Image:', 'Image|hour:'), 'unsupported_modifier'],
    ['a bad regular expression', WHOAMI.replace('Image:', 'Image|re:').replace("'C:\\Windows\\System32\\whoami.exe'", "'(unclosed'"), 'invalid_regex'],
    ['an aggregation', WHOAMI.replace('condition: selection', 'condition: selection | count() > 5'), 'aggregation'],
    ['an unknown identifier', WHOAMI.replace('condition: selection', 'condition: selection and filter'), 'invalid_condition'],
    ['a correlation rule', 'title: c\ncorrelation: { type: event_count, rules: [x] }\n', 'correlation_rule'],
    ['no detection', 'title: x\nlogsource: { product: windows }\n', 'not_a_rule'],
  ])('refuses %s', (_name, yaml, want) => {
    expect(refusal(yaml)).toMatch(new RegExp(`^${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('prefilters on the literal that selects: not on path text most events hold, and on an obfuscation escape when a regex has nothing else', () => {
    const traversal = rule(
      WHOAMI.replace(
        "selection:\n        Image: 'C:\\Windows\\System32\\whoami.exe'\n    condition: selection",
        "sel_a:\n        Image|contains: '\\Windows\\'\n        CommandLine|contains: '\\..\\..\\'\n    sel_b:\n        CommandLine|contains: '.exe\\..\\'\n    condition: 1 of sel_*",
      ),
    );
    // One side of each selection: for sel_a the command line's '\..\..\', not the image's '\windows\'.
    expect(traversal.exact!.prefilter!.map((p) => [p.field, p.literals])).toEqual([
      ['CommandLine', ['\\..\\..\\']],
      ['CommandLine', ['.exe\\..\\']],
    ]);
    const backtick = rule(WHOAMI.replace("Image: 'C:\\Windows\\System32\\whoami.exe'", "CommandLine|re: '\\w+`(?:\\w+|-|.)`[\\w+|\\s]'"));
    expect(backtick.exact!.prefilter!.map((p) => [p.field, p.literals])).toEqual([['CommandLine', ['`']]]);
  });

  it('refuses multi-document files and YAML errors at load', () => {
    const multi = parseRuleText(`${WHOAMI}\n---\n${WHOAMI}`, 'm.yml');
    expect(multi.ok ? 'ok' : multi.refusal.reason).toBe('multi_document');
    const bad = parseRuleText('title: [unclosed', 'b.yml');
    expect(bad.ok ? 'ok' : bad.refusal.reason).toBe('yaml_error');
  });

  it('reads Security logon events from their event data first, then from the trail fields', () => {
    const ntlm = rule(`
title: NTLM network logon
logsource: { product: windows, service: security }
detection:
    selection:
        EventID: 4624
        LogonType: 3
        LogonProcessName: 'NtLmSsp'
    condition: selection
`);
    expect(ntlm.info.kinds).toEqual(['logon', 'logoff', 'task.create']);
    expect(ntlm.info.prefixes).toEqual(['security.']);
    const net = rule(`
title: Network logon
logsource: { product: windows, service: security }
detection:
    selection: { EventID: 4624, LogonType: 3 }
    filter_local: { IpAddress|cidr: ['127.0.0.0/8', '::1/128'] }
    condition: selection and not filter_local
`);
    const m = createSigmaMatcher([ntlm, net]);
    // Imported: the event data decides, loopback addresses included.
    expect(m.match({ k: 'logon', ok: true, logonType: 3, data: { LogonType: '3', LogonProcessName: 'NtLmSsp ', IpAddress: '10.0.0.5' } }).map((h) => h.title)).toEqual(['Network logon']);
    expect(m.match({ k: 'logon', ok: true, logonType: 3, data: { LogonType: '3', LogonProcessName: 'NtLmSsp', IpAddress: '10.0.0.5' } })).toHaveLength(2);
    expect(m.match({ k: 'logon', ok: true, logonType: 3, data: { LogonType: '3', IpAddress: '127.0.0.1' } })).toHaveLength(0);
    // From an agent: the trail fields.
    expect(m.match({ k: 'logon', ok: true, logonType: 3, srcIp: '10.0.0.5' }).map((h) => h.title)).toEqual(['Network logon']);
    expect(m.match({ k: 'logon', ok: false, logonType: 3, srcIp: '10.0.0.5' })).toHaveLength(0);
  });
});

describe('createSigmaMatcher', () => {
  const rules = [rule(WHOAMI), rule(OFFICE_CHILD), rule(RUN_KEY)];

  it('matches case-insensitively and returns the rule info', () => {
    const m = createSigmaMatcher(rules);
    const hits = m.match({ k: 'proc.start', image: 'c:\\windows\\system32\\WHOAMI.exe' });
    expect(hits.map((h) => h.id)).toEqual(['11111111-0000-4000-8000-000000000001']);
  });

  it('returns one shared empty array when nothing matches', () => {
    const m = createSigmaMatcher(rules);
    const a = m.match({ k: 'proc.start', image: 'C:\\x.exe' });
    const b = m.match({ k: 'net.conn', rip: '1.2.3.4' });
    const c = m.match({ k: 'unknown.kind' });
    expect(a).toHaveLength(0);
    expect(a).toBe(b);
    expect(b).toBe(c);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('reads parent fields from the event, else from the process table', () => {
    const table = new Map<string, ProcessFacts>([['{p}', { image: 'C:\\Program Files\\Office\\WINWORD.EXE', cmd: 'winword' }]]);
    const m = createSigmaMatcher(rules, { resolver: { process: (pg) => table.get(pg) } });
    expect(m.match({ k: 'proc.start', image: PS, pimage: 'C:\\x\\EXCEL.EXE' })).toHaveLength(1);
    expect(m.match({ k: 'proc.start', image: PS, ppg: '{p}' })).toHaveLength(1);
    expect(m.match({ k: 'proc.start', image: PS, ppg: '{other}' })).toHaveLength(0);
    // OriginalFileName alone (renamed binary) satisfies selection_child.
    expect(m.match({ k: 'proc.start', image: 'C:\\t\\x.exe', originalFileName: 'PowerShell.EXE', ppg: '{p}' })).toHaveLength(1);
    // The filter excludes.
    expect(m.match({ k: 'proc.start', image: PS, ppg: '{p}', cmd: 'powershell harmless' })).toHaveLength(0);
  });

  it('reads the acting image from the event, else from the process table (registry TargetObject is key + value)', () => {
    const table = new Map<string, ProcessFacts>([['{a}', { image: 'C:\\Users\\u\\AppData\\odupdate.exe' }]]);
    const m = createSigmaMatcher(rules, { resolver: { process: (pg) => table.get(pg) } });
    const key = 'HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run';
    expect(m.match({ k: 'reg.set', pg: '{a}', key, value: 'Updater', data: 'x' })).toHaveLength(1);
    expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key, value: 'Updater' })).toHaveLength(1);
    expect(m.match({ k: 'reg.set', image: 'C:\\other.exe', key, value: 'Updater' })).toHaveLength(0);
    // The key alone (no value) has no "\Run\" in it.
    expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key })).toHaveLength(0);
    // A rule for registry_set never runs on other kinds.
    expect(m.match({ k: 'reg.create', image: 'C:\\odupdate.exe', key, value: 'Updater' })).toHaveLength(0);
  });

  it("scans a process field's value once and still follows the process table as it changes", () => {
    const table = new Map<string, ProcessFacts>([['{a}', { image: 'C:\\Users\\u\\AppData\\odupdate.exe' }]]);
    const m = createSigmaMatcher(rules, { resolver: { process: (pg) => table.get(pg) } });
    const key = 'HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run';
    const ev = () => ({ k: 'reg.set', pg: '{a}', key, value: 'Updater', data: 'x' });
    expect(m.match(ev())).toHaveLength(1);
    expect(m.match(ev())).toHaveLength(1);
    table.set('{a}', { image: 'C:\\other.exe' });
    expect(m.match(ev())).toHaveLength(0);
    table.set('{a}', { image: 'C:\\Users\\u\\AppData\\ODUPDATE.EXE' });
    expect(m.match(ev())).toHaveLength(1);
    // The event's own image, when it has one, is the actor's.
    expect(m.match({ ...ev(), image: 'C:\\other.exe' })).toHaveLength(0);
  });

  it('keeps file_event and create_stream_hash apart (Sysmon 11 vs 15)', () => {
    const fe = rule(`
title: exe dropped
logsource: { category: file_event, product: windows }
detection:
    selection: { TargetFilename|endswith: '.exe' }
    condition: selection
`);
    const sh = rule(`
title: exe downloaded
logsource: { category: create_stream_hash, product: windows }
detection:
    selection: { TargetFilename|endswith: '.exe:Zone.Identifier', Contents|contains: 'ZoneId=3' }
    condition: selection
`);
    const m = createSigmaMatcher([fe, sh]);
    expect(m.match({ k: 'file.create', path: 'C:\\d\\a.exe' }).map((h) => h.title)).toEqual(['exe dropped']);
    expect(m.match({ k: 'file.create', path: 'C:\\d\\a.exe', stream: 'Zone.Identifier', contents: '[ZoneTransfer] ZoneId=3' }).map((h) => h.title)).toEqual(['exe downloaded']);
  });

  it('matches Windows channel events from their data map, and EventID from the kind', () => {
    const r = rule(`
title: Scheduled task deleted
logsource: { product: windows, service: security }
detection:
    selection:
        EventID: 4699
        TaskName|contains: '\\Microsoft\\Windows\\'
    condition: selection
`);
    const sys = rule(`
title: Service installed
logsource: { product: windows, service: system }
detection:
    selection: { EventID: 7045, ImagePath|contains: 'powershell' }
    condition: selection
`);
    const m = createSigmaMatcher([r, sys]);
    expect(m.match({ k: 'security.4699', data: { TaskName: '\\Microsoft\\Windows\\Defrag' } })).toHaveLength(1);
    expect(m.match({ k: 'security.4698', data: { TaskName: '\\Microsoft\\Windows\\Defrag' } })).toHaveLength(0);
    expect(m.match({ k: 'winevent.7045', channel: 'system', data: { ImagePath: 'powershell -enc x' } })).toHaveLength(1);
    expect(m.match({ k: 'winevent.7045', channel: 'application', data: { ImagePath: 'powershell -enc x' } })).toHaveLength(0);
  });

  it('keyword searches look at every string field', () => {
    const r = rule(`
title: mimikatz keywords
logsource: { product: windows, service: security }
detection:
    keywords: ['event::clear', 'event::drop']
    condition: keywords
`);
    const m = createSigmaMatcher([r]);
    expect(m.match({ k: 'security.4688', data: { CommandLine: 'mimikatz EVENT::Clear' } })).toHaveLength(1);
    expect(m.match({ k: 'security.4688', data: { CommandLine: 'whoami' } })).toHaveLength(0);
  });

  it('applies a tenant’s Sigma filters only to that tenant', () => {
    const filterDoc = parse(`
title: Admins may run whoami
logsource: { category: process_creation, product: windows }
filter:
    rules: [11111111-0000-4000-8000-000000000001]
    selection:
        User|startswith: 'CORP\\adm_'
    condition: selection
`);
    const { byRule, refused } = compileFilter(filterDoc, 'f.yml', rules);
    expect(refused).toEqual([]);
    const m = createSigmaMatcher(rules);
    m.setTenantFilters('T1', new Map([...byRule].map(([id, f]) => [id, [f]])));
    const ev = { k: 'proc.start', image: 'C:\\Windows\\System32\\whoami.exe', user: 'CORP\\adm_sato' };
    expect(m.match(ev, 'T1')).toHaveLength(0);
    expect(m.match(ev, 'T2')).toHaveLength(1);
    expect(m.match({ ...ev, user: 'CORP\\tanaka' }, 'T1')).toHaveLength(1);
    expect(m.stats.suppressed).toBe(1);
  });

  it('evaluates only candidates: events without a rule literal evaluate no rule', () => {
    const m = createSigmaMatcher(rules);
    m.match({ k: 'proc.start', image: 'C:\\Windows\\notepad.exe', cmd: 'notepad' });
    expect(m.stats.evaluated).toBe(0);
    m.match({ k: 'proc.start', image: PS, pimage: 'C:\\x\\EXCEL.EXE' });
    expect(m.stats.evaluated).toBe(1);
    expect(m.stats.hits).toBe(1);
  });

  it('evaluates a rule only when a literal of each of its AND-ed clauses occurred', () => {
    const m = createSigmaMatcher(rules);
    const key = 'HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run';
    // RUN_KEY needs both `\CurrentVersion\Run\` in TargetObject and `\odupdate.exe` in Image.
    m.match({ k: 'reg.set', image: 'C:\\other.exe', key, value: 'Updater' });
    m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key: 'HKLM\\Software\\X', value: 'Y' });
    expect(m.stats.evaluated).toBe(0);
    expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key, value: 'Updater' })).toHaveLength(1);
    expect(m.stats.evaluated).toBe(1);
    // OFFICE_CHILD: its OR (Image or OriginalFileName) is one clause; a literal in either field with the parent's suffices.
    const n = createSigmaMatcher(rules);
    n.match({ k: 'proc.start', image: PS, pimage: 'C:\\x\\explorer.exe' });
    expect(n.stats.evaluated).toBe(0);
    expect(n.match({ k: 'proc.start', image: 'C:\\t\\x.exe', originalFileName: 'wscript.exe', pimage: 'C:\\x\\WINWORD.EXE' })).toHaveLength(1);
    // NOT adds no clause: the filter's literal neither makes nor keeps a candidate.
    expect(n.match({ k: 'proc.start', image: PS, pimage: 'C:\\x\\WINWORD.EXE', cmd: 'harmless' })).toHaveLength(0);
  });

  it('keeps a clause per rank of an OR: selections sharing a key prefix are not candidates on the prefix alone', () => {
    // Shaped like SigmaHQ's service-binary rule: two selections with the same TargetObject prefix, each with
    // its own ending and value. Only the prefix was a clause, so every write under Services\ was evaluated.
    const m = createSigmaMatcher([
      rule(`
title: Service binary in a temp folder
id: 11111111-0000-4000-8000-000000000009
logsource: { category: registry_set, product: windows }
detection:
    selection_start:
        TargetObject|startswith: 'HKLM\\System\\CurrentControlSet\\Services\\'
        TargetObject|endswith: '\\Start'
        Image|contains: '\\Temp\\'
    selection_imagepath:
        TargetObject|startswith: 'HKLM\\System\\CurrentControlSet\\Services\\'
        TargetObject|endswith: '\\ImagePath'
        Details|contains: '\\Temp\\'
    condition: 1 of selection_*
`),
    ]);
    const key = 'HKLM\\System\\CurrentControlSet\\Services\\Svc';
    m.match({ k: 'reg.set', image: 'C:\\Temp\\x.exe', key, value: 'Description', data: 'x' });
    m.match({ k: 'reg.set', image: 'C:\\Windows\\x.exe', key, value: 'ImagePath', data: 'C:\\Windows\\svc.exe' });
    expect(m.stats.evaluated).toBe(0);
    expect(m.match({ k: 'reg.set', image: 'C:\\Temp\\x.exe', key, value: 'Start', data: 'DWORD (0x00000002)' })).toHaveLength(1);
    expect(m.match({ k: 'reg.set', image: 'C:\\Windows\\x.exe', key, value: 'ImagePath', data: 'C:\\Temp\\svc.exe' })).toHaveLength(1);
    expect(m.stats.evaluated).toBe(2);
  });

  it('remembers scanned values (computed fields by their first part) without changing any answer', () => {
    const m = createSigmaMatcher(rules);
    const key = 'HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run';
    for (let i = 0; i < 3; i++) {
      // Same key, the value decides: `\Run\` spans the key's end and the separator.
      expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key, value: `U${i}` })).toHaveLength(1);
      expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key })).toHaveLength(0);
      expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key: `${key}Once`, value: 'U' })).toHaveLength(0);
      expect(m.match({ k: 'proc.start', image: 'C:\\WINDOWS\\system32\\whoami.exe' })).toHaveLength(1);
      expect(m.match({ k: 'proc.start', image: 'C:\\WINDOWS\\system32\\whoami.exe.bak' })).toHaveLength(0);
    }
    // Thousands of distinct values (a memo that rarely hits stops remembering) still answer the same.
    for (let i = 0; i < 10_000; i++) {
      const hit = i % 997 === 0;
      expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key: hit ? key : `${key}${i}`, value: 'V' }).length).toBe(hit ? 1 : 0);
    }
    expect(m.match({ k: 'reg.set', image: 'C:\\odupdate.exe', key, value: 'V' })).toHaveLength(1);
  });
});
