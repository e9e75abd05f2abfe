/**
 * The shape of verdict rules. Rules are data: a condition language over the
 * report's sections (each item is an event) and a few facts, interpreted by
 * evaluate.ts. Adding a rule never needs a code branch.
 */
import type { ReportSectionId, Verdict } from '../../core/contracts.js';

/** A test on one field of an event. Strings compare case-insensitively. */
export type FieldTest =
  | { field: string; equals: string | number | boolean }
  | { field: string; in: (string | number)[] }
  /** Case-insensitive regular expression (source). */
  | { field: string; matches: string }
  /** The last path component (after \ or /) is one of these. */
  | { field: string; basenameIn: string[] }
  /** The value (a hash, a domain or host name, an IP) is on the threat-intelligence list. */
  | { field: string; intel: 'sha256' | 'domain' | 'ip' }
  /** A public IP address for which the device resolved no name. */
  | { field: string; publicIpWithoutName: true }
  | { field: string; exists: boolean };

export type Fact = 'originKind' | 'executed' | 'action';

export type Condition =
  /** Some item of the section(s) passes every test; the matching items are the evidence. */
  | { section: ReportSectionId | readonly ReportSectionId[]; where: FieldTest[] }
  | { fact: Fact; in: (string | boolean)[] }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition };

export interface RuleSpec {
  id: string;
  description: string;
  /** Added to the score when the rule fires. */
  weight?: number;
  /** Decides the verdict alone when the rule fires. */
  outcome?: Verdict;
  when: Condition;
}

export interface RuleSet {
  /**
   * Score at or above `black` is black; at or below `white` is white; gray
   * between. A white at or below `confidentWhite` (or by a decisive white
   * rule) is high-confidence: tenants may have those added to their
   * exception list automatically.
   */
  thresholds: { black: number; white: number; confidentWhite: number };
  rules: RuleSpec[];
}
