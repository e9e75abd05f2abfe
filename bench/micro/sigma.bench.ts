/**
 * Sigma matching speed (`npm run bench -- --micro sigma`): every rule under
 * ../shared/sigma/rules/windows that kiseki supports, over realistic trail
 * events from the trail generator (micro-fixtures.ts), on one core (this
 * thread). Side by side: the product's index (rules by kind, literal
 * prefilter, engine/sigma/matcher.ts) and plain evaluation of every rule of
 * the event's kind, plus the index on process starts alone (the kind most
 * rules read). Each is repeated (≥ 3 runs); the median events/s per core
 * and the spread (min–max) are printed and written to bench/results/sigma-<time>.json,
 * with the heap the engine allocates per match (sampling heap profiler).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import type { TrailEvent } from '../../core/contracts.js';
import { createSigmaMatcher, defaultRulesDir, findSharedSigmaDir, loadSigmaRules, type CompiledRule, type ProcessFacts } from '../../engine/sigma/index.js';
import { benchPaths } from '../load/bench-paths.js';
import { machineNote } from '../load/runner.js';
import { fixtureEvents, isMain } from './micro-fixtures.js';
import { median } from '../spread.js';
import type { MicroRow, MicroTable } from './micro-report.js';

const EVENTS = 100_000;
const RUNS = 5;
const PLAIN_EVENTS = 5_000;


/**
 * Runs `fn` over the events `runs` times; returns events per CPU second of
 * each run (process CPU time: on a machine shared with other work, wall time
 * measures the neighbours too) and events per wall second.
 */
function measure(runs: number, events: readonly TrailEvent[], fn: (e: TrailEvent) => number): { perRun: number[]; wallPerRun: number[]; sink: number } {
  const perRun: number[] = [];
  const wallPerRun: number[] = [];
  let sink = 0;
  // Small sets are repeated so one run lasts long enough for the CPU clock.
  const passes = Math.max(1, Math.ceil(20_000 / Math.max(1, events.length)));
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let p = 0; p < passes; p++) for (let i = 0; i < events.length; i++) sink += fn(events[i]!);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    perRun.push((passes * events.length) / ((c.user + c.system) / 1e6));
    wallPerRun.push((passes * events.length) / wall);
  }
  return { perRun, wallPerRun, sink };
}

function plainMatcher(rules: readonly CompiledRule[], resolver: { process(pg: string): ProcessFacts | undefined }): (e: TrailEvent) => number {
  const byKind = new Map<string, CompiledRule[]>();
  for (const r of rules) for (const k of r.info.kinds) byKind.set(k, [...(byKind.get(k) ?? []), r]);
  return (e) => {
    let n = 0;
    for (const r of byKind.get(e.k) ?? []) if ((r.guard === undefined || r.guard(e)) && r.exact!.evaluate(e, resolver)) n++;
    return n;
  };
}

/**
 * Heap bytes allocated per `match` (V8's sampling heap profiler, collected
 * objects included), on events that reach no candidate rule and on events
 * whose candidates are evaluated but do not match.
 */
async function allocationPerMatch(matcher: ReturnType<typeof createSigmaMatcher>, events: readonly TrailEvent[]): Promise<{ noCandidate: number; candidatesNoHit: number; noCandidateEvents: number; candidateEvents: number }> {
  const none: TrailEvent[] = [];
  const some: TrailEvent[] = [];
  for (const e of events) {
    const before = matcher.stats.evaluated;
    if (matcher.match(e).length > 0) continue;
    (matcher.stats.evaluated === before ? none : some).push(e);
  }
  const session = new Session();
  session.connect();
  const measureList = async (list: TrailEvent[]): Promise<number> => {
    if (list.length === 0) return 0;
    await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    for (let pass = 0; pass < 5; pass++) for (let i = 0; i < list.length; i++) matcher.match(list[i]!);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    // Only what the engine allocates (this loop and the profiler's own messages are not the matcher's).
    let bytes = 0;
    const walk = (n: typeof profile.head, inEngine: boolean): void => {
      const here = inEngine || n.callFrame.url.includes('/engine/sigma/');
      if (here) bytes += n.selfSize;
      for (const c of n.children) walk(c, here);
    };
    walk(profile.head, false);
    return bytes / (5 * list.length);
  };
  const noCandidate = await measureList(none);
  const candidatesNoHit = await measureList(some);
  session.disconnect();
  return { noCandidate, candidatesNoHit, noCandidateEvents: none.length, candidateEvents: some.length };
}

