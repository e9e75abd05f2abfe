/**
 * The verdict model's factors (issue 13, docs/CORRELATION.md "The verdict
 * model"): from a built report's sections and facts, each factor that holds,
 * with its weight, its group (sigma, provenance, behaviour, signer) and the
 * events that prove it. The rule set (engine/rules/) keeps its own rules;
 * these factors add what a rule over one event cannot say: Sigma detections
 * by level, credential access and defence tampering read from command lines,
 * access masks and registry values, C2 on unusual ports, injection,
 * side-loading, timestomping, self-deletion, masquerading, the signer, and
 * the file's prevalence across the tenant's fleet.
 * No factor is keyed to a file name, host or hash of a known incident: each
 * describes a technique. One pass over the items, regular expressions
 * compiled once: this runs in the shard for every report.
 */
import type { EvidenceItem, EvidenceRef, ReportSection, RuleHit, SigmaReportHit } from '../../core/contracts.js';
import { isUserWritablePath } from '../device-state.js';
import { baseName } from '../provenance/command-line.js';
import { decodeProcessAccess, parseAccessMask } from '../facts/access-mask.js';

/** What the factors read besides the sections. */
export interface FactorInput {
  sections: readonly ReportSection[];
  /** The detected file's path. */
  path: string;
  executed: boolean;
  /** How it ran (process, hosted, loaded), when it ran. */
  how: 'process' | 'hosted' | 'loaded' | undefined;
  originKind: string;
  sig: string | undefined;
  signer: string | undefined;
  /** The version resource's original file name of the detected image, when known (Sysmon 1 / 7). */
  originalFileName: string | undefined;
  sigma: readonly SigmaReportHit[] | undefined;
  /** The attributes item's ref: the evidence of facts about the file itself. */
  fileRef: EvidenceRef;
  /** The deletion of the file's Zone.Identifier stream, when seen. */
  motwDeleted: EvidenceRef | undefined;
  /** The file's prevalence across the tenant's fleet at the detection; absent when its hash is unknown or prevalence is off. */
  prevalence?: FleetPrevalence;
}

/** The detected file's prevalence across the tenant's fleet at the detection (storage/prevalence.ts). */
export interface FleetPrevalence {
  /** Devices that had the file at or before the detection, the detecting one included; exact up to the record's cap. */
  devices: number;
  /** More devices than the cap had the file: `devices` is a lower bound. */
  saturated: boolean;
  /** Devices other than the detecting one that had it at or before the detection. */
  otherDevices: number;
  /** The fleet's first sighting, ms; undefined when no device had it before the detection. */
  firstSeen: number | undefined;
  /** Signer and signature state any device's events gave the file. */
  signer: string | undefined;
  sig: string | undefined;
  /** Thresholds (engine/prevalence-stage.ts): devices and days before the detection. */
  minDevices: number;
  minDays: number;
  detectedAt: number;
}

const DAY_MS = 24 * 3600 * 1000;

/** Weights, by factor id (docs/CORRELATION.md lists them with their meaning). */
export const FACTOR_WEIGHTS = {
  'sigma.critical': 40,
  'sigma.high': 25,
  'sigma.medium': 10,
  'sigma.low': 3,
  'behaviour.credential-access': 50,
  'behaviour.defence-tampering': 40,
  'behaviour.persistence': 25,
  'behaviour.c2-unusual-port': 20,
  'behaviour.injection': 40,
  'behaviour.side-loading': 35,
  'behaviour.timestomp': 25,
  'behaviour.self-delete': 20,
  'behaviour.host-spawns-shell': 20,
  'behaviour.discovery': 10,
  'behaviour.lateral-movement': 35,
  'behaviour.privilege-escalation': 35,
  'behaviour.beaconing': 20,
  'behaviour.fileless-payload': 20,
  'behaviour.drops-and-runs': 15,
  'chain.script-host-parent': 15,
  'signer.installed': -10,
  'chain.signed-parent': -10,
  'provenance.motw-removed': 10,
  'provenance.user-writable': 10,
  'provenance.unsigned': 10,
  'provenance.masquerading': 30,
  'signer.microsoft': -20,
  // prevalence across the tenant's fleet (issue 13)
  'prevalence.trusted': -40,
  'prevalence.common': -15,
  'prevalence.new-to-fleet': 0,
} as const;

