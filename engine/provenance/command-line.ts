/**
 * What a process runs by its command line: the script, DLL, scriptlet, HTML
 * application or package a Windows script host or loader executes
 * (`wscript x.vbs`, `rundll32 x.dll,Entry`, `regsvr32 /i:x.sct scrobj.dll`,
 * `powershell -File x.ps1`, `cmd /c x.bat`, `msiexec /i x.msi`, …). The file
 * runs as that host process, so a report on it follows the host's chain and
 * descendants (docs/CORRELATION.md, "Provenance"). Command lines are split
 * the way the C runtime does (CommandLineToArgvW), and relative paths are
 * resolved against the process's current directory where it is known.
 */

/** One file a host process runs, as named on its command line. */
export interface HostedTarget {
  /** Resolved path (or URL) of the file the host runs. */
  path: string;
  /** How it runs: script, dll, scriptlet, hta, package, project, help, stylesheet, assembly, jar. */
  how: string;
}

/**
 * Splits a Windows command line into arguments (CommandLineToArgvW rules):
 * whitespace separates, double quotes group, `\"` is a literal quote, 2n
 * backslashes before a quote are n backslashes, `""` inside quotes is a quote.
 */
export function splitCommandLine(cmd: string): string[] {
  const args: string[] = [];
  let cur = '';
  let inQuotes = false;
  let started = false;
  let i = 0;
  const n = cmd.length;
  while (i < n) {
    const c = cmd[i]!;
    if (c === '\\') {
      let slashes = 0;
      while (i < n && cmd[i] === '\\') {
        slashes++;
        i++;
      }
      if (cmd[i] === '"') {
        cur += '\\'.repeat(slashes >> 1);
        if (slashes % 2 === 1) {
          cur += '"';
          i++;
        }
      } else cur += '\\'.repeat(slashes);
      started = true;
      continue;
    }
    if (c === '"') {
      if (inQuotes && cmd[i + 1] === '"') {
        cur += '"';
        i += 2;
        continue;
      }
      inQuotes = !inQuotes;
      started = true;
      i++;
      continue;
    }
    if (!inQuotes && (c === ' ' || c === '\t' || c === '\n' || c === '\r')) {
      if (started) args.push(cur);
      cur = '';
      started = false;
      i++;
      continue;
    }
    cur += c;
    started = true;
    i++;
  }
  if (started) args.push(cur);
  return args;
}

/** Lower-case file name of a path (either separator). */
export function baseName(path: string): string {
  const i = Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/'));
  return (i < 0 ? path : path.slice(i + 1)).toLowerCase();
}

function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s.trim());
}

/**
 * `p` as an absolute Windows path: absolute and UNC paths and URLs are kept;
 * relative ones are joined to `cwd` (`.` and `..` segments folded). Without a
 * cwd a relative path is returned as given.
 */
export function resolvePath(p: string, cwd: string | undefined): string {
  if (isUrl(p)) return p.trim();
  let s = p.trim().replace(/\//g, '\\');
  if (/^[a-z]:\\/i.test(s) || s.startsWith('\\\\')) return normalizeDots(s);
  if (cwd === undefined || cwd === '') return s;
  if (/^[a-z]:[^\\]/i.test(s)) s = s.slice(2); // "C:x.dll": relative to that drive's cwd, taken as the cwd.
  if (s.startsWith('\\')) return normalizeDots(`${cwd.slice(0, 2)}${s}`);
  const base = cwd.endsWith('\\') ? cwd : `${cwd}\\`;
  return normalizeDots(base + s);
}

function normalizeDots(p: string): string {
  if (!p.includes('.\\') && !p.endsWith('\\.') && !p.endsWith('\\..')) return p;
  const unc = p.startsWith('\\\\');
  const parts = (unc ? p.slice(2) : p).split('\\');
  const out: string[] = [];
  for (const part of parts) {
    if (part === '.') continue;
    if (part === '..') {
      if (out.length > 1) out.pop();
      continue;
    }
    out.push(part);
  }
  return (unc ? '\\\\' : '') + out.join('\\');
}

const SCRIPT_EXT = /\.(vbs|vbe|js|jse|wsf|wsh|hta|ps1|psm1|bat|cmd|sct|dll|ocx|cpl|msi|chm|xsl|jar|py|exe|scr|com|pif|lnk|inf|xml|csproj|proj|txt|dat|tmp|bin)$/i;

/** Arguments that are not options (`/x`, `-x`, `//x`), in order. */
function positional(args: readonly string[]): string[] {
  return args.filter((a) => a !== '' && !/^[/-]/.test(a));
}

function stripEntry(arg: string): string {
  // rundll32 "x.dll",Entry / x.dll,#1 / x.dll Entry: the DLL is before the comma.
  const comma = arg.indexOf(',');
  return (comma < 0 ? arg : arg.slice(0, comma)).trim().replace(/^"|"$/g, '');
}

function powershellTargets(args: readonly string[]): { path: string; how: string }[] {
  const out: { path: string; how: string }[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const low = a.toLowerCase();
    if (/^[-/]f(i|il|ile)?$/.test(low) && args[i + 1] !== undefined) {
      out.push({ path: args[i + 1]!, how: 'script' });
      i++;
      continue;
    }
    if (/^[-/]/.test(a)) {
      // Options with a value: skip the value (-ExecutionPolicy Bypass, -WindowStyle Hidden, …).
      if (/^[-/](ex|exe|exec|execu|execut|executi|executio|execution|executionp|executionpolicy|ep|w|wi|win|wind|windo|window|windows|windowst|windowsty|windowstyl|windowstyle|v|ve|ver|vers|versi|versio|version|psc|psconsolefile|inputformat|outputformat|if|of|configurationname|wd|workingdirectory)$/i.test(low)) i++;
      else if (/^[-/](c|co|com|comm|comma|comman|command|e|ec|en|enc|enco|encod|encode|encoded|encodedc|encodedcommand)$/i.test(low)) break;
      continue;
    }
    if (SCRIPT_EXT.test(a)) out.push({ path: a, how: 'script' });
    break;
  }
  // Script paths named inside an inline command: `-c "& 'C:\x\a.ps1'"`, `. .\a.ps1`, `Import-Module x.psm1`.
  const inline = args.join(' ');
  for (const m of inline.matchAll(/(?:^|[\s'"&.(])((?:[a-z]:\\|\\\\|\.{1,2}\\)[^'"|;&<>\r\n]*?\.(?:ps1|psm1))(?=$|[\s'";)])/gi)) {
    if (!out.some((t) => t.path === m[1])) out.push({ path: m[1]!, how: 'script' });
  }
  return out;
}

