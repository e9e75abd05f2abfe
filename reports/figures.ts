/**
 * The figures of a periodic report, read from storage for one tenant and
 * one period [start, end): detections by effective verdict and severity, top
 * threats and rules, devices and agent versions, offline devices,
 * isolations, exceptions added, log volume. The API returns these same
 * figures with the report, so what the PDF prints and what the API says
 * cannot differ.
 */
import type { Verdict } from '../core/contracts.js';
import type { HotStore } from '../storage/index.js';

export type Severity = 'high' | 'medium' | 'low';

/** Severity from the engine's score (0–100): ≥ 80 high, ≥ 50 medium, else low. */
export function severityOf(score: number): Severity {
  return score >= 80 ? 'high' : score >= 50 ? 'medium' : 'low';
}

export interface ReportFigures {
  supportId: string;
  tenantName: string;
  periodStart: number;
  periodEnd: number;
  /** Reported alerts created in the period (suppressed and tuning ones not counted). */
  detections: number;
  byVerdict: Record<Verdict, number>;
  bySeverity: Record<Severity, number>;
  /** Up to 10, most frequent first. */
  topThreats: { name: string; count: number }[];
  topRules: { ruleId: string; count: number }[];
  devices: number;
  agentVersions: { version: string; count: number }[];
  /** Devices not seen in the last 24 h before the period end. */
  offlineDevices: { tmid: string; computer: string; lastSeen: number }[];
  isolations: number;
  exceptionsAdded: number;
  /** Events received in the period (raw batches still in the hot store). */
  logEvents: number;
  /** The alerts counted, for incident lists: id, computer, threat, effective verdict. */
  alerts: { id: string; createdAt: number; computer: string; threat: string; verdict: Verdict; severity: Severity }[];
}

const OFFLINE_AFTER_MS = 24 * 3600_000;

const top = <K extends string>(counts: Map<string, number>, key: K, n = 10): ({ [P in K]: string } & { count: number })[] =>
  [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([k, count]) => ({ [key]: k, count }) as { [P in K]: string } & { count: number });

/** Computes the figures of one tenant and period from what storage holds now. */
export function computeFigures(store: HotStore, supportId: string, periodStart: number, periodEnd: number): ReportFigures {
  const byVerdict: Record<Verdict, number> = { black: 0, gray: 0, white: 0 };
  const bySeverity: Record<Severity, number> = { high: 0, medium: 0, low: 0 };
  const threats = new Map<string, number>();
  const rules = new Map<string, number>();
  const alerts: ReportFigures['alerts'] = [];
  // Newest first: skip the alerts after the period, stop at the first before it.
  for (const a of store.alerts.scanTenant(supportId)) {
    if (a.createdAt >= periodEnd) continue;
    if (a.createdAt < periodStart) break;
    if (a.state !== 'reported') continue;
    const severity = severityOf(a.score);
    byVerdict[a.verdict]++;
    bySeverity[severity]++;
    threats.set(a.threat, (threats.get(a.threat) ?? 0) + 1);
    const report = store.alerts.revision(a.id, a.revision);
    for (const hit of report?.rules ?? []) rules.set(hit.ruleId, (rules.get(hit.ruleId) ?? 0) + 1);
    alerts.push({ id: a.id, createdAt: a.createdAt, computer: a.computer, threat: a.threat, verdict: a.verdict, severity });
  }
  alerts.reverse();

  const versions = new Map<string, number>();
  const offlineDevices: ReportFigures['offlineDevices'] = [];
  let devices = 0;
  let isolations = 0;
  let logEvents = 0;
  const fromLsn = store.log.lsnReceivedAtOrAfter(periodStart);
  const toLsn = store.log.lsnReceivedAtOrAfter(periodEnd);
  for (const d of store.devices.scanTenant(supportId)) {
    if (d.firstSeen >= periodEnd) continue;
    devices++;
    versions.set(d.agentVersion, (versions.get(d.agentVersion) ?? 0) + 1);
    if (!d.connected && d.lastSeen < periodEnd - OFFLINE_AFTER_MS) offlineDevices.push({ tmid: d.tmid, computer: d.computer, lastSeen: d.lastSeen });
    for (const c of store.commands.forDevice(d.tmid)) {
      const at = c.updatedAt ?? c.requestedAt;
      if (c.kind === 'isolate' && c.state === 'done' && at >= periodStart && at < periodEnd) isolations++;
    }
    if (toLsn > fromLsn) for (const lsn of store.log.deviceLsns(d.tmid, fromLsn, toLsn)) logEvents += store.log.batch(lsn)?.n ?? 0;
  }
  const exceptionsAdded = store.exceptions.list(supportId).filter((e) => e.createdAt >= periodStart && e.createdAt < periodEnd).length;
  return {
    supportId,
    tenantName: store.tenants.get(supportId)?.name ?? supportId,
    periodStart,
    periodEnd,
    detections: alerts.length,
    byVerdict,
    bySeverity,
    topThreats: top(threats, 'name'),
    topRules: top(rules, 'ruleId'),
    devices,
    agentVersions: top(versions, 'version', 50),
    offlineDevices,
    isolations,
    exceptionsAdded,
    logEvents,
    alerts,
  };
}