export type FactorId = keyof typeof FACTOR_WEIGHTS;

const DESCRIPTIONS: Record<FactorId, string> = {
  'sigma.critical': 'Sigma rules of level critical fired in the process tree.',
  'sigma.high': 'Sigma rules of level high fired in the process tree.',
  'sigma.medium': 'Sigma rules of level medium fired in the process tree.',
  'sigma.low': 'Sigma rules of level low fired in the process tree.',
  'behaviour.credential-access': 'The process tree went after credentials (LSASS memory, SAM / NTDS hives, credential dumpers).',
  'behaviour.defence-tampering': 'The process tree tampered with defences (event log, Defender, shadow copies, firewall, audit policy).',
  'behaviour.persistence': 'A service or scheduled task was installed, or a persistence command ran.',
  'behaviour.c2-unusual-port': 'The process tree connected out to an IP address with no DNS name on an unusual port.',
  'behaviour.injection': 'The process tree injected into another process (remote thread, DLL injection).',
  'behaviour.side-loading': 'An unsigned DLL from a user-writable folder was loaded by a signed program (DLL side-loading).',
  'behaviour.timestomp': "The process tree changed a file's creation time (timestomping).",
  'behaviour.self-delete': 'A process of the tree deleted its own image or the detected file.',
  'behaviour.host-spawns-shell': 'The script or DLL, run by a host process, started a shell or another script host.',
  'behaviour.discovery': 'The process tree ran several discovery commands (whoami, net, systeminfo, nltest, …).',
  'behaviour.lateral-movement': 'The file was created remotely: copied over SMB, or written by a service just after a network logon with no local requester.',
  'behaviour.privilege-escalation': 'A named-pipe impersonation (cmd echo to \\\\.\\pipe\\…) or a UAC bypass hijack was used to gain rights.',
  'behaviour.beaconing': 'The process tree connected to the same IP address and port again and again (beaconing).',
  'behaviour.fileless-payload': 'A script or encoded payload was stored in the registry or a persistence command (a script host with a URL, an encoded command, long base64).',
  'behaviour.drops-and-runs': 'The process tree wrote an executable or script and then ran it.',
  'chain.script-host-parent': 'A script host or LOLBin started or ran the file from a user-writable folder.',
  'signer.installed': 'The file is signed and trusted, and installed where only administrators write.',
  'chain.signed-parent': "Its parent is an installed application or Windows' installer, not the shell, a script host, document reader or browser.",
  'provenance.motw-removed': "The file's Mark of the Web was deleted (it came from the internet).",
  'provenance.user-writable': 'The file sits in a user-writable folder.',
  'provenance.unsigned': 'The file is not signed.',
  'provenance.masquerading': 'The file carries the name of a Windows binary outside its folder, or was renamed from one.',
  'signer.microsoft': 'The file is signed by Microsoft and trusted.',
  'prevalence.trusted': "The file is signed by a trusted signer and was seen on many of the tenant's devices for weeks before the detection.",
  'prevalence.common': "The file was seen on many of the tenant's devices for weeks before the detection, but not signed by a trusted signer.",
  'prevalence.new-to-fleet': 'The file is new to the fleet: no other device of the tenant had it before the detection.',
};

