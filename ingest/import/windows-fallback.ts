/**
 * The Security and System fallbacks of the import (docs/IMPORT.md, "Security /
 * System fallbacks"): where a host has no Sysmon, Windows' own audit events
 * carry the same facts, and mapping them to the same trail kinds lets the
 * Sigma process_creation rules and the quick report see them.
 *
 * | event | kind |
 * |---|---|
 * | Security 4688 (process created) | `proc.start` |
 * | Security 5156 (WFP permitted a connection) | `net.conn` |
 * | Security 4663 (object access: file / registry key) | `file.read` / `file.write` / `file.delete` / `reg.set` / `reg.create` / `reg.delete` |
 * | Security 4657 (registry value changed) | `reg.set` / `reg.delete` |
 * | Security 4698 (scheduled task created) | `task.create` |
 * | System 7045 (service installed) | `service.install` |
 * | System 7040 (service start type changed) | `service.config` |
 *
 * Security events carry PIDs, not process GUIDs: a 4688 gets a GUID derived
 * from the host, PID and time, and the import links parents and the other
 * events' acting processes by PID and time over the host's whole trail
 * (import-trail.ts, linkFallbackProcesses). On a host that has Sysmon, the
 * fallbacks that duplicate a Sysmon kind (4688, 5156, 4663, 4657) go back to
 * their raw `security.<id>` kind, so nothing is counted twice.
 */
import { createHash } from 'node:crypto';

/** The part of the mapper's field reader the fallbacks use. */
export interface FallbackFields {
  text(name: string, max?: number): string | undefined;
  int(name: string): number | undefined;
  all(): Record<string, string | number>;
}

export type FallbackBody = { k: string; fields: Record<string, unknown> } | { skip: 'missing_field' };

/** Security event IDs mapped here. */
export const SECURITY_FALLBACK_IDS: ReadonlySet<number> = new Set([4688, 5156, 4663, 4657, 4698]);
/** System event IDs mapped here (provider Service Control Manager). */
export const SYSTEM_FALLBACK_IDS: ReadonlySet<number> = new Set([7045, 7040]);
/** Marks a fallback event whose kind Sysmon also records: reverted on hosts with Sysmon. */
export const FALLBACK_FIELD = 'fallback';

const HIVES: [RegExp, string][] = [
  [/^\\REGISTRY\\MACHINE(?=\\|$)/i, 'HKLM'],
  [/^\\REGISTRY\\USER(?=\\|$)/i, 'HKU'],
  [/^HKEY_LOCAL_MACHINE(?=\\|$)/i, 'HKLM'],
  [/^HKEY_USERS(?=\\|$)/i, 'HKU'],
  [/^HKEY_CURRENT_USER(?=\\|$)/i, 'HKCU'],
  [/^HKEY_CLASSES_ROOT(?=\\|$)/i, 'HKCR'],
];

/** Registry paths with the short hive names Sysmon itself writes (HKLM, HKU, HKCR). */
export function normalizeRegistryPath(path: string): string {
  for (const [re, hive] of HIVES) if (re.test(path)) return path.replace(re, hive);
  return path;
}

/** A process GUID for a Security-only process: stable for the same host, PID and start time. */
export function synthesizedGuid(host: string, pid: number, ts: number): string {
  const h = createHash('sha256').update(`${host.toUpperCase()}|${pid}|${ts}`).digest('hex');
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
}

/** `\device\harddiskvolume2\windows\x.exe` → `C:\windows\x.exe`: WFP names volumes, not drives (the system volume is assumed). */
export function devicePathToDrive(p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  return p.replace(/^\\device\\harddiskvolume\d+\\/i, 'C:\\');
}

const INTEGRITY: Record<string, string> = { 'S-1-16-4096': 'Low', 'S-1-16-8192': 'Medium', 'S-1-16-12288': 'High', 'S-1-16-16384': 'System' };

function sid(v: string | undefined): string | undefined {
  return v === undefined || v === 'S-1-0-0' || v === 'NULL SID' ? undefined : v;
}

/** 4657 / registry value types as written in the event (`%%1873` = REG_SZ, …) or by name. */
const REG_TYPES: Record<string, string> = { '%%1873': 'REG_SZ', '%%1874': 'REG_EXPAND_SZ', '%%1875': 'REG_BINARY', '%%1876': 'REG_DWORD', '%%1879': 'REG_MULTI_SZ', '%%1883': 'REG_QWORD' };

function splitValue(path: string): { key: string; value?: string } {
  const i = path.lastIndexOf('\\');
  return i <= 0 ? { key: path } : { key: path.slice(0, i), value: path.slice(i + 1) };
}

/** `<Command>…</Command>` and `<Arguments>…</Arguments>` of a task's XML, XML entities decoded. */
function taskCommand(xml: string | undefined): string | undefined {
  if (xml === undefined) return undefined;
  const get = (tag: string) => new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'i').exec(xml)?.[1];
  const cmd = get('Command');
  if (cmd === undefined) return undefined;
  const args = get('Arguments');
  const text = args === undefined ? cmd : `${cmd} ${args}`;
  return text.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').trim();
}

function intOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * A Security fallback event's kind and fields; `host` and `ts` seed the
 * synthesized process GUID of a 4688. `envelopePid` is the flat layout's
 * `ProcessID`: flattened exports write 5156's own ProcessID there.
 */
