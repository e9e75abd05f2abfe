import { describe, expect, it } from 'vitest';
import { featureComparison, formatFeatureComparison, runBenchCommand } from './bench-cli.js';
import type { BenchResult } from './runner.js';

function result(eventsPerSec: number, ceiling: number, load: number, serverCores = 1): BenchResult {
  return { scenario: 'saturate', kind: 'saturate', eventsPerSec, throughputCeiling: ceiling, machine: { loadAverageAtStart: load }, window: { eventsPerSec, serverCores } } as unknown as BenchResult;
}

async function usageExit(args: string[]): Promise<number> {
  const write = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    return await runBenchCommand(args);
  } finally {
    process.stderr.write = write;
  }
}

describe('kiseki bench --sigma / --analytics', () => {
  it('compares the Sigma-on run with the Sigma-off run: both sustained rates, the ratio, the ceilings and the load', () => {
    const c = featureComparison('sigma', result(80_000, 90_000, 3.5), result(100_000, 120_000, 2), ['a.json', 'b.json']);
    expect(c).toMatchObject({ feature: 'sigma', onEventsPerSec: 80_000, offEventsPerSec: 100_000, ratio: 0.8, goal: 0.8, ceilings: { on: 90_000, off: 120_000, ratio: 0.75 }, loadAverage: { on: 3.5, off: 2 } });
    const text = formatFeatureComparison(c);
    expect(text).toContain('Sigma on / off, saturate: 80,000 vs 100,000 events/s sustained, ratio 0.8 (goal ≥ 0.8)');
    expect(text).toContain('ratio 0.75');
    expect(featureComparison('sigma', result(5, 0, 0), result(0, 0, 0), []).ratio).toBeNull();
  });

  it('gives the server CPU per million events on and off, for steady runs whose rates are equal by construction', () => {
    // 50k events/s both ways; 0.6 cores on, 0.5 off: 12 vs 10 CPU-seconds per million events, off / on 0.833.
    const c = featureComparison('analytics', result(50_000, 0, 1, 0.6), result(50_000, 0, 1, 0.5), []);
    expect(c).toMatchObject({ feature: 'analytics', ratio: 1, goal: 0.9, cpuSecondsPerMillionEvents: { on: 12, off: 10, efficiencyRatio: 0.833 } });
    expect(formatFeatureComparison(c)).toContain('Analytics on / off');
    expect(formatFeatureComparison(c)).toContain('server CPU per million events: on 12 s, off 10 s, off / on 0.833');
  });

  it('refuses a value other than on, off or both, and both flags at once (usage errors)', async () => {
    expect(await usageExit(['--scenario', 'saturate', '--sigma', 'sometimes'])).toBe(64);
    expect(await usageExit(['--scenario', 'saturate', '--analytics', 'maybe'])).toBe(64);
    expect(await usageExit(['--scenario', 'saturate', '--sigma', 'both', '--analytics', 'both'])).toBe(64);
  });
});
