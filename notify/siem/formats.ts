/**
 * The four SIEM formats of a SiemEvent:
 *  - ECS JSON (Elastic Common Schema 8.x field names, nested objects);
 *  - OCSF JSON, class Detection Finding (2004, OCSF 1.1);
 *  - CEF (ArcSight Common Event Format rev. 0: header and key=value extension);
 *  - syslog RFC 5424: a header, `[kiseki@32473 …]` structured data and a
 *    message (the CEF line for `cef`, the ECS JSON for `rfc5424`).
 * docs/SIEM.md lists every field with an example; siem.test.ts keeps the
 * ECS field list and the doc equal.
 */
import type { SigmaSeverity } from '../../core/contracts.js';
import type { SiemFormat } from '../../storage/index.js';
import type { SiemEvent } from './siem-event.js';

/** The product version in CEF headers and OCSF metadata. */
export const KISEKI_PRODUCT_VERSION = '0.1.0';
/** The ECS version the documents follow. */
export const ECS_VERSION = '8.11.0';
/** The OCSF schema version of the findings. */
export const OCSF_VERSION = '1.1.0';
/**
 * Private enterprise number in the structured-data id. 32473 is the
 * example number RFC 5612 reserves for documentation; operators with their
 * own number can filter on the SD-ID name `kiseki@32473` as is.
 */
export const SD_ID = 'kiseki@32473';

/** ECS `event.severity` (0–100) and `syslog` severity per level. */
const LEVELS: Record<SigmaSeverity, { ecs: number; cef: number; ocsf: number; syslog: number }> = {
  Information: { ecs: 21, cef: 3, ocsf: 1, syslog: 6 },
  Medium: { ecs: 47, cef: 5, ocsf: 3, syslog: 4 },
  Serious: { ecs: 73, cef: 8, ocsf: 4, syslog: 3 },
  Critical: { ecs: 99, cef: 10, ocsf: 5, syslog: 2 },
};
const OCSF_SEVERITY: Record<number, string> = { 1: 'Informational', 3: 'Medium', 4: 'High', 5: 'Critical' };

const iso = (ms: number): string => new Date(ms).toISOString();
const confidenceWord = (c: number): 'High' | 'Medium' | 'Low' => (c >= 80 ? 'High' : c >= 50 ? 'Medium' : 'Low');

/** Drops undefined values and empty objects, recursively (ECS and OCSF readers treat absent and null alike; absent is smaller). */
function compact<T>(v: T): T {
  if (Array.isArray(v)) return v.map(compact) as T;
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) continue;
    const c = compact(x);
    if (typeof c === 'object' && c !== null && !Array.isArray(c) && Object.keys(c).length === 0) continue;
    out[k] = c;
  }
  return out as T;
}

const DATASET: Record<SiemEvent['type'], string> = {
  'endpoint-alert': 'kiseki.alert',
  'network-intel': 'kiseki.intel',
  'sigma-detection': 'kiseki.sigma',
  'device-isolated': 'kiseki.device',
  'device-offline': 'kiseki.device',
};

/** The ECS document of an event. */
export function toEcs(e: SiemEvent): Record<string, unknown> {
  const ind = e.indicator;
  return compact({
    '@timestamp': iso(e.at),
    message: e.title,
    tags: e.tags.length === 0 ? undefined : e.tags,
    ecs: { version: ECS_VERSION },
    event: {
      kind: e.type.startsWith('device-') ? 'event' : 'alert',
      category: e.type === 'network-intel' ? ['network', 'threat'] : e.type === 'endpoint-alert' ? ['malware'] : e.type === 'sigma-detection' ? ['process'] : ['host'],
      type: e.type === 'network-intel' ? ['indicator', 'connection'] : e.type.startsWith('device-') ? ['info'] : ['info'],
      action: e.action,
      id: e.eventId,
      created: iso(e.createdAt),
      module: 'kiseki',
      dataset: DATASET[e.type],
      provider: 'kiseki',
      severity: LEVELS[e.severity].ecs,
      reason: e.outcome,
      url: e.link,
    },
    organization: { id: e.supportId },
    host: e.host === undefined ? undefined : { name: e.host.name, id: e.host.id, ip: e.host.ips },
    process: e.process === undefined ? undefined : { entity_id: e.process.entityId, pid: e.process.pid, executable: e.process.executable },
    file: e.file === undefined ? undefined : { path: e.file.path, hash: e.file.sha256 === undefined ? undefined : { sha256: e.file.sha256 } },
    source: e.source,
    destination: e.destination,
    url: e.url === undefined ? undefined : { full: e.url },
    network: e.transport === undefined ? undefined : { transport: e.transport },
    rule: e.rule === undefined ? undefined : { id: e.rule.id, name: e.rule.name, author: e.rule.author === undefined ? undefined : [e.rule.author], ruleset: e.rule.ruleset },
    threat:
      ind === undefined
        ? undefined
        : {
            indicator: {
              type: ind.type === 'ip' ? (ind.value.includes(':') ? 'ipv6-addr' : 'ipv4-addr') : ind.type === 'domain' ? 'domain-name' : ind.type === 'url' ? 'url' : 'file',
              ip: ind.type === 'ip' && !ind.value.includes('/') ? ind.value : undefined,
              url: ind.type === 'url' ? { full: ind.value } : ind.type === 'domain' ? { domain: ind.value } : undefined,
              file: ind.type === 'sha256' ? { hash: { sha256: ind.value } } : undefined,
              confidence: confidenceWord(ind.confidence),
              provider: ind.provider,
              description: ind.name,
            },
            feed: { name: ind.provider },
          },
    observer: e.observer === undefined ? undefined : { hostname: e.observer.hostname, ip: [e.observer.ip], type: e.observer.format === 'suricata' ? 'ids' : e.observer.format === 'squid' ? 'proxy' : 'firewall', product: e.observer.format },
    kiseki: { severity: e.severity, verdict: e.verdict, alert_id: e.id, indicator_value: ind?.value, indicator_observed: ind?.observed, indicator_confidence: ind?.confidence, signature: e.observer?.signature },
  });
}