export function securityFallbackBody(id: number, f: FallbackFields, host: string, ts: number, envelopePid?: unknown): FallbackBody {
  switch (id) {
    case 4688: {
      const image = f.text('NewProcessName');
      const pid = f.int('NewProcessId');
      if (image === undefined || pid === undefined) return { skip: 'missing_field' };
      return {
        k: 'proc.start',
        fields: {
          pg: synthesizedGuid(host, pid, ts),
          pid,
          user: sid(f.text('TargetUserSid', 256)) ?? sid(f.text('SubjectUserSid', 256)),
          image,
          cmd: f.text('CommandLine') ?? image,
          ppid: f.int('ProcessId'),
          pimage: f.text('ParentProcessName'),
          integrity: INTEGRITY[f.text('MandatoryLabel', 64) ?? ''],
          logonId: f.text('SubjectLogonId', 64),
          [FALLBACK_FIELD]: true,
          data: f.all(),
        },
      };
    }
    case 5156: {
      const rip = f.text('DestAddress', 64);
      if (rip === undefined) return { skip: 'missing_field' };
      const direction = f.text('Direction', 32) ?? '';
      const proto = f.int('Protocol');
      return {
        k: 'net.conn',
        fields: {
          pid: f.int('ProcessID') ?? f.int('ProcessId') ?? intOf(envelopePid),
          image: devicePathToDrive(f.text('Application')),
          proto: proto === 6 ? 'tcp' : proto === 17 ? 'udp' : proto === undefined ? undefined : String(proto),
          // %%14592 inbound, %%14593 outbound; WFP logs the local end as the source either way.
          dir: /14592|inbound/i.test(direction) ? 'in' : 'out',
          lip: f.text('SourceAddress', 64),
          lport: f.int('SourcePort'),
          rip,
          rport: f.int('DestPort'),
          [FALLBACK_FIELD]: true,
        },
      };
    }
    case 4663: {
      const object = f.text('ObjectName');
      const type = (f.text('ObjectType', 64) ?? '').toLowerCase();
      const mask = Number.parseInt((f.text('AccessMask', 32) ?? '').replace(/^0x/i, ''), 16);
      if (object === undefined || !Number.isFinite(mask)) return { skip: 'missing_field' };
      const actor = { pid: f.int('ProcessId'), image: f.text('ProcessName'), user: sid(f.text('SubjectUserSid', 256)), access: f.text('AccessMask', 32), [FALLBACK_FIELD]: true };
      if (type === 'key') {
        const key = normalizeRegistryPath(object);
        if ((mask & 0x10000) !== 0) return { k: 'reg.delete', fields: { ...actor, key } };
        if ((mask & 0x2) !== 0) return { k: 'reg.set', fields: { ...actor, key } };
        if ((mask & 0x4) !== 0) return { k: 'reg.create', fields: { ...actor, key } };
        return { k: 'security.4663', fields: { ...actor, data: f.all() } };
      }
      if (type !== 'file') return { k: 'security.4663', fields: { ...actor, data: f.all() } };
      if ((mask & 0x10000) !== 0) return { k: 'file.delete', fields: { ...actor, path: object } };
      if ((mask & 0x6) !== 0) return { k: 'file.write', fields: { ...actor, path: object } };
      if ((mask & 0x1) !== 0) return { k: 'file.read', fields: { ...actor, path: object, count: 1 } };
      return { k: 'security.4663', fields: { ...actor, data: f.all() } };
    }
    case 4657: {
      const object = f.text('ObjectName');
      if (object === undefined) return { skip: 'missing_field' };
      const key = normalizeRegistryPath(object);
      const value = f.text('ObjectValueName', 256);
      const op = f.text('OperationType', 32) ?? '';
      const actor = { pid: f.int('ProcessId'), image: f.text('ProcessName'), user: sid(f.text('SubjectUserSid', 256)), [FALLBACK_FIELD]: true };
      if (/1906|deleted/i.test(op)) return { k: 'reg.delete', fields: { ...actor, key, value } };
      const t = f.text('NewValueType', 32);
      return { k: 'reg.set', fields: { ...actor, key, value, dtype: t === undefined ? undefined : (REG_TYPES[t] ?? t), data: f.text('NewValue', 1024) } };
    }
    case 4698: {
      const task = f.text('TaskName', 512);
      if (task === undefined) return { skip: 'missing_field' };
      const content = f.text('TaskContent', 8192);
      return { k: 'task.create', fields: { user: sid(f.text('SubjectUserSid', 256)), task, command: taskCommand(content), content: content?.slice(0, 4096), data: f.all() } };
    }
    default:
      return { k: `security.${id}`, fields: { data: f.all() } };
  }
}

/** Service start types in 7040 / 7045 text, as written. */
function startType(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = v.toLowerCase();
  if (s.includes('disabled') || s === '4') return 'disabled';
  if (s.includes('auto') || s === '2') return 'auto';
  if (s.includes('demand') || s.includes('manual') || s === '3') return 'demand';
  if (s.includes('boot') || s === '0') return 'boot';
  if (s.includes('system') || s === '1') return 'system';
  return v;
}

/** A System fallback event (Service Control Manager 7045 / 7040). */
export function systemFallbackBody(id: number, f: FallbackFields): FallbackBody {
  if (id === 7045) {
    const name = f.text('ServiceName', 256);
    if (name === undefined) return { skip: 'missing_field' };
    return {
      k: 'service.install',
      fields: { channel: 'system', name, imagePath: f.text('ImagePath'), serviceType: f.text('ServiceType', 64), startType: startType(f.text('StartType', 64)), account: f.text('AccountName', 256), data: f.all() },
    };
  }
  if (id === 7040) {
    const name = f.text('param4', 256) ?? f.text('param1', 256);
    if (name === undefined) return { skip: 'missing_field' };
    return { k: 'service.config', fields: { channel: 'system', name, displayName: f.text('param1', 256), from: startType(f.text('param2', 64)), startType: startType(f.text('param3', 64)), data: f.all() } };
  }
  return { k: `winevent.${id}`, fields: { data: f.all() } };
}
