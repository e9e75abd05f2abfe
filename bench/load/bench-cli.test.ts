import { describe, expect, it } from 'vitest';
import { isKisekiError } from '../../core/errors.js';
import { featureComparison, featureRepetitions, formatFeatureComparison, formatFeatureRepetitions, parseConfigsFlag, runBenchCommand } from './bench-cli.js';
import { formatRepetitions, summariseRepetitions } from './repetitions.js';
import type { BenchResult } from './runner.js';

function result(eventsPerSec: number, ceiling: number, load: number, serverCores = 1, ackP99 = 5, reportP99: number | null = 20): BenchResult {
  return {
    scenario: 'saturate',
    kind: 'saturate',
    eventsPerSec,
    throughputCeiling: ceiling,
    ackLatencyMs: { p50: 1, p99: ackP99, p999: ackP99 },
    reportLatencyMs: reportP99 === null ? null : { p50: 1, p99: reportP99, p999: reportP99, alerts: 3 },
    server: { memoryPerAgentBytes: 1000 },
    machine: { loadAverageAtStart: load, commit: 'abc1234' },
    window: { eventsPerSec, serverCores },
  } as unknown as BenchResult;
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

  it('summarises repeated runs: the median of each headline figure with its min–max spread', () => {
    const runs = [result(100_000, 150_000, 1, 1, 9, null), result(80_000, 120_000, 2, 1, 4, 30), result(120_000, 160_000, 3, 1, 6, 10)];
    const s = summariseRepetitions(runs, ['1.json', '2.json', '3.json']);
    expect(s).toMatchObject({
      reps: 3,
      eventsPerSec: { median: 100_000, min: 80_000, max: 120_000 },
      ackP99Ms: { median: 6, min: 4, max: 9 },
      // Only the runs that made alerts have a report latency.
      reportP99Ms: { median: 20, min: 10, max: 30 },
      throughputCeiling: { median: 150_000, min: 120_000, max: 160_000 },
      loadAverages: [1, 2, 3],
      commits: ['abc1234'],
    });
    expect(formatRepetitions(s)).toContain('sustained maximum: 100,000 (80,000–120,000) events/s');
    expect(summariseRepetitions([result(1, 1, 0, 1, 1, null)], []).reportP99Ms).toBeNull();
    // Saturate's report p99 is its 70 % step's, as its ack p99, when that step stored alerts.
    const at70 = { ...result(100_000, 150_000, 1, 1, 9, 80_000), atSeventyPercent: { reportLatencyMs: { p50: 5, p99: 12, alerts: 40 } } } as BenchResult;
    const s70 = summariseRepetitions([at70], ['1.json']);
    expect(s70.reportP99Ms).toMatchObject({ median: 12 });
    expect(formatRepetitions(s70)).toContain('detection → report p99 at 70 %: 12 ms');
  });

  it('gives the median on / off of the pairs, not the ratio of the medians', () => {
    // Pair ratios 0.9, 0.5, 0.8: median 0.8. The ratio of the medians (90k / 100k) would be 0.9.
    const on = [result(90_000, 1, 1), result(50_000, 1, 1), result(96_000, 1, 1)];
    const off = [result(100_000, 1, 1), result(100_000, 1, 1), result(120_000, 1, 1)];
    const pairs = on.map((o, i) => featureComparison('sigma', o, off[i]!, []));
    const r = featureRepetitions(pairs, summariseRepetitions(on, []), summariseRepetitions(off, []));
    expect(r).toMatchObject({ pairs: 3, ratio: { median: 0.8, min: 0.5, max: 0.9 }, goal: 0.8 });
    expect(formatFeatureRepetitions(r)).toContain('Sigma on / off, saturate, 3 pairs: ratio 0.8 (0.5–0.9) (goal ≥ 0.8)');
  });

  it('refuses a value other than on, off or both, and both flags at once (usage errors)', async () => {
    expect(await usageExit(['--scenario', 'saturate', '--reps', '0'])).toBe(64);
    expect(await usageExit(['--scenario', 'saturate', '--reps', '1.5'])).toBe(64);
    expect(await usageExit(['--scenario', 'saturate', '--sigma', 'sometimes'])).toBe(64);
    expect(await usageExit(['--scenario', 'saturate', '--analytics', 'maybe'])).toBe(64);
    expect(await usageExit(['--scenario', 'saturate', '--sigma', 'both', '--analytics', 'both'])).toBe(64);
  });
});

describe('kiseki bench: the cluster comparison flags', () => {
  it('reads --configs as the configurations in the order given', () => {
    expect(parseConfigsFlag('embedded,ingest-1,ingest-2')).toEqual(['embedded', 'ingest-1', 'ingest-2']);
    expect(parseConfigsFlag('ingest-2, embedded')).toEqual(['ingest-2', 'embedded']);
  });

  it.each([
    ['', /not ""/],
    ['ingest-5', /embedded, ingest-1, ingest-2, ingest-3, ingest-4, ingest-1-archive, not "ingest-5"/],
    ['embedded,,ingest-1', /not ""/],
    ['cluster', /not "cluster"/],
    ['ingest-1,ingest-1', /twice/],
  ])('refuses --configs %j with a one-line usage error', (value, message) => {
    let err: unknown;
    try {
      parseConfigsFlag(value);
    } catch (e) {
      err = e;
    }
    expect(isKisekiError(err, 'ERR_USAGE')).toBe(true);
    const reason = String((err as { details: { reason: string } }).details.reason);
    expect(reason).toMatch(message);
    expect(reason).not.toContain('\n');
  });

  it.each([
    [['--scenario', 'cluster-ingest', '--configs', 'ingest-9']],
    [['--scenario', 'cluster-ingest', '--configs', 'embedded,embedded']],
    [['--scenario', 'smoke', '--configs', 'embedded']],
    [['--scenario', 'cluster-ingest', '--sigma', 'both']],
    [['--scenario', 'cluster-ingest', '--analytics', 'off']],
    [['--scenario', 'cluster-ingest', '--profile', '/tmp/kiseki-no-profile']],
    [['--scenario', 'cluster-ingest', '--reps', '0']],
    [['--scenario', 'cluster-ingest', '--configs']],
  ])('stops %j with exit 64 before starting anything', async (args) => {
    expect(await usageExit(args)).toBe(64);
  });

  it('refuses fewer client processes than ingest nodes as an invalid scenario (exit 1), before starting anything', async () => {
    expect(await usageExit(['--scenario', 'cluster-ingest', '--configs', 'embedded,ingest-2', '--clients', '1'])).toBe(1);
  });
});
