/**
 * The examples of the Sigma specification (../shared/sigma/spec/, rules
 * specification v2.1.0 and the modifiers appendix), as whole rules run
 * through the compiler and the matcher. Windows channel examples use the
 * data-map kinds (`security.<id>`), as the import produces them.
 */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compileRule, type CompileOptions } from './compile.js';
import { createSigmaMatcher } from './matcher.js';

function matcherOf(detection: string, logsource = '{ category: process_creation, product: windows }', options: CompileOptions = {}) {
  const c = compileRule(parse(`title: spec example\nlogsource: ${logsource}\ndetection:\n${detection}`), 'spec.yml', options);
  if (!c.ok) throw new Error(`${c.refusal.reason}: ${c.refusal.detail}`);
  const m = createSigmaMatcher([c.rule]);
  return (event: Record<string, unknown>) => m.match(event).length === 1;
}

const SECURITY = '{ product: windows, service: security }';

describe('rules specification examples', () => {
  it('Whoami Execution (Yaml File)', () => {
    const hit = matcherOf(`    selection:\n        Image: 'C:\\Windows\\System32\\whoami.exe'\n    condition: selection`);
    expect(hit({ k: 'proc.start', image: 'C:\\Windows\\System32\\whoami.exe' })).toBe(true);
    expect(hit({ k: 'proc.start', image: 'C:\\Windows\\System32\\whoami.exe.bak' })).toBe(false);
  });

  it('Lists: list of strings (keywords) and list of maps', () => {
    const keywords = matcherOf(`    keywords:\n        - 'EVILSERVICE'\n        - 'svchost.exe -n evil'\n    condition: keywords`, SECURITY);
    expect(keywords({ k: 'security.7045', data: { ServiceName: 'evilservice' } })).toBe(true);
    expect(keywords({ k: 'security.4688', data: { CommandLine: 'C:\\svchost.exe -n evil' } })).toBe(true);
    expect(keywords({ k: 'security.4688', data: { CommandLine: 'svchost.exe -k netsvcs' } })).toBe(false);
    const maps = matcherOf(`    selection:\n        - Image|endswith: '\\\\example.exe'\n        - Description|contains: 'Test executable'\n    condition: selection`);
    expect(maps({ k: 'proc.start', image: 'C:\\x\\example.exe' })).toBe(true);
    expect(maps({ k: 'proc.start', image: 'C:\\x\\other.exe', description: 'A Test executable here' })).toBe(true);
    expect(maps({ k: 'proc.start', image: 'C:\\x\\other.exe' })).toBe(false);
  });

  it('Maps: EventLog Security and (EventID 517 or 1102); ANDed map with quoted values', () => {
    const hit = matcherOf(`    selection:\n        EventLog: Security\n        EventID:\n            - 517\n            - 1102\n    condition: selection`, SECURITY);
    expect(hit({ k: 'security.1102', data: { EventLog: 'Security' } })).toBe(true);
    expect(hit({ k: 'security.517', data: { EventLog: 'security' } })).toBe(true);
    expect(hit({ k: 'security.4624', data: { EventLog: 'Security' } })).toBe(false);
    const kerberos = matcherOf(`    selection:\n        EventLog: Security\n        EventID: 4769\n        TicketOptions: '0x40810000'\n        TicketEncryption: '0x17'\n    condition: selection`, SECURITY);
    expect(kerberos({ k: 'security.4769', data: { EventLog: 'Security', TicketOptions: '0x40810000', TicketEncryption: '0x17' } })).toBe(true);
    expect(kerberos({ k: 'security.4769', data: { EventLog: 'Security', TicketOptions: '0x40810000', TicketEncryption: '0x12' } })).toBe(false);
  });

  it('Special field values: null in its own selection, empty string', () => {
    const hit = matcherOf(`    selection:\n        EventID: 4738\n    filter:\n        PasswordLastSet: null\n    condition: selection and not filter`, SECURITY);
    expect(hit({ k: 'security.4738', data: { PasswordLastSet: '1/1/2024' } })).toBe(true);
    expect(hit({ k: 'security.4738', data: {} })).toBe(false);
    const empty = matcherOf(`    selection_main:\n        FieldA: 'something'\n    selection_empty1:\n        FieldB: ''\n    selection_empty2:\n        FieldB: null\n    condition: selection_main and 1 of selection_empty*`, SECURITY);
    expect(empty({ k: 'security.1', data: { FieldA: 'something', FieldB: '' } })).toBe(true);
    expect(empty({ k: 'security.1', data: { FieldA: 'something' } })).toBe(true);
    expect(empty({ k: 'security.1', data: { FieldA: 'something', FieldB: 'x' } })).toBe(false);
  });

  it('Field Existence: PasswordLastSet|exists: true', () => {
    const hit = matcherOf(`    selection:\n        EventID: 4738\n        PasswordLastSet|exists: true\n    condition: selection`, SECURITY);
    expect(hit({ k: 'security.4738', data: { PasswordLastSet: '' } })).toBe(true);
    expect(hit({ k: 'security.4738', data: {} })).toBe(false);
  });

  it("Keywords search: '|all' ANDs the keywords", () => {
    const hit = matcherOf(`    keywords_cmdlet:\n        '|all':\n            - 'OabVirtualDirectory'\n            - ' -ExternalUrl '\n    condition: keywords_cmdlet`, SECURITY);
    expect(hit({ k: 'security.1', data: { Payload: 'Set-OabVirtualDirectory -ExternalUrl http://x' } })).toBe(true);
    expect(hit({ k: 'security.1', data: { Payload: 'Set-OabVirtualDirectory' } })).toBe(false);
  });

  it('Placeholders: literal without expand, expanded with it, \\% a plain percent sign', () => {
    const literal = matcherOf(`    selection:\n        User: '%Administrators%'\n    condition: selection`);
    expect(literal({ k: 'proc.start', user: '%administrators%' })).toBe(true);
    const options = { placeholders: { Administrators: ['CORP\\adm_*'], name: ['X'] } };
    const expanded = matcherOf(`    selection:\n        User|expand: '%Administrators%'\n    condition: selection`, undefined, options);
    expect(expanded({ k: 'proc.start', user: 'CORP\\adm_sato' })).toBe(true);
    expect(expanded({ k: 'proc.start', user: '%Administrators%' })).toBe(false);
    const escaped = matcherOf(`    selection:\n        User|expand: '\\%plain%name%'\n    condition: selection`, undefined, options);
    expect(escaped({ k: 'proc.start', user: '%plainX' })).toBe(true);
    const c = compileRule(parse(`title: t\nlogsource: { category: process_creation, product: windows }\ndetection:\n    selection:\n        User|expand: '%Servers%'\n    condition: selection`), 't.yml');
    expect(c.ok ? 'loaded' : c.refusal.reason).toBe('unknown_placeholder');
  });

  it('Condition examples: x of patterns, them, brackets, not', () => {
    const d = `    selection1: { Image|endswith: '\\\\a.exe' }\n    selection2: { CommandLine|contains: 'x' }\n    keywords: ['kw']\n    filters: { User: 'SYSTEM' }\n`;
    const allOf = matcherOf(`${d}    condition: all of selection*`);
    expect(allOf({ k: 'proc.start', image: 'C:\\a.exe', cmd: 'x' })).toBe(true);
    expect(allOf({ k: 'proc.start', image: 'C:\\a.exe', cmd: 'y' })).toBe(false);
    const oneOfAnd = matcherOf(`${d}    condition: 1 of selection* and keywords`);
    expect(oneOfAnd({ k: 'proc.start', image: 'C:\\a.exe', cmd: 'kw' })).toBe(true);
    expect(oneOfAnd({ k: 'proc.start', image: 'C:\\a.exe' })).toBe(false);
    const notFilter = matcherOf(`${d}    condition: 1 of selection* and not 1 of filter*`);
    expect(notFilter({ k: 'proc.start', image: 'C:\\a.exe', user: 'SYSTEM' })).toBe(false);
    expect(notFilter({ k: 'proc.start', image: 'C:\\a.exe', user: 'bob' })).toBe(true);
    const brackets = matcherOf(`${d}    condition: selection1 and (keywords or selection2)`);
    expect(brackets({ k: 'proc.start', image: 'C:\\a.exe', cmd: 'x' })).toBe(true);
    expect(brackets({ k: 'proc.start', image: 'C:\\b.exe', cmd: 'x' })).toBe(false);
    const them = matcherOf(`${d}    condition: 1 of them`);
    expect(them({ k: 'proc.start', user: 'system' })).toBe(true);
    expect(them({ k: 'proc.start', user: 'bob' })).toBe(false);
  });
});

