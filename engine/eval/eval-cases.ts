/**
 * The case file of `kiseki eval`: labelled real incidents, each naming the
 * trail files to import, the device and file an antivirus flagged, the
 * verdict an analyst gives it, and the facts its quick report must show.
 * This module reads and validates the file (every problem is reported with
 * the case and field it concerns) and resolves the trail files: absolute,
 * next to the case file, or under the corpus folder (`--corpus`, else
 * `KISEKI_SHARED_DIR/corpus`, else `../shared/corpus` beside the repository).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Verdict } from '../../core/contracts.js';
import { KisekiError } from '../../core/errors.js';

/** The verdicts a case can expect. */
export const VERDICTS: readonly Verdict[] = ['black', 'gray', 'white'];

/**
 * One expected fact: some single rendered line of one of `section` (a report
 * section id or title, or a pseudo-section: `verdict` for the rules, factors
 * and Sigma hits; `header` for executed / origin kind / detection; `any` for
 * all of them) holds every string of `contains`, case-insensitively.
 */
export interface EvalFact {
  section: string | string[];
  contains: string[];
  /** What the fact stands for, for people reading the case file and the output. */
  note?: string;
}

export interface EvalCase {
  /** Unique, short: `--case NAME` selects it. */
  name: string;
  /** Trail files (JSON lines, .gz, .zip, .evtx or folders of .evtx), imported together into one tenant. */
  files: string[];
  /** Computer name of the device the detection is on (case-insensitive; a bare name matches its FQDN). */
  device: string;
  /** Full path of the detected file, as in the trail. */
  path: string;
  sha256?: string;
  /** Detection time (ISO UTC); default: the device's last event. */
  at?: string;
  threat?: string;
  expected: Verdict;
  /** Why this label: the analyst's reasoning, with the evidence. */
  why?: string;
  facts: EvalFact[];
}

export interface EvalCaseFile {
  /** The resolved path of the case file. */
  file: string;
  description?: string;
  cases: EvalCase[];
}

function invalid(file: string, reason: string): KisekiError {
  return new KisekiError('ERR_INVALID_INPUT', { reason: `${file}: ${reason}` });
}

function stringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s.length > 0);
}

function checkCase(file: string, raw: unknown, index: number, names: Set<string>): EvalCase {
  const where = `case #${index + 1}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(file, `${where} is not an object`);
  const c = raw as Record<string, unknown>;
  const name = c.name;
  if (typeof name !== 'string' || name.length === 0) throw invalid(file, `${where} has no name`);
  const at = `case ${name}`;
  if (names.has(name)) throw invalid(file, `${at} is named twice`);
  names.add(name);
  if (!stringList(c.files)) throw invalid(file, `${at}: files must be a non-empty list of paths`);
  for (const k of ['device', 'path'] as const) if (typeof c[k] !== 'string' || (c[k] as string).trim() === '') throw invalid(file, `${at}: ${k} is required`);
  if (typeof c.expected !== 'string' || !VERDICTS.includes(c.expected as Verdict)) throw invalid(file, `${at}: expected must be black, gray or white`);
  if (c.sha256 !== undefined && (typeof c.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(c.sha256))) throw invalid(file, `${at}: sha256 must be 64 hexadecimal characters`);
  if (c.at !== undefined && (typeof c.at !== 'string' || Number.isNaN(Date.parse(c.at)))) throw invalid(file, `${at}: at must be an ISO time like 2020-10-22T04:30:00Z`);
  for (const k of ['threat', 'why'] as const) if (c[k] !== undefined && typeof c[k] !== 'string') throw invalid(file, `${at}: ${k} must be a string`);
  if (!Array.isArray(c.facts)) throw invalid(file, `${at}: facts must be a list (may be empty)`);
  const facts = c.facts.map((f, i): EvalFact => {
    const fw = `${at}, fact #${i + 1}`;
    if (typeof f !== 'object' || f === null) throw invalid(file, `${fw} is not an object`);
    const fact = f as Record<string, unknown>;
    const section = fact.section;
    if (!(typeof section === 'string' && section.length > 0) && !stringList(section)) throw invalid(file, `${fw}: section must be a section id or a list of them`);
    if (!stringList(fact.contains)) throw invalid(file, `${fw}: contains must be a non-empty list of strings`);
    if (fact.note !== undefined && typeof fact.note !== 'string') throw invalid(file, `${fw}: note must be a string`);
    return { section: section as string | string[], contains: fact.contains, ...(typeof fact.note === 'string' ? { note: fact.note } : {}) };
  });
  return {
    name,
    files: c.files,
    device: (c.device as string).trim(),
    path: (c.path as string).trim(),
    ...(typeof c.sha256 === 'string' ? { sha256: c.sha256.toLowerCase() } : {}),
    ...(typeof c.at === 'string' ? { at: c.at } : {}),
    ...(typeof c.threat === 'string' ? { threat: c.threat } : {}),
    expected: c.expected as Verdict,
    ...(typeof c.why === 'string' ? { why: c.why } : {}),
    facts,
  };
}

/**
 * Reads and validates a case file.
 * @throws KisekiError ERR_INPUT_UNREADABLE when it cannot be read, ERR_INVALID_INPUT (with the case and field) when it is not a valid case file.
 */
export function loadCaseFile(path: string): EvalCaseFile {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KisekiError('ERR_INPUT_UNREADABLE', { file, reason: `cannot read the case file ${file}: ${err instanceof Error ? err.message : String(err)}` });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(file, `not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { cases?: unknown }).cases)) throw invalid(file, 'expected an object with a "cases" list');
  const names = new Set<string>();
  const cases = (doc as { cases: unknown[] }).cases.map((c, i) => checkCase(file, c, i, names));
  const description = (doc as { description?: unknown }).description;
  return { file, ...(typeof description === 'string' ? { description } : {}), cases };
}

/** The repository root (this file is engine/eval/, also when compiled under dist/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The default corpus folder: `KISEKI_SHARED_DIR/corpus`, else `../shared/corpus` beside the repository. */
export function defaultCorpusDir(): string {
  return join(process.env.KISEKI_SHARED_DIR ?? resolve(repoRoot(), '../shared'), 'corpus');
}

/**
 * Where a case's trail file is: an absolute path as it is; else next to the
 * case file when it exists there; else under the corpus folder.
 */
export function resolveCaseInput(caseFile: string, corpusDir: string, input: string): string {
  if (isAbsolute(input)) return input;
  const beside = resolve(dirname(caseFile), input);
  if (existsSync(beside)) return beside;
  return resolve(corpusDir, input);
}
