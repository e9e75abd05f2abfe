/**
 * `kiseki eval --cases FILE [--json] [--case NAME]...`: runs every labelled
 * case of a case file through import, detection and quick report
 * (eval-run.ts), compares the verdict and the expected facts, and prints
 * per-case lines, the confusion matrix of verdicts and the totals. The exit
 * code says whether the engine meets the bar: every verdict right and at
 * least 90 % of the expected facts found. docs/CORRELATION.md, "Evaluating
 * on real incidents", describes the case format.
 */
import { COMMON_FLAGS, parseFlags, requireFlag, usageError } from '../../core/cli-flags.js';
import type { Verdict } from '../../core/contracts.js';
import { describeError, isKisekiError } from '../../core/errors.js';
import { defaultCorpusDir, loadCaseFile, resolveCaseInput, type EvalCase } from './eval-cases.js';
import { confusionMatrix, formatConfusionMatrix, type ConfusionMatrix, type GotVerdict } from './confusion.js';
import { checkFacts, describeFact } from './fact-match.js';
import { loadEvalSigmaRules, runCase } from './eval-run.js';

export const EVAL_USAGE = `Usage:
  kiseki eval --cases FILE [--json] [--case NAME]... [--corpus DIR] [--sigma DIR] [--no-sigma] [--intel-dir DIR]

Imports each labelled case's trail into a fresh temporary data directory, raises its
detection, and compares the quick report with the case: verdict, and expected facts.
Prints per-case lines, the confusion matrix (expected × got) and the totals.
  --cases    the case file (JSON; format in docs/CORRELATION.md)
  --case     run only this case (repeatable)
  --corpus   folder relative trail paths are resolved in (default KISEKI_SHARED_DIR/corpus,
             else ../shared/corpus beside the repository); paths beside the case file win
  --sigma    extra Sigma rules folder besides the default pack; --no-sigma: none at all
  --json     one JSON object instead of text
Exit code 0 when every verdict is right and at least 90 % of the facts are found, 1 otherwise.
`;

/** The share of expected facts a passing run must find. */
export const FACTS_BAR = 0.9;

export interface CaseResult {
  name: string;
  device: string;
  path: string;
  expected: Verdict;
  got: GotVerdict;
  correct: boolean;
  score: number | null;
  executed: boolean | null;
  originKind: string | null;
  alertId: string | null;
  factsFound: number;
  factsExpected: number;
  missing: string[];
  events: number;
  ms: number;
  error?: string;
}

export interface EvalResult {
  cases: CaseResult[];
  matrix: ConfusionMatrix;
  totalCases: number;
  correctVerdicts: number;
  factsFound: number;
  factsExpected: number;
  /** factsFound / factsExpected (1 when no facts are expected). */
  factShare: number;
  pass: boolean;
  ms: number;
}

export interface EvalIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface EvaluateOptions {
  corpusDir?: string;
  /** Case names to run (all when absent or empty). */
  only?: readonly string[];
  sigma?: { enabled: boolean; dir?: string };
  intelDir?: string;
  /** Called after each case (progress lines). */
  onCase?: (r: CaseResult) => void;
}

function errorText(err: unknown): string {
  return isKisekiError(err) ? describeError(err) : err instanceof Error ? err.message : String(err);
}

/** Sums up case results: matrix, totals and whether the run meets the bar. */
export function summarize(cases: CaseResult[], ms: number): EvalResult {
  const factsFound = cases.reduce((a, c) => a + c.factsFound, 0);
  const factsExpected = cases.reduce((a, c) => a + c.factsExpected, 0);
  const correctVerdicts = cases.filter((c) => c.correct).length;
  const factShare = factsExpected === 0 ? 1 : factsFound / factsExpected;
  return {
    cases,
    matrix: confusionMatrix(cases),
    totalCases: cases.length,
    correctVerdicts,
    factsFound,
    factsExpected,
    factShare,
    pass: cases.length > 0 && correctVerdicts === cases.length && factShare >= FACTS_BAR,
    ms,
  };
}

/**
 * Runs the cases of `casesFile` and returns the result (never throws for a
 * failing case: it counts as `none` with its error).
 * @throws KisekiError for an unreadable or invalid case file, or `--case` names it does not hold.
 */
export async function evaluateCases(casesFile: string, options: EvaluateOptions = {}): Promise<EvalResult> {
  const started = performance.now();
  const file = loadCaseFile(casesFile);
  const only = options.only ?? [];
  const unknown = only.filter((n) => !file.cases.some((c) => c.name === n));
  if (unknown.length > 0) throw usageError(`no case named ${unknown.join(', ')} in ${file.file}`);
  const selected = only.length === 0 ? file.cases : file.cases.filter((c) => only.includes(c.name));
  const corpusDir = options.corpusDir ?? defaultCorpusDir();
  const sigmaRules = options.sigma?.enabled === false ? undefined : loadEvalSigmaRules(options.sigma?.dir);
  const results: CaseResult[] = [];
  for (const c of selected) {
    const r = await evaluateOne(c, file.file, corpusDir, { ...(sigmaRules === undefined ? {} : { sigmaRules }), ...(options.intelDir === undefined ? {} : { intelDir: options.intelDir }) });
    results.push(r);
    options.onCase?.(r);
  }
  return summarize(results, Math.round(performance.now() - started));
}

