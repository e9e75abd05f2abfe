/**
 * Compiles one parsed Sigma document into a rule the matcher runs, or refuses
 * it with a reason. Refusal is all-or-nothing: a rule with one unsupported
 * modifier, one field the trail cannot answer on any of its kinds, or a bad
 * condition is never loaded, so no rule is ever half matched.
 *
 * Each rule is compiled against the field readers of its logsource
 * (field-map.ts): once for its exact trail kinds and once, for the Windows
 * channels, for the data-map kinds (`security.<id>`). A kind whose readers
 * lack a field the rule uses is dropped from the rule; when no kind is left,
 * the rule is refused with `field_not_mapped`. Alongside the evaluator the
 * compiler derives the prefilter: a set of (field, literal) pairs of which
 * one must occur in the event whenever the rule matches.
 */
import { isKisekiError, KisekiError } from '../../core/errors.js';
import { parseCondition, type CondNode } from './condition.js';
import { dataReaderOf, exactReaderOf, FEW_VALUED_FIELDS, logsourceOf, SELDOM_REPEATED_FIELDS, type FieldReader } from './field-map.js';
import type { ProcessResolver, Refusal, RefusalReason, Severity, SigmaRuleInfo } from './types.js';
import { compileValues, type ValueOptions } from './values.js';

type Ev = Readonly<Record<string, unknown>>;
/** A compiled predicate over one event. */
export type Predicate = (event: Ev, resolver: ProcessResolver | undefined) => boolean;

/** One prefilter entry: the field (with its reader) and the literals, any of which may occur in it. */
export interface PrefilterEntry {
  field: string;
  reader: FieldReader;
  literals: string[];
}

/** A rule compiled for one group of kinds. */
export interface Program {
  evaluate: Predicate;
  /** Null when no literal is required: the rule is evaluated on every event of its kinds. */
  prefilter: PrefilterEntry[] | null;
  /**
   * Every clause the matcher requires, {@link prefilter} first (empty when it is null): a match
   * implies that each clause has one of its literals in the event, so a rule is evaluated only
   * when all of them occurred (at most {@link MAX_CLAUSES}).
   */
  clauses: PrefilterEntry[][];
}

/** Most clauses a program requires (the matcher keeps one bit per clause and rule). */
export const MAX_CLAUSES = 4;

/** A loaded rule. */
export interface CompiledRule {
  info: SigmaRuleInfo;
  /** Program for `info.kinds`. */
  exact: Program | undefined;
  /** Program for `info.prefixes` (data-map kinds). */
  data: Program | undefined;
  /** The logsource's extra condition (channel, Sysmon 15 or not). */
  guard: ((event: Ev) => boolean) | undefined;
  /** The field readers of the rule's exact kinds, for Sigma filters compiled later against the same mapping. */
  readonly readerFor: (field: string) => FieldReader | undefined;
}

export type CompileOutcome = { ok: true; rule: CompiledRule } | { ok: false; refusal: Refusal };

/** Options of rule compilation. */
export interface CompileOptions {
  placeholders?: ValueOptions['placeholders'];
}

const SEVERITY: Record<string, Severity> = { critical: 'Critical', high: 'Serious', medium: 'Medium', low: 'Information', informational: 'Information' };

/** Sigma `level` → the four severities (critical → Critical, high → Serious, medium → Medium, low / informational → Information). */
export function severityOf(level: unknown): Severity {
  return (typeof level === 'string' ? SEVERITY[level.toLowerCase()] : undefined) ?? 'Information';
}

/** A rule refused at load time: `details.reason` is the counted reason, `details.detail` the specifics. */
function refuse(reason: RefusalReason, detail: string): KisekiError {
  return new KisekiError('ERR_SIGMA_REFUSED', { reason, detail });
}

/** The reason and detail of a refusal thrown by {@link refuse}, or undefined for any other error. */
function refusalOf(err: unknown): { reason: RefusalReason; detail: string } | undefined {
  return isKisekiError(err, 'ERR_SIGMA_REFUSED') ? { reason: err.details?.reason as RefusalReason, detail: String(err.details?.detail) } : undefined;
}

