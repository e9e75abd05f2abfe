/**
 * `kiseki bench` (and `npm run bench`): parses the benchmark's own flags and
 * runs a load scenario (runner.ts) or the micro benchmarks (bench/micro).
 * The CLI proper (bin/kiseki.ts) only dispatches here; this module can also
 * be run directly: `node dist/bench/load/bench-cli.js --scenario steady-1k`.
 *
 * Exit codes: 0 done and every acked batch stored; 1 the count check failed
 * or the run failed; 64 usage error; 130 interrupted.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMMON_FLAGS, parseFlags, usageError } from '../../core/cli-flags.js';
import { describeError, isKisekiError, KisekiError } from '../../core/errors.js';
import { benchPaths } from './bench-paths.js';
import { runClusterComparison } from './cluster-compare.js';
import { formatClusterComparison, formatResultTable } from './result-table.js';
import { formatRepetitions, summariseRepetitions, type RepetitionSummary } from './repetitions.js';
import { runScenario, type BenchResult } from './runner.js';
import { roundSpread, spread, type Spread } from '../spread.js';
import { CLUSTER_CONFIGURATIONS, listScenarios, loadScenario, parseScenario, type ClusterConfiguration, type Scenario } from './scenario.js';

export const BENCH_USAGE = `kiseki bench — load and micro benchmarks (docs/BENCHMARKS.md)

Usage:
  kiseki bench [--scenario steady-1k] [--reps N] [--duration S] [--warmup S] [--agents N] [--eps E]
               [--seed N] [--clients N] [--out DIR] [--no-baselines] [--profile DIR] [--quiet]
  kiseki bench --scenario cluster-ingest [--configs embedded,ingest-1,ingest-2] [--reps N] [--duration S] …
  kiseki bench --list
  kiseki bench --micro [NAME]        run bench/micro/*.bench.ts (decode, lmdb-keys, rules, export)
  kiseki bench --syslog [--lines N]  network-log ingest (parse + store) vs rsyslog imtcp -> omfile, median of 3

  --scenario NAME|FILE  a file in bench/load/scenarios (default steady-1k) or a path to a .json
  --reps N              runs of the scenario (default 3); prints the median of each headline figure with
                        its min–max spread (bench/results/<scenario>-reps-<date>.json)
  --duration S          measured seconds (fanin: hold time; burst: after the storm; saturate: the 70 % step)
  --out DIR             result folder (default bench/results)
  --no-baselines        skip the bare-uWS and rsyslog baselines (without this flag a missing rsyslogd
                        stops the run before it starts: apt-get install rsyslog)
  --profile DIR         CPU-profile the server (node --cpu-prof, every thread) into DIR; top functions go in the result
  --sigma on|off|both   Sigma rules in the server's shards (default: as configured, on); both: each repetition
                        runs the scenario with Sigma on and off (on, off, then off, on, …), and prints both
                        sustained rates and the median on / off of the pairs with its spread
                        (goal: ≥ 0.8 with the default pack; bench/results/<scenario>-sigma-<date>.json)
  --analytics on|off|both  streaming analytics in the shards, the same way (goal: ≥ 0.9;
                        bench/results/<scenario>-analytics-<date>.json); not with --sigma
  --configs LIST        a scenario with a cluster section (cluster-ingest): which of embedded, ingest-1 …
                        ingest-4, ingest-1-archive (ingest-1 with the archive node) to measure,
                        comma-separated, in this order (default: the scenario's);
                        prints acked events/s and ack p99 of each (bench/results/<scenario>-<date>.json);
                        not with --sigma, --analytics or --profile; without nats-server the ingest-N
                        configurations are skipped (apt-get install nats-server)
`;

const OPTIONS = {
  ...COMMON_FLAGS,
  scenario: { type: 'string' },
  duration: { type: 'number' },
  warmup: { type: 'number' },
  agents: { type: 'number' },
  eps: { type: 'number' },
  seed: { type: 'number' },
  reps: { type: 'number' },
  clients: { type: 'number' },
  out: { type: 'string' },
  'no-baselines': { type: 'boolean' },
  profile: { type: 'string' },
  quiet: { type: 'boolean' },
  list: { type: 'boolean' },
  micro: { type: 'boolean' },
  sigma: { type: 'string' },
  analytics: { type: 'string' },
  syslog: { type: 'boolean' },
  lines: { type: 'number' },
  configs: { type: 'string' },
} as const;

/**
 * `--configs embedded,ingest-1,ingest-2`: the configurations of a cluster comparison, in order.
 * @throws KisekiError ERR_USAGE for an empty list, an unknown name or a name given twice.
 */
