/**
 * Interprets a RuleSet against a built report: which rules fire, with which
 * evidence, the score they add up to and the verdict. Regular expressions and
 * name lists are compiled once per rule set (compileRules), not per report.
 */
import type { EvidenceItem, EvidenceRef, ReportSection, ReportSectionId, RuleHit, Verdict } from '../../core/contracts.js';
import type { ThreatIntel } from '../intel/index.js';
import type { Condition, Fact, FieldTest, RuleSet, RuleSpec } from './rule-types.js';

/** What a rule can look at. */
export interface RuleInput {
  sections: readonly ReportSection[];
  facts: Record<Fact, string | boolean>;
  intel: ThreatIntel;
  /** IP → name resolved by the device. */
  dnsNames: ReadonlyMap<string, string>;
}

type Matcher = (input: RuleInput, evidence: EvidenceRef[]) => boolean;

interface CompiledRule {
  spec: RuleSpec;
  match: Matcher;
}

export interface CompiledRuleSet {
  thresholds: RuleSet['thresholds'];
  rules: CompiledRule[];
}

function basename(path: string): string {
  const i = Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/'));
  return (i < 0 ? path : path.slice(i + 1)).toLowerCase();
}

const PRIVATE_V4 = /^(10\.|127\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|0\.|255\.)/;

function isPublicIp(ip: string): boolean {
  if (ip.includes(':')) return !/^(::1$|fe80:|fc|fd|::$)/i.test(ip);
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(ip) && !PRIVATE_V4.test(ip);
}

function compileTest(t: FieldTest): (event: Record<string, unknown>, input: RuleInput) => boolean {
  const get = (e: Record<string, unknown>) => e[t.field];
  if ('equals' in t) {
    const want = typeof t.equals === 'string' ? t.equals.toLowerCase() : t.equals;
    return (e) => {
      const v = get(e);
      return (typeof v === 'string' ? v.toLowerCase() : v) === want;
    };
  }
  if ('in' in t) {
    const set = new Set(t.in.map((x) => (typeof x === 'string' ? x.toLowerCase() : x)));
    return (e) => {
      const v = get(e);
      return set.has(typeof v === 'string' ? v.toLowerCase() : (v as number));
    };
  }
  if ('matches' in t) {
    const re = new RegExp(t.matches, 'i');
    return (e) => {
      const v = get(e);
      return typeof v === 'string' && re.test(v);
    };
  }
  if ('basenameIn' in t) {
    const set = new Set(t.basenameIn.map((x) => x.toLowerCase()));
    return (e) => {
      const v = get(e);
      return typeof v === 'string' && set.has(basename(v));
    };
  }
  if ('intel' in t) {
    const kind = t.intel;
    return (e, input) => {
      const v = get(e);
      return typeof v === 'string' && input.intel.has(kind, v);
    };
  }
  if ('publicIpWithoutName' in t) {
    return (e, input) => {
      const v = get(e);
      return typeof v === 'string' && isPublicIp(v) && (typeof e.rhost !== 'string' || e.rhost === '') && !input.dnsNames.has(v);
    };
  }
  const want = t.exists;
  return (e) => (get(e) !== undefined && get(e) !== null) === want;
}

function compileCondition(c: Condition): Matcher {
  if ('section' in c) {
    const ids = new Set<ReportSectionId>(typeof c.section === 'string' ? [c.section] : c.section);
    const tests = c.where.map(compileTest);
    return (input, evidence) => {
      let hit = false;
      for (const section of input.sections) {
        if (!ids.has(section.id)) continue;
        for (const item of section.items as EvidenceItem[]) {
          if (tests.every((t) => t(item.event, input))) {
            hit = true;
            if (!evidence.some((r) => r.seq === item.ref.seq && r.tmid === item.ref.tmid)) evidence.push(item.ref);
          }
        }
      }
      return hit;
    };
  }
  if ('fact' in c) {
    const allowed = c.in;
    return (input) => allowed.includes(input.facts[c.fact]);
  }
  if ('all' in c) {
    const parts = c.all.map(compileCondition);
    return (input, evidence) => {
      const local: EvidenceRef[] = [];
      if (!parts.every((p) => p(input, local))) return false;
      evidence.push(...local);
      return true;
    };
  }
  if ('any' in c) {
    const parts = c.any.map(compileCondition);
    return (input, evidence) => {
      let hit = false;
      for (const p of parts) if (p(input, evidence)) hit = true;
      return hit;
    };
  }
  const inner = compileCondition(c.not);
  return (input) => !inner(input, []);
}

/** Compiles a rule set; throws on an invalid regular expression or a rule with neither weight nor outcome. */
export function compileRules(set: RuleSet): CompiledRuleSet {
  const ids = new Set<string>();
  return {
    thresholds: set.thresholds,
    rules: set.rules.map((spec) => {
      if (ids.has(spec.id)) throw new Error(`duplicate rule id ${spec.id}`);
      ids.add(spec.id);
      if (spec.weight === undefined && spec.outcome === undefined) throw new Error(`rule ${spec.id} has neither weight nor outcome`);
      return { spec, match: compileCondition(spec.when) };
    }),
  };
}

export interface Judgement {
  hits: RuleHit[];
  score: number;
  verdict: Verdict;
}

/** Runs every rule; the verdict follows decisive outcomes first, then the score thresholds. */
export function judge(rules: CompiledRuleSet, input: RuleInput): Judgement {
  const hits: RuleHit[] = [];
  let score = 0;
  let decisiveBlack = false;
  let decisiveWhite = false;
  for (const { spec, match } of rules.rules) {
    const evidence: EvidenceRef[] = [];
    if (!match(input, evidence)) continue;
    const hit: RuleHit = { ruleId: spec.id, description: spec.description, evidence };
    if (spec.weight !== undefined) {
      hit.weight = spec.weight;
      score += spec.weight;
    }
    if (spec.outcome !== undefined) {
      hit.outcome = spec.outcome;
      if (spec.outcome === 'black') decisiveBlack = true;
      if (spec.outcome === 'white') decisiveWhite = true;
    }
    hits.push(hit);
  }
  let verdict: Verdict;
  if (decisiveBlack) verdict = 'black';
  else if (decisiveWhite) verdict = 'white';
  else if (score >= rules.thresholds.black) verdict = 'black';
  else if (score <= rules.thresholds.white) verdict = 'white';
  else verdict = 'gray';
  return { hits, score, verdict };
}