/** Signers whose prevalent files the model calls white: Microsoft's certificates. */
const TRUSTED_FLEET_SIGNER = /^microsoft\b/i;

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const CREDENTIAL_CMD =
  /comsvcs(\.dll)?[\s,"']+#?(minidump|24)\b|sekurlsa|lsadump|kerberos::|mimikatz|procdump(64)?(\.exe)?"?\s.*\blsass|\bout-minidump\b|reg(\.exe)?"?\s+save\s+"?hklm[\\/](sam|security|system)\b|esentutl(\.exe)?"?\s.*[\\/](sam|ntds\.dit|security|system)\b|ntdsutil.*\bifm\b|[\\/]config[\\/]sam\b|invoke-mimikatz|get-gpppassword|dumpcreds|lazagne|nanodump|pypykatz/i;
const CREDENTIAL_FILE = /lsass[^\\]*\.dmp$|\\(sam|ntds\.dit)(\.save|\.bak|\.hive)?$/i;
const TAMPER_CMD =
  /wevtutil(\.exe)?"?\s+(cl|clear-log)\b|wevtutil(\.exe)?"?\s+sl\s.*\/e:false|\b(sc|net)(\.exe)?"?\s+(stop|config)\s+"?eventlog\b|clear-eventlog|remove-eventlog|set-mppreference\s.*-disable|add-mppreference\s.*-exclusion|vssadmin(\.exe)?"?\s+delete\s+shadows|shadowcopy\s+delete|wbadmin(\.exe)?"?\s+delete|bcdedit(\.exe)?"?\s.*(recoveryenabled\s+no|ignoreallfailures)|netsh(\.exe)?"?\s.*(firewall|advfirewall)\s.*\b(off|disable)\b|auditpol(\.exe)?"?\s.*(\/clear|\/remove|disable)|fltmc(\.exe)?"?\s+unload|taskkill(\.exe)?"?\s.*\b(msmpeng|mssense|sysmon)|(sc|net)(\.exe)?"?\s+(stop|delete)\s+"?(windefend|sense|sysmon)/i;
const TAMPER_REG = /\\windows defender\\(.*\\)?(disable[a-z]*|exclusions\\)|\\services\\eventlog\\.*\\(start|file|maxsize)$|\\policies\\system\\enablelua$|\\services\\(windefend|sense|sysmon[a-z0-9]*)\\start$/i;
const TAMPER_VALUE = /^(disableantispyware|disablerealtimemonitoring|disablebehaviormonitoring|disableioavprotection|enablelua)$/i;
const PERSIST_CMD =
  /schtasks(\.exe)?"?\s.*\/create\b|\bsc(\.exe)?"?\s+(\\\\\S+\s+)?create\b|new-service\b|register-scheduledtask\b|new-scheduledtask|reg(\.exe)?"?\s+add\s.*\\currentversion\\run|__eventfilter|commandlineeventconsumer|set-wmiinstance|\bat(\.exe)?"?\s+\d{1,2}:\d{2}/i;
/** Registry locations that make Windows run something: COM overrides, IFEO debuggers, Winlogon, AppInit, services' images. */
const PERSIST_REG =
  /(\\software\\classes|_classes)\\(wow6432node\\)?clsid\\\{[^}]+\}\\(inprocserver32|localserver32)|\\image file execution options\\[^\\]+\\(debugger|globalflag)|\\winlogon\\(shell|userinit|notify)|\\appinit_dlls|\\currentcontrolset\\services\\[^\\]+\\(imagepath|parameters\\servicedll)|\\currentversion\\(run|runonce|runservices)(once)?(\\|$)|\\explorer\\shell folders\\startup|\\environment\\userinitmprlogonscript/i;
