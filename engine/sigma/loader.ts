/**
 * Loads Sigma rules from a directory (recursively, `.yml` / `.yaml`, in
 * path order) with the `yaml` package, compiles each, and reports the
 * refused ones with their reasons and a count per reason. Also resolves the
 * default pack shipped in `engine/sigma/rules/` and loads Sigma filter
 * files for a tenant.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KisekiError } from '../../core/errors.js';
import { compileFilter, compileRule, type CompiledFilter, type CompiledRule, type CompileOptions } from './compile.js';
import type { Refusal, RefusalReason } from './types.js';

/** What a load produced. */
export interface LoadedRules {
  rules: CompiledRule[];
  refused: Refusal[];
  /** Refusals counted by reason. */
  refusedByReason: Partial<Record<RefusalReason, number>>;
  /** Rule files read. */
  files: number;
}

function* yamlFiles(dir: string): Generator<string> {
  const entries = readdirSync(dir).sort();
  for (const e of entries) {
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) yield* yamlFiles(p);
    else if (/\.ya?ml$/i.test(e)) yield p;
  }
}

/** Parses one YAML text into a single document, or a refusal. */
export function parseRuleText(text: string, file: string): { ok: true; doc: unknown } | { ok: false; refusal: Refusal } {
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const bad = list.find((d) => d.errors.length > 0);
  if (bad !== undefined) return { ok: false, refusal: { file, reason: 'yaml_error', detail: bad.errors[0]!.message.split('\n')[0]! } };
  const real = list.filter((d) => d.contents !== null);
  if (real.length !== 1) return { ok: false, refusal: { file, reason: 'multi_document', detail: `${real.length} YAML documents (Sigma 1 rule collections are not supported)` } };
  return { ok: true, doc: real[0]!.toJS() };
}

/** Counts refusals by reason. */
export function countByReason(refused: readonly Refusal[]): Partial<Record<RefusalReason, number>> {
  const out: Partial<Record<RefusalReason, number>> = {};
  for (const r of refused) out[r.reason] = (out[r.reason] ?? 0) + 1;
  return out;
}

/**
 * Loads and compiles every rule file under `dir`.
 * @throws KisekiError ERR_INVALID_INPUT when `dir` is not a directory.
 */
export function loadSigmaRules(dir: string, options: CompileOptions = {}): LoadedRules {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new KisekiError('ERR_INVALID_INPUT', { reason: `${dir} is not a directory`, dir });
  const rules: CompiledRule[] = [];
  const refused: Refusal[] = [];
  let files = 0;
  for (const path of yamlFiles(root)) {
    files++;
    const file = relative(root, path);
    const parsed = parseRuleText(readFileSync(path, 'utf8'), file);
    if (!parsed.ok) {
      refused.push(parsed.refusal);
      continue;
    }
    const c = compileRule(parsed.doc, file, options);
    if (c.ok) rules.push(c.rule);
    else refused.push(c.refusal);
  }
  return { rules, refused, refusedByReason: countByReason(refused), files };
}

/** The default rule pack shipped with kiseki (engine/sigma/rules/, found from the source or the built tree). */
export function defaultRulesDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Built code runs from dist/engine/sigma/: the pack stays in the source tree.
  for (const candidate of [join(here, 'rules'), join(here, '..', '..', '..', 'engine', 'sigma', 'rules')]) {
    if (existsSync(candidate)) return candidate;
  }
  return join(here, 'rules');
}

/**
 * The SigmaHQ folder (`shared/sigma`: rules and regression data) beside the
 * repository at `root`, or beside one of its parent folders (a worktree
 * nested one or two levels deeper); undefined when absent (a user's clone).
 */
export function findSharedSigmaDir(root: string): string | undefined {
  let dir = resolve(root);
  for (let i = 0; i < 3; i++) {
    const candidate = join(dir, '..', 'shared', 'sigma');
    if (existsSync(join(candidate, 'rules', 'windows'))) return resolve(candidate);
    dir = resolve(dir, '..');
  }
  return undefined;
}

/**
 * Loads the Sigma filter files under `dir` (a tenant's exclusions) for `rules`.
 * @returns rule id → filters, and refusals.
 */
export function loadSigmaFilters(dir: string, rules: readonly CompiledRule[], options: CompileOptions = {}): { byRule: Map<string, CompiledFilter[]>; refused: Refusal[] } {
  const byRule = new Map<string, CompiledFilter[]>();
  const refused: Refusal[] = [];
  for (const path of yamlFiles(resolve(dir))) {
    const file = relative(resolve(dir), path);
    const parsed = parseRuleText(readFileSync(path, 'utf8'), file);
    if (!parsed.ok) {
      refused.push(parsed.refusal);
      continue;
    }
    const c = compileFilter(parsed.doc, file, rules, options);
    refused.push(...c.refused);
    for (const [id, f] of c.byRule) byRule.set(id, [...(byRule.get(id) ?? []), f]);
  }
  return { byRule, refused };
}
