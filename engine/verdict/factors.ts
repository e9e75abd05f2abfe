/**
 * The verdict model's factors (issue 13, docs/CORRELATION.md "The verdict
 * model"): from a built report's sections and facts, each factor that holds,
 * with its weight, its group (sigma, provenance, behaviour, signer) and the
 * events that prove it. The rule set (engine/rules/) keeps its own rules;
 * these factors add what a rule over one event cannot say: Sigma detections
 * by level, credential access and defence tampering read from command lines,
 * access masks and registry values, C2 on unusual ports, injection,
 * side-loading, timestomping, self-deletion, masquerading, and the signer.
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
}

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
  'behaviour.injection': 30,
  'behaviour.side-loading': 35,
  'behaviour.timestomp': 25,
  'behaviour.self-delete': 20,
  'behaviour.host-spawns-shell': 20,
  'behaviour.discovery': 10,
  'behaviour.lateral-movement': 25,
  'provenance.motw-removed': 10,
  'provenance.user-writable': 10,
  'provenance.unsigned': 10,
  'provenance.masquerading': 30,
  'signer.microsoft': -20,
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
  'behaviour.lateral-movement': 'The file was created remotely: a service wrote it just after a network logon, with no local requester.',
  'provenance.motw-removed': "The file's Mark of the Web was deleted (it came from the internet).",
  'provenance.user-writable': 'The file sits in a user-writable folder.',
  'provenance.unsigned': 'The file is not signed.',
  'provenance.masquerading': 'The file carries the name of a Windows binary outside its folder, or was renamed from one.',
  'signer.microsoft': 'The file is signed by Microsoft and trusted.',
};

const CREDENTIAL_CMD =
  /comsvcs(\.dll)?[\s,"']+#?(minidump|24)\b|sekurlsa|lsadump|kerberos::|mimikatz|procdump(64)?(\.exe)?\s.*\blsass|\bout-minidump\b|reg(\.exe)?\s+save\s+"?hklm[\\/](sam|security|system)\b|esentutl(\.exe)?\s.*[\\/](sam|ntds\.dit|security|system)\b|ntdsutil.*\bifm\b|[\\/]config[\\/]sam\b|invoke-mimikatz|get-gpppassword|dumpcreds|lazagne|nanodump|pypykatz/i;
const CREDENTIAL_FILE = /lsass[^\\]*\.dmp$|\\(sam|ntds\.dit)(\.save|\.bak|\.hive)?$/i;
const TAMPER_CMD =
  /wevtutil(\.exe)?\s+(cl|clear-log)\b|wevtutil(\.exe)?\s+sl\s.*\/e:false|\b(sc|net)(\.exe)?\s+(stop|config)\s+"?eventlog\b|clear-eventlog|remove-eventlog|set-mppreference\s.*-disable|add-mppreference\s.*-exclusion|vssadmin(\.exe)?\s+delete\s+shadows|shadowcopy\s+delete|wbadmin(\.exe)?\s+delete|bcdedit(\.exe)?\s.*(recoveryenabled\s+no|ignoreallfailures)|netsh(\.exe)?\s.*(firewall|advfirewall)\s.*\b(off|disable)\b|auditpol(\.exe)?\s.*(\/clear|\/remove|disable)|fltmc(\.exe)?\s+unload|taskkill(\.exe)?\s.*\b(msmpeng|mssense|sysmon)|(sc|net)(\.exe)?\s+(stop|delete)\s+"?(windefend|sense|sysmon)/i;
const TAMPER_REG = /\\windows defender\\(.*\\)?(disable[a-z]*|exclusions\\)|\\services\\eventlog\\.*\\(start|file|maxsize)$|\\policies\\system\\enablelua$|\\services\\(windefend|sense|sysmon[a-z0-9]*)\\start$/i;
const TAMPER_VALUE = /^(disableantispyware|disablerealtimemonitoring|disablebehaviormonitoring|disableioavprotection|enablelua)$/i;
const PERSIST_CMD =
  /schtasks(\.exe)?\s.*\/create\b|\bsc(\.exe)?\s+(\\\\\S+\s+)?create\b|new-service\b|register-scheduledtask\b|new-scheduledtask|reg(\.exe)?\s+add\s.*\\currentversion\\run|__eventfilter|commandlineeventconsumer|set-wmiinstance|\bat(\.exe)?\s+\d{1,2}:\d{2}/i;
const DISCOVERY_IMAGES = new Set(['whoami.exe', 'systeminfo.exe', 'nltest.exe', 'ipconfig.exe', 'net.exe', 'net1.exe', 'quser.exe', 'qwinsta.exe', 'tasklist.exe', 'hostname.exe', 'arp.exe', 'route.exe', 'netstat.exe', 'dsquery.exe', 'adfind.exe']);
const SHELLS = new Set(['cmd.exe', 'powershell.exe', 'pwsh.exe', 'wscript.exe', 'cscript.exe', 'mshta.exe', 'rundll32.exe', 'regsvr32.exe', 'certutil.exe', 'bitsadmin.exe', 'schtasks.exe', 'msiexec.exe', 'wmic.exe', 'installutil.exe', 'msbuild.exe']);
/** Ports most software uses outbound; anything else on a raw IP looks like a C2 channel. */
const COMMON_PORTS = new Set([80, 443, 53, 123, 137, 138, 139, 445, 389, 636, 88, 135, 3268, 5985, 5986, 67, 68, 1900, 5353, 5355]);
const SYSTEM_BINARIES = new Set([
  'svchost.exe', 'lsass.exe', 'csrss.exe', 'smss.exe', 'services.exe', 'winlogon.exe', 'wininit.exe', 'spoolsv.exe', 'explorer.exe', 'taskhostw.exe', 'wermgr.exe', 'dllhost.exe',
  'conhost.exe', 'rundll32.exe', 'regsvr32.exe', 'cmd.exe', 'powershell.exe', 'searchindexer.exe', 'taskmgr.exe', 'notepad.exe', 'calc.exe', 'mshta.exe', 'wscript.exe', 'cscript.exe',
  'certutil.exe', 'sihost.exe', 'ctfmon.exe', 'userinit.exe', 'lsm.exe', 'msiexec.exe', 'werfault.exe', 'audiodg.exe', 'dwm.exe', 'fontdrvhost.exe', 'runtimebroker.exe',
]);

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
    if (PERSIST_CMD.test(cmd)) add(acc, 'behaviour.persistence', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
    if (/mavinject(32)?(\.exe)?\s.*\/injectrunning/i.test(cmd)) add(acc, 'behaviour.injection', it.ref, `${baseName(image)}: ${cmd.slice(0, 160)}`);
    const b = baseName(image);
    if (it !== detectedStart && DISCOVERY_IMAGES.has(b)) discovery.add(b);
    // A hosted script or DLL whose host started a shell or another script host.
    if (it !== detectedStart && (input.how === 'hosted' || input.how === 'loaded') && SHELLS.has(b) && detectedStart !== undefined && s(e.ppg).toLowerCase() === s(detectedStart.event.pg).toLowerCase()) {
      add(acc, 'behaviour.host-spawns-shell', it.ref, `${baseName(s(detectedStart.event.image))} started ${b}`);
    }
  }
  if (discovery.size >= 2) {
    for (const it of tree) if (discovery.has(baseName(s(it.event.image)))) add(acc, 'behaviour.discovery', it.ref, [...discovery].join(', '));
  }
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
    if (e.k === 'file.time') add(acc, 'behaviour.timestomp', it.ref, p);
    else if (e.k === 'file.delete' && (p.toLowerCase() === detectedPath || treeImages.has(p.toLowerCase()))) add(acc, 'behaviour.self-delete', it.ref, p);
    if ((e.k === 'file.create' || e.k === 'file.write') && CREDENTIAL_FILE.test(p)) add(acc, 'behaviour.credential-access', it.ref, p);
  }
  for (const it of sectionOf('registry')) {
    const e = it.event;
    if (e.k === 'service.install' || e.k === 'task.create') {
      add(acc, 'behaviour.persistence', it.ref, s(e.name) || s(e.task) || s(e.k));
      continue;
    }
    if (e.k === 'service.config' && /eventlog|windefend|sense|sysmon/i.test(s(e.name)) && /disabled/i.test(s(e.startType))) {
      add(acc, 'behaviour.defence-tampering', it.ref, `${s(e.name)} ${s(e.startType)}`);
      continue;
    }
    const key = s(e.key);
    const value = s(e.value);
    const full = value === '' ? key : `${key}\\${value}`;
    if (TAMPER_REG.test(full) || (TAMPER_VALUE.test(value) && e.k === 'reg.set')) {
      if (!(/enablelua$/i.test(full) && !/^(dword \()?0x0*0\)?$|^0$/i.test(s(e.data)))) add(acc, 'behaviour.defence-tampering', it.ref, full);
    }
  }
  for (const it of sectionOf('network')) {
    const e = it.event;
    if (e.k !== 'net.conn' || e.dir === 'in') continue;
    const rip = s(e.rip);
    const port = typeof e.rport === 'number' ? e.rport : Number(e.rport);
    // Named destinations are left to intel; an IP the tree dialled with no name, on a port few programs use, looks like C2.
    if (!isIpLiteral(rip) || isLoopbackOrLinkLocal(rip) || s(e.rhost) !== '' || (typeof it.note === 'string' && it.note.includes(' is '))) continue;
    if (Number.isFinite(port) && !COMMON_PORTS.has(port) && port < 49152) add(acc, 'behaviour.c2-unusual-port', it.ref, `${rip}:${port}`);
  }
  if (input.motwDeleted !== undefined) add(acc, 'provenance.motw-removed', input.motwDeleted);
  for (const it of sectionOf('origin')) {
    if (it.event.k === 'logon' && typeof it.note === 'string' && it.note.endsWith('created remotely')) add(acc, 'behaviour.lateral-movement', it.ref, it.note.slice('inferred: '.length));
  }

  // Provenance of the file itself.
  const name = baseName(input.path);
  // The file is itself a credential store copy or an LSASS dump.
  if (CREDENTIAL_FILE.test(input.path)) add(acc, 'behaviour.credential-access', input.fileRef, `${name} is a credential store copy or an LSASS dump`);
  // Where a file sits and whether it is signed say little until it runs: every download is in a user folder.
  if (input.executed && isUserWritablePath(input.path)) add(acc, 'provenance.user-writable', input.fileRef, input.path);
  if (input.executed && input.sig === 'unsigned') add(acc, 'provenance.unsigned', input.fileRef);
  const original = (input.originalFileName ?? '').toLowerCase().replace(/\.mui$/, '');
  if (SYSTEM_BINARIES.has(name) && !/^[a-z]:\\windows\\(system32|syswow64|winsxs)\\/i.test(input.path) && !/^[a-z]:\\windows\\[^\\]+$/i.test(input.path)) {
    add(acc, 'provenance.masquerading', input.fileRef, `${name} outside the Windows folders`);
  } else if (original !== '' && original !== name && SYSTEM_BINARIES.has(original)) add(acc, 'provenance.masquerading', input.fileRef, `${name} is ${original} renamed`);
  if (input.sig === 'trusted' && /^microsoft\b/i.test(input.signer ?? '') && input.how === 'process') add(acc, 'signer.microsoft', input.fileRef, input.signer);

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
