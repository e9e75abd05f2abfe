/**
 * A mergeable latency histogram for the load benchmark: log-spaced buckets
 * with about 1 % relative width over 1 µs … ~30 min, so every client process
 * can count its acks locally (one array increment per ack) and ship only the
 * buckets that changed to the runner once a second. Percentiles read from
 * the merged buckets are within ~0.5 % of the exact sample percentile, which
 * is far below the run-to-run noise of a shared 2-core VM.
 */

/** Ratio between the upper bounds of neighbouring buckets (1 % steps). */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** Buckets cover 1 µs .. GROWTH^BUCKETS µs (≈ 2.1e9 µs ≈ 35 min). */
export const HISTOGRAM_BUCKETS = 2160;

/** Sparse form sent between processes: `[bucket, count, bucket, count, …]`. */
export type SparseCounts = number[];

/** Latency percentiles in milliseconds (2 decimals). */
export interface LatencyPercentiles {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** A histogram of durations in microseconds. */
export interface LatencyHistogram {
  /** Records one duration, µs (values below 1 µs count as 1 µs). */
  recordUs(us: number): void;
  /** Adds the buckets of another histogram or of a sparse delta. */
  merge(other: LatencyHistogram | SparseCounts): void;
  /** Buckets changed since the last call, as a sparse delta (and marks them reported). */
  takeDelta(): SparseCounts;
  /** Number of recorded values. */
  count(): number;
  /** Value at quantile `q` (0..1), µs: the geometric middle of its bucket; 0 when empty. */
  quantileUs(q: number): number;
  /** Percentiles in ms. */
  percentiles(): LatencyPercentiles;
  /** A copy of the raw bucket counts. */
  buckets(): Float64Array;
}

function bucketOf(us: number): number {
  if (!(us > 1)) return 0;
  const i = Math.floor(Math.log(us) / LOG_GROWTH);
  return i >= HISTOGRAM_BUCKETS ? HISTOGRAM_BUCKETS - 1 : i;
}

/** Representative value of bucket `i`, µs: between GROWTH^i and GROWTH^(i+1). */
function valueOf(i: number): number {
  return Math.pow(GROWTH, i + 0.5);
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Creates an empty histogram. */
export function createLatencyHistogram(): LatencyHistogram {
  const counts = new Float64Array(HISTOGRAM_BUCKETS);
  const reported = new Float64Array(HISTOGRAM_BUCKETS);
  let total = 0;
  let maxUs = 0;

  const quantileUs = (q: number): number => {
    if (total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += counts[i] as number;
      if (seen >= rank) return Math.min(valueOf(i), maxUs > 0 ? maxUs : valueOf(i));
    }
    return valueOf(HISTOGRAM_BUCKETS - 1);
  };

  return {
    recordUs(us) {
      const i = bucketOf(us);
      counts[i] = (counts[i] as number) + 1;
      total++;
      if (us > maxUs) maxUs = us;
    },
    merge(other) {
      if (Array.isArray(other)) {
        for (let k = 0; k + 1 < other.length; k += 2) {
          const i = other[k] as number;
          const c = other[k + 1] as number;
          if (i < 0 || i >= HISTOGRAM_BUCKETS || !(c > 0)) continue;
          counts[i] = (counts[i] as number) + c;
          total += c;
          const v = valueOf(i);
          if (v > maxUs) maxUs = v;
        }
        return;
      }
      const b = other.buckets();
      for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
        const c = b[i] as number;
        if (c > 0) {
          counts[i] = (counts[i] as number) + c;
          total += c;
        }
      }
      const m = other.quantileUs(1);
      if (m > maxUs) maxUs = m;
    },
    takeDelta() {
      const out: SparseCounts = [];
      for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
        const d = (counts[i] as number) - (reported[i] as number);
        if (d > 0) {
          out.push(i, d);
          reported[i] = counts[i] as number;
        }
      }
      return out;
    },
    count: () => total,
    quantileUs,
    percentiles() {
      return {
        count: total,
        p50: round2(quantileUs(0.5) / 1000),
        p99: round2(quantileUs(0.99) / 1000),
        p999: round2(quantileUs(0.999) / 1000),
        max: round2((total === 0 ? 0 : maxUs) / 1000),
      };
    },
    buckets: () => Float64Array.from(counts),
  };
}
