/**
 * Public surface of engine/sigma/: load and compile Sigma rules, match trail
 * events. Light on purpose (no storage, no ingest), for the shard workers; the
 * CLI (`cli.ts`, with the SigmaHQ regression runner `conformance.ts`, which uses
 * the import's mapping) is loaded by bin/kiseki.ts on demand.
 */
export { compileRule, compileFilter, compileDetection, severityOf } from './compile.js';
export type { CompiledRule, CompiledFilter, CompileOptions, CompileOutcome, Program, PrefilterEntry } from './compile.js';
export { loadSigmaRules, loadSigmaFilters, defaultRulesDir, findSharedSigmaDir, parseRuleText, countByReason } from './loader.js';
export type { LoadedRules } from './loader.js';
export { createSigmaMatcher } from './matcher.js';
export type { SigmaMatcher, SigmaMatcherOptions, SigmaMatcherStats } from './matcher.js';
export { LOGSOURCES, fieldTableMarkdown, logsourceOf } from './field-map.js';
export type { LogsourceMapping, FieldReader } from './field-map.js';
export type { ProcessFacts, ProcessResolver, Refusal, RefusalReason, Severity, SigmaRuleInfo } from './types.js';