export function parseConfigsFlag(value: string): ClusterConfiguration[] {
  const names = value.split(',').map((x) => x.trim());
  const known: readonly string[] = CLUSTER_CONFIGURATIONS;
  const bad = names.find((x) => !known.includes(x));
  if (bad !== undefined) throw usageError(`--configs takes a comma-separated list of ${CLUSTER_CONFIGURATIONS.join(', ')}, not "${bad}"`);
  if (new Set(names).size !== names.length) throw usageError('--configs names a configuration twice');
  return names as ClusterConfiguration[];
}

/** A shard stage the benchmark can switch off to measure its cost (`--sigma`, `--analytics`). */
export type ComparedFeature = 'sigma' | 'analytics';

const FEATURES: Record<ComparedFeature, { env: string; label: string; goal: number }> = {
  sigma: { env: 'KISEKI_SIGMA_ENABLED', label: 'Sigma', goal: 0.8 },
  analytics: { env: 'KISEKI_ANALYTICS', label: 'Analytics', goal: 0.9 },
};

/** The feature switched by the flags and the server environment of each run, in run order. */
function featureVariants(values: Readonly<Record<string, unknown>>): { feature: ComparedFeature | undefined; runs: { variant: string | undefined; env: Record<string, string> | undefined }[] } {
  const given = (['sigma', 'analytics'] as const).filter((f) => values[f] !== undefined);
  if (given.length > 1) throw usageError('--sigma and --analytics cannot be combined: compare one feature per run');
  const feature = given[0];
  if (feature === undefined) return { feature, runs: [{ variant: undefined, env: undefined }] };
  const value = values[feature];
  const on = { variant: `${feature}-on`, env: { [FEATURES[feature].env]: 'true' } };
  const off = { variant: `${feature}-off`, env: { [FEATURES[feature].env]: 'false' } };
  if (value === 'on') return { feature, runs: [on] };
  if (value === 'off') return { feature, runs: [off] };
  if (value === 'both') return { feature, runs: [on, off] };
  throw usageError(`--${feature} takes on, off or both`);
}

function num(values: Readonly<Record<string, unknown>>, name: string): number | undefined {
  const n = values[name];
  if (n === undefined) return undefined;
  if (typeof n !== 'number' || n < 0) throw usageError(`--${name} must be a non-negative number`);
  return n;
}

/**
 * Runs the compiled micro benchmarks (dist/bench/micro/*.bench.js and
 * dist/storage/*.bench.js), optionally only those whose name contains `filter`.
 */
async function runMicro(filter: string | undefined, outDir: string | undefined): Promise<number> {
  const paths = benchPaths();
  const files: string[] = [];
  for (const dir of [paths.microDistDir, paths.storageDistDir]) {
    try {
      for (const f of readdirSync(dir)) if (f.endsWith('.bench.js') && (filter === undefined || f.includes(filter))) files.push(join(dir, f));
    } catch {
      throw new KisekiError('ERR_BENCH_FAILED', { reason: 'not built: run npm run build first', missing: dir });
    }
  }
  if (files.length === 0) throw usageError(`no micro benchmark matches ${filter ?? '*'}`);
  const { writeMicroResults } = await import('../micro/micro-report.js');
  const all = [];
  for (const f of files.sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0))) {
    const mod = (await import(pathToFileURL(f).href)) as { runBench?: () => Promise<unknown> };
    if (typeof mod.runBench !== 'function') continue;
    process.stderr.write(`[micro] ${basename(f)}\n`);
    all.push(await mod.runBench());
  }
  const file = writeMicroResults(all as Parameters<typeof writeMicroResults>[0], outDir ?? paths.resultsDir);
  process.stdout.write(`results: ${file}\n`);
  return 0;
}

/** A shard stage on against off over the same scenario (`--sigma both`, `--analytics both`). */
export interface FeatureComparison {
  feature: ComparedFeature;
  scenario: string;
  kind: string;
  /** Sustained acked events/s with the feature on and off (saturate: the sustained maximum). */
  onEventsPerSec: number;
  offEventsPerSec: number;
  /** on / off of the sustained rate; the goal is `goal`. */
  ratio: number | null;
  goal: number;
  /**
   * Server CPU per million acked events in the measured window, on and off, and off / on: what the feature costs
   * when the offered load is below saturation (a steady run's rates are equal by construction).
   */
  cpuSecondsPerMillionEvents: { on: number | null; off: number | null; efficiencyRatio: number | null };
  /** saturate: the throughput ceilings (highest step that kept up, ack p99 not considered). */
  ceilings?: { on: number | null; off: number | null; ratio: number | null };
  /** Load average (1 min) at the start of each run: the machine is shared. */
  loadAverage: { on: number; off: number };
  results: string[];
}