describe('modifiers appendix examples', () => {
  it('DestinationIp|cidr: 10.0.0.0/8', () => {
    const hit = matcherOf(`    selection:\n        DestinationIp|cidr: 10.0.0.0/8\n    condition: selection`, '{ category: network_connection, product: windows }');
    expect(hit({ k: 'net.conn', rip: '10.1.2.3' })).toBe(true);
    expect(hit({ k: 'net.conn', rip: '192.168.1.1' })).toBe(false);
  });

  it('utf16le / utf16be / utf16 of cmd, as base64', () => {
    const le = Buffer.from([0x63, 0x00, 0x6d, 0x00, 0x64, 0x00]).toString('base64');
    const be = Buffer.from([0x00, 0x63, 0x00, 0x6d, 0x00, 0x64]).toString('base64');
    const bom = Buffer.from([0xff, 0xfe, 0x63, 0x00, 0x6d, 0x00, 0x64, 0x00]).toString('base64');
    for (const [mod, want] of [['utf16le', le], ['wide', le], ['utf16be', be], ['utf16', bom]]) {
      const hit = matcherOf(`    selection:\n        CommandLine|${mod}|base64: 'cmd'\n    condition: selection`);
      expect(hit({ k: 'proc.start', cmd: want }), mod).toBe(true);
    }
  });

  it('fieldref with neq (the user differs from the parent user)', () => {
    const hit = matcherOf(`    selection:\n        User|fieldref|neq: ParentUser\n    condition: selection`);
    expect(hit({ k: 'proc.start', user: 'CORP\\a', puser: 'CORP\\b' })).toBe(true);
    expect(hit({ k: 'proc.start', user: 'CORP\\a', puser: 'corp\\A' })).toBe(false);
  });
});