/** Runs the comparison, prints it, writes bench/results/sigma-<time>.json. */
export async function runBench(): Promise<MicroTable[]> {
  const paths = benchPaths();
  const shared = findSharedSigmaDir(paths.root);
  const rulesDir = shared === undefined ? defaultRulesDir() : join(shared, 'rules', 'windows');
  if (shared === undefined) process.stderr.write('[sigma] ../shared/sigma is absent: measuring the shipped default pack instead\n');
  const t0 = Date.now();
  const loaded = loadSigmaRules(rulesDir);
  const loadMs = Date.now() - t0;
  const t1 = Date.now();
  // The shard's process table, as the resolver sees it: every process started in the fixture.
  const events = fixtureEvents(EVENTS, 8, 42, 0.001);
  const table = new Map<string, ProcessFacts>();
  for (const e of events) if (e.k === 'proc.start' && typeof e.pg === 'string') table.set(e.pg, e);
  const resolver = { process: (pg: string) => table.get(pg) };
  const matcher = createSigmaMatcher(loaded.rules, { resolver });
  const buildMs = Date.now() - t1;

  const kinds: Record<string, number> = {};
  for (const e of events) kinds[e.k] = (kinds[e.k] ?? 0) + 1;
  // Warm-up pass (JIT), then the measured runs.
  measure(1, events, (e) => matcher.match(e).length);
  const before = { ...matcher.stats };
  const indexed = measure(RUNS, events, (e) => matcher.match(e).length);
  const evaluatedPerEvent = (matcher.stats.evaluated - before.evaluated) / (matcher.stats.events - before.events);
  const hitsPerRun = (matcher.stats.hits - before.hits) / RUNS;
  // The hardest kind alone: process starts meet 1,100 of the rules.
  const starts = events.filter((e) => e.k === 'proc.start');
  const startsRuns = measure(RUNS, starts.length >= 1000 ? starts : events, (e) => matcher.match(e).length);
  const plainFn = plainMatcher(loaded.rules, resolver);
  const plainEvents = events.slice(0, PLAIN_EVENTS);
  measure(1, plainEvents, plainFn);
  const plain = measure(3, plainEvents, plainFn);

  const row = (name: string, perRun: number[], wallPerRun: number[]): MicroRow & { runs: number[]; minPerSec: number; maxPerSec: number; wallMedianPerSec: number } => {
    const med = median(perRun);
    return {
      wallMedianPerSec: Math.round(median(wallPerRun)),
      name,
      opsPerSec: Math.round(med),
      meanUs: Math.round((1e6 / med) * 100) / 100,
      p99Us: Number.NaN,
      itemsPerSec: Math.round(med),
      samples: perRun.length,
      runs: perRun.map((x) => Math.round(x)),
      minPerSec: Math.round(Math.min(...perRun)),
      maxPerSec: Math.round(Math.max(...perRun)),
    };
  };
  const rows = [
    row(`index + literal prefilter, ${loaded.rules.length} rules (product)`, indexed.perRun, indexed.wallPerRun),
    row(`plain: every rule of the kind, ${loaded.rules.length} rules`, plain.perRun, plain.wallPerRun),
    row(`index, proc.start events only (${starts.length})`, startsRuns.perRun, startsRuns.wallPerRun),
  ];
  const table_: MicroTable = {
    bench: `Sigma rules over ${EVENTS.toLocaleString('en-US')} generated trail events, one core`,
    item: 'event',
    itemsPerOp: 1,
    rows,
    verdict: 'rules are indexed by kind and prefiltered by literals (one multi-literal scan per field), so an event evaluates few rules',
  };
  const alloc = await allocationPerMatch(matcher, events);
  for (const r of rows) {
    process.stdout.write(
      `  ${r.name.padEnd(58)} median ${r.itemsPerSec.toLocaleString('en-US').padStart(10)} events/s per core (CPU time; min ${r.minPerSec.toLocaleString('en-US')}, max ${r.maxPerSec.toLocaleString('en-US')}, ${r.samples} runs; wall ${r.wallMedianPerSec.toLocaleString('en-US')}/s)\n`,
    );
  }
  process.stdout.write(`  rules loaded ${loaded.rules.length} of ${loaded.files} files in ${loadMs} ms; index built in ${buildMs} ms; ${evaluatedPerEvent.toFixed(3)} rule evaluations and ${(hitsPerRun / EVENTS).toFixed(4)} hits per event\n`);

  process.stdout.write(
    `  heap allocated by the engine per match: ${alloc.noCandidate.toFixed(1)} B on ${alloc.noCandidateEvents.toLocaleString('en-US')} events with no candidate rule, ${alloc.candidatesNoHit.toFixed(1)} B on ${alloc.candidateEvents.toLocaleString('en-US')} events whose candidates did not match\n`,
  );
  mkdirSync(paths.resultsDir, { recursive: true });
  const startedAt = new Date();
  const file = join(paths.resultsDir, `sigma-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        machine: machineNote(),
        rulesDir,
        rulesLoaded: loaded.rules.length,
        ruleFiles: loaded.files,
        refusedByReason: loaded.refusedByReason,
        loadMs,
        indexBuildMs: buildMs,
        events: EVENTS,
        eventKinds: kinds,
        runs: RUNS,
        ruleEvaluationsPerEvent: evaluatedPerEvent,
        hitsPerEvent: hitsPerRun / EVENTS,
        kindIndex: matcher.describe(),
        heapBytesPerMatch: alloc,
        rows,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`  sigma result: ${file}\n`);
  if (indexed.sink < 0 || plain.sink < 0 || startsRuns.sink < 0) throw new Error('unreachable');
  return [table_];
}

if (isMain(import.meta.url)) await runBench();
