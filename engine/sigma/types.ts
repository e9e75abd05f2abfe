/**
 * Types shared by the Sigma loader, compiler and matcher: what a compiled
 * rule exposes, why a rule is refused, and the process-table port through
 * which the matcher reads parent and actor fields (the shard implements it).
 */

/** A process as the process table knows it: the fields of its `proc.start` event (image, cmd, user, ppg, pimage, …). */
export type ProcessFacts = Readonly<Record<string, unknown>>;

/**
 * The port to the shard's process table. `process(pg)` returns the
 * `proc.start` fields of the process with that GUID, or undefined. Called
 * only while a candidate rule is evaluated, never for events no rule looks at.
 */
export interface ProcessResolver {
  process(pg: string): ProcessFacts | undefined;
}

/** The four severities of seed 003, from the Sigma `level`. */
export type Severity = 'Critical' | 'Serious' | 'Medium' | 'Information';

/** Why a rule is refused at load time (counted by reason; docs/SIGMA.md lists them). */
export type RefusalReason =
  | 'yaml_error'
  | 'not_a_rule'
  | 'correlation_rule'
  | 'filter_document'
  | 'multi_document'
  | 'unsupported_logsource'
  | 'field_not_mapped'
  | 'unsupported_modifier'
  | 'invalid_modifier_use'
  | 'invalid_regex'
  | 'unknown_placeholder'
  | 'invalid_condition'
  | 'aggregation'
  | 'invalid_value';

/** A rule that was not loaded, with its reason and details. */
export interface Refusal {
  file: string;
  id?: string;
  title?: string;
  reason: RefusalReason;
  detail: string;
}

/** The metadata of a loaded rule; the object a match returns. */
export interface SigmaRuleInfo {
  id: string;
  title: string;
  /** The rule's Sigma level, lower case (`informational` when absent). */
  level: string;
  severity: Severity;
  status: string;
  /** The rule's `author` field: DRL 1.1 asks that messages based on a match keep it. */
  author: string;
  tags: readonly string[];
  /** The logsource key of field-map.ts (`process_creation`, `service:security`, …). */
  logsource: string;
  file: string;
  /** Trail kinds the rule is evaluated on (after fields not available on a kind dropped it). */
  kinds: readonly string[];
  /** Kind prefixes (data-map kinds) the rule is evaluated on. */
  prefixes: readonly string[];
}
