/**
 * Maps one exported Windows event record to one kiseki trail event (SPEC §2,
 * docs/IMPORT.md): Sysmon (Microsoft-Windows-Sysmon/Operational), Security
 * logon events (4624 / 4625 / 4634) and Defender detections (1116 / 1117).
 *
 * Three record layouts are read: the flat layout of NXLog and the OTRF
 * Security-Datasets (`EventID`, `Hostname`, `UtcTime`, `Image` side by side),
 * Winlogbeat's (`winlog.event_id`, `winlog.computer_name`,
 * `winlog.event_data.*`, with the ECS fields of its Sysmon processor as a
 * fallback), and the XML-as-JSON layout of evtx dumpers (`Event.System`,
 * `Event.EventData`). Field names are matched exactly first, then ignoring
 * case, spaces and underscores (`ProcessGUID`, `Threat Name`, `threat_name`).
 *
 * `UtcTime` is the time source: the local-time fields of exports
 * (`EventTime`) are often wrong and are never used. The result carries no
 * `seq`: seq is assigned per device when the trail is put in time order
 * (import-trail.ts). Every event carries `src` (where it came from, e.g.
 * `sysmon:1`) and `rid` (a fingerprint of the record, used to drop duplicate
 * records and to make a re-import of the same file add nothing).
 */
import { createHash } from 'node:crypto';
import type { TrailEvent } from '../../core/contracts.js';
import { normalizeRegistryPath, SECURITY_FALLBACK_IDS, securityFallbackBody, SYSTEM_FALLBACK_IDS, systemFallbackBody } from './windows-fallback.js';

export { normalizeRegistryPath };

/** Transient field: a Sysmon record's envelope time minus its UtcTime (rounded to 15 min); removed by buildTrails. */
export const ENVELOPE_SKEW = 'envelopeSkew';

/** A trail event before its seq is assigned, with where it came from (`src`) and its record's fingerprint (`rid`). */
export interface ImportedEvent {
  ts: number;
  k: TrailEvent['k'];
  pg?: string;
  pid?: number;
  user?: string;
  src: string;
  rid: string;
  [field: string]: unknown;
}

export type SkipReason = 'not_an_object' | 'no_event_id' | 'no_time' | 'no_computer' | 'missing_field';

export type MapOutcome = { ok: true; host: string; event: ImportedEvent } | { ok: false; reason: SkipReason; eventId?: number };

export interface MapOptions {
  /** Host name for every record, overriding the record's own computer name. */
  computer?: string;
}

type Style = 'flat' | 'winlogbeat' | 'evtx';

interface Envelope {
  style: Style;
  eventId: number | undefined;
  provider: string;
  channel: string;
  computer: string | undefined;
  recordId: string | undefined;
  data: Record<string, unknown>;
  /** The whole record, for Winlogbeat's ECS fallbacks. */
  root: Record<string, unknown>;
  /** Envelope time candidates, best first (never local-time fields). */
  times: unknown[];
  message: string | undefined;
}

/** Longest string kept in any field; command lines are at most 32 Ki characters on Windows. */
const MAX_TEXT = 32 * 1024;
/** Registry data and the fields of unknown events are kept to 1 KiB (SPEC §2). */
const MAX_SMALL_TEXT = 1024;
const MAX_UNKNOWN_FIELDS = 64;

/**
 * Envelope fields of the flat NXLog / OTRF layout: they describe the log
 * record (and the process that wrote it, e.g. `ProcessID` of the Sysmon
 * service), not the event, so they never answer an event-data lookup.
 */
const FLAT_ENVELOPE_KEYS = new Set([
  'EventID',
  'EventId',
  'event_id',
  'EventCode',
  'SourceName',
  'ProviderName',
  'Provider_Name',
  'Provider',
  'ProviderGuid',
  'Channel',
  'LogName',
  'Hostname',
  'Computer',
  'ComputerName',
  'computer_name',
  'EventTime',
  'EventReceivedTime',
  'TimeCreated',
  '@timestamp',
  '@version',
  'Keywords',
  'SeverityValue',
  'Severity',
  'Version',
  'Task',
  'Opcode',
  'OpcodeValue',
  'RecordNumber',
  'EventRecordID',
  'RecordId',
  'ActivityID',
  'ProcessID',
  'ThreadID',
  'Domain',
  'AccountName',
  'AccountType',
  'UserID',
  'Category',
  'Message',
  'SourceModuleName',
  'SourceModuleType',
  'host',
  'port',
  'tags',
  'type',
  'log',
]);

const NXLOG_LEVELS = new Set(['INFO', 'VERBOSE', 'WARNING', 'ERROR', 'CRITICAL', 'AUDIT_SUCCESS', 'AUDIT_FAILURE']);

