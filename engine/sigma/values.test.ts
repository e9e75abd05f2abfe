import { describe, expect, it } from 'vitest';
import { compileValues, parseSigmaString, regexLiteral } from './values.js';

/** Compiles `field|mods: values` and tests one field value. */
function t(mods: string[], values: unknown, fieldValue: unknown, event: Record<string, unknown> = {}): boolean {
  const c = compileValues(mods, values, { readerFor: (f) => (e) => e[f] });
  if (!c.ok) throw new Error(`${c.reason}: ${c.detail}`);
  return c.test(fieldValue, event, undefined);
}

function refused(mods: string[], values: unknown): string {
  const c = compileValues(mods, values);
  if (c.ok) throw new Error('compiled');
  return c.reason;
}

describe('Sigma strings: wildcards and escapes (rules specification)', () => {
  it.each([
    // [pattern, value, matches]
    ['C:\\Windows\\System32\\whoami.exe', 'c:\\windows\\system32\\WHOAMI.EXE', true],
    ['prog?.exe', 'progA.exe', true],
    ['prog?.exe', 'prog.exe', false],
    ['antivirus_V*.exe', 'antivirus_V21.2.1.exe', true],
    ['antivirus_V*.exe', 'antivirus_V1.exe', true],
    ['antivirus_V*.exe', 'xantivirus_V1.exe', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a\\?b', 'a?b', true],
    ['a\\?b', 'axb', false],
    ['a\\\\*', 'a\\anything', true],
    ['a\\\\\\*', 'a\\*', true],
    ['a\\\\\\*', 'a\\x', false],
    ['a\\\\\\\\b', 'a\\\\b', true],
    ['C:\\\\Windows', 'C:\\Windows', true],
    ['', '', true],
    ['', 'x', false],
    ['line*end', 'line\nend', true],
  ])('%j on %j → %s', (pattern, value, want) => {
    expect(t([], pattern, value)).toBe(want);
  });

  it('parses escapes like pySigma: \\ escapes *, ? and itself only', () => {
    expect(parseSigmaString('a\\b')).toEqual([{ t: 'lit', s: 'a\\b' }]);
    expect(parseSigmaString('\\\\*')).toEqual([{ t: 'lit', s: '\\' }, { t: 'star' }]);
  });

  it('matches numbers and booleans as text, lists as OR', () => {
    expect(t([], 4624, 4624)).toBe(true);
    expect(t([], 4624, '4624')).toBe(true);
    expect(t([], [517, 1102], 1102)).toBe(true);
    expect(t([], [517, 1102], 1103)).toBe(false);
    expect(t([], true, 'true')).toBe(true);
    expect(t([], 'x', undefined)).toBe(false);
  });

  it('null matches an absent field, empty matches only the empty string', () => {
    expect(t([], null, undefined)).toBe(true);
    expect(t([], null, '')).toBe(false);
    expect(t([], '', '')).toBe(true);
    expect(t([], '', undefined)).toBe(false);
  });
});

describe('value modifiers (modifiers appendix)', () => {
  it('contains, startswith, endswith', () => {
    expect(t(['contains'], 'Test executable', 'a test Executable here')).toBe(true);
    expect(t(['startswith'], 'adm', 'ADMIN')).toBe(true);
    expect(t(['startswith'], 'adm', 'xadm')).toBe(false);
    expect(t(['endswith'], '\\cmd.exe', 'C:\\Windows\\System32\\CMD.EXE')).toBe(true);
    expect(t(['endswith'], '\\cmd.exe', 'C:\\cmd.exe.bak')).toBe(false);
    expect(t(['contains'], '*already*', 'xalreadyx')).toBe(true);
  });

  it('all turns the list into AND', () => {
    expect(t(['contains', 'all'], ['OabVirtualDirectory', ' -ExternalUrl '], 'Set-OabVirtualDirectory -ExternalUrl x')).toBe(true);
    expect(t(['contains', 'all'], ['OabVirtualDirectory', ' -ExternalUrl '], 'Set-OabVirtualDirectory')).toBe(false);
  });

  it('cased matches case-sensitively', () => {
    expect(t(['cased'], 'Evil', 'Evil')).toBe(true);
    expect(t(['cased'], 'Evil', 'evil')).toBe(false);
    expect(t(['contains', 'cased'], 'Evil', 'an Evil one')).toBe(true);
  });

  it('exists checks presence only, not the value', () => {
    expect(t(['exists'], true, '')).toBe(true);
    expect(t(['exists'], true, undefined)).toBe(false);
    expect(t(['exists'], false, undefined)).toBe(true);
    expect(refused(['exists'], 'yes')).toBe('invalid_modifier_use');
  });

  it('windash: -, /, en dash, em dash and horizontal bar before a flag', () => {
    for (const dash of ['-', '/', '\u2013', '\u2014', '\u2015']) expect(t(['contains', 'windash'], ' -exec ', `psexec ${dash}exec x`)).toBe(true);
    expect(t(['contains', 'windash'], ' -exec ', 'psexec +exec x')).toBe(false);
    // Not a flag (inside a word): left as is.
    expect(t(['windash'], 'a-b', 'a/b')).toBe(false);
  });

  it('re: case-sensitive by default; i, m, s flags; PCRE leading (?i)', () => {
    expect(t(['re'], 'net\\s+user\\s+', 'net  user admin')).toBe(true);
    expect(t(['re'], 'net\\s+user', 'NET USER')).toBe(false);
    expect(t(['re', 'i'], 'net\\s+user', 'NET USER')).toBe(true);
    expect(t(['re'], '(?i)net\\s+user', 'NET USER')).toBe(true);
    expect(t(['re'], '^b$', 'a\nb')).toBe(false);
    expect(t(['re', 'm'], '^b$', 'a\nb')).toBe(true);
    expect(t(['re'], 'a.b', 'a\nb')).toBe(false);
    expect(t(['re', 's'], 'a.b', 'a\nb')).toBe(true);
    expect(refused(['re'], '(')).toBe('invalid_regex');
    expect(refused(['i'], 'x')).toBe('invalid_modifier_use');
  });

  it('base64 encodes the value', () => {
    expect(t(['base64'], 'cmd', 'Y21k')).toBe(true);
    expect(t(['base64', 'contains'], 'http://', 'x aHR0cDovLw== y')).toBe(true);
  });

  it('base64offset: the three shifts of a value inside a longer base64 text', () => {
    const needle = 'http://';
    for (const prefix of ['', 'a', 'ab', 'abc']) {
      const encoded = Buffer.from(`${prefix}${needle}tail`).toString('base64');
      expect(t(['base64offset', 'contains'], needle, encoded)).toBe(true);
    }
    expect(t(['base64offset', 'contains'], needle, Buffer.from('nothing here').toString('base64'))).toBe(false);
  });

  it('utf16le / wide / utf16be / utf16 with base64 (PowerShell -EncodedCommand)', () => {
    const ps = Buffer.from('IEX (New-Object Net.WebClient)', 'utf16le').toString('base64');
    expect(t(['wide', 'base64offset', 'contains'], 'New-Object', ps)).toBe(true);
    expect(t(['utf16le', 'base64offset', 'contains'], 'New-Object', ps)).toBe(true);
    expect(t(['utf16le', 'base64'], 'cmd', Buffer.from('cmd', 'utf16le').toString('base64'))).toBe(true);
    const be = Buffer.from('cmd', 'utf16le').swap16();
    expect(t(['utf16be', 'base64'], 'cmd', be.toString('base64'))).toBe(true);
    expect(t(['utf16', 'base64'], 'cmd', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('cmd', 'utf16le')]).toString('base64'))).toBe(true);
    expect(refused(['base64'], 'a*b')).toBe('invalid_modifier_use');
  });

  it('cidr: IPv4 and IPv6 networks', () => {
    expect(t(['cidr'], '10.0.0.0/8', '10.20.30.40')).toBe(true);
    expect(t(['cidr'], '10.0.0.0/8', '11.0.0.1')).toBe(false);
    expect(t(['cidr'], ['192.168.0.0/16', '172.16.0.0/12'], '172.31.255.255')).toBe(true);
    expect(t(['cidr'], 'fe80::/10', 'fe80::1c2d:3e4f')).toBe(true);
    expect(t(['cidr'], 'fe80::/10', '2001:db8::1')).toBe(false);
    expect(t(['cidr'], '::ffff:0:0/96', '::ffff:10.1.2.3')).toBe(true);
    expect(t(['cidr'], '10.0.0.0/8', 'not an ip')).toBe(false);
    expect(refused(['cidr'], '10.0.0.0/33')).toBe('invalid_value');
  });

  it('lt, lte, gt, gte compare numbers (decimal or 0x hex text)', () => {
    expect(t(['lt'], 10, 9)).toBe(true);
    expect(t(['lt'], 10, 10)).toBe(false);
    expect(t(['lte'], 10, 10)).toBe(true);
    expect(t(['gt'], 10, '11')).toBe(true);
    expect(t(['gte'], 16, '0x10')).toBe(true);
    expect(t(['gt'], 10, 'x')).toBe(false);
    expect(refused(['gt'], 'ten')).toBe('invalid_modifier_use');
  });

  it('neq: none of the values', () => {
    expect(t(['neq'], ['a', 'b'], 'c')).toBe(true);
    expect(t(['neq'], ['a', 'b'], 'A')).toBe(false);
  });

  it('fieldref compares with another field of the same event', () => {
    expect(t(['fieldref'], 'ParentUser', 'CORP\\bob', { ParentUser: 'corp\\BOB' })).toBe(true);
    expect(t(['fieldref'], 'ParentUser', 'CORP\\bob', { ParentUser: 'CORP\\eve' })).toBe(false);
    expect(t(['fieldref'], 'ParentUser', 'CORP\\bob', {})).toBe(false);
    expect(t(['fieldref', 'cased'], 'ParentUser', 'CORP\\bob', { ParentUser: 'corp\\BOB' })).toBe(false);
  });

  it('expand replaces placeholders with configured values, and refuses unknown ones', () => {
    const c = compileValues(['expand'], '%Administrators%', { placeholders: { Administrators: ['adm_*', 'root'] } });
    if (!c.ok) throw new Error(c.detail);
    expect(c.test('adm_tanaka', {}, undefined)).toBe(true);
    expect(c.test('root', {}, undefined)).toBe(true);
    expect(c.test('user', {}, undefined)).toBe(false);
    expect(refused(['expand'], '%Servers%')).toBe('unknown_placeholder');
    // Without expand, %x% is a literal value.
    expect(t([], '%Servers%', '%servers%')).toBe(true);
  });

  it('refuses modifiers it does not know (e.g. the time modifiers)', () => {
    expect(refused(['hour'], 3)).toBe('unsupported_modifier');
    expect(refused(['contains', 'nope'], 'x')).toBe('unsupported_modifier');
  });
});