/** Every dotted leaf path of an object (arrays are leaves): what the ECS field list documents. */
export function flattenKeys(v: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof x === 'object' && x !== null && !Array.isArray(x)) out.push(...flattenKeys(x as Record<string, unknown>, path));
    else out.push(path);
  }
  return out;
}

/** The OCSF Detection Finding (class 2004) of an event. */
export function toOcsf(e: SiemEvent): Record<string, unknown> {
  const sev = LEVELS[e.severity].ocsf;
  const endpoint = (x: { ip?: string; port?: number; domain?: string } | undefined): Record<string, unknown> | undefined =>
    x === undefined ? undefined : { ip: x.ip, port: x.port, hostname: x.domain };
  return compact({
    class_uid: 2004,
    class_name: 'Detection Finding',
    category_uid: 2,
    category_name: 'Findings',
    activity_id: e.action === 'alert.verdict' ? 2 : 1,
    activity_name: e.action === 'alert.verdict' ? 'Update' : 'Create',
    type_uid: e.action === 'alert.verdict' ? 200402 : 200401,
    time: e.at,
    severity_id: sev,
    severity: OCSF_SEVERITY[sev],
    status_id: 1,
    status: 'New',
    message: e.title,
    confidence_score: e.indicator?.confidence,
    metadata: { version: OCSF_VERSION, uid: e.eventId, tenant_uid: e.supportId, logged_time: e.createdAt, product: { name: 'kiseki', vendor_name: 'kiseki', version: KISEKI_PRODUCT_VERSION }, labels: e.tags.length === 0 ? undefined : e.tags },
    finding_info: {
      uid: e.id ?? e.eventId,
      title: e.title,
      created_time: e.createdAt,
      types: [e.type],
      src_url: e.link,
      analytic: e.rule === undefined ? undefined : { uid: e.rule.id, name: e.rule.name, type_id: 1, type: 'Rule', category: e.rule.ruleset },
    },
    device: e.host === undefined ? undefined : { hostname: e.host.name, uid: e.host.id, ip: e.host.ips?.[0], type_id: 0 },
    evidences: [
      {
        process: e.process === undefined ? undefined : { uid: e.process.entityId, pid: e.process.pid, file: e.process.executable === undefined ? undefined : { path: e.process.executable, name: e.process.executable.split('\\').pop() } },
        file: e.file === undefined ? undefined : { path: e.file.path, name: e.file.path?.split('\\').pop(), hashes: e.file.sha256 === undefined ? undefined : [{ algorithm_id: 3, algorithm: 'SHA-256', value: e.file.sha256 }] },
        src_endpoint: endpoint(e.source),
        dst_endpoint: endpoint(e.destination),
        url: e.url === undefined ? undefined : { url_string: e.url },
        connection_info: e.transport === undefined ? undefined : { protocol_name: e.transport },
      },
    ],
    observables:
      e.indicator === undefined
        ? undefined
        : [{ name: 'indicator', type_id: e.indicator.type === 'ip' ? 2 : e.indicator.type === 'domain' ? 1 : e.indicator.type === 'url' ? 6 : 8, value: e.indicator.observed, reputation: { provider: e.indicator.provider, score_id: e.indicator.confidence >= 80 ? 10 : 8, base_score: e.indicator.confidence } }],
    disposition: e.outcome,
    unmapped: { verdict: e.verdict, severity_label: e.severity },
  });
}

