/**
 * `kiseki bench --reps N`: a load scenario run N times (with `--sigma` or
 * `--analytics both`, N on / off pairs, alternated so that a change of the
 * machine's load falls on both), summarised as the median of each headline
 * figure with its min–max spread (issue 18: figures that hold still).
 */
import { roundSpread, spread, type Spread } from '../spread.js';
import { judgedReportLatency, type BenchResult } from './runner.js';

/** The headline figures of N runs of one scenario (one variant). */
export interface RepetitionSummary {
  scenario: string;
  kind: BenchResult['kind'];
  variant?: string;
  reps: number;
  /** Sustained acked events/s (saturate: the sustained maximum). */
  eventsPerSec: Spread;
  /** Ack p99, ms (saturate: at 70 % of the maximum). */
  ackP99Ms: Spread;
  /** Detection → quick report p99, ms, over the runs that made alerts; null when none did. */
  reportP99Ms: Spread | null;
  /** saturate: the throughput ceiling. */
  throughputCeiling?: Spread;
  /** Server RSS per connected agent, bytes. */
  memoryPerAgentBytes: Spread;
  /** Load average at each run's start, and the commit each measured. */
  loadAverages: number[];
  commits: string[];
  results: string[];
}

/** Summarises the runs of one variant (at least one). */
export function summariseRepetitions(results: readonly BenchResult[], files: readonly string[]): RepetitionSummary {
  const first = results[0];
  if (first === undefined) throw new RangeError('no runs to summarise');
  const reports = results.flatMap((r) => {
    const l = judgedReportLatency(r);
    return l === undefined ? [] : [l.p99];
  });
  return {
    scenario: first.scenario,
    kind: first.kind,
    ...(first.variant === undefined ? {} : { variant: first.variant }),
    reps: results.length,
    eventsPerSec: roundSpread(spread(results.map((r) => r.eventsPerSec))),
    ackP99Ms: roundSpread(spread(results.map((r) => r.ackLatencyMs.p99)), 1),
    reportP99Ms: reports.length === 0 ? null : roundSpread(spread(reports), 1),
    ...(first.kind === 'saturate' ? { throughputCeiling: roundSpread(spread(results.map((r) => r.throughputCeiling ?? 0))) } : {}),
    memoryPerAgentBytes: roundSpread(spread(results.map((r) => r.server.memoryPerAgentBytes))),
    loadAverages: results.map((r) => r.machine.loadAverageAtStart),
    commits: [...new Set(results.map((r) => r.machine.commit))],
    results: [...files],
  };
}

/** The summary as a few terminal lines. */
export function formatRepetitions(s: RepetitionSummary): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const sp = (x: Spread, unit = ''): string => `${n(x.median)}${unit} (${n(x.min)}–${n(x.max)})`;
  const lines = [
    `${s.scenario}${s.variant === undefined ? '' : ` [${s.variant}]`}, median of ${s.reps} run${s.reps === 1 ? '' : 's'} (min–max):`,
    `  ${s.kind === 'saturate' ? 'sustained maximum' : 'sustained'}: ${sp(s.eventsPerSec)} events/s`,
    `  ack p99${s.kind === 'saturate' ? ' at 70 %' : ''}: ${sp(s.ackP99Ms, ' ms')}`,
    `  detection → report p99${s.kind === 'saturate' ? ' at 70 %' : ''}: ${s.reportP99Ms === null ? '— (no alerts)' : sp(s.reportP99Ms, ' ms')}`,
  ];
  if (s.throughputCeiling !== undefined) lines.push(`  throughput ceiling: ${sp(s.throughputCeiling)} events/s`);
  lines.push(`  server memory per agent: ${sp(s.memoryPerAgentBytes, ' B')}`);
  lines.push(`  load average at the starts: ${s.loadAverages.join(', ')}; commit ${s.commits.join(', ')}`);
  return lines.join('\n');
}
