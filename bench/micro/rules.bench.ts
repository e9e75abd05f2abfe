/**
 * Rule matching per event: the verdict rules (engine/rules/default-rules.ts)
 * run over a quick report's sections, where every item is an event. Side by
 * side: the rule set compiled once into closures (engine/rules/evaluate.ts,
 * what the product does) and the same rule data interpreted on every call
 * (conditions walked, regular expressions and sets rebuilt each time). Both
 * see the same report of 200 events, so the per-event cost is ops × 200.
 */
import { Bench } from 'tinybench';
import type { EvidenceItem, ReportSection, ReportSectionId } from '../../core/contracts.js';
import { compileRules, judge, type RuleInput } from '../../engine/rules/evaluate.js';
import { DEFAULT_RULES } from '../../engine/rules/default-rules.js';
import type { Condition, FieldTest } from '../../engine/rules/rule-types.js';
import { createIntelIndex, type IntelKind, type ThreatIntel } from '../../engine/intel/index.js';
import { fixtureEvents, isMain } from './micro-fixtures.js';
import { printTable, rowsOf, type MicroTable } from './micro-report.js';

const EVENTS = 200;

function sectionFor(kind: string): ReportSectionId {
  if (kind.startsWith('proc.')) return 'descendants';
  if (kind === 'file.read') return 'filesRead';
  if (kind.startsWith('file.')) return 'filesWritten';
  if (kind.startsWith('reg.')) return 'registry';
  if (kind.startsWith('net.')) return 'network';
  return 'chain';
}

/** A plain interpreter of the rule language, rebuilding everything per call: the "no compilation" alternative. */
function interpret(c: Condition, input: RuleInput): boolean {
  if ('section' in c) {
    const ids = typeof c.section === 'string' ? [c.section] : c.section;
    for (const s of input.sections) {
      if (!ids.includes(s.id)) continue;
      for (const item of s.items) if (c.where.every((t) => testField(t, item.event, input))) return true;
    }
    return false;
  }
  if ('fact' in c) return c.in.includes(input.facts[c.fact]);
  if ('all' in c) return c.all.every((x) => interpret(x, input));
  if ('any' in c) return c.any.some((x) => interpret(x, input));
  return !interpret(c.not, input);
}

function testField(t: FieldTest, e: Record<string, unknown>, input: RuleInput): boolean {
  const v = e[t.field];
  if ('equals' in t) return (typeof v === 'string' ? v.toLowerCase() : v) === (typeof t.equals === 'string' ? t.equals.toLowerCase() : t.equals);
  if ('in' in t) return t.in.map((x) => (typeof x === 'string' ? x.toLowerCase() : x)).includes(typeof v === 'string' ? v.toLowerCase() : (v as number));
  if ('matches' in t) return typeof v === 'string' && new RegExp(t.matches, 'i').test(v);
  if ('basenameIn' in t) return typeof v === 'string' && t.basenameIn.map((x) => x.toLowerCase()).includes(v.slice(Math.max(v.lastIndexOf('\\'), v.lastIndexOf('/')) + 1).toLowerCase());
  if ('intel' in t) return typeof v === 'string' && input.intel.has(t.intel, v);
  if ('publicIpWithoutName' in t) return typeof v === 'string' && !/^(10\.|127\.|192\.168\.)/.test(v) && !input.dnsNames.has(v);
  return (v !== undefined && v !== null) === t.exists;
}

/** Runs the rule comparison and prints its table. */
export async function runBench(): Promise<MicroTable[]> {
  const events = fixtureEvents(EVENTS, 4, 7, 0.01);
  const bySection = new Map<ReportSectionId, EvidenceItem[]>();
  for (const e of events) {
    const id = sectionFor(e.k);
    const list = bySection.get(id) ?? [];
    list.push({ ref: { tmid: 'T1', seq: e.seq, ts: e.ts, k: e.k }, event: e as Record<string, unknown> });
    bySection.set(id, list);
  }
  const sections: ReportSection[] = [...bySection].map(([id, items]) => ({ id, title: id, summary: '', items }));
  const intelSets: Record<IntelKind, Set<string>> = { sha256: new Set(['0'.repeat(64)]), domain: new Set(['cdn-docs-share.xyz']), ip: new Set(['203.0.113.7']) };
  const intel: ThreatIntel = { has: (kind, value) => intelSets[kind].has(value.toLowerCase()), reloadIfChanged: () => false, counts: () => ({ sha256: 1, domain: 1, ip: 1, url: 0 }), index: () => createIntelIndex([]) };
  const input: RuleInput = { sections, facts: { originKind: 'internet', executed: true, action: 'quarantined' }, intel, dnsNames: new Map() };
  const compiled = compileRules(DEFAULT_RULES);
  let sink = 0;
  const bench = new Bench({ time: 1500, warmupTime: 300 });
  bench
    .add(`compiled closures, ${DEFAULT_RULES.rules.length} rules (product)`, () => {
      sink += judge(compiled, input).score;
    })
    .add(`interpreted per call, ${DEFAULT_RULES.rules.length} rules`, () => {
      for (const r of DEFAULT_RULES.rules) if (interpret(r.when, input)) sink += r.weight ?? 1;
    });
  await bench.run();
  if (Number.isNaN(sink)) throw new Error('unreachable');
  const table: MicroTable = {
    bench: `verdict rules over a ${EVENTS}-event quick report`,
    item: 'event',
    itemsPerOp: EVENTS,
    rows: rowsOf(bench, EVENTS),
    verdict: 'rules are compiled once per rule set (compileRules) and judged per report, never per ingested event',
  };
  printTable(table);
  return [table];
}

if (isMain(import.meta.url)) await runBench();