function cmdTargets(args: readonly string[]): { path: string; how: string }[] {
  const i = args.findIndex((a) => /^\/[ck]$/i.test(a) || /^\/[ck]\S/i.test(a));
  if (i < 0) return [];
  const rest = /^\/[ck]$/i.test(args[i]!) ? args.slice(i + 1) : [args[i]!.slice(2), ...args.slice(i + 1)];
  const out: { path: string; how: string }[] = [];
  // `cmd /c "a.bat arg"` arrives as one quoted argument: split it again.
  const words = rest.length === 1 ? splitCommandLine(rest[0]!) : rest;
  let first = true;
  for (const w of words) {
    if (w === '&' || w === '&&' || w === '||' || w === '|') {
      first = true;
      continue;
    }
    if (first && /^start$/i.test(w)) continue;
    if (first && /^call$/i.test(w)) continue;
    if (first && /^\//.test(w)) continue;
    if (first && /\.(bat|cmd|vbs|vbe|js|jse|wsf|hta|ps1|exe|scr|com|pif|lnk|msi|cpl|chm)$/i.test(w)) out.push({ path: w, how: /\.(bat|cmd)$/i.test(w) ? 'script' : 'opened' });
    first = false;
  }
  return out;
}

/**
 * The files a host or loader process runs by its command line. `image` is
 * the process's executable, `cmd` its command line, `cwd` its current
 * directory (relative paths are resolved against it). An ordinary program
 * that merely names a file gives nothing.
 */
export function hostedTargets(image: string, cmd: string, cwd?: string): HostedTarget[] {
  const host = baseName(image);
  if (!HOSTS.has(host)) return [];
  const argv = splitCommandLine(cmd);
  // Drop argv[0] (the program as typed), whatever it is.
  const args = argv.slice(1);
  let raw: { path: string; how: string }[] = [];
  switch (host) {
    case 'wscript.exe':
    case 'cscript.exe': {
      const p = positional(args).find((a) => !a.startsWith('//'));
      if (p !== undefined) raw.push({ path: p, how: 'script' });
      break;
    }
    case 'mshta.exe': {
      const p = args.find((a) => a !== '' && !/^[-/]/.test(a));
      if (p !== undefined && !/^(javascript|vbscript|about):/i.test(p)) raw.push({ path: p, how: 'hta' });
      break;
    }
    case 'rundll32.exe': {
      const p = args.find((a) => a !== '' && !/^[-/]/.test(a));
      if (p !== undefined && !/^(javascript|vbscript):/i.test(p)) {
        let dll = stripEntry(p);
        if (dll !== '' && !/\.[a-z0-9]{1,4}$/i.test(dll)) dll += '.dll';
        if (dll !== '') raw.push({ path: dll, how: 'dll' });
      }
      break;
    }
    case 'regsvr32.exe': {
      for (const a of args) {
        const m = /^[-/]i:(.+)$/i.exec(a);
        if (m !== null) raw.push({ path: m[1]!.replace(/^"|"$/g, ''), how: 'scriptlet' });
      }
      for (const p of positional(args)) if (!/^scrobj(\.dll)?$/i.test(p)) raw.push({ path: p, how: 'dll' });
      break;
    }
    case 'powershell.exe':
    case 'pwsh.exe':
    case 'powershell_ise.exe':
      raw = powershellTargets(args);
      break;
    case 'cmd.exe':
      raw = cmdTargets(args);
      break;
    case 'msiexec.exe': {
      for (let i = 0; i < args.length; i++) {
        const a = args[i]!.toLowerCase();
        if ((a === '/i' || a === '-i' || a === '/package' || a === '/a' || a === '/j' || a === '/y' || a === '/z' || a === '-package') && args[i + 1] !== undefined) {
          raw.push({ path: args[i + 1]!, how: a.endsWith('y') || a.endsWith('z') ? 'dll' : 'package' });
          i++;
        } else if (/^[/-]i\S/i.test(args[i]!) && SCRIPT_EXT.test(args[i]!)) raw.push({ path: args[i]!.slice(2), how: 'package' });
      }
      break;
    }
    case 'hh.exe': {
      const p = positional(args)[0];
      if (p !== undefined) raw.push({ path: p.replace(/^mk:@msitstore:/i, '').replace(/::.*$/, ''), how: 'help' });
      break;
    }
    case 'installutil.exe':
    case 'regasm.exe':
    case 'regsvcs.exe':
      for (const p of positional(args)) raw.push({ path: p, how: 'assembly' });
      break;
    case 'msbuild.exe':
      for (const p of positional(args)) raw.push({ path: p, how: 'project' });
      break;
    case 'mavinject.exe':
    case 'mavinject32.exe': {
      const i = args.findIndex((a) => /^\/injectrunning$/i.test(a));
      if (i >= 0 && args[i + 1] !== undefined) raw.push({ path: args[i + 1]!, how: 'dll' });
      break;
    }
    case 'wmic.exe':
      for (const a of args) {
        const m = /^\/format:(.+)$/i.exec(a);
        if (m !== null) raw.push({ path: m[1]!.replace(/^"|"$/g, ''), how: 'stylesheet' });
      }
      break;
    case 'control.exe':
      for (const p of positional(args)) if (/\.cpl$/i.test(p)) raw.push({ path: p, how: 'dll' });
      break;
    case 'java.exe':
    case 'javaw.exe': {
      const i = args.findIndex((a) => a === '-jar');
      if (i >= 0 && args[i + 1] !== undefined) raw.push({ path: args[i + 1]!, how: 'jar' });
      break;
    }
    case 'python.exe':
    case 'pythonw.exe':
    case 'node.exe':
    case 'perl.exe':
    case 'ruby.exe':
    case 'autoit3.exe':
    case 'cmstp.exe':
    case 'odbcconf.exe':
    case 'pcalua.exe':
    case 'forfiles.exe':
    case 'msxsl.exe':
    case 'ieexec.exe': {
      const p = positional(args).find((a) => SCRIPT_EXT.test(a) || /\.(au3|a3x|rb|pl|inf)$/i.test(a));
      if (p !== undefined) raw.push({ path: p, how: 'script' });
      break;
    }
  }
  const out: HostedTarget[] = [];
  for (const t of raw) {
    const p = t.path.trim();
    if (p === '') continue;
    const resolved = resolvePath(p, cwd);
    if (!out.some((o) => o.path.toLowerCase() === resolved.toLowerCase())) out.push({ path: resolved, how: t.how });
  }
  return out;
}

/** Script hosts and loaders whose command line names the file they run. */
export const HOSTS: ReadonlySet<string> = new Set([
  'wscript.exe',
  'cscript.exe',
  'mshta.exe',
  'rundll32.exe',
  'regsvr32.exe',
  'powershell.exe',
  'pwsh.exe',
  'powershell_ise.exe',
  'cmd.exe',
  'msiexec.exe',
  'hh.exe',
  'installutil.exe',
  'regasm.exe',
  'regsvcs.exe',
  'msbuild.exe',
  'mavinject.exe',
  'mavinject32.exe',
  'wmic.exe',
  'control.exe',
  'java.exe',
  'javaw.exe',
  'python.exe',
  'pythonw.exe',
  'node.exe',
  'perl.exe',
  'ruby.exe',
  'autoit3.exe',
  'cmstp.exe',
  'odbcconf.exe',
  'pcalua.exe',
  'forfiles.exe',
  'msxsl.exe',
  'ieexec.exe',
]);

/**
 * True when `target` (a hosted target's path) names `file`: equal paths
 * (case-insensitive), or, when the target stayed relative (no cwd known),
 * equal file names.
 */
export function targetNames(target: string, file: string): boolean {
  const t = target.toLowerCase();
  const f = file.toLowerCase();
  if (t === f) return true;
  if (/^[a-z]+:\/\//i.test(t)) {
    // A URL the host fetched: the file is its download when the names agree (browser caches add "[1]").
    const urlName = baseName(t.replace(/[?#].*$/, ''));
    return urlName !== '' && urlName === baseName(f).replace(/\[\d+\](?=\.[^.]*$|$)/, '');
  }
  if (/^[a-z]:\\|^\\\\/i.test(t)) return false;
  return baseName(t) === baseName(f);
}