const cefHeader = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
const cefValue = (s: string): string => s.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r?\n/g, '\\n');

/** The CEF line of an event: `CEF:0|kiseki|kiseki|version|signature id|name|severity 0–10|extension`. */
export function toCef(e: SiemEvent): string {
  const ext: [string, string | number | undefined][] = [
    ['rt', e.at],
    ['externalId', e.id ?? e.eventId],
    ['cat', e.type],
    ['act', e.outcome],
    ['src', e.source?.ip],
    ['spt', e.source?.port],
    ['dst', e.destination?.ip],
    ['dpt', e.destination?.port],
    ['dhost', e.destination?.domain],
    ['request', e.url],
    ['proto', e.transport],
    ['shost', e.host?.name],
    ['sourceProcessName', e.process?.executable],
    ['spid', e.process?.pid],
    ['filePath', e.file?.path],
    ['fileHash', e.file?.sha256],
    ['dvchost', e.observer?.hostname],
    ['dvc', e.observer?.ip],
    ['cs1Label', 'supportId'],
    ['cs1', e.supportId],
    ['cs2Label', e.indicator === undefined ? undefined : 'indicator'],
    ['cs2', e.indicator?.value],
    ['cs3Label', e.indicator === undefined ? undefined : 'intelSource'],
    ['cs3', e.indicator?.provider],
    ['cs4Label', e.rule === undefined ? undefined : 'ruleId'],
    ['cs4', e.rule?.id],
    ['cs5Label', e.verdict === undefined ? undefined : 'verdict'],
    ['cs5', e.verdict],
    ['cs6Label', 'severity'],
    ['cs6', e.severity],
    ['cn1Label', e.indicator === undefined ? undefined : 'confidence'],
    ['cn1', e.indicator?.confidence],
    ['msg', e.title],
  ];
  const extension = ext
    .filter((kv): kv is [string, string | number] => kv[1] !== undefined && kv[1] !== '')
    .map(([k, v]) => `${k}=${cefValue(String(v))}`)
    .join(' ');
  const signatureId = e.rule?.id ?? e.type;
  return `CEF:0|kiseki|kiseki|${KISEKI_PRODUCT_VERSION}|${cefHeader(signatureId)}|${cefHeader(e.title)}|${LEVELS[e.severity].cef}|${extension}`;
}

const sdValue = (s: string): string => s.replace(/[\\"\]]/g, (c) => `\\${c}`);
/** RFC 5424 PRINTUSASCII without space, at most `max` characters, `-` when empty. */
const headerField = (s: string | undefined, max: number): string => {
  const v = (s ?? '').replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return v === '' ? '-' : v;
};

/** Facility local4 (20): security tools' common choice; PRI = facility × 8 + severity. */
export const SYSLOG_FACILITY = 20;

/**
 * The RFC 5424 message of an event: `<PRI>1 TIMESTAMP HOSTNAME kiseki - MSGID [SD] MSG`.
 * MSGID is the event type; the MSG is the CEF line (`cef`) or the ECS JSON (other formats).
 */
export function toSyslog(e: SiemEvent, format: SiemFormat, hostname: string): string {
  const pri = SYSLOG_FACILITY * 8 + LEVELS[e.severity].syslog;
  const sd = [
    ['eventId', e.eventId],
    ['supportId', e.supportId],
    ['severity', e.severity],
    ['id', e.id],
  ]
    .filter((kv): kv is [string, string] => kv[1] !== undefined)
    .map(([k, v]) => `${k}="${sdValue(v)}"`)
    .join(' ');
  const msg = format === 'cef' ? toCef(e) : JSON.stringify(format === 'ocsf' ? toOcsf(e) : toEcs(e));
  return `<${pri}>1 ${iso(e.createdAt)} ${headerField(hostname, 255)} kiseki - ${headerField(e.type, 32)} [${SD_ID} ${sd}] ${msg}`;
}

/** The payload line of an event for a destination: syslog transports get RFC 5424, files and HTTP the bare format. */
export function formatFor(e: SiemEvent, format: SiemFormat, syslog: boolean, hostname: string): string {
  if (syslog) return toSyslog(e, format, hostname);
  if (format === 'cef') return toCef(e);
  if (format === 'ocsf') return JSON.stringify(toOcsf(e));
  if (format === 'rfc5424') return toSyslog(e, format, hostname);
  return JSON.stringify(toEcs(e));
}