/** A payload in a value or a command: a script host fetching a URL, an encoded command, a long base64 blob. */
const FILELESS = /(powershell|pwsh|mshta|wscript|cscript|rundll32|regsvr32)(\.exe)?["']?\s.*(https?:\/\/|javascript:|vbscript:|\s-e(nc|ncodedcommand)?\s|frombase64string|iex\b)|[A-Za-z0-9+/]{200,}={0,2}/i;
/** Cheap test before FILELESS (a backtracking regular expression over up to 1 KiB of registry data, per value). */
function mayHoldPayload(text: string): boolean {
  return text.length >= 200 || /powershell|pwsh|mshta|wscript|cscript|rundll32|regsvr32/i.test(text);
}
const SCRIPT_PARENTS = new Set(['powershell.exe', 'pwsh.exe', 'wscript.exe', 'cscript.exe', 'mshta.exe', 'rundll32.exe', 'regsvr32.exe', 'wmic.exe', 'wmiprvse.exe', 'msbuild.exe', 'installutil.exe', 'certutil.exe', 'bitsadmin.exe', 'hh.exe', 'winword.exe', 'excel.exe', 'powerpnt.exe', 'outlook.exe']);
const INSTALLERS = new Set(['msiexec.exe', 'trustedinstaller.exe', 'tiworker.exe']);
const DROPPED_EXEC = /\.(exe|dll|scr|com|bat|cmd|ps1|vbs|vbe|js|jse|hta|wsf|msi|cpl|ocx)$/i;
const DISCOVERY_IMAGES = new Set(['whoami.exe', 'systeminfo.exe', 'nltest.exe', 'ipconfig.exe', 'net.exe', 'net1.exe', 'quser.exe', 'qwinsta.exe', 'tasklist.exe', 'hostname.exe', 'arp.exe', 'route.exe', 'netstat.exe', 'dsquery.exe', 'adfind.exe']);
const SHELLS = new Set(['cmd.exe', 'powershell.exe', 'pwsh.exe', 'wscript.exe', 'cscript.exe', 'mshta.exe', 'rundll32.exe', 'regsvr32.exe', 'certutil.exe', 'bitsadmin.exe', 'schtasks.exe', 'msiexec.exe', 'wmic.exe', 'installutil.exe', 'msbuild.exe']);
/** Ports most software uses outbound; anything else on a raw IP looks like a C2 channel. */
const COMMON_PORTS = new Set([80, 443, 53, 123, 137, 138, 139, 445, 389, 636, 88, 135, 3268, 5985, 5986, 67, 68, 1900, 5353, 5355]);
const SYSTEM_BINARIES = new Set([
  'svchost.exe', 'lsass.exe', 'csrss.exe', 'smss.exe', 'services.exe', 'winlogon.exe', 'wininit.exe', 'spoolsv.exe', 'explorer.exe', 'taskhostw.exe', 'wermgr.exe', 'dllhost.exe',
  'conhost.exe', 'rundll32.exe', 'regsvr32.exe', 'cmd.exe', 'powershell.exe', 'searchindexer.exe', 'taskmgr.exe', 'notepad.exe', 'calc.exe', 'mshta.exe', 'wscript.exe', 'cscript.exe',
  'certutil.exe', 'sihost.exe', 'ctfmon.exe', 'userinit.exe', 'lsm.exe', 'msiexec.exe', 'werfault.exe', 'audiodg.exe', 'dwm.exe', 'fontdrvhost.exe', 'runtimebroker.exe',
]);

/** Writable by users in principle, but owned by a protected service (Defender's platform updates live there). */
const PROTECTED_DATA = /^[a-z]:\\programdata\\microsoft\\windows defender\\platform\\/i;

function installedPath(path: string): boolean {
  return /^[a-z]:\\/i.test(path) && (!isUserWritablePath(path) || PROTECTED_DATA.test(path));
}

function isIpLiteral(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-f:.]+$/i.test(s));
}

function isLoopbackOrLinkLocal(ip: string): boolean {
  return /^(127\.|0\.|169\.254\.|255\.|22[4-9]\.|23\d\.)/.test(ip) || /^(::1$|fe80:|ff)/i.test(ip);
}

interface Acc {
  evidence: EvidenceRef[];
  details: string[];
}

function add(acc: Map<FactorId, Acc>, id: FactorId, ref: EvidenceRef | undefined, detail?: string): void {
  let a = acc.get(id);
  if (a === undefined) {
    a = { evidence: [], details: [] };
    acc.set(id, a);
  }
  if (ref !== undefined && !a.evidence.some((r) => r.seq === ref.seq && r.tmid === ref.tmid) && a.evidence.length < 20) a.evidence.push(ref);
  if (detail !== undefined && !a.details.includes(detail) && a.details.length < 5) a.details.push(detail);
}