/** Winlogbeat's Sysmon processor moves some event data to ECS fields: where to find them then. */
const ECS_FALLBACK: Record<string, string[]> = {
  ProcessGuid: ['process.entity_id'],
  ProcessId: ['process.pid'],
  Image: ['process.executable'],
  CommandLine: ['process.command_line'],
  CurrentDirectory: ['process.working_directory'],
  ParentProcessGuid: ['process.parent.entity_id'],
  ParentProcessId: ['process.parent.pid'],
  ParentImage: ['process.parent.executable'],
  ParentCommandLine: ['process.parent.command_line'],
  TargetFilename: ['file.path'],
  ImageLoaded: ['file.path'],
  QueryName: ['dns.question.name'],
  SourceIp: ['source.ip'],
  SourcePort: ['source.port'],
  DestinationIp: ['destination.ip'],
  DestinationPort: ['destination.port'],
  DestinationHostname: ['destination.domain'],
  Protocol: ['network.transport'],
  TargetObject: ['registry.path'],
  Details: ['registry.data.strings'],
  Hashes: ['process.hash.sha256', 'file.hash.sha256'],
  UtcTime: ['@timestamp'],
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `a.b.c` inside nested objects, or a literal dotted key (some shippers flatten). */
function dig(root: Record<string, unknown>, path: string): unknown {
  if (path in root) return root[path];
  let cur: unknown = root;
  for (const part of path.split('.')) {
    if (!isObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function normKey(k: string): string {
  return k.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function firstString(...vs: unknown[]): string | undefined {
  for (const v of vs) {
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return undefined;
}

function toEventId(v: unknown): number | undefined {
  if (isObject(v)) v = v['#text'] ?? v.Value ?? v.value;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 && n <= 65535 ? n : undefined;
}

/** evtx dumpers write EventData either as a map or as a `Data` list of {Name, #text}. */
function evtxData(eventData: unknown): Record<string, unknown> {
  if (!isObject(eventData)) return {};
  const list = eventData.Data;
  if (!Array.isArray(list)) return eventData;
  const out: Record<string, unknown> = {};
  for (const d of list) {
    if (!isObject(d)) continue;
    const attrs = isObject(d['#attributes']) ? d['#attributes'] : d;
    const name = firstString(attrs.Name, d['@Name']);
    if (name !== undefined) out[name] = d['#text'] ?? d.Value ?? d.value;
  }
  return out;
}

function attr(v: unknown, name: string): unknown {
  if (!isObject(v)) return v;
  const attrs = isObject(v['#attributes']) ? v['#attributes'] : v;
  return attrs[name] ?? attrs[`@${name}`];
}

function envelopeOf(rec: Record<string, unknown>): Envelope {
  const winlog = rec.winlog;
  if (isObject(winlog)) {
    return {
      style: 'winlogbeat',
      eventId: toEventId(winlog.event_id) ?? toEventId(dig(rec, 'event.code')),
      provider: (firstString(winlog.provider_name, dig(rec, 'event.provider')) ?? '').toLowerCase(),
      channel: (firstString(winlog.channel) ?? '').toLowerCase(),
      computer: firstString(winlog.computer_name, dig(rec, 'host.hostname'), dig(rec, 'host.name')),
      recordId: firstString(winlog.record_id),
      data: isObject(winlog.event_data) ? winlog.event_data : isObject(winlog.user_data) ? winlog.user_data : {},
      root: rec,
      times: [rec['@timestamp'], dig(rec, 'winlog.time_created')],
      message: firstString(rec.message),
    };
  }
  const event = rec.Event;
  if (isObject(event) && isObject(event.System)) {
    const sys = event.System;
    return {
      style: 'evtx',
      eventId: toEventId(sys.EventID),
      provider: (firstString(attr(sys.Provider, 'Name'), sys.Provider_Name) ?? '').toLowerCase(),
      channel: (firstString(sys.Channel) ?? '').toLowerCase(),
      computer: firstString(sys.Computer),
      recordId: firstString(sys.EventRecordID),
      data: evtxData(event.EventData),
      root: rec,
      times: [attr(sys.TimeCreated, 'SystemTime'), sys.TimeCreated_SystemTime],
      message: undefined,
    };
  }
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) {
    if (FLAT_ENVELOPE_KEYS.has(k)) continue;
    // NXLog's EventType is the record's level, unless Sysmon's own EventType (SetValue…) overwrote it.
    if (k === 'EventType' && typeof v === 'string' && NXLOG_LEVELS.has(v.toUpperCase())) continue;
    data[k] = v;
  }
  // Some flat exports nest the event data: {"EventData": {...}}.
  if (isObject(rec.EventData)) Object.assign(data, rec.EventData);
  return {
    style: 'flat',
    eventId: toEventId(rec.EventID ?? rec.EventId ?? rec.event_id ?? rec.EventCode),
    provider: (firstString(rec.SourceName, rec.ProviderName, rec.Provider_Name, rec.Provider) ?? '').toLowerCase(),
    channel: (firstString(rec.Channel, rec.LogName) ?? '').toLowerCase(),
    computer: firstString(rec.Computer, rec.Hostname, rec.ComputerName, rec.computer_name, typeof rec.host === 'string' ? rec.host : dig(rec, 'host.name')),
    recordId: firstString(rec.EventRecordID, rec.RecordNumber, rec.RecordId),
    data,
    root: rec,
    times: [rec.TimeCreated, rec['@timestamp']],
    message: firstString(rec.Message),
  };
}

type Source = 'sysmon' | 'security' | 'defender' | 'system' | 'other';

function sourceOf(env: Envelope): Source {
  const p = `${env.provider} ${env.channel}`.trim();
  if (p.includes('sysmon')) return 'sysmon';
  if (p.includes('defender')) return 'defender';
  if (p.includes('security-auditing') || env.channel === 'security') return 'security';
  if (env.provider.includes('service control manager') && SYSTEM_FALLBACK_IDS.has(env.eventId ?? -1)) return 'system';
  if (p !== '') return 'other';
  // No provider or channel in the record: the event ID decides (the command imports Sysmon logs).
  const id = env.eventId;
  if (id === 4624 || id === 4625 || id === 4634 || (id !== undefined && SECURITY_FALLBACK_IDS.has(id))) return 'security';
  if (id === 1116 || id === 1117) return 'defender';
  if (id !== undefined && SYSTEM_FALLBACK_IDS.has(id)) return 'system';
  return 'sysmon';
}

// ---------------------------------------------------------------------------
// Values

const TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parses a record time to ms since the epoch, UTC. Accepts Sysmon's
 * `2024-01-02 03:04:05.678` (UTC by definition), ISO 8601 with or without a
 * zone (without: UTC), fractions of any length, and epoch numbers (s or ms).
 */
export function parseUtcTime(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) {
    const ms = v > 1e11 ? v : v * 1000;
    return ms > 0 && ms < 4102444800000 ? Math.round(ms) : undefined;
  }
  if (typeof v !== 'string') return undefined;
  const m = TIME.exec(v.trim());
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  // Date.UTC rolls impossible dates over (2024-02-31 → March 2): reject them instead.
  const check = new Date(wall);
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return undefined;
  let t = wall;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    const offset = (Number(z[2]) * 60 + Number(z[3])) * 60_000;
    t -= z[1] === '+' ? offset : -offset;
  }
  if (t < 0 || t >= 4102444800000) return undefined;
  return t;
}

const GUID = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;
const NULL_GUID = '00000000-0000-0000-0000-000000000000';

/**
 * A process GUID in the form kiseki uses (docs/EVENTS.md): lower-case hex in
 * braces. Accepts braces or none and any case; the all-zero GUID (Sysmon's
 * "unknown") and anything that is not a GUID give undefined.
 */
export function normalizeGuid(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const m = GUID.exec(v.trim());
  if (m === null) return undefined;
  const g = m[1]!.toLowerCase();
  return g === NULL_GUID ? undefined : `{${g}}`;
}

/** The hashes of Sysmon's `Hashes` / `Hash` (`SHA1=…,MD5=…,SHA256=…,IMPHASH=…`), lower-case hex; a bare 64-hex value is a SHA-256. */
export function parseHashes(v: unknown): { md5?: string; sha1?: string; sha256?: string; imphash?: string } {
  if (Array.isArray(v)) v = v[0];
  if (typeof v !== 'string') return {};
  const s = v.trim();
  if (/^[0-9a-f]{64}$/i.test(s)) return { sha256: s.toLowerCase() };
  const out: { md5?: string; sha1?: string; sha256?: string; imphash?: string } = {};
  for (const m of s.matchAll(/(?:^|[,;\s])(MD5|SHA1|SHA256|IMPHASH)=([0-9a-f]+)\b/gi)) {
    const name = m[1]!.toLowerCase() as 'md5' | 'sha1' | 'sha256' | 'imphash';
    const hex = m[2]!.toLowerCase();
    const len = { md5: 32, sha1: 40, sha256: 64, imphash: 32 }[name];
    // IMPHASH=00000000000000000000000000000000 means "no import table": kept, rules test for it.
    if (hex.length === len) out[name] = hex;
  }
  return out;
}

/** The version resource fields Sysmon reads from an image (events 1, 7): what Sigma rules call OriginalFileName, Company, … */
function versionInfo(f: Fields): Record<string, unknown> {
  return {
    originalFileName: f.text('OriginalFileName', 256),
    description: f.text('Description', 512),
    product: f.text('Product', 512),
    company: f.text('Company', 512),
    fileVersion: f.text('FileVersion', 256),
  };
}

/** Hashes other than SHA-256 (which has its own `sha256` field). */
function otherHashes(v: unknown): Record<string, unknown> {
  const h = parseHashes(v);
  return { md5: h.md5, sha1: h.sha1, imphash: h.imphash };
}

/** SHA256=… out of Sysmon's `Hashes` (`SHA1=…,MD5=…,SHA256=…,IMPHASH=…`), or a bare 64-hex value. */
export function sha256FromHashes(v: unknown): string | undefined {
  if (Array.isArray(v)) v = v[0];
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (/^[0-9a-f]{64}$/i.test(s)) return s.toLowerCase();
  const m = /(?:^|[,;\s])SHA256=([0-9a-f]{64})\b/i.exec(s);
  return m === null ? undefined : m[1]!.toLowerCase();
}

function cap(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}

/** Reads event-data fields by Sysmon name: exact, then case/space/underscore-insensitive, then ECS. */
class Fields {
  private readonly data: Record<string, unknown>;
  private readonly norm = new Map<string, unknown>();
  private readonly env: Envelope;

  constructor(env: Envelope) {
    this.env = env;
    this.data = env.data;
    for (const [k, v] of Object.entries(env.data)) {
      const n = normKey(k);
      if (!this.norm.has(n)) this.norm.set(n, v);
    }
  }

  raw(name: string): unknown {
    if (Object.hasOwn(this.data, name)) return this.data[name];
    const v = this.norm.get(normKey(name));
    if (v !== undefined) return v;
    if (this.env.style === 'winlogbeat') {
      for (const path of ECS_FALLBACK[name] ?? []) {
        const x = dig(this.env.root, path);
        if (x !== undefined) return x;
      }
    }
    return undefined;
  }

  /** A non-empty string; Sysmon writes `-` for "none". */
  text(name: string, max = MAX_TEXT): string | undefined {
    let v = this.raw(name);
    if (Array.isArray(v)) v = v[0];
    if (typeof v === 'number' || typeof v === 'boolean') v = String(v);
    if (typeof v !== 'string' || v === '' || v === '-') return undefined;
    return cap(v, max);
  }

  /** An integer, decimal or `0x` hex (Security events write PIDs in hex). */
  int(name: string): number | undefined {
    const v = this.raw(name);
    if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
    if (typeof v !== 'string') return undefined;
    const s = v.trim();
    const n = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : /^\d+$/.test(s) ? Number(s) : NaN;
    return Number.isSafeInteger(n) ? n : undefined;
  }

  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (typeof v === 'boolean') return v;
    if (typeof v !== 'string') return undefined;
    const s = v.trim().toLowerCase();
    return s === 'true' ? true : s === 'false' ? false : undefined;
  }

  guid(name: string): string | undefined {
    return normalizeGuid(this.raw(name));
  }

  /** All event-data fields as capped strings and numbers, for unknown events. */
  all(): Record<string, string | number> {
    const out: Record<string, string | number> = {};
    let n = 0;
    for (const [k, v] of Object.entries(this.data)) {
      if (n >= MAX_UNKNOWN_FIELDS) break;
      if (typeof v === 'string') out[k] = cap(v, MAX_SMALL_TEXT);
      else if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
      else if (typeof v === 'boolean') out[k] = String(v);
      else continue;
      n++;
    }
    return out;
  }
}

/** Adds the fields whose values are defined, in order (MessagePack would write undefined as nil). */
function put(target: Record<string, unknown>, fields: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) target[k] = v;
}

// ---------------------------------------------------------------------------
// Kind-specific fields

type Body = { k: string; fields: Record<string, unknown> } | { skip: 'missing_field' };

/**
 * The acting process: GUID, PID, user and, where Sysmon names it, its image
 * (`image`), so rules on the acting process's `Image` work without its start event.
 */
function actor(f: Fields, guid = 'ProcessGuid', pid = 'ProcessId', user = 'User', image = 'Image'): Record<string, unknown> {
  return { pg: f.guid(guid), pid: f.int(pid), user: f.text(user, 256), image: f.text(image) };
}

function splitValue(path: string): { key: string; value?: string } {
  const i = path.lastIndexOf('\\');
  return i <= 0 ? { key: path } : { key: path.slice(0, i), value: path.slice(i + 1) };
}

/** Value type from Sysmon's `Details` (`DWORD (0x00000001)`, `QWORD (…)`, `Binary Data`, else a string). */
function registryType(details: string): string {
  if (/^DWORD \(/i.test(details)) return 'REG_DWORD';
  if (/^QWORD \(/i.test(details)) return 'REG_QWORD';
  if (/^Binary Data$/i.test(details)) return 'REG_BINARY';
  return 'REG_SZ';
}

const REG_EVENT_TYPES = new Set(['createkey', 'deletekey', 'createvalue', 'deletevalue', 'setvalue', 'renamekey']);

/** Sysmon 12/13/14 `EventType`; NXLog may overwrite it with the record's level, so the Message is a fallback. */
function registryEventType(f: Fields, message: string | undefined): string | undefined {
  const v = f.text('EventType')?.toLowerCase();
  if (v !== undefined && REG_EVENT_TYPES.has(v)) return v;
  const m = message === undefined ? null : /EventType:\s*(\w+)/i.exec(message);
  const fromMessage = m?.[1]?.toLowerCase();
  return fromMessage !== undefined && REG_EVENT_TYPES.has(fromMessage) ? fromMessage : undefined;
}

/** Parses a Zone.Identifier stream's text (Sysmon 15 `Contents`). `about:internet` is a placeholder, not a URL. */
export function parseZoneIdentifier(contents: string | undefined): { zone?: number; originUrl?: string; referrerUrl?: string } {
  if (contents === undefined) return {};
  const zone = /ZoneId=(\d+)/i.exec(contents)?.[1];
  const url = (name: string) => {
    const v = new RegExp(`${name}=(\\S+)`, 'i').exec(contents)?.[1];
    return v === undefined || /^about:/i.test(v) ? undefined : cap(v, 2048);
  };
  const out: { zone?: number; originUrl?: string; referrerUrl?: string } = {};
  if (zone !== undefined) out.zone = Number(zone);
  const host = url('HostUrl');
  if (host !== undefined) out.originUrl = host;
  const ref = url('ReferrerUrl');
  if (ref !== undefined) out.referrerUrl = ref;
  return out;
}

/** Sysmon 22 `QueryResults`: `type:  5 name;::ffff:1.2.3.4;` → names and addresses (IPv4-mapped unwrapped). */
export function parseQueryResults(v: string | undefined): string[] {
  if (v === undefined) return [];
  const out: string[] = [];
  for (const part of v.split(';')) {
    let s = part.trim();
    if (s === '' || s === '-') continue;
    const typed = /^type:\s*\d+\s+(.+)$/i.exec(s);
    if (typed !== null) s = typed[1]!.trim();
    s = s.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
    if (s !== '' && !out.includes(s)) out.push(s);
    if (out.length >= 64) break;
  }
  return out;
}

function queryType(answers: string[]): string | undefined {
  if (answers.some((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a))) return 'A';
  if (answers.some((a) => a.includes(':'))) return 'AAAA';
  if (answers.length > 0) return 'CNAME';
  return undefined;
}

function volumeOf(path: string): string | undefined {
  return path.startsWith('\\\\') ? 'network' : undefined;
}

function sysmonBody(id: number, f: Fields, env: Envelope): Body {
  switch (id) {
    case 1: {
      const image = f.text('Image');
      if (image === undefined) return { skip: 'missing_field' };
      return {
        k: 'proc.start',
        fields: {
          ...actor(f),
          image,
          cmd: f.text('CommandLine'),
          sha256: sha256FromHashes(f.raw('Hashes')),
          ...otherHashes(f.raw('Hashes')),
          ...versionInfo(f),
          ppg: f.guid('ParentProcessGuid'),
          ppid: f.int('ParentProcessId'),
          pimage: f.text('ParentImage'),
          pcmd: f.text('ParentCommandLine'),
          puser: f.text('ParentUser', 256),
          cwd: f.text('CurrentDirectory'),
          integrity: f.text('IntegrityLevel', 64),
          logonId: f.text('LogonId', 64),
        },
      };
    }
    case 2: {
      const path = f.text('TargetFilename');
      if (path === undefined) return { skip: 'missing_field' };
      return {
        k: 'file.time',
        fields: { ...actor(f), path, ctime: parseUtcTime(f.raw('CreationUtcTime')), prevCtime: parseUtcTime(f.raw('PreviousCreationUtcTime')) },
      };
    }
    case 3: {
      const rip = f.text('DestinationIp', 64);
      if (rip === undefined) return { skip: 'missing_field' };
      const initiated = f.bool('Initiated');
      return {
        k: 'net.conn',
        fields: {
          ...actor(f),
          proto: f.text('Protocol', 16)?.toLowerCase(),
          dir: initiated === false ? 'in' : 'out',
          lip: f.text('SourceIp', 64),
          lport: f.int('SourcePort'),
          rip,
          rport: f.int('DestinationPort'),
          // A reverse lookup by Sysmon (GetNameInfo), not the name the process asked for: kept apart from rhost.
          rptr: f.text('DestinationHostname', 256),
        },
      };
    }
    case 5:
      if (f.guid('ProcessGuid') === undefined && f.int('ProcessId') === undefined) return { skip: 'missing_field' };
      return { k: 'proc.end', fields: actor(f) };
    case 7: {
      const path = f.text('ImageLoaded');
      if (path === undefined) return { skip: 'missing_field' };
      const signed = f.bool('Signed');
      const status = f.text('SignatureStatus', 64)?.toLowerCase();
      return {
        k: 'image.load',
        fields: {
          ...actor(f),
          path,
          sha256: sha256FromHashes(f.raw('Hashes')),
          ...otherHashes(f.raw('Hashes')),
          ...versionInfo(f),
          signer: f.text('Signature', 256),
          sig: signed === false ? 'unsigned' : signed === true ? (status === 'valid' ? 'trusted' : 'untrusted') : undefined,
          sigStatus: f.text('SignatureStatus', 64),
        },
      };
    }
    case 6: {
      const path = f.text('ImageLoaded');
      if (path === undefined) return { skip: 'missing_field' };
      const signed = f.bool('Signed');
      const status = f.text('SignatureStatus', 64)?.toLowerCase();
      return {
        k: 'driver.load',
        fields: {
          path,
          sha256: sha256FromHashes(f.raw('Hashes')),
          ...otherHashes(f.raw('Hashes')),
          signer: f.text('Signature', 256),
          sig: signed === false ? 'unsigned' : signed === true ? (status === 'valid' ? 'trusted' : 'untrusted') : undefined,
          sigStatus: f.text('SignatureStatus', 64),
        },
      };
    }
    case 8: {
      const tpg = f.guid('TargetProcessGuid');
      const tpid = f.int('TargetProcessId');
      if (tpg === undefined && tpid === undefined) return { skip: 'missing_field' };
      return {
        k: 'proc.remote_thread',
        fields: {
          ...actor(f, 'SourceProcessGuid', 'SourceProcessId', 'SourceUser', 'SourceImage'),
          tpg,
          tpid,
          timage: f.text('TargetImage'),
          startAddr: f.text('StartAddress', 64),
          startModule: f.text('StartModule'),
          startFunction: f.text('StartFunction', 256),
        },
      };
    }
    case 10: {
      const tpg = f.guid('TargetProcessGUID');
      const tpid = f.int('TargetProcessId');
      if (tpg === undefined && tpid === undefined) return { skip: 'missing_field' };
      return {
        k: 'proc.access',
        fields: {
          ...actor(f, 'SourceProcessGUID', 'SourceProcessId', 'SourceUser', 'SourceImage'),
          tpg,
          tpid,
          timage: f.text('TargetImage'),
          tuser: f.text('TargetUser', 256),
          access: f.text('GrantedAccess', 32),
          // 4 KiB: a call trace lists every module on the stack, and Sigma rules look for one anywhere in it.
          callTrace: f.text('CallTrace', 4096),
        },
      };
    }
    case 11: {
      const path = f.text('TargetFilename');
      if (path === undefined) return { skip: 'missing_field' };
      return { k: 'file.create', fields: { ...actor(f), path, vol: volumeOf(path) } };
    }
    case 12:
    case 13:
    case 14: {
      const target = f.text('TargetObject');
      if (target === undefined) return { skip: 'missing_field' };
      const full = normalizeRegistryPath(target);
      const type = registryEventType(f, env.message) ?? (id === 12 ? 'createkey' : id === 13 ? 'setvalue' : 'renamekey');
      if (id === 13 || type === 'setvalue') {
        const details = f.text('Details', MAX_SMALL_TEXT);
        return { k: 'reg.set', fields: { ...actor(f), ...splitValue(full), dtype: details === undefined ? undefined : registryType(details), data: details } };
      }
      if (id === 14 || type === 'renamekey') {
        // A rename makes the new name appear: reg.create on it, so Run-key persistence by rename is seen.
        const newName = f.text('NewName');
        if (newName === undefined) return { skip: 'missing_field' };
        const renamed = newName.includes('\\') ? normalizeRegistryPath(newName) : `${splitValue(full).key}\\${newName}`;
        return { k: 'reg.create', fields: { ...actor(f), key: renamed, renamedFrom: full } };
      }
      if (type === 'deletekey') return { k: 'reg.delete', fields: { ...actor(f), key: full } };
      if (type === 'deletevalue') return { k: 'reg.delete', fields: { ...actor(f), ...splitValue(full) } };
      if (type === 'createvalue') return { k: 'reg.create', fields: { ...actor(f), ...splitValue(full) } };
      return { k: 'reg.create', fields: { ...actor(f), key: full } };
    }
    case 15: {
      const target = f.text('TargetFilename');
      if (target === undefined) return { skip: 'missing_field' };
      const zoneStream = /:Zone\.Identifier(:\$DATA)?$/i.exec(target);
      if (zoneStream !== null) {
        // The Mark of the Web of the base file: its download origin. The stream's own hash is not the file's.
        const path = target.slice(0, zoneStream.index);
        const zone = parseZoneIdentifier(f.text('Contents', 4096));
        return { k: 'file.create', fields: { ...actor(f), path, vol: volumeOf(path), ...zone, motw: true, stream: 'Zone.Identifier', contents: f.text('Contents', MAX_SMALL_TEXT) } };
      }
      // Any other stream: `path` keeps `:stream`; `stream` names it (the event is Sigma's create_stream_hash).
      const colon = target.indexOf(':', /^[a-z]:/i.test(target) ? 2 : 0);
      const stream = colon < 0 ? '' : target.slice(colon + 1).replace(/:\$DATA$/i, '');
      return {
        k: 'file.create',
        fields: { ...actor(f), path: target, vol: volumeOf(target), stream, sha256: sha256FromHashes(f.raw('Hash')), ...otherHashes(f.raw('Hash')), contents: f.text('Contents', MAX_SMALL_TEXT) },
      };
    }
    case 22: {
      const qname = f.text('QueryName', 256);
      if (qname === undefined) return { skip: 'missing_field' };
      const answers = parseQueryResults(f.text('QueryResults', 4096));
      return { k: 'net.dns', fields: { ...actor(f), qname, qtype: queryType(answers), answers, qstatus: f.int('QueryStatus') } };
    }
    case 23:
    case 26: {
      const path = f.text('TargetFilename');
      if (path === undefined) return { skip: 'missing_field' };
      return { k: 'file.delete', fields: { ...actor(f), path, sha256: sha256FromHashes(f.raw('Hashes')), ...otherHashes(f.raw('Hashes')) } };
    }
    case 17:
    case 18: {
      const pipe = f.text('PipeName', 256);
      if (pipe === undefined) return { skip: 'missing_field' };
      return { k: id === 17 ? 'pipe.create' : 'pipe.connect', fields: { ...actor(f), pipe } };
    }
    default:
      return { k: `sysmon.${id}`, fields: { ...actor(f), data: f.all() } };
  }
}

function securityBody(id: number, f: Fields, env: Envelope, host: string, ts: number): Body {
  if (SECURITY_FALLBACK_IDS.has(id)) return securityFallbackBody(id, f, host, ts, env.style === 'flat' ? env.root.ProcessID : undefined);
  if (id !== 4624 && id !== 4625 && id !== 4634) return { k: `security.${id}`, fields: { data: f.all() } };
  const srcIp = f.text('IpAddress', 64);
  return {
    k: id === 4634 ? 'logoff' : 'logon',
    fields: {
      pid: id === 4634 ? undefined : f.int('ProcessId'),
      user: f.text('TargetUserSid', 256),
      userName: f.text('TargetUserName', 256),
      domain: f.text('TargetDomainName', 256),
      logonType: f.int('LogonType'),
      logonId: f.text('TargetLogonId', 64),
      srcIp: srcIp === undefined || srcIp === '::1' || srcIp === '127.0.0.1' ? undefined : srcIp,
      ok: id !== 4625,
      status: id === 4625 ? f.text('Status', 32) : undefined,
      subStatus: id === 4625 ? f.text('SubStatus', 32) : undefined,
      // The whole event data too: Sigma rules on 4624 / 4625 read fields the trail has no name for
      // (LogonProcessName, AuthenticationPackageName, loopback IpAddress, '-' values, …).
      data: f.all(),
    },
  };
}

/** `file:_C:\x.exe; process:_pid:…` → `C:\x.exe` (the first file resource; else the first resource). */
export function defenderPath(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(/;\s*/).map((p) => p.trim()).filter((p) => p !== '');
  const file = parts.find((p) => /^file:_/i.test(p)) ?? parts.find((p) => /^containerfile:_/i.test(p)) ?? parts[0];
  if (file === undefined) return undefined;
  const path = file.replace(/^[a-z]+:_/i, '');
  return path === '' ? undefined : path;
}

/** Defender Action IDs (1117): 1 Clean, 2 Quarantine, 3 Remove, 6 Allow, 8 User defined, 9 No action, 10 Block. */
const DEFENDER_ACTION_IDS: Record<number, string> = { 1: 'blocked', 2: 'quarantined', 3: 'blocked', 6: 'allowed', 9: 'allowed', 10: 'blocked' };

/**
 * kiseki's action from Defender's `Action Name` / `Action ID`: quarantined,
 * blocked (clean, remove, block) or allowed. 1116 reports a detection before
 * any action ("Not Applicable"): `detected`.
 */
export function defenderAction(name: string | undefined, actionId: number | undefined): string {
  const a = (name ?? '').toLowerCase();
  if (a.includes('quarantin')) return 'quarantined';
  if (/remove|clean|delete|block/.test(a)) return 'blocked';
  if (a.includes('allow') || a === 'no action') return 'allowed';
  return (actionId === undefined ? undefined : DEFENDER_ACTION_IDS[actionId]) ?? 'detected';
}

function defenderBody(id: number, f: Fields): Body {
  if (id !== 1116 && id !== 1117) return { k: `defender.${id}`, fields: { data: f.all() } };
  const path = defenderPath(f.text('Path'));
  if (path === undefined) return { skip: 'missing_field' };
  return {
    k: 'av.detect',
    fields: {
      user: f.text('Detection User', 256),
      engine: f.text('Product Name', 256) ?? 'Microsoft Defender Antivirus',
      threat: f.text('Threat Name', 256) ?? 'unknown',
      path,
      action: defenderAction(f.text('Action Name', 64), f.int('Action ID')),
      severity: f.text('Severity Name', 32),
      detectionId: f.text('Detection ID', 64)?.toLowerCase(),
    },
  };
}

/** Canonical JSON (keys sorted at every level): the identity of a record without a record number. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * The record's fingerprint (24 hex). A record with a record number is the
 * same record wherever it was exported from (host, log, record number, event
 * ID and time); without one, the record's exact content decides.
 */
function recordId(env: Envelope, host: string, eventId: number, ts: number): string {
  const basis =
    env.recordId !== undefined && env.channel !== ''
      ? `r|${host.toUpperCase()}|${env.channel}|${env.recordId}|${eventId}|${ts}`
      : `c|${canonical(env.root)}`;
  return createHash('sha256').update(basis).digest('hex').slice(0, 24);
}

function timeOf(source: Source, f: Fields, env: Envelope): number | undefined {
  const candidates: unknown[] = [];
  if (source === 'sysmon') candidates.push(f.raw('UtcTime'));
  if (source === 'defender') candidates.push(f.raw('Detection Time'));
  candidates.push(...env.times);
  for (const c of candidates) {
    const t = parseUtcTime(c);
    if (t !== undefined) return t;
  }
  return undefined;
}

/** Maps one parsed JSON record; never throws. */
export function mapRecord(raw: unknown, options: MapOptions = {}): MapOutcome {
  if (!isObject(raw)) return { ok: false, reason: 'not_an_object' };
  const env = envelopeOf(raw);
  const id = env.eventId;
  if (id === undefined) return { ok: false, reason: 'no_event_id' };
  const host = options.computer ?? env.computer;
  if (host === undefined) return { ok: false, reason: 'no_computer', eventId: id };
  const f = new Fields(env);
  const source = sourceOf(env);
  const ts = timeOf(source, f, env);
  if (ts === undefined) return { ok: false, reason: 'no_time', eventId: id };

  const body =
    source === 'sysmon'
      ? sysmonBody(id, f, env)
      : source === 'security'
        ? securityBody(id, f, env, host, ts)
        : source === 'defender'
          ? defenderBody(id, f)
          : source === 'system'
            ? systemFallbackBody(id, f)
            : { k: `winevent.${id}`, fields: { channel: env.channel || undefined, provider: env.provider || undefined, data: f.all() } };
  if ('skip' in body) return { ok: false, reason: body.skip, eventId: id };

  const event: Record<string, unknown> = { ts, k: body.k };
  put(event, body.fields);
  // Some exports stamp the envelope in the host's local time marked as UTC; a Sysmon record has both, so its
  // difference tells the host's offset (import-trail.ts corrects the records that have only the envelope).
  if (source === 'sysmon') {
    const envelope = env.times.map(parseUtcTime).find((t) => t !== undefined);
    const skew = envelope === undefined ? 0 : Math.round((envelope - ts) / 900_000) * 900_000;
    if (skew !== 0 && Math.abs(skew) <= 14 * 3_600_000) event[ENVELOPE_SKEW] = skew;
  }
  event.src = `${source === 'other' ? 'winevent' : source}:${id}`;
  event.rid = recordId(env, host, id, ts);
  return { ok: true, host, event: event as ImportedEvent };
}
