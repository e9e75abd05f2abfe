/**
 * Checks a quick report against a case's expected facts. The report is
 * rendered into lines per section: the section's summary, then one line per
 * evidence item holding its kind, note and every field of its event (not a
 * chosen few: a fact is about what happened in the trail, so a field the
 * report builder adds later counts without changing this file). A fact is
 * found when one line of one of its sections holds all of its strings,
 * case-insensitively; requiring one line keeps "10.0.0.5" and "8443" on the
 * same connection.
 */
import type { QuickReport } from '../../core/contracts.js';
import type { EvalFact } from './eval-cases.js';

/** Report fields shown in the `header` pseudo-section; everything else top-level and unknown goes to `verdict`. */
const HEADER_FIELDS = new Set(['alertId', 'revision', 'createdAt', 'tmid', 'supportId', 'computer', 'detection', 'originKind', 'executed', 'score', 'verdict']);

/** Pseudo-sections a fact may name besides the report's own section ids. */
export const PSEUDO_SECTIONS = ['header', 'verdict', 'any'] as const;

function flatten(value: unknown, prefix: string, out: string[], depth = 0): void {
  if (value === undefined || value === null || value === '') return;
  if (depth > 4) {
    out.push(`${prefix}=${JSON.stringify(value)}`);
    return;
  }
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) out.push(`${prefix}=${value.join(',')}`);
    else value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out, depth + 1));
    return;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flatten(v, prefix === '' ? k : `${prefix}.${k}`, out, depth + 1);
    return;
  }
  out.push(`${prefix}=${String(value)}`);
}

/** One line: every leaf of `value` as key=value. */
export function renderLine(value: unknown): string {
  const parts: string[] = [];
  flatten(value, '', parts);
  return parts.join(' ');
}

/** The report as lines per section id (and the pseudo-sections `header` and `verdict`). */
export function renderReportLines(report: QuickReport): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of report.sections) {
    const lines = [`${s.title}: ${s.summary}`];
    for (const it of s.items) lines.push(`${it.ref.k} ${it.note ?? ''} ${renderLine(it.event)}`);
    // Whatever else a section carries (a builder may add structured facts beside its items).
    for (const [k, v] of Object.entries(s)) if (!['id', 'title', 'summary', 'items'].includes(k)) lines.push(`${k} ${renderLine(v)}`);
    const key = s.id.toLowerCase();
    out.set(key, [...(out.get(key) ?? []), ...lines]);
    const title = s.title.toLowerCase();
    if (title !== key) out.set(title, [...(out.get(title) ?? []), ...lines]);
  }
  const header = [
    `executed=${report.executed} originKind=${report.originKind} verdict=${report.verdict} score=${report.score}`,
    `detection ${renderLine(report.detection.event)}`,
  ];
  const verdict: string[] = [];
  for (const r of report.rules) verdict.push(`rule ${renderLine(r)}`);
  for (const h of report.sigma ?? []) verdict.push(`sigma ${renderLine(h)}`);
  const r = report as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(r)) {
    if (HEADER_FIELDS.has(k) || k === 'sections' || k === 'rules' || k === 'sigma') continue;
    if (Array.isArray(v)) for (const x of v) verdict.push(`${k} ${renderLine(x)}`);
    else if (typeof v === 'object' && v !== null) verdict.push(`${k} ${renderLine(v)}`);
    else header.push(`${k}=${String(v)}`);
  }
  out.set('header', header);
  out.set('verdict', verdict);
  return out;
}

/** Case-insensitive, and a run of backslashes (JSON escaping, `\\?\` prefixes aside) counts as one. */
function fold(s: string): string {
  return s.toLowerCase().replace(/\\+/g, '\\');
}

/** The lines a fact is checked against. */
function linesFor(fact: EvalFact, lines: Map<string, string[]>): string[] {
  const sections = (Array.isArray(fact.section) ? fact.section : [fact.section]).map((s) => s.toLowerCase());
  if (sections.includes('any')) return [...lines.values()].flat();
  return sections.flatMap((s) => lines.get(s) ?? []);
}

/** True when one line of the fact's sections holds every string of the fact. */
export function factFound(fact: EvalFact, lines: Map<string, string[]>): boolean {
  const wanted = fact.contains.map(fold);
  return linesFor(fact, lines).some((line) => {
    const l = fold(line);
    return wanted.every((w) => l.includes(w));
  });
}

/** A fact as one short phrase for the output: `network[10.0.0.5, 8443]`. */
export function describeFact(fact: EvalFact): string {
  const s = Array.isArray(fact.section) ? fact.section.join('|') : fact.section;
  return `${s}[${fact.contains.join(', ')}]`;
}

export interface FactCheck {
  found: EvalFact[];
  missing: EvalFact[];
}

/** Splits a case's facts into found and missing for `report` (all missing when there is no report). */
export function checkFacts(facts: readonly EvalFact[], report: QuickReport | undefined): FactCheck {
  if (report === undefined) return { found: [], missing: [...facts] };
  const lines = renderReportLines(report);
  const found: EvalFact[] = [];
  const missing: EvalFact[] = [];
  for (const f of facts) (factFound(f, lines) ? found : missing).push(f);
  return { found, missing };
}
