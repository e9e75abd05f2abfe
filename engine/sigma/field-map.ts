/**
 * The one table between Sigma and the trail: which trail event kinds serve
 * each Sigma logsource, and how each Sigma (Sysmon / Windows EventData) field
 * is read from a trail event of that kind. The compiler, the matcher and
 * docs/SIGMA.md (through {@link fieldTableMarkdown}, kept equal by a test)
 * all read this table; nothing else knows a Sigma field name.
 *
 * A field is read in one of four ways, written as a short spec string:
 * - `x`: the event's own field `x`;
 * - `@x`: the acting process's `x`: the event's own `x` when present (the
 *   import copies Sysmon's `Image` into every event), else the `proc.start`
 *   record of the event's `pg` from the {@link ProcessResolver};
 * - `^x`: the parent of the acting process: on `proc.start` the event's
 *   copied parent field (`pimage`, `pcmd`, `puser`), else the parent's record
 *   (`ppg`) from the resolver;
 * - `=name`: a value computed from several fields (registry `TargetObject`,
 *   Sysmon `Hashes`, `EventID`, booleans as Sysmon writes them).
 * Kinds read from a `data` map (unknown kinds: `security.<id>`,
 * `winevent.<id>`, `sysmon.<id>`) answer every field by its Windows name.
 */
import type { ProcessFacts, ProcessResolver } from './types.js';

/** Reads one Sigma field from one trail event. Never allocates except for computed fields. */
export type FieldReader = (event: Readonly<Record<string, unknown>>, resolver: ProcessResolver | undefined) => unknown;

/** A Sigma logsource (category, or `service:<name>`) and the trail kinds that serve it. */
export interface LogsourceMapping {
  /** `process_creation`, … or `service:security`. */
  logsource: string;
  /** Exact trail kinds. */
  kinds: readonly string[];
  /** Kind prefixes for data-map kinds (`security.` serves `security.4688`, …). */
  prefixes: readonly string[];
  /** Extra condition on the event (e.g. the Windows channel), in words for the docs and as code. */
  guard?: { doc: string; test: (event: Readonly<Record<string, unknown>>) => boolean };
  /** Sigma field → reader spec, for the exact kinds. */
  fields: Readonly<Record<string, string>>;
  /**
   * The exact kinds may carry the Windows event data too (`data`, as the import
   * writes it for logon / logoff): every field is read from it first, then from
   * `fields`.
   */
  dataFirst?: boolean;
  /** Sysmon / Windows source, for the docs. */
  source: string;
}

const ACTOR_IMAGE = { Image: '@image', User: '@user', CommandLine: '@cmd', ParentImage: '^image', ParentCommandLine: '^cmd', ProcessId: 'pid', ProcessGuid: 'pg', EventID: '=eventId' };

const PROC_FILE_FIELDS = { OriginalFileName: 'originalFileName', Description: 'description', Product: 'product', Company: 'company', FileVersion: 'fileVersion' };

const REGISTRY_FIELDS = { ...ACTOR_IMAGE, TargetObject: '=targetObject', Details: 'data', EventType: '=regEventType', NewName: '=regNewName' };