/** N on / off pairs of one scenario: the median on / off ratio with its spread, and each pair. */
export interface FeatureRepetitions {
  feature: ComparedFeature;
  scenario: string;
  kind: string;
  goal: number;
  pairs: number;
  /** on / off of the sustained rate, over the pairs. */
  ratio: Spread | null;
  /** saturate: on / off of the throughput ceilings. */
  ceilingRatio?: Spread | null;
  /** off / on of the server CPU per million events. */
  efficiencyRatio: Spread | null;
  on: RepetitionSummary;
  off: RepetitionSummary;
  comparisons: FeatureComparison[];
}

/** Summarises the pairs (`comparisons[i]` compares `on[i]` with `off[i]`). */
export function featureRepetitions(comparisons: readonly FeatureComparison[], on: RepetitionSummary, off: RepetitionSummary): FeatureRepetitions {
  const first = comparisons[0];
  if (first === undefined) throw new RangeError('no pairs to summarise');
  const of = (xs: (number | null | undefined)[]): Spread | null => {
    const v = xs.filter((x): x is number => typeof x === 'number');
    return v.length === 0 ? null : roundSpread(spread(v), 3);
  };
  return {
    feature: first.feature,
    scenario: first.scenario,
    kind: first.kind,
    goal: first.goal,
    pairs: comparisons.length,
    ratio: of(comparisons.map((c) => c.ratio)),
    ...(first.ceilings === undefined ? {} : { ceilingRatio: of(comparisons.map((c) => c.ceilings?.ratio)) }),
    efficiencyRatio: of(comparisons.map((c) => c.cpuSecondsPerMillionEvents.efficiencyRatio)),
    on,
    off,
    comparisons: [...comparisons],
  };
}

/** The pairs' summary as a few terminal lines. */
export function formatFeatureRepetitions(r: FeatureRepetitions): string {
  const sp = (x: Spread | null | undefined): string => (x == null ? '—' : `${x.median} (${x.min}–${x.max})`);
  const lines = [
    `${FEATURES[r.feature].label} on / off, ${r.scenario}, ${r.pairs} pair${r.pairs === 1 ? '' : 's'}: ratio ${sp(r.ratio)} (goal ≥ ${r.goal})`,
    `  server CPU per million events, off / on: ${sp(r.efficiencyRatio)}`,
  ];
  if (r.ceilingRatio !== undefined) lines.push(`  throughput ceilings, on / off: ${sp(r.ceilingRatio)}`);
  lines.push(formatRepetitions(r.on), formatRepetitions(r.off));
  return lines.join('\n');
}

/** Compares two runs of one scenario, the feature on and off. */
export function featureComparison(feature: ComparedFeature, on: BenchResult, off: BenchResult, files: string[]): FeatureComparison {
  const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (typeof a === 'number' && typeof b === 'number' && b > 0 ? Math.round((1000 * a) / b) / 1000 : null);
  const cpuPerMillion = (r: BenchResult): number | null => (r.window.eventsPerSec > 0 ? Math.round((1e8 * r.window.serverCores) / r.window.eventsPerSec) / 100 : null);
  const cpuOn = cpuPerMillion(on);
  const cpuOff = cpuPerMillion(off);
  return {
    feature,
    scenario: on.scenario,
    kind: on.kind,
    onEventsPerSec: on.eventsPerSec,
    offEventsPerSec: off.eventsPerSec,
    ratio: ratio(on.eventsPerSec, off.eventsPerSec),
    goal: FEATURES[feature].goal,
    cpuSecondsPerMillionEvents: { on: cpuOn, off: cpuOff, efficiencyRatio: ratio(cpuOff, cpuOn) },
    ...(on.kind === 'saturate' ? { ceilings: { on: on.throughputCeiling ?? null, off: off.throughputCeiling ?? null, ratio: ratio(on.throughputCeiling, off.throughputCeiling) } } : {}),
    loadAverage: { on: on.machine.loadAverageAtStart, off: off.machine.loadAverageAtStart },
    results: files,
  };
}

