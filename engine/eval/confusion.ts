/**
 * The confusion matrix of `kiseki eval`: expected verdict (rows) against the
 * verdict the engine gave (columns), where a case that produced no report
 * (no alert, suppressed, or a failure) counts in the `none` column.
 */
import type { Verdict } from '../../core/contracts.js';

export type GotVerdict = Verdict | 'none';

export const EXPECTED_LABELS: readonly Verdict[] = ['black', 'gray', 'white'];
export const GOT_LABELS: readonly GotVerdict[] = ['black', 'gray', 'white', 'none'];

/** matrix[expected][got] = number of cases. */
export type ConfusionMatrix = Record<Verdict, Record<GotVerdict, number>>;

/** Counts the (expected, got) pairs. */
export function confusionMatrix(pairs: ReadonlyArray<{ expected: Verdict; got: GotVerdict }>): ConfusionMatrix {
  const m = {} as ConfusionMatrix;
  for (const e of EXPECTED_LABELS) m[e] = { black: 0, gray: 0, white: 0, none: 0 };
  for (const p of pairs) m[p.expected][p.got]++;
  return m;
}

/** The matrix as aligned text lines: a header of got-labels, one row per expected label with its total. */
export function formatConfusionMatrix(m: ConfusionMatrix): string[] {
  const w = 8;
  const cell = (s: string | number) => String(s).padStart(w);
  const lines = [`${'expected \\ got'.padEnd(15)}${GOT_LABELS.map(cell).join('')}${cell('total')}`];
  for (const e of EXPECTED_LABELS) {
    const row = GOT_LABELS.map((g) => m[e][g]);
    lines.push(`${e.padEnd(15)}${row.map(cell).join('')}${cell(row.reduce((a, b) => a + b, 0))}`);
  }
  return lines;
}