/** The table. Order is the order of docs/SIGMA.md. */
export const LOGSOURCES: readonly LogsourceMapping[] = [
  {
    logsource: 'process_creation',
    kinds: ['proc.start'],
    prefixes: [],
    source: 'Sysmon 1',
    fields: {
      Image: 'image',
      CommandLine: 'cmd',
      User: 'user',
      ProcessId: 'pid',
      ProcessGuid: 'pg',
      CurrentDirectory: 'cwd',
      IntegrityLevel: 'integrity',
      LogonId: 'logonId',
      ...PROC_FILE_FIELDS,
      Hashes: '=hashes',
      sha256: 'sha256',
      md5: 'md5',
      sha1: 'sha1',
      Imphash: 'imphash',
      ParentImage: '^image',
      ParentCommandLine: '^cmd',
      ParentUser: '^user',
      ParentProcessId: 'ppid',
      ParentProcessGuid: 'ppg',
      EventID: '=eventId',
    },
  },
  { logsource: 'process_termination', kinds: ['proc.end'], prefixes: [], source: 'Sysmon 5', fields: { ...ACTOR_IMAGE } },
  {
    logsource: 'file_event',
    kinds: ['file.create'],
    prefixes: [],
    source: 'Sysmon 11',
    guard: { doc: 'no `stream` (Sysmon 15 events are create_stream_hash)', test: (e) => e.stream === undefined },
    fields: { ...ACTOR_IMAGE, TargetFilename: 'path' },
  },
  {
    logsource: 'create_stream_hash',
    kinds: ['file.create'],
    prefixes: [],
    source: 'Sysmon 15',
    guard: { doc: '`stream` present', test: (e) => e.stream !== undefined },
    fields: { ...ACTOR_IMAGE, TargetFilename: '=streamTarget', Hash: '=hashes', Contents: 'contents' },
  },
  { logsource: 'file_change', kinds: ['file.time'], prefixes: [], source: 'Sysmon 2', fields: { ...ACTOR_IMAGE, TargetFilename: 'path' } },
  { logsource: 'file_delete', kinds: ['file.delete'], prefixes: [], source: 'Sysmon 23, 26', fields: { ...ACTOR_IMAGE, TargetFilename: 'path', Hashes: '=hashes' } },
  {
    logsource: 'registry_add',
    kinds: ['reg.create'],
    prefixes: [],
    source: 'Sysmon 12 (CreateKey)',
    guard: { doc: 'not a rename', test: (e) => e.renamedFrom === undefined },
    fields: REGISTRY_FIELDS,
  },
  { logsource: 'registry_delete', kinds: ['reg.delete'], prefixes: [], source: 'Sysmon 12 (DeleteKey, DeleteValue)', fields: REGISTRY_FIELDS },
  { logsource: 'registry_set', kinds: ['reg.set'], prefixes: [], source: 'Sysmon 13', fields: REGISTRY_FIELDS },
  {
    logsource: 'registry_rename',
    kinds: ['reg.create'],
    prefixes: [],
    source: 'Sysmon 14',
    guard: { doc: 'a rename', test: (e) => e.renamedFrom !== undefined },
    fields: REGISTRY_FIELDS,
  },
  { logsource: 'registry_event', kinds: ['reg.create', 'reg.delete', 'reg.set'], prefixes: [], source: 'Sysmon 12, 13, 14', fields: REGISTRY_FIELDS },
  {
    logsource: 'network_connection',
    kinds: ['net.conn'],
    prefixes: [],
    source: 'Sysmon 3',
    fields: {
      ...ACTOR_IMAGE,
      Protocol: 'proto',
      Initiated: '=initiated',
      SourceIp: 'lip',
      SourcePort: 'lport',
      DestinationIp: 'rip',
      DestinationPort: 'rport',
      DestinationHostname: '=remoteHost',
      SourceIsIpv6: '=localIsIpv6',
      DestinationIsIpv6: '=remoteIsIpv6',
    },
  },
  { logsource: 'dns_query', kinds: ['net.dns'], prefixes: [], source: 'Sysmon 22', fields: { ...ACTOR_IMAGE, QueryName: 'qname', QueryStatus: 'qstatus', QueryResults: '=queryResults' } },
  {
    logsource: 'image_load',
    kinds: ['image.load'],
    prefixes: [],
    source: 'Sysmon 7',
    fields: { ...ACTOR_IMAGE, ImageLoaded: 'path', ...PROC_FILE_FIELDS, Hashes: '=hashes', Signed: '=signed', Signature: 'signer', SignatureStatus: 'sigStatus' },
  },
  {
    logsource: 'driver_load',
    kinds: ['driver.load'],
    prefixes: [],
    source: 'Sysmon 6',
    fields: { ImageLoaded: 'path', Hashes: '=hashes', Signed: '=signed', Signature: 'signer', SignatureStatus: 'sigStatus', EventID: '=eventId' },
  },
  {
    logsource: 'process_access',
    kinds: ['proc.access'],
    prefixes: [],
    source: 'Sysmon 10',
    fields: {
      SourceImage: '@image',
      SourceUser: '@user',
      SourceProcessId: 'pid',
      SourceProcessGUID: 'pg',
      SourceCommandLine: '@cmd',
      SourceParentImage: '^image',
      TargetImage: 'timage',
      TargetProcessId: 'tpid',
      TargetProcessGUID: 'tpg',
      TargetUser: 'tuser',
      GrantedAccess: 'access',
      CallTrace: 'callTrace',
      EventID: '=eventId',
    },
  },
  {
    logsource: 'create_remote_thread',
    kinds: ['proc.remote_thread'],
    prefixes: [],
    source: 'Sysmon 8',
    fields: {
      SourceImage: '@image',
      SourceUser: '@user',
      SourceProcessId: 'pid',
      SourceProcessGuid: 'pg',
      SourceCommandLine: '@cmd',
      SourceParentImage: '^image',
      TargetImage: 'timage',
      TargetProcessId: 'tpid',
      TargetProcessGuid: 'tpg',
      StartAddress: 'startAddr',
      StartModule: 'startModule',
      StartFunction: 'startFunction',
      EventID: '=eventId',
    },
  },
  { logsource: 'pipe_created', kinds: ['pipe.create', 'pipe.connect'], prefixes: [], source: 'Sysmon 17, 18', fields: { ...ACTOR_IMAGE, PipeName: 'pipe', EventType: '=pipeEventType' } },
  {
    logsource: 'service:security',
    kinds: ['logon', 'logoff', 'task.create'],
    prefixes: ['security.'],
    source: 'Security channel (4624 / 4625 / 4634 as logon / logoff, 4698 as task.create, any other ID as security.<id>)',
    dataFirst: true,
    fields: {
      EventID: '=eventId',
      TargetUserSid: 'user',
      TargetUserName: 'userName',
      TargetDomainName: 'domain',
      LogonType: 'logonType',
      TargetLogonId: 'logonId',
      IpAddress: 'srcIp',
      Status: 'status',
      SubStatus: 'subStatus',
      ProcessId: 'pid',
    },
  },
  {
    logsource: 'service:system',
    kinds: ['service.install', 'service.config'],
    prefixes: ['winevent.'],
    source: 'System channel (7045 / 7040 as service.install / service.config, any other ID as winevent.<id>)',
    dataFirst: true,
    guard: { doc: '`channel` is `system`', test: (e) => e.channel === 'system' },
    fields: {},
  },
  { logsource: 'service:sysmon', kinds: [], prefixes: ['sysmon.'], source: 'Sysmon events without a trail kind (4, 16, 255, …: sysmon.<id>)', fields: {} },
];