describe('prefilter literals', () => {
  it('names the longest literal of each value, none for patterns that have none', () => {
    const c = compileValues(['endswith'], ['\\powershell.exe', '\\pwsh.exe']);
    expect(c.ok && c.literals).toEqual(['\\powershell.exe', '\\pwsh.exe']);
    const all = compileValues(['contains', 'all'], ['ab', 'longer one']);
    expect(all.ok && all.literals).toEqual(['longer one']);
    const star = compileValues([], ['*']);
    expect(star.ok && star.literals).toBeNull();
    const neq = compileValues(['neq'], 'x');
    expect(neq.ok && neq.literals).toBeNull();
  });

  it('finds a literal every regex match must contain, or none', () => {
    expect(regexLiteral('net\\s+user\\s+')).toBe('user');
    expect(regexLiteral('\\\\DserNamePipe[0-9a-f]{2}')).toBe('\\dsernamepipe');
    expect(regexLiteral('a|b')).toBeNull();
    expect(regexLiteral('cmd.{0,5}(?:/c|/r).+powershell.+(?:x|y)')).toBe('powershell');
    expect(regexLiteral('[a|b]cdef')).toBe('cdef');
    expect(regexLiteral('ab?c')).toBeNull();
    expect(regexLiteral('(?:abc)')).toBeNull();
    expect(regexLiteral('x\\.exe')).toBe('x.exe');
    // One character only when plain text almost never holds it (obfuscation escapes); an anchor is no literal.
    expect(regexLiteral('\\w+`(?:\\w+|-|.)`[\\w+|\\s]')).toBe('`');
    expect(regexLiteral('\\w\\^\\w')).toBe('^');
    expect(regexLiteral('^a')).toBeNull();
    expect(regexLiteral('a\\s+')).toBeNull();
  });
});