function s(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** The factors that hold for a report, in a stable order, each with its weight, group, evidence and detail. */
export function verdictFactors(input: FactorInput): RuleHit[] {
  const acc = new Map<FactorId, Acc>();
  const sectionOf = (id: string): EvidenceItem[] => input.sections.find((x) => x.id === id)?.items ?? [];
  const chain = sectionOf('chain');
  // The tree that acted: the detected (or host) process, the last of the chain, and its descendants.
  const detectedStart = input.executed ? chain.at(-1) : undefined;
  // When the file did not run, its creator (and an inferred requester) is the actor: their command lines count.
  const originStarts = input.executed ? [] : sectionOf('origin').filter((it) => it.event.k === 'proc.start');
  const tree = [...(detectedStart === undefined ? [] : [detectedStart]), ...sectionOf('descendants'), ...originStarts];
  const treeImages = new Set<string>();
  const discovery = new Set<string>();
  for (const it of tree) {
    const e = it.event;
    const cmd = s(e.cmd);
    const image = s(e.image);
    if (image !== '') treeImages.add(image.toLowerCase());
    if (CREDENTIAL_CMD.test(cmd)) add(acc, 'behaviour.credential-access', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
    if (TAMPER_CMD.test(cmd)) add(acc, 'behaviour.defence-tampering', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
    if (PERSIST_CMD.test(cmd)) {
      add(acc, 'behaviour.persistence', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
      if (FILELESS.test(cmd.replace(/^\S+\s*/, ''))) add(acc, 'behaviour.fileless-payload', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
    }
    if (/\becho\b.*>\s*\\\\\.\\pipe\\/i.test(cmd) || /\\(ms-settings|mscfile|exefile|folder)\\shell\\open\\command/i.test(cmd)) add(acc, 'behaviour.privilege-escalation', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
    if (/mavinject(32)?(\.exe)?\s.*\/injectrunning/i.test(cmd)) add(acc, 'behaviour.injection', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
    const b = baseName(image);
    if (it !== detectedStart && DISCOVERY_IMAGES.has(b)) discovery.add(b);
    // A hosted script or DLL whose host started a shell or another script host.
    if (it !== detectedStart && (input.how === 'hosted' || input.how === 'loaded') && SHELLS.has(b) && detectedStart !== undefined && s(e.ppg).toLowerCase() === s(detectedStart.event.pg).toLowerCase()) {
      add(acc, 'behaviour.host-spawns-shell', it.ref, `${baseName(s(detectedStart.event.image))} started ${b}`);
    }
  }
  // Named-pipe impersonation is often the detected process's parent (the service a getsystem creates).
  for (const it of chain.slice(0, -1)) {
    const cmd = s(it.event.cmd);
    if (/\becho\b.*>\s*\\\\\.\\pipe\\/i.test(cmd)) add(acc, 'behaviour.privilege-escalation', it.ref, `${baseName(s(it.event.image))}: ${cmd.slice(0, 160)}`);
  }
  if (discovery.size >= 2) {
    for (const it of tree) if (discovery.has(baseName(s(it.event.image)))) add(acc, 'behaviour.discovery', it.ref, [...discovery].join(', '));
  }
  // The detected process and its ancestors: a child opening its parent (a console host, a crash reporter) is routine.
  const chainPgs = new Set(chain.map((it) => s(it.event.pg).toLowerCase()).filter((x) => x !== ''));
  for (const it of sectionOf('processAccess')) {
    const e = it.event;
    const target = baseName(s(e.timage));
    if (e.k === 'proc.remote_thread') {
      add(acc, 'behaviour.injection', it.ref, `remote thread into ${target || 'another process'}`);
      continue;
    }
    const mask = parseAccessMask(e.access);
    if (mask === undefined) continue;
    const d = decodeProcessAccess(mask);
    if (target === 'lsass.exe' && d.readsMemory) add(acc, 'behaviour.credential-access', it.ref, `lsass.exe opened with ${d.rights.join(', ')}`);
    // Opening another process (its own children included: CreateProcess already hands out a full handle) with every right is how hollowing starts.
    else if (d.full && target !== '' && !chainPgs.has(s(e.tpg).toLowerCase()) && s(e.tpg).toLowerCase() !== s(e.pg).toLowerCase()) add(acc, 'behaviour.injection', it.ref, `${target} opened with ${d.rights.join(', ')}`);
    else if (d.writesMemory && target !== '' && !treeImages.has(s(e.timage).toLowerCase()) && (mask & 0x20) !== 0 && (mask & 0x8) !== 0) {
      add(acc, 'behaviour.injection', it.ref, `${target} opened with ${d.rights.join(', ')}`);
    }
  }
  for (const it of sectionOf('imageLoads')) {
    if (typeof it.note === 'string' && it.note.startsWith('side-loading')) add(acc, 'behaviour.side-loading', it.ref, `${s(it.event.path)} loaded by ${baseName(s(it.event.image))}`);
  }
  const detectedPath = input.path.toLowerCase();
  for (const it of sectionOf('filesWritten')) {
    const e = it.event;
    const p = s(e.path);
    // Timestomping hides a dropped program or script; shells and browsers reset times of their own caches all the time.
    if (e.k === 'file.time' && DROPPED_EXEC.test(p)) add(acc, 'behaviour.timestomp', it.ref, p);
    else if (e.k === 'file.delete' && (p.toLowerCase() === detectedPath || treeImages.has(p.toLowerCase()))) add(acc, 'behaviour.self-delete', it.ref, p);
    if ((e.k === 'file.create' || e.k === 'file.write') && CREDENTIAL_FILE.test(p)) add(acc, 'behaviour.credential-access', it.ref, p);
  }
  for (const it of sectionOf('registry')) {
    const e = it.event;
    if (e.k === 'service.install' || e.k === 'task.create') {
      add(acc, 'behaviour.persistence', it.ref, s(e.name) || s(e.task) || s(e.k));
      if (FILELESS.test(`${s(e.imagePath)} ${s(e.command)}`)) add(acc, 'behaviour.fileless-payload', it.ref, s(e.imagePath) || s(e.command));
      continue;
    }
    if (e.k === 'service.config' && /eventlog|windefend|sense|sysmon/i.test(s(e.name)) && /disabled/i.test(s(e.startType))) {
      add(acc, 'behaviour.defence-tampering', it.ref, `${s(e.name)} ${s(e.startType)}`);
      continue;
    }
    const key = s(e.key);
    const value = s(e.value);
    const full = value === '' ? key : `${key}\\${value}`;
    if ((e.k === 'reg.set' || e.k === 'reg.create') && PERSIST_REG.test(full) && !/\\currentcontrolset\\services\\(bam|dam)\\/i.test(full)) add(acc, 'behaviour.persistence', it.ref, full);
    if (e.k === 'reg.set' && mayHoldPayload(s(e.data)) && FILELESS.test(s(e.data))) add(acc, 'behaviour.fileless-payload', it.ref, `${full} = ${s(e.data).slice(0, 80)}`);
    if (TAMPER_REG.test(full) || (TAMPER_VALUE.test(value) && e.k === 'reg.set')) {
      if (!(/enablelua$/i.test(full) && !/^(dword \()?0x0*0\)?$|^0$/i.test(s(e.data)))) add(acc, 'behaviour.defence-tampering', it.ref, full);
    }
  }
  const dials = new Map<string, EvidenceItem[]>();
  for (const it of sectionOf('network')) {
    const e = it.event;
    if (e.k !== 'net.conn' || e.dir === 'in') continue;
    if (isIpLiteral(s(e.rip)) && !isLoopbackOrLinkLocal(s(e.rip)) && !(typeof it.note === 'string' && it.note.includes(' is '))) {
      const key = `${s(e.rip)}:${String(e.rport)}`;
      const list = dials.get(key) ?? [];
      list.push(it);
      dials.set(key, list);
    }
    const rip = s(e.rip);
    const port = typeof e.rport === 'number' ? e.rport : Number(e.rport);
    // Named destinations are left to intel; an IP the tree dialled with no name, on a port few programs use, looks like C2.
    if (!isIpLiteral(rip) || isLoopbackOrLinkLocal(rip) || s(e.rhost) !== '' || (typeof it.note === 'string' && it.note.includes(' is '))) continue;
    if (Number.isFinite(port) && !COMMON_PORTS.has(port) && port < 49152) add(acc, 'behaviour.c2-unusual-port', it.ref, `${rip}:${port}`);
  }
  // Five or more connections to one nameless address and port, spread over time: a beacon.
  for (const [key, list] of dials) {
    if (list.length < 5) continue;
    const span = (list.at(-1)!.ref.ts - list[0]!.ref.ts) / 1000;
    if (span >= 10) for (const it of list.slice(0, 10)) add(acc, 'behaviour.beaconing', it.ref, `${list.length} connections to ${key} over ${Math.round(span)} s`);
  }
  // Wrote an executable or script, then a process of the tree ran it.
  const written = new Map<string, EvidenceItem>();
  for (const it of sectionOf('filesWritten')) {
    const p = s(it.event.path).toLowerCase();
    if ((it.event.k === 'file.create' || it.event.k === 'file.write' || it.event.k === 'file.rename') && DROPPED_EXEC.test(p)) written.set(p, it);
    const np = s(it.event.newPath).toLowerCase();
    if (np !== '' && DROPPED_EXEC.test(np)) written.set(np, it);
  }
  if (written.size > 0) {
    for (const it of sectionOf('descendants')) {
      const img = s(it.event.image).toLowerCase();
      const cmd = s(it.event.cmd).toLowerCase();
      for (const [p, w] of written) {
        if (img === p || cmd.includes(p) || (cmd.includes(baseName(p)) && !SYSTEM_BINARIES.has(baseName(p)))) {
          add(acc, 'behaviour.drops-and-runs', w.ref, `${baseName(p)} written then run`);
          add(acc, 'behaviour.drops-and-runs', it.ref);
          break;
        }
      }
    }
  }
  if (input.motwDeleted !== undefined) add(acc, 'provenance.motw-removed', input.motwDeleted);
  if (input.originKind === 'remote') add(acc, 'behaviour.lateral-movement', sectionOf('origin')[0]?.ref ?? input.fileRef, 'copied over SMB or created after a network logon');
  for (const it of sectionOf('origin')) {
    if (it.event.k === 'logon' && typeof it.note === 'string' && it.note.endsWith('created remotely')) add(acc, 'behaviour.lateral-movement', it.ref, it.note.slice('inferred: '.length));
  }

  // Provenance of the file itself.
  const name = baseName(input.path);
  // The file is itself a credential store copy or an LSASS dump.
  if (CREDENTIAL_FILE.test(input.path)) add(acc, 'behaviour.credential-access', input.fileRef, `${name} is a credential store copy or an LSASS dump`);
  // Where a file sits and whether it is signed say little until it runs: every download is in a user folder.
  if (input.executed && !installedPath(input.path) && isUserWritablePath(input.path)) add(acc, 'provenance.user-writable', input.fileRef, input.path);
  if (input.executed && input.sig === 'unsigned') add(acc, 'provenance.unsigned', input.fileRef);
  const original = (input.originalFileName ?? '').toLowerCase().replace(/\.mui$/, '');
  if (SYSTEM_BINARIES.has(name) && !/^[a-z]:\\windows\\(system32|syswow64|winsxs)\\/i.test(input.path) && !/^[a-z]:\\windows\\[^\\]+$/i.test(input.path)) {
    add(acc, 'provenance.masquerading', input.fileRef, `${name} outside the Windows folders`);
  } else if (original !== '' && original !== name && SYSTEM_BINARIES.has(original)) add(acc, 'provenance.masquerading', input.fileRef, `${name} is ${original} renamed`);
  // A signed script host or LOLBin told to run inline script or a payload is abused: its signature vouches for nothing.
  const abused = SHELLS.has(name) && detectedStart !== undefined && /(javascript|vbscript):|https?:\/\/|\s-e(nc|ncodedcommand)?\s|frombase64string|\biex\b|downloadstring/i.test(s(detectedStart.event.cmd));
  if (!abused && input.sig === 'trusted' && /^microsoft\b/i.test(input.signer ?? '') && (input.how === 'process' || input.how === 'loaded')) add(acc, 'signer.microsoft', input.fileRef, input.signer);
  if (!abused && input.sig === 'trusted' && installedPath(input.path)) add(acc, 'signer.installed', input.fileRef, input.path);
  // Prevalence across the tenant's fleet: an abused script host is everywhere, so it vouches for nothing either.
  const p = input.prevalence;
  if (p !== undefined && !abused) {
    const days = p.firstSeen === undefined ? 0 : Math.floor((p.detectedAt - p.firstSeen) / DAY_MS);
    const seen = `seen on ${p.devices}${p.saturated ? ' or more' : ''} devices of the tenant since ${p.firstSeen === undefined ? '-' : isoDay(p.firstSeen)} (${days} days before the detection)`;
    // The report's own signature first; another device's events may have carried it when this one's did not.
    const sig = input.sig ?? p.sig;
    const signer = input.signer ?? p.signer;
    if (p.devices >= p.minDevices && p.firstSeen !== undefined && days >= p.minDays) {
      if (sig === 'trusted' && TRUSTED_FLEET_SIGNER.test(signer ?? '')) add(acc, 'prevalence.trusted', input.fileRef, `${seen}, signed by ${signer}`);
      else add(acc, 'prevalence.common', input.fileRef, `${seen}, ${sig === undefined ? 'signature unknown' : `${sig}${signer === undefined ? '' : ` (${signer})`}`}`);
    } else if (p.otherDevices === 0) {
      add(acc, 'prevalence.new-to-fleet', input.fileRef, p.firstSeen === undefined ? 'no device of the tenant reported its hash before' : `first seen on this device ${isoDay(p.firstSeen)}`);
    }
  }
  // A script or DLL from a user-writable folder run by a script host or LOLBin's command line (rundll32 x.dll,Entry,
  // wscript x.vbs…): the same weight as such a host starting an EXE from there.
  if (input.how === 'hosted' && isUserWritablePath(input.path)) {
    const host = chain.at(-1);
    const hb = baseName(s(host?.event.image));
    if (host !== undefined && hb !== '' && SCRIPT_PARENTS.has(hb)) add(acc, 'chain.script-host-parent', host.ref, `${hb} ran ${name}`);
  }
  if (input.how === 'process' && detectedStart !== undefined) {
    const parent = s(detectedStart.event.pimage) || s(chain.at(-2)?.event.image);
    const pb = baseName(parent);
    if (pb !== '' && SCRIPT_PARENTS.has(pb) && isUserWritablePath(input.path)) add(acc, 'chain.script-host-parent', detectedStart.ref, `${pb} started ${name}`);
    // An installed application or Windows' installer started it; the shell (explorer) or a service host vouches for nothing.
    else if (pb !== '' && (INSTALLERS.has(pb) || (/^[a-z]:\\program files( \(x86\))?\\/i.test(parent) && !SCRIPT_PARENTS.has(pb) && !/\\(chrome|msedge|firefox|iexplore|brave|opera|acrord32|acrobat|foxitreader|foxitpdfreader)\.exe$/i.test(parent)))) {
      add(acc, 'chain.signed-parent', detectedStart.ref, parent);
    }
  }

  // Sigma detections in the tree, by level: one factor per level, a little more per further distinct rule.
  const byLevel = new Map<string, SigmaReportHit[]>();
  for (const h of input.sigma ?? []) {
    const level = h.level === 'informational' ? 'low' : h.level;
    if (level !== 'critical' && level !== 'high' && level !== 'medium' && level !== 'low') continue;
    const list = byLevel.get(level) ?? [];
    if (!list.some((x) => x.ruleId === h.ruleId)) list.push(h);
    byLevel.set(level, list);
  }

  const out: RuleHit[] = [];
  for (const level of ['critical', 'high', 'medium', 'low'] as const) {
    const hits = byLevel.get(level);
    if (hits === undefined || hits.length === 0) continue;
    const id = `sigma.${level}` as FactorId;
    const base = FACTOR_WEIGHTS[id];
    // Each further distinct rule adds a fifth of the level's weight, up to double.
    const weight = Math.min(base * 2, base + Math.round((base / 5) * (hits.length - 1)));
    out.push({
      ruleId: id,
      description: DESCRIPTIONS[id],
      weight,
      group: 'sigma',
      detail: hits.slice(0, 5).map((h) => h.title).join('; '),
      evidence: hits.slice(0, 20).map((h) => h.event),
    });
  }
  for (const id of Object.keys(FACTOR_WEIGHTS) as FactorId[]) {
    if (id.startsWith('sigma.')) continue;
    const a = acc.get(id);
    if (a === undefined) continue;
    out.push({
      ruleId: id,
      description: DESCRIPTIONS[id],
      weight: FACTOR_WEIGHTS[id],
      group: id.slice(0, id.indexOf('.')),
      ...(a.details.length === 0 ? {} : { detail: a.details.join('; ') }),
      evidence: a.evidence,
    });
  }
  return out;
}