/**
 * Fields with a handful of values (`true` / `false`, event types, IDs): a
 * literal on them says little about an event, so the prefilter picks
 * another field of the rule when it has one (`--micro sigma`: the five
 * `Initiated: 'true'` rules were candidates on every outbound connection).
 */
export const FEW_VALUED_FIELDS: ReadonlySet<string> = new Set([
  'EventID',
  'EventType',
  'Initiated',
  'SourceIsIpv6',
  'DestinationIsIpv6',
  'Signed',
  'SignatureStatus',
  'IntegrityLevel',
  'Protocol',
  'LogonType',
  'QueryStatus',
  'Status',
  'SubStatus',
]);

/**
 * Fields whose values rarely repeat (ephemeral ports, process and logon
 * IDs): the matcher would scan them on every event without remembering the
 * scan, so they serve as a rule's only prefilter but not as an extra clause.
 */
export const SELDOM_REPEATED_FIELDS: ReadonlySet<string> = new Set([
  'SourcePort',
  'ProcessId',
  'ParentProcessId',
  'SourceProcessId',
  'TargetProcessId',
  'LogonId',
  'TargetLogonId',
]);

// ---------------------------------------------------------------------------
// Readers

const SYSMON_IDS: Record<string, number> = {
  'proc.start': 1,
  'proc.end': 5,
  'file.time': 2,
  'net.conn': 3,
  'driver.load': 6,
  'image.load': 7,
  'proc.remote_thread': 8,
  'proc.access': 10,
  'file.create': 11,
  'reg.create': 12,
  'reg.delete': 12,
  'reg.set': 13,
  'pipe.create': 17,
  'pipe.connect': 18,
  'net.dns': 22,
  'file.delete': 23,
  logoff: 4634,
};

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The `proc.start` record of the acting process, or undefined. */
function actorOf(e: Readonly<Record<string, unknown>>, r: ProcessResolver | undefined): ProcessFacts | undefined {
  const pg = e.pg;
  return r === undefined || typeof pg !== 'string' ? undefined : r.process(pg);
}

const PARENT_COPY: Record<string, string> = { image: 'pimage', cmd: 'pcmd', user: 'puser' };

function parentValue(e: Readonly<Record<string, unknown>>, r: ProcessResolver | undefined, field: string): unknown {
  const copied = PARENT_COPY[field];
  if (e.k === 'proc.start') {
    if (copied !== undefined && e[copied] !== undefined) return e[copied];
    const ppg = e.ppg;
    return r === undefined || typeof ppg !== 'string' ? undefined : r.process(ppg)?.[field];
  }
  const actor = actorOf(e, r);
  if (actor === undefined) return undefined;
  if (copied !== undefined && actor[copied] !== undefined) return actor[copied];
  const ppg = actor.ppg;
  return r === undefined || typeof ppg !== 'string' ? undefined : r.process(ppg)?.[field];
}

