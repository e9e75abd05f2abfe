/**
 * What SIEM forwarding sends, before any format: one neutral record per feed
 * event (an endpoint alert, a network-intel alert, a Sigma detection, an
 * isolation or offline device), built at send time from what storage holds.
 * The four formats (formats.ts) are projections of this record, so they say
 * the same thing in ECS, OCSF, CEF and RFC 5424.
 */
import type { SigmaSeverity } from '../../core/contracts.js';
import type { HotStore, NotifyFeedEvent } from '../../storage/index.js';

/** The neutral record a feed event becomes. */
export interface SiemEvent {
  /** The feed event's idempotency id (outbox id + position): receivers may deduplicate on it. */
  eventId: string;
  /** `endpoint-alert`, `network-intel`, `sigma-detection`, `device-isolated`, `device-offline`. */
  type: 'endpoint-alert' | 'network-intel' | 'sigma-detection' | 'device-isolated' | 'device-offline';
  /** The feed kind it came from. */
  action: NotifyFeedEvent['kind'];
  /** Id of the alert or detection (absent for device events). */
  id?: string;
  supportId: string;
  /** Time of what happened (endpoint or network time), ms. */
  at: number;
  /** Server time of the change, ms. */
  createdAt: number;
  severity: SigmaSeverity;
  title: string;
  verdict?: string;
  host?: { name: string; id: string; ips?: string[] };
  process?: { entityId: string; pid?: number; executable?: string };
  file?: { path?: string; sha256?: string };
  source?: { ip?: string; port?: number };
  destination?: { ip?: string; port?: number; domain?: string };
  url?: string;
  transport?: string;
  /** The network device's action (allowed / blocked / alert / unknown) or the AV's. */
  outcome?: string;
  rule?: { id: string; name: string; author?: string; ruleset: string };
  indicator?: { type: 'ip' | 'domain' | 'url' | 'sha256'; value: string; observed: string; confidence: number; provider: string; name?: string };
  /** The network device that logged the traffic. */
  observer?: { hostname?: string; ip: string; format: string; signature?: string };
  tags: string[];
  /** Console link of the alert, when there is one. */
  link?: string;
}

const VERDICT_SEVERITY: Record<string, SigmaSeverity> = { black: 'Critical', gray: 'Medium', white: 'Information' };

/** The SIEM record of a feed event, or undefined when what it names is gone. */
export function siemEventOf(store: HotStore, e: NotifyFeedEvent, eventId: string, consoleUrl: string): SiemEvent | undefined {
  const base = { eventId, action: e.kind, supportId: e.supportId, createdAt: e.at };
  if (e.kind === 'intel.hit') {
    const a = e.alertId === undefined ? undefined : store.intelAlerts.get(e.alertId);
    if (a === undefined) return undefined;
    const best = [...a.hits].sort((x, y) => y.confidence - x.confidence)[0]!;
    const n = a.network;
    return {
      ...base,
      type: 'network-intel',
      id: a.id,
      at: a.at,
      severity: e.severity ?? a.severity,
      title: `Threat-intelligence match: ${best.value} (${n.format}${n.signature === undefined ? '' : `: ${n.signature}`})`,
      ...(a.device === undefined ? {} : { host: { name: a.device.computer, id: a.device.tmid } }),
      ...(a.endpoint === undefined ? {} : { process: { entityId: a.endpoint.pg, ...(a.endpoint.pid === undefined ? {} : { pid: a.endpoint.pid }), ...(a.endpoint.image === undefined ? {} : { executable: a.endpoint.image }) } }),
      source: { ...(n.srcIp === undefined ? {} : { ip: n.srcIp }), ...(n.srcPort === undefined ? {} : { port: n.srcPort }) },
      destination: { ...(n.dstIp === undefined ? {} : { ip: n.dstIp }), ...(n.dstPort === undefined ? {} : { port: n.dstPort }), ...(n.domain === undefined ? {} : { domain: n.domain }) },
      ...(n.url === undefined ? {} : { url: n.url }),
      ...(n.protocol === undefined ? {} : { transport: n.protocol.toLowerCase() }),
      outcome: n.action,
      indicator: { type: best.kind, value: best.value, observed: best.observed, confidence: best.confidence, provider: best.source, ...(best.name === undefined ? {} : { name: best.name }) },
      observer: { ip: n.sourceAddress, format: n.format, ...(n.host === undefined ? {} : { hostname: n.host }), ...(n.signature === undefined ? {} : { signature: n.signature }) },
      tags: [...new Set(a.hits.flatMap((h) => h.labels))],
    };
  }
  if (e.kind === 'detection.new') {
    const d = e.detectionId === undefined ? undefined : store.detections.get(e.detectionId);
    if (d === undefined) return undefined;
    return {
      ...base,
      type: 'sigma-detection',
      id: d.id,
      at: d.at,
      severity: d.severity,
      title: d.title,
      host: { name: d.computer, id: d.tmid },
      process: { entityId: d.pg, ...(d.image === '' ? {} : { executable: d.image }) },
      rule: { id: d.ruleId, name: d.title, author: d.author, ruleset: 'sigma' },
      tags: d.tags,
    };
  }
  if (e.kind === 'alert.new' || e.kind === 'alert.verdict') {
    const a = e.alertId === undefined ? undefined : store.alerts.effective(e.alertId);
    if (a === undefined) return undefined;
    const device = store.devices.get(a.tmid);
    return {
      ...base,
      type: 'endpoint-alert',
      id: a.id,
      at: a.detectedAt,
      severity: VERDICT_SEVERITY[a.verdict] ?? 'Medium',
      title: a.threat === '' ? 'Endpoint detection' : a.threat,
      verdict: a.verdict,
      host: { name: a.computer, id: a.tmid, ...(device === undefined || device.ips.length === 0 ? {} : { ips: device.ips }) },
      file: { path: a.path, ...(a.sha256 === '' ? {} : { sha256: a.sha256 }) },
      ...(a.action === '' ? {} : { outcome: a.action }),
      ...(a.engine === '' ? {} : { rule: { id: a.engine, name: a.threat, ruleset: 'endpoint-av' } }),
      tags: [],
      link: `${consoleUrl}/alerts/${a.id}`,
    };
  }
  // Device events: isolation confirmed, agent offline.
  const device = e.tmid === undefined ? undefined : store.devices.get(e.tmid);
  return {
    ...base,
    type: e.kind === 'device.isolated' ? 'device-isolated' : 'device-offline',
    at: e.at,
    severity: e.kind === 'device.isolated' ? 'Serious' : 'Information',
    title: e.kind === 'device.isolated' ? 'Device isolated' : 'Agent offline',
    ...(device === undefined ? {} : { host: { name: device.computer, id: device.tmid } }),
    tags: [],
  };
}