describe('literal patterns without a RegExp (the fast path)', () => {
  const values = ['C:\\Windows\\System32\\CMD.EXE', 'c:\\windows\\system32\\cmd.exe', 'cmd.exe', 'CMD', 'xcmd.exey', '', '\u0130stanbul\\cmd.exe', 'K\u212Aelvin\\CMD.EXE', 42, true, ['a', 'C:\\x\\cmd.exe'], undefined, null];
  const lists: [string[], unknown[]][] = [
    [['endswith'], ['\\cmd.exe', '\\powershell.exe']],
    [['startswith'], ['c:\\windows\\', 'd:\\']],
    [['contains'], ['system32', 'SysWOW64', 'cmd']],
    [[], ['cmd.exe', 'CMD', 42, true]],
    [[], ['*cmd.exe', 'c:\\*', '*system32*']],
    [['cased'], ['cmd.exe', 'CMD']],
    [['contains', 'cased'], ['System32']],
    [['endswith', 'cased'], ['.EXE']],
  ];
  it.each(lists)('%j %j: the same answer as the RegExp on every value', (mods, pats) => {
    const fast = compileValues(mods, pats);
    const slow = compileValues(mods, pats, { regexOnly: true });
    if (!fast.ok || !slow.ok) throw new Error('compile');
    expect(fast.test).not.toBe(slow.test);
    for (const v of values) expect([v, fast.test(v, {}, undefined)]).toEqual([v, slow.test(v, {}, undefined)]);
  });

  it('matches case-insensitively unless cased', () => {
    expect(t(['endswith'], '\\CMD.exe', 'c:\\x\\cmd.EXE')).toBe(true);
    expect(t(['endswith', 'cased'], '\\CMD.exe', 'c:\\x\\cmd.EXE')).toBe(false);
    expect(t(['contains'], ['zzz', 'SYSTEM32'], 'c:\\windows\\system32\\x')).toBe(true);
    expect(t([], 'cmd.exe', 'cmd.exe ')).toBe(false);
  });
});