function hashes(e: Readonly<Record<string, unknown>>): string | undefined {
  // Sysmon's own layout (`SHA1=…,MD5=…,SHA256=…,IMPHASH=…`), upper-case hex as Sysmon writes it.
  let out = '';
  for (const [name, field] of HASH_PARTS) {
    const v = e[field];
    if (typeof v === 'string') out += `${out === '' ? '' : ','}${name}=${v.toUpperCase()}`;
  }
  return out === '' ? undefined : out;
}
const HASH_PARTS: [string, string][] = [
  ['SHA1', 'sha1'],
  ['MD5', 'md5'],
  ['SHA256', 'sha256'],
  ['IMPHASH', 'imphash'],
];

function eventId(e: Readonly<Record<string, unknown>>): number | undefined {
  const k = e.k;
  if (typeof k !== 'string') return undefined;
  if (k === 'logon') return e.ok === false ? 4625 : 4624;
  // The import's Security / System fallback kinds (ingest/import/windows-fallback.ts).
  if (k === 'task.create') return 4698;
  if (k === 'service.install') return 7045;
  if (k === 'service.config') return 7040;
  const known = SYSMON_IDS[k];
  if (known !== undefined) {
    if (k === 'reg.create' && e.renamedFrom !== undefined) return 14;
    if (k === 'file.create' && e.stream !== undefined) return 15;
    return known;
  }
  const dot = k.lastIndexOf('.');
  if (dot < 0) return undefined;
  const n = Number(k.slice(dot + 1));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Bumped by the matcher at each event: computed texts are built once per event, not once per rule reading them. */
let eventEpoch = 0;

/** Marks the start of a new event for the per-event memo of computed fields (called by the matcher). */
export function nextSigmaEvent(): void {
  eventEpoch = (eventEpoch + 1) | 0;
}

/** A computed field that builds a string, remembered for the current event (every candidate rule on a registry event reads TargetObject). */
function perEvent(fn: FieldReader): FieldReader {
  let lastEvent: Readonly<Record<string, unknown>> | undefined;
  let lastEpoch = -1;
  let lastValue: unknown;
  return (e, r) => {
    if (e === lastEvent && lastEpoch === eventEpoch) return lastValue;
    lastValue = fn(e, r);
    lastEvent = e;
    lastEpoch = eventEpoch;
    return lastValue;
  };
}

const COMPUTED: Record<string, FieldReader> = {
  eventId: (e) => eventId(e),
  hashes: perEvent((e) => hashes(e)),
  targetObject: perEvent((e) => {
    if (typeof e.renamedFrom === 'string') return e.renamedFrom;
    const key = str(e.key);
    const value = str(e.value);
    return key === undefined ? undefined : value === undefined ? key : `${key}\\${value}`;
  }),
  regNewName: (e) => (typeof e.renamedFrom === 'string' ? e.key : undefined),
  regEventType: (e) => {
    switch (e.k) {
      case 'reg.set':
        return 'SetValue';
      case 'reg.delete':
        return e.value === undefined ? 'DeleteKey' : 'DeleteValue';
      default:
        return e.renamedFrom !== undefined ? 'RenameKey' : e.value === undefined ? 'CreateKey' : 'CreateValue';
    }
  },
  initiated: (e) => (e.dir === 'in' ? 'false' : e.dir === 'out' ? 'true' : undefined),
  remoteHost: (e) => e.rptr ?? e.rhost,
  localIsIpv6: (e) => (typeof e.lip === 'string' ? (e.lip.includes(':') ? 'true' : 'false') : undefined),
  remoteIsIpv6: (e) => (typeof e.rip === 'string' ? (e.rip.includes(':') ? 'true' : 'false') : undefined),
  queryResults: perEvent((e) => (Array.isArray(e.answers) ? e.answers.join(';') : undefined)),
  signed: (e) => (e.sig === 'unsigned' ? 'false' : e.sig === 'trusted' || e.sig === 'untrusted' ? 'true' : undefined),
  streamTarget: perEvent((e) => {
    const path = e.path;
    const stream = e.stream;
    if (typeof path !== 'string' || typeof stream !== 'string' || stream === '' || path.toLowerCase().endsWith(`:${stream.toLowerCase()}`)) return path;
    return `${path}:${stream}`;
  }),
  pipeEventType: (e) => (e.k === 'pipe.connect' ? 'ConnectPipe' : 'CreatePipe'),
};

/**
 * For computed text fields: how to hand the value to a scanner in parts, in
 * order, without building the string (the matcher's no-allocation path).
 * The parts, concatenated, are exactly the computed value.
 */
export type PartsReader = (event: Readonly<Record<string, unknown>>, feed: (text: string) => void) => void;

const PARTS: Record<string, PartsReader> = {
  hashes: (e, feed) => {
    let first = true;
    for (const [name, field] of HASH_PARTS) {
      const v = e[field];
      if (typeof v !== 'string') continue;
      feed(first ? HASH_PREFIX_FIRST[name]! : HASH_PREFIX[name]!);
      feed(v);
      first = false;
    }
  },
  queryResults: (e, feed) => {
    if (!Array.isArray(e.answers)) return;
    for (let i = 0; i < e.answers.length; i++) {
      const a: unknown = e.answers[i];
      if (typeof a !== 'string') continue;
      if (i > 0) feed(';');
      feed(a);
    }
  },
  streamTarget: (e, feed) => {
    const path = e.path;
    if (typeof path !== 'string') return;
    feed(path);
    const stream = e.stream;
    if (typeof stream === 'string' && stream !== '' && !path.toLowerCase().endsWith(`:${stream.toLowerCase()}`)) {
      feed(':');
      feed(stream);
    }
  },
  targetObject: (e, feed) => {
    if (typeof e.renamedFrom === 'string') return feed(e.renamedFrom);
    if (typeof e.key !== 'string') return;
    feed(e.key);
    if (typeof e.value === 'string') {
      feed('\\');
      feed(e.value);
    }
  },
};
const HASH_PREFIX_FIRST: Record<string, string> = { SHA1: 'SHA1=', MD5: 'MD5=', SHA256: 'SHA256=', IMPHASH: 'IMPHASH=' };
const HASH_PREFIX: Record<string, string> = { SHA1: ',SHA1=', MD5: ',MD5=', SHA256: ',SHA256=', IMPHASH: ',IMPHASH=' };

const partsByReader = new Map<FieldReader, PartsReader>();

/** Readers of the acting process's or its parent's fields (`@x`, `^x`): few distinct values per device. */
const processReaders = new Set<FieldReader>();

/**
 * True for a reader of the acting process's or its parent's field: its
 * values repeat on every event of a process, so the matcher may remember
 * what scanning a value found instead of scanning it again.
 */
export function isProcessReader(reader: FieldReader): boolean {
  return processReaders.has(reader);
}

/** The parts reader of a computed text field's reader, if it has one. */
export function partsOf(reader: FieldReader): PartsReader | undefined {
  return partsByReader.get(reader);
}

const readers = new Map<string, FieldReader>();

/** The reader of a spec string (see the file comment); one shared reader per spec, so the matcher scans a field once per event. */
export function readerOf(spec: string): FieldReader {
  let r = readers.get(spec);
  if (r === undefined) {
    r = makeReader(spec);
    readers.set(spec, r);
    const parts = spec[0] === '=' ? PARTS[spec.slice(1)] : undefined;
    if (parts !== undefined) partsByReader.set(r, parts);
    if (spec[0] === '@' || spec[0] === '^') processReaders.add(r);
  }
  return r;
}

function makeReader(spec: string): FieldReader {
  const head = spec[0];
  const name = spec.slice(1);
  if (head === '=') {
    const fn = COMPUTED[name];
    if (fn === undefined) throw new Error(`unknown computed field ${name}`);
    return fn;
  }
  if (head === '@') return (e, r) => e[name] ?? actorOf(e, r)?.[name];
  if (head === '^') return (e, r) => parentValue(e, r, name);
  return (e) => e[spec];
}

/** Reader for data-map kinds: the Windows field name inside `data`, `EventID` from the kind. */
export function dataReaderOf(field: string): FieldReader {
  let r = readers.get(`data:${field}`);
  if (r === undefined) {
    r = makeDataReader(field);
    readers.set(`data:${field}`, r);
  }
  return r;
}

function makeDataReader(field: string): FieldReader {
  if (field === 'EventID') return COMPUTED.eventId!;
  if (field === 'Channel') return (e) => e.channel;
  if (field === 'Provider_Name') return (e) => e.provider;
  return (e) => {
    const d = e.data;
    return typeof d === 'object' && d !== null ? (d as Record<string, unknown>)[field] : undefined;
  };
}

/**
 * The reader of `field` on a logsource's exact kinds: the table's, and for a
 * `dataFirst` logsource the event data's value first (any field then has a reader).
 */
export function exactReaderOf(mapping: LogsourceMapping, field: string): FieldReader | undefined {
  const spec = mapping.fields[field];
  const table = spec === undefined ? undefined : readerOf(spec);
  if (mapping.dataFirst !== true || field === 'EventID') return table;
  const key = `first:${field}:${spec ?? ''}`;
  let r = readers.get(key);
  if (r === undefined) {
    const fromData = dataReaderOf(field);
    r = table === undefined ? fromData : (e, res) => fromData(e, res) ?? table(e, res);
    readers.set(key, r);
  }
  return r;
}

/** The mapping of a rule's logsource, or undefined when kiseki has no trail events for it. */
export function logsourceOf(ls: { product?: unknown; category?: unknown; service?: unknown }): LogsourceMapping | undefined {
  if (ls.product !== 'windows') return undefined;
  const key = typeof ls.category === 'string' ? ls.category : typeof ls.service === 'string' ? `service:${ls.service}` : undefined;
  if (key === undefined) return undefined;
  // A rule with both a category and a service (rare) is read by its category.
  return LOGSOURCES.find((l) => l.logsource === key);
}

/** Trail field descriptions for the docs: what a reader spec means. */
function specDoc(spec: string): string {
  const head = spec[0];
  const name = spec.slice(1);
  if (head === '=') return COMPUTED_DOC[name] ?? name;
  if (head === '@') return `\`${name}\` (else the acting process's, from the process table)`;
  if (head === '^') return `parent's \`${name}\`${PARENT_COPY[name] === undefined ? '' : ` (\`${PARENT_COPY[name]}\` on proc.start)`}, else from the process table`;
  return `\`${spec}\``;
}

const COMPUTED_DOC: Record<string, string> = {
  eventId: 'the Sysmon / Windows event ID of the kind (`<id>` of `security.<id>`)',
  hashes: '`SHA1=…,MD5=…,SHA256=…,IMPHASH=…` from `sha1`, `md5`, `sha256`, `imphash`',
  targetObject: '`key` + `\\` + `value` (`renamedFrom` for a rename)',
  regNewName: '`key` of a rename',
  regEventType: '`SetValue` / `CreateKey` / `CreateValue` / `DeleteKey` / `DeleteValue` / `RenameKey` from the kind',
  initiated: '`true` when `dir` is `out`, `false` when `in`',
  remoteHost: '`rptr` (Sysmon\'s reverse lookup), else `rhost`',
  localIsIpv6: '`true` when `lip` is IPv6',
  remoteIsIpv6: '`true` when `rip` is IPv6',
  queryResults: '`answers` joined with `;`',
  signed: '`true` unless `sig` is `unsigned`',
  streamTarget: '`path`, with `:` + `stream` appended unless it ends with it',
  pipeEventType: '`CreatePipe` (pipe.create) / `ConnectPipe` (pipe.connect)',
};

/** The field table of docs/SIGMA.md, generated from {@link LOGSOURCES}. */
export function fieldTableMarkdown(): string {
  const lines = ['| Sigma logsource | trail kinds | Sigma field | trail field |', '|---|---|---|---|'];
  for (const l of LOGSOURCES) {
    const kinds = [...l.kinds.map((k) => `\`${k}\``), ...l.prefixes.map((p) => `\`${p}<id>\``)].join(', ') + (l.guard === undefined ? '' : ` (${l.guard.doc})`);
    const fields = Object.entries(l.fields);
    if (l.dataFirst === true) lines.push(`| \`${l.logsource}\` | ${l.kinds.map((k) => `\`${k}\``).join(', ')} | any | \`data.<field>\` when the event carries the Windows event data (imported events), else: |`);
    if (fields.length === 0) lines.push(`| \`${l.logsource}\` | ${kinds} | any | \`data.<field>\`; \`EventID\` from the kind |`);
    fields.forEach(([sigma, spec], i) => lines.push(`| ${i === 0 && l.dataFirst !== true ? `\`${l.logsource}\`` : ''} | ${i === 0 && l.dataFirst !== true ? kinds : ''} | \`${sigma}\` | ${specDoc(spec)} |`));
    if (l.prefixes.length > 0 && fields.length > 0) lines.push(`| | ${l.prefixes.map((p) => `\`${p}<id>\``).join(', ')} | any | \`data.<field>\` |`);
  }
  return lines.join('\n');
}
