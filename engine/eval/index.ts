/** `kiseki eval`: labelled real incidents run through import, detection and quick report, with a confusion matrix of verdicts. */
export { runEvalCommand, evaluateCases, summarize, formatEvalText, formatCaseLine, EVAL_USAGE, FACTS_BAR } from './eval-command.js';
export type { CaseResult, EvalResult, EvalIo, EvaluateOptions } from './eval-command.js';
export { loadCaseFile, defaultCorpusDir, resolveCaseInput, VERDICTS } from './eval-cases.js';
export type { EvalCase, EvalCaseFile, EvalFact } from './eval-cases.js';
export { checkFacts, factFound, renderReportLines, renderLine, describeFact, PSEUDO_SECTIONS } from './fact-match.js';
export type { FactCheck } from './fact-match.js';
export { confusionMatrix, formatConfusionMatrix, EXPECTED_LABELS, GOT_LABELS } from './confusion.js';
export type { ConfusionMatrix, GotVerdict } from './confusion.js';
export { runCase, readCaseTrails, findDeviceTrail, loadEvalSigmaRules } from './eval-run.js';
export type { CaseRun, RunOptions } from './eval-run.js';