/** AND of predicates, as a loop: `every` with an arrow would make a closure on every call. */
function allOf(preds: readonly Predicate[]): Predicate {
  if (preds.length === 1) return preds[0]!;
  return (e, r) => {
    for (let i = 0; i < preds.length; i++) if (!preds[i]!(e, r)) return false;
    return true;
  };
}

/** OR of predicates, as a loop. */
function anyOf(preds: readonly Predicate[]): Predicate {
  if (preds.length === 1) return preds[0]!;
  return (e, r) => {
    for (let i = 0; i < preds.length; i++) if (preds[i]!(e, r)) return true;
    return false;
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A selection compiled: predicate plus prefilter (null: none), and the fields it lacked. */
interface Sel {
  pred: Predicate;
  pre: PrefilterEntry[] | null;
  /** Clauses that each hold whenever the selection matches (a conjunction; empty: none). */
  cnf: PrefilterEntry[][];
}

function textValues(e: Ev): Iterable<unknown> {
  const d = e.data;
  return isObject(d) ? [...Object.values(e), ...Object.values(d)] : Object.values(e);
}

/**
 * Keyword search: the pattern against every string value of the event (and
 * of its `data`). A keyword is found anywhere in a value, as full-text search
 * finds it, unless the rule says where (startswith, endswith, re, …).
 */
function keywordSel(mods: string[], values: unknown, options: CompileOptions): Sel {
  const placed = mods.some((m) => ['contains', 'startswith', 'endswith', 're', 'cidr', 'exists', 'fieldref', 'lt', 'lte', 'gt', 'gte', 'base64', 'base64offset'].includes(m));
  const modifiers = placed ? mods : [...mods, 'contains'];
  const c = compileValues(modifiers, values, { placeholders: options.placeholders });
  if (!c.ok) throw refuse(c.reason, c.detail);
  const test = c.test;
  const all = modifiers.includes('all');
  if (all) {
    // `'|all': [a, b]`: every keyword somewhere in the event, not all in one field.
    const parts = (Array.isArray(values) ? values : [values]).map((v) => {
      const one = compileValues(modifiers.filter((m) => m !== 'all'), v, { placeholders: options.placeholders });
      if (!one.ok) throw refuse(one.reason, one.detail);
      return one.test;
    });
    return {
      pred: (e, r) => parts.every((t) => anyValue(e, (v) => t(v, e, r))),
      pre: null,
      cnf: [],
    };
  }
  return { pred: (e, r) => anyValue(e, (v) => test(v, e, r)), pre: null, cnf: [] };
}

function anyValue(e: Ev, f: (v: unknown) => boolean): boolean {
  for (const v of textValues(e)) if (typeof v === 'string' && f(v)) return true;
  return false;
}

function better(a: PrefilterEntry[] | null, b: PrefilterEntry[] | null): PrefilterEntry[] | null {
  if (a === null) return b;
  if (b === null) return a;
  const sa = clauseScore(a);
  const sb = clauseScore(b);
  if (sa !== sb) return sa > sb ? a : b;
  const na = a.reduce((n, p) => n + p.literals.length, 0);
  const nb = b.reduce((n, p) => n + p.literals.length, 0);
  return na <= nb ? a : b;
}

/**
 * Text in the paths of nearly every Windows event (lower case): a literal found inside it
 * (`\windows\`, `system32`, `.exe`) fires on most events of its field, as a few-valued
 * field does, whatever the rule. Only the choice between a rule's literals changes: a literal
 * scored 0 still prefilters when the rule has nothing better (matches are the same either way).
 */
const COMMON_PATH_TEXT: readonly string[] = ['c:\\windows\\system32\\', 'c:\\windows\\syswow64\\', 'c:\\program files (x86)\\', '.exe', '.dll'];

/** How often a literal lets an event through, inversely: its length, 0 on a few-valued field or for common path text. */
function literalScore(field: string, literal: string): number {
  if (FEW_VALUED_FIELDS.has(field)) return 0;
  for (const t of COMMON_PATH_TEXT) if (t.includes(literal)) return 0;
  return literal.length;
}

/** How selective a clause is: its weakest literal's score (the shortest literal bounds how often the clause fires). */
function clauseScore(x: PrefilterEntry[]): number {
  return Math.min(...x.flatMap((p) => p.literals.map((l) => literalScore(p.field, l))));
}

/**
 * The clauses a conjunction keeps: the most selective first, at most
 * MAX_CLAUSES, and clauses on few-valued fields only when nothing else is
 * known (they fire on most events, so they would cost a scan and spare
 * almost no evaluation).
 */
function bestClauses(all: PrefilterEntry[][]): PrefilterEntry[][] {
  const scored = all.map((c, i) => ({ c, i, score: clauseScore(c) })).sort((a, b) => b.score - a.score || a.i - b.i);
  const kept = scored.filter((x, i) => i === 0 || x.score > 0).slice(0, MAX_CLAUSES);
  return kept.map((x) => x.c);
}

function union(items: (PrefilterEntry[] | null)[]): PrefilterEntry[] | null {
  if (items.some((x) => x === null)) return null;
  return (items as PrefilterEntry[][]).flat();
}

function mapSel(map: Record<string, unknown>, readerFor: (f: string) => FieldReader | undefined, missing: Set<string>, options: CompileOptions): Sel {
  const preds: Predicate[] = [];
  let pre: PrefilterEntry[] | null = null;
  const cnf: PrefilterEntry[][] = [];
  for (const [key, values] of Object.entries(map)) {
    const [field = '', ...mods] = key.split('|');
    if (field === '') {
      const k = keywordSel(mods, values, options);
      preds.push(k.pred);
      continue;
    }
    const reader = readerFor(field);
    if (reader === undefined) {
      missing.add(field);
      continue;
    }
    const c = compileValues(mods, values, { placeholders: options.placeholders, readerFor });
    if (!c.ok) {
      if (c.detail.startsWith('fieldref to unmapped field ')) {
        missing.add(c.detail.slice('fieldref to unmapped field '.length));
        continue;
      }
      throw refuse(c.reason, `${key}: ${c.detail}`);
    }
    const test = c.test;
    preds.push((e, r) => test(reader(e, r), e, r));
    if (c.literals !== null) {
      pre = better(pre, [{ field, reader, literals: c.literals }]);
      cnf.push([{ field, reader, literals: c.literals }]);
    }
  }
  const pred = allOf(preds);
  return { pred, pre, cnf: bestClauses(cnf) };
}

function selectionOf(def: unknown, readerFor: (f: string) => FieldReader | undefined, missing: Set<string>, options: CompileOptions): Sel {
  if (isObject(def)) return mapSel(def, readerFor, missing, options);
  if (Array.isArray(def)) {
    if (def.length === 0) throw refuse('invalid_value', 'empty search identifier');
    if (def.every((d) => isObject(d))) {
      const sels = def.map((d) => mapSel(d as Record<string, unknown>, readerFor, missing, options));
      const preds = sels.map((s) => s.pred);
      return { pred: anyOf(preds), pre: union(sels.map((s) => s.pre)), cnf: orClauses(sels) };
    }
    if (def.every((d) => !isObject(d) && !Array.isArray(d))) return keywordSel([], def, options);
    throw refuse('invalid_value', 'a search identifier mixing maps and keywords');
  }
  if (typeof def === 'string' || typeof def === 'number') return keywordSel([], def, options);
  throw refuse('invalid_value', 'a search identifier that is neither a map nor a list');
}

/**
 * The clauses of an OR: clause i unites clause i of each branch (a branch
 * with fewer repeats its last), so one literal of it occurs whichever branch
 * matched; none when a branch has none. `1 of selection_*` over selections
 * that share a key prefix and differ in their value fields thus keeps a
 * clause per field instead of only the common prefix.
 */
function orClauses(parts: readonly Sel[]): PrefilterEntry[][] {
  if (parts.some((p) => p.cnf.length === 0)) return [];
  const n = Math.min(MAX_CLAUSES, Math.max(...parts.map((p) => p.cnf.length)));
  const out: PrefilterEntry[][] = [];
  for (let i = 0; i < n; i++) {
    const clause = parts.flatMap((p) => p.cnf[Math.min(i, p.cnf.length - 1)]!);
    if (!out.some((c) => sameClause(c, clause))) out.push(clause);
  }
  return out;
}

function build(node: CondNode, sels: Map<string, Sel>): Sel {
  switch (node.t) {
    case 'id':
      return sels.get(node.name)!;
    case 'not': {
      const inner = build(node.item, sels).pred;
      return { pred: (e, r) => !inner(e, r), pre: null, cnf: [] };
    }
    case 'and': {
      const parts = node.items.map((n) => build(n, sels));
      const preds = parts.map((p) => p.pred);
      let pre: PrefilterEntry[] | null = null;
      for (const p of parts) pre = better(pre, p.pre);
      return { pred: allOf(preds), pre, cnf: bestClauses(parts.flatMap((p) => p.cnf)) };
    }
    case 'or': {
      const parts = node.items.map((n) => build(n, sels));
      const preds = parts.map((p) => p.pred);
      return { pred: anyOf(preds), pre: union(parts.map((p) => p.pre)), cnf: orClauses(parts) };
    }
  }
}

/**
 * Compiles a detection section (with its condition) against one reader table.
 * @returns the program, or the fields the readers lack.
 */
export function compileDetection(
  detection: Record<string, unknown>,
  readerFor: (field: string) => FieldReader | undefined,
  options: CompileOptions = {},
): { ok: true; program: Program } | { ok: false; missing: string[] } {
  const ids = Object.keys(detection).filter((k) => k !== 'condition');
  const cond = detection.condition;
  const conds = Array.isArray(cond) ? cond : [cond];
  if (conds.length === 0 || conds.some((c) => typeof c !== 'string')) throw refuse('invalid_condition', 'condition missing or not a string');
  const nodes: CondNode[] = [];
  for (const c of conds as string[]) {
    const parsed = parseCondition(c, ids);
    if (!parsed.ok) throw refuse(parsed.reason, parsed.detail);
    nodes.push(parsed.node);
  }
  const missing = new Set<string>();
  const sels = new Map<string, Sel>();
  for (const id of ids) sels.set(id, selectionOf(detection[id], readerFor, missing, options));
  if (missing.size > 0) return { ok: false, missing: [...missing].sort() };
  const root = build(nodes.length === 1 ? nodes[0]! : { t: 'or', items: nodes }, sels);
  return { ok: true, program: { evaluate: root.pred, prefilter: root.pre, clauses: programClauses(root) } };
}

/** The program's clauses: its prefilter first (the matcher's most selective), then the others of its conjunction. */
function programClauses(root: Sel): PrefilterEntry[][] {
  if (root.pre === null) return [];
  const rest = root.cnf.filter((c) => !sameClause(c, root.pre!) && !c.some((p) => SELDOM_REPEATED_FIELDS.has(p.field)));
  return [root.pre, ...rest].slice(0, MAX_CLAUSES);
}

function sameClause(a: PrefilterEntry[], b: PrefilterEntry[]): boolean {
  return a.length === b.length && a.every((p, i) => p.reader === b[i]!.reader && p.literals.length === b[i]!.literals.length && p.literals.every((l, j) => l === b[i]!.literals[j]));
}

function refusal(file: string, doc: Record<string, unknown>, reason: RefusalReason, detail: string): CompileOutcome {
  const out: Refusal = { file, reason, detail };
  if (typeof doc.id === 'string') out.id = doc.id;
  if (typeof doc.title === 'string') out.title = doc.title;
  return { ok: false, refusal: out };
}

/**
 * Compiles one Sigma rule document.
 * @param doc the parsed YAML document.
 * @param file where it came from (for reports).
 */
export function compileRule(doc: unknown, file: string, options: CompileOptions = {}): CompileOutcome {
  if (!isObject(doc)) return refusal(file, {}, 'not_a_rule', 'not a YAML map');
  if (doc.correlation !== undefined) return refusal(file, doc, 'correlation_rule', 'correlation rules are not supported');
  if (doc.filter !== undefined && doc.detection === undefined) return refusal(file, doc, 'filter_document', 'a Sigma filter: load it as a tenant filter');
  if (!isObject(doc.detection) || !isObject(doc.logsource) || typeof doc.title !== 'string') return refusal(file, doc, 'not_a_rule', 'title, logsource or detection missing');
  const mapping = logsourceOf(doc.logsource);
  if (mapping === undefined) {
    const ls = doc.logsource;
    return refusal(file, doc, 'unsupported_logsource', ['product', 'category', 'service'].map((k) => (ls[k] === undefined ? '' : `${k}:${String(ls[k])}`)).filter((s) => s !== '').join(' '));
  }
  const exactReader = (field: string): FieldReader | undefined => exactReaderOf(mapping, field);
  try {
    let exact: Program | undefined;
    let data: Program | undefined;
    let missing: string[] = [];
    if (mapping.kinds.length > 0) {
      const c = compileDetection(doc.detection, exactReader, options);
      if (c.ok) exact = c.program;
      else missing = c.missing;
    }
    if (mapping.prefixes.length > 0) {
      const c = compileDetection(doc.detection, dataReaderOf, options);
      if (c.ok) data = c.program;
    }
    if (exact === undefined && data === undefined) return refusal(file, doc, 'field_not_mapped', `${mapping.logsource}: ${missing.join(', ')}`);
    const level = typeof doc.level === 'string' ? doc.level.toLowerCase() : 'informational';
    const info: SigmaRuleInfo = {
      id: typeof doc.id === 'string' ? doc.id : file,
      title: doc.title,
      level,
      severity: severityOf(level),
      status: typeof doc.status === 'string' ? doc.status : 'unknown',
      author: typeof doc.author === 'string' ? doc.author : '',
      tags: Array.isArray(doc.tags) ? doc.tags.filter((t): t is string => typeof t === 'string') : [],
      logsource: mapping.logsource,
      file,
      kinds: exact === undefined ? [] : mapping.kinds,
      prefixes: data === undefined ? [] : mapping.prefixes,
    };
    return { ok: true, rule: { info, exact, data, guard: mapping.guard?.test, readerFor: exactReader } };
  } catch (err) {
    const r = refusalOf(err);
    if (r !== undefined) return refusal(file, doc, r.reason, r.detail);
    throw err;
  }
}

/** A Sigma filter (filters specification) compiled for one rule: true when the event is excluded. */
export type CompiledFilter = { id: string; title: string; excludes: Predicate };

/**
 * Compiles a Sigma filter document for the rules it names among `rules`.
 * @returns the filter per rule id, and refusals (a filter that cannot be read for a rule is refused for that rule).
 */
export function compileFilter(doc: unknown, file: string, rules: readonly CompiledRule[], options: CompileOptions = {}): { byRule: Map<string, CompiledFilter>; refused: Refusal[] } {
  const byRule = new Map<string, CompiledFilter>();
  const refused: Refusal[] = [];
  if (!isObject(doc) || !isObject(doc.filter)) {
    refused.push({ file, reason: 'not_a_rule', detail: 'not a Sigma filter (no filter section)' });
    return { byRule, refused };
  }
  const f = doc.filter;
  const targets = Array.isArray(f.rules) ? f.rules.filter((x): x is string => typeof x === 'string') : typeof f.rules === 'string' ? [f.rules] : [];
  const detection: Record<string, unknown> = { ...f };
  delete detection.rules;
  const title = typeof doc.title === 'string' ? doc.title : file;
  const id = typeof doc.id === 'string' ? doc.id : file;
  for (const rule of rules) {
    if (!targets.includes(rule.info.id) && !targets.includes(rule.info.title)) continue;
    try {
      const c = compileDetection(detection, rule.readerFor, options);
      if (!c.ok) {
        refused.push({ file, id, title, reason: 'field_not_mapped', detail: `for rule ${rule.info.id}: ${c.missing.join(', ')}` });
        continue;
      }
      byRule.set(rule.info.id, { id, title, excludes: c.program.evaluate });
    } catch (err) {
      const r = refusalOf(err);
      if (r === undefined) throw err;
      refused.push({ file, id, title, reason: r.reason, detail: r.detail });
    }
  }
  return { byRule, refused };
}