async function evaluateOne(c: EvalCase, caseFile: string, corpusDir: string, runOptions: Parameters<typeof runCase>[2]): Promise<CaseResult> {
  const base = { name: c.name, device: c.device, path: c.path, expected: c.expected, factsExpected: c.facts.length };
  try {
    const files = c.files.map((f) => resolveCaseInput(caseFile, corpusDir, f));
    const run = await runCase(c, files, runOptions);
    const report = run.report;
    const got: GotVerdict = report === undefined ? 'none' : report.verdict;
    const facts = checkFacts(c.facts, report);
    return {
      ...base,
      got,
      correct: got === c.expected,
      score: report?.score ?? null,
      executed: report?.executed ?? null,
      originKind: report?.originKind ?? null,
      alertId: run.alertId,
      factsFound: facts.found.length,
      missing: facts.missing.map(describeFact),
      events: run.deviceEvents,
      ms: run.ms,
      ...(report === undefined ? { error: `no quick report (alert ${run.alertState ?? 'not stored'})` } : {}),
    };
  } catch (err) {
    return { ...base, got: 'none', correct: false, score: null, executed: null, originKind: null, alertId: null, factsFound: 0, missing: c.facts.map(describeFact), events: 0, ms: 0, error: errorText(err) };
  }
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

/** One line per case: verdict expected → got, facts, and what is missing. */
export function formatCaseLine(r: CaseResult): string {
  const mark = r.correct ? 'ok  ' : 'MISS';
  const head = `${mark} ${r.name.padEnd(40)} ${r.expected.padEnd(5)} → ${r.got.padEnd(5)} score ${String(r.score ?? '-').padStart(4)}  facts ${r.factsFound}/${r.factsExpected}`;
  const tail = [
    ...(r.error === undefined ? [] : [`      error: ${r.error}`]),
    ...(r.missing.length === 0 ? [] : [`      missing: ${r.missing.join('; ')}`]),
  ];
  return [head, ...tail].join('\n');
}

/** The text output: case lines, matrix, totals and the pass/fail line. */
export function formatEvalText(result: EvalResult): string {
  const lines = result.cases.map(formatCaseLine);
  lines.push('', 'Verdicts (rows: expected, columns: got):', ...formatConfusionMatrix(result.matrix), '');
  lines.push(`Verdicts right: ${result.correctVerdicts}/${result.totalCases} (${pct(result.totalCases === 0 ? 0 : result.correctVerdicts / result.totalCases)})`);
  lines.push(`Facts found:    ${result.factsFound}/${result.factsExpected} (${pct(result.factShare)})`);
  lines.push(`Result: ${result.pass ? 'PASS' : 'FAIL'} (the bar: every verdict right and ≥ ${FACTS_BAR * 100} % of facts found)  ${(result.ms / 1000).toFixed(1)} s`);
  return `${lines.join('\n')}\n`;
}

/**
 * Runs `kiseki eval`; `args` are the words after `eval`.
 * @returns the exit code: 0 the bar is met, 1 it is not (or the run failed), 64 bad command line.
 */
export async function runEvalCommand(args: string[], io: EvalIo): Promise<number> {
  try {
    const { values } = parseFlags(
      args,
      {
        cases: { type: 'string' },
        case: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        corpus: { type: 'string' },
        sigma: { type: 'string' },
        'no-sigma': { type: 'boolean' },
        'intel-dir': { type: 'string' },
        ...COMMON_FLAGS,
      },
      {},
    );
    if (values.help === true) {
      io.stdout.write(EVAL_USAGE);
      return 0;
    }
    const casesFile = requireFlag(values, 'cases');
    if (values['no-sigma'] === true && values.sigma !== undefined) throw usageError('--sigma and --no-sigma exclude each other');
    const json = values.json === true;
    const result = await evaluateCases(casesFile, {
      ...(values.corpus === undefined ? {} : { corpusDir: values.corpus as string }),
      only: (values.case as string[] | undefined) ?? [],
      sigma: { enabled: values['no-sigma'] !== true, ...(values.sigma === undefined ? {} : { dir: values.sigma as string }) },
      ...(values['intel-dir'] === undefined ? {} : { intelDir: values['intel-dir'] as string }),
      ...(json ? {} : { onCase: (r: CaseResult) => io.stderr.write(`kiseki eval: ${r.name} ${r.expected} → ${r.got} (${r.ms} ms)\n`) }),
    });
    io.stdout.write(json ? `${JSON.stringify(result)}\n` : formatEvalText(result));
    return result.pass ? 0 : 1;
  } catch (err) {
    io.stderr.write(`kiseki eval: ${errorText(err)}\n`);
    if (isKisekiError(err, 'ERR_USAGE')) {
      io.stderr.write(`\n${EVAL_USAGE}`);
      return 64;
    }
    return 1;
  }
}
