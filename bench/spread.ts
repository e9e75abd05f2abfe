/**
 * The figures of repeated measurements: every benchmark reports the median
 * of its repetitions with the min–max spread (issue 18), computed here once.
 */

/** Median, min and max of one figure over its repetitions. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** The median: the middle value, or the mean of the two middle values for an even count. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no values');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median, min and max of `xs` (at least one value). */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new RangeError('spread of no values');
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { median: median(xs), min, max };
}

/** `s` with each figure rounded to `digits` decimals. */
export function roundSpread(s: Spread, digits = 0): Spread {
  const f = 10 ** digits;
  return { median: Math.round(s.median * f) / f, min: Math.round(s.min * f) / f, max: Math.round(s.max * f) / f };
}
