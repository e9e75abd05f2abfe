import { describe, expect, it } from 'vitest';
import { formatSigmaComparison, runBenchCommand, sigmaComparison } from './bench-cli.js';
import type { BenchResult } from './runner.js';

function result(eventsPerSec: number, ceiling: number, load: number): BenchResult {
  return { scenario: 'saturate', kind: 'saturate', eventsPerSec, throughputCeiling: ceiling, machine: { loadAverageAtStart: load } } as unknown as BenchResult;
}

describe('kiseki bench --sigma', () => {
  it('compares the Sigma-on run with the Sigma-off run: both sustained rates, the ratio, the ceilings and the load', () => {
    const c = sigmaComparison(result(80_000, 90_000, 3.5), result(100_000, 120_000, 2), ['a.json', 'b.json']);
    expect(c).toMatchObject({ sigmaOnEventsPerSec: 80_000, sigmaOffEventsPerSec: 100_000, ratio: 0.8, ceilings: { on: 90_000, off: 120_000, ratio: 0.75 }, loadAverage: { on: 3.5, off: 2 } });
    const text = formatSigmaComparison(c);
    expect(text).toContain('80,000 vs 100,000 events/s sustained, ratio 0.8');
    expect(text).toContain('ratio 0.75');
    expect(sigmaComparison(result(5, 0, 0), result(0, 0, 0), []).ratio).toBeNull();
  });

  it('refuses a --sigma value other than on, off or both (usage error)', async () => {
    const write = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await runBenchCommand(['--scenario', 'saturate', '--sigma', 'sometimes'])).toBe(64);
    } finally {
      process.stderr.write = write;
    }
  });
});
