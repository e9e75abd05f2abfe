/**
 * Renders a quick report as plain text for `kiseki report` and for mail-like
 * notifications: the verdict and why, then the eight sections with their
 * evidence (device, seq, time).
 */
import type { AlertRecord, EvidenceItem, QuickReport } from '../core/contracts.js';
import type { VerdictHistoryEntry } from '../storage/index.js';

const EVENT_FIELDS = ['image', 'cmd', 'path', 'newPath', 'key', 'value', 'data', 'rip', 'rport', 'rhost', 'qname', 'answers', 'originUrl', 'sha256', 'signer', 'sig', 'size', 'action', 'threat', 'timage', 'access', 'pipe', 'name', 'imagePath', 'task'];

function iso(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

function describeItem(it: EvidenceItem): string {
  const e = it.event;
  const fields = EVENT_FIELDS.filter((f) => e[f] !== undefined && e[f] !== '')
    .map((f) => `${f}=${Array.isArray(e[f]) ? (e[f] as unknown[]).join(',') : String(e[f])}`)
    .join(' ');
  return `    #${it.ref.seq} ${iso(it.ref.ts)} ${it.ref.k}${fields ? ` ${fields}` : ''}${it.note ? `  (${it.note})` : ''}`;
}

export function renderReportText(alert: AlertRecord, report: QuickReport | undefined, verdicts: readonly VerdictHistoryEntry[]): string {
  const lines: string[] = [
    `Alert ${alert.id}  ${alert.state.toUpperCase()}  verdict ${alert.verdict.toUpperCase()} (score ${alert.score})`,
    `Tenant ${alert.supportId}  device ${alert.computer} (${alert.tmid})`,
    `Detected ${iso(alert.detectedAt)}: ${alert.threat} in ${alert.path} (${alert.engine}, ${alert.action})`,
    `Repeats within 72 h: ${alert.repeats}${alert.isolationRequested ? '  isolation requested' : ''}`,
  ];
  if (alert.state === 'suppressed') {
    lines.push(`Suppressed by exception ${alert.suppressedBy ?? '?'}: no report.`);
    return `${lines.join('\n')}\n`;
  }
  if (report === undefined) return `${lines.join('\n')}\n(no report stored)\n`;
  const ran = report.execution === undefined ? (report.executed ? 'executed' : 'not executed') : `executed (${report.execution.detail})`;
  lines.push(`Report revision ${report.revision} made ${iso(report.createdAt)}; origin ${report.originKind}; ${ran}`);
  if (report.confidence !== undefined) lines.push(`Confidence ${report.confidence.level}: ${report.confidence.reason}`);
  lines.push('', 'Rules and factors that fired:');
  for (const r of report.rules) {
    // Weight 0: a note (new to the fleet) or a factor outweighed by malicious signs.
    const effect = r.outcome !== undefined ? `decides ${r.outcome}` : r.weight === 0 ? 'note, no weight' : `${r.weight! >= 0 ? '+' : ''}${r.weight}`;
    lines.push(`  ${r.ruleId} (${effect}): ${r.description}${r.detail === undefined ? '' : ` ${r.detail}.`} [evidence ${r.evidence.map((e) => `#${e.seq}`).join(', ') || 'facts'}]`);
  }
  if (report.rules.length === 0) lines.push('  none');
  // Sigma detections on the report's process tree (absent on reports made before Sigma ran in the shards).
  if (report.sigma !== undefined && report.sigma.length > 0) {
    lines.push('Sigma rules that fired on the process tree:');
    for (const h of report.sigma) lines.push(`  ${h.severity} ${h.title} (${h.ruleId}) on ${h.image || h.pg} [evidence #${h.event.seq}]`);
  }
  for (const s of report.sections) {
    lines.push('', `${s.title}: ${s.summary}`);
    for (const it of s.items) lines.push(describeItem(it));
  }
  if (verdicts.length > 0) {
    lines.push('', 'Verdict history:');
    for (const v of verdicts) lines.push(`  ${v.revision === null ? 'analyst' : `rev ${v.revision}`} ${iso(v.at)} ${v.from ?? '-'} → ${v.to} by ${v.by}`);
  }
  return `${lines.join('\n')}\n`;
}