/** The comparison as a few lines for the terminal. */
export function formatFeatureComparison(c: FeatureComparison): string {
  const n = (x: number | null | undefined): string => (typeof x === 'number' ? Math.round(x).toLocaleString('en-US') : '—');
  const cpu = c.cpuSecondsPerMillionEvents;
  const lines = [
    `${FEATURES[c.feature].label} on / off, ${c.scenario}: ${n(c.onEventsPerSec)} vs ${n(c.offEventsPerSec)} events/s sustained, ratio ${c.ratio ?? '—'} (goal ≥ ${c.goal})`,
    `  server CPU per million events: on ${cpu.on ?? '—'} s, off ${cpu.off ?? '—'} s, off / on ${cpu.efficiencyRatio ?? '—'}`,
    `  load average at start: on ${c.loadAverage.on}, off ${c.loadAverage.off}`,
  ];
  if (c.ceilings !== undefined) lines.push(`  throughput ceilings: ${n(c.ceilings.on)} vs ${n(c.ceilings.off)} events/s, ratio ${c.ceilings.ratio ?? '—'}`);
  return lines.join('\n');
}

/**
 * Runs a benchmark command that SIGINT or SIGTERM aborts: every process it started is stopped, one line says so
 * and the exit code is 130.
 */
async function interruptible(run: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await run(controller.signal);
  } catch (err) {
    if (controller.signal.aborted) {
      process.stderr.write('kiseki bench: interrupted; every process it started was stopped.\n');
      return 130;
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** `kiseki bench --scenario cluster-ingest`: the cluster comparison (cluster-compare.ts), interruptible. */
function runComparisonCommand(scenario: Scenario, reps: number, values: Readonly<{ out?: string | undefined; quiet?: boolean | undefined }>): Promise<number> {
  return interruptible(async (signal) => {
    const { comparison, file } = await runClusterComparison({
      scenario,
      reps,
      ...(typeof values.out === 'string' ? { outDir: values.out } : {}),
      ...(values.quiet ? { log: () => undefined } : {}),
      signal,
    });
    process.stdout.write(`${formatClusterComparison(comparison)}\nresult: ${file}\n`);
    return comparison.configurations.every((c) => c.ok) ? 0 : 1;
  });
}

/**
 * Entry point of `kiseki bench`.
 * @param args the arguments after `bench`.
 * @returns the process exit code.
 */
export async function runBenchCommand(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseFlags<typeof OPTIONS>>;
  try {
    parsed = parseFlags(args, OPTIONS, { positionals: true });
  } catch (err) {
    process.stderr.write(`kiseki bench: ${isKisekiError(err) ? describeError(err) : String(err)}\n\n${BENCH_USAGE}`);
    return 64;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const paths = benchPaths();
  try {
    if (values.list) {
      for (const name of listScenarios(paths.scenariosDir)) {
        const s = loadScenario(name, paths.scenariosDir);
        process.stdout.write(`${name.padEnd(12)} ${s.kind.padEnd(9)} ${s.description}\n`);
      }
      return 0;
    }
    if (values.micro) return await runMicro(positionals[0], values.out);
    if (values.syslog) {
      const { runSyslogBench } = await import('./syslog-bench.js');
      await runSyslogBench(paths, { ...(values.lines === undefined ? {} : { lines: values.lines }), ...(values.out === undefined ? {} : { out: values.out }) });
      return 0;
    }
    if (positionals.length > 0) throw usageError(`unexpected argument ${positionals[0]}`);

    const base = loadScenario(values.scenario ?? 'steady-1k', paths.scenariosDir);
    const overrides: Record<string, unknown> = {};
    const duration = num(values, 'duration');
    const warmup = num(values, 'warmup');
    const agents = num(values, 'agents');
    const eps = num(values, 'eps');
    const seed = num(values, 'seed');
    const clients = num(values, 'clients');
    if (duration !== undefined) overrides.durationSec = duration;
    if (warmup !== undefined) overrides.warmupSec = warmup;
    if (agents !== undefined) overrides.agents = Math.floor(agents);
    if (eps !== undefined) overrides.eventsPerAgentPerSec = eps;
    if (seed !== undefined) overrides.seed = Math.floor(seed);
    if (clients !== undefined) overrides.clientProcesses = Math.floor(clients);
    if (values.configs !== undefined) {
      if (base.cluster === undefined) throw usageError(`--configs needs a scenario with a cluster section (cluster-ingest), not ${base.name}`);
      overrides.cluster = { ...base.cluster, configurations: parseConfigsFlag(values.configs) };
    }
    const scenario = parseScenario({ ...base, ...overrides }, `scenario ${base.name} with flags`);

    if (scenario.cluster !== undefined) {
      const other = (['sigma', 'analytics', 'profile'] as const).find((f) => values[f] !== undefined);
      if (other !== undefined) throw usageError(`--${other} cannot be combined with a cluster comparison (${scenario.name})`);
    }
    const { feature, runs: variants } = featureVariants(values);
    const reps = num(values, 'reps') ?? 3;
    if (!Number.isInteger(reps) || reps < 1 || reps > 20) throw usageError('--reps must be a whole number from 1 to 20');
    if (scenario.cluster !== undefined) return await runComparisonCommand(scenario, reps, values);

    return await interruptible(async (signal) => {
      const done: { variant: string | undefined; result: BenchResult; file: string }[] = [];
      const outDir = typeof values.out === 'string' ? values.out : paths.resultsDir;
      const stamp = (): string => new Date().toISOString().replace(/[:.]/g, '-');
      for (let rep = 0; rep < reps; rep++) {
        // On, off, then off, on: a drift of the shared machine's load falls on both variants alike.
        const order = rep % 2 === 0 ? variants : [...variants].reverse();
        for (const v of order) {
          if (reps > 1) process.stderr.write(`[bench] repetition ${rep + 1} of ${reps}${v.variant === undefined ? '' : `, ${v.variant}`}\n`);
          const { result, file } = await runScenario({
            scenario,
            // The baselines do not depend on the feature or the repetition: measured once, with the first run.
            baselines: !values['no-baselines'] && done.length === 0,
            ...(typeof values.out === 'string' ? { outDir: values.out } : {}),
            ...(values.quiet ? { log: () => undefined } : {}),
            ...(typeof values.profile === 'string' ? { profileDir: join(values.profile, v.variant ?? '', reps > 1 ? `rep-${rep + 1}` : '') } : {}),
            ...(v.env === undefined ? {} : { serverEnv: v.env }),
            ...(v.variant === undefined ? {} : { variant: v.variant }),
            signal,
          });
          process.stdout.write(`${v.variant === undefined ? '' : `[${v.variant}]\n`}${formatResultTable(result)}\nresult: ${file}\n`);
          done.push({ variant: v.variant, result, file });
        }
      }
      const runsOf = (variant: string | undefined) => done.filter((d) => d.variant === variant);
      if (feature !== undefined && variants.length === 2) {
        const on = runsOf(variants[0]!.variant);
        const off = runsOf(variants[1]!.variant);
        const comparisons = on.map((o, i) => featureComparison(feature, o.result, off[i]!.result, [o.file, off[i]!.file]));
        const summary = featureRepetitions(
          comparisons,
          summariseRepetitions(on.map((d) => d.result), on.map((d) => d.file)),
          summariseRepetitions(off.map((d) => d.result), off.map((d) => d.file)),
        );
        const file = join(outDir, `${scenario.name}-${feature}-${stamp()}.json`);
        writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
        for (const c of comparisons) process.stdout.write(`${formatFeatureComparison(c)}\n`);
        process.stdout.write(`${formatFeatureRepetitions(summary)}\nresult: ${file}\n`);
      } else if (reps > 1) {
        for (const v of variants) {
          const runs = runsOf(v.variant);
          const summary = summariseRepetitions(runs.map((d) => d.result), runs.map((d) => d.file));
          const file = join(outDir, `${scenario.name}${v.variant === undefined ? '' : `-${v.variant}`}-reps-${stamp()}.json`);
          writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
          process.stdout.write(`${formatRepetitions(summary)}\nresult: ${file}\n`);
        }
      }
      return done.every((d) => d.result.countCheck.ok) ? 0 : 1;
    });
  } catch (err) {
    if (isKisekiError(err, 'ERR_USAGE')) {
      const known = err.details?.known;
      process.stderr.write(`kiseki bench: ${describeError(err)}${Array.isArray(known) ? `; known: ${known.join(', ')}` : ''}\n\n${BENCH_USAGE}`);
      return 64;
    }
    if (isKisekiError(err)) process.stderr.write(`kiseki bench: ${describeError(err)}\n`);
    else process.stderr.write(`kiseki bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

// Run directly (node dist/bench/load/bench-cli.js …) until `kiseki bench` is wired into bin/kiseki.ts.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runBenchCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`kiseki bench: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
