/**
 * The load benchmark runner: starts kiseki on a temporary data directory,
 * drives one declarative scenario (scenario.ts) with the load generator,
 * measures what operators size deployments by (sustained events/s and
 * batches/s, durable-ack latency p50/p99/p999, detection → quick-report
 * latency, server CPU and RSS, user-space memory per connected agent, rejects
 * by reason), checks at the end that every acked batch is stored (`kiseki
 * inspect`), runs the baselines of the same machine in the same run (bare
 * uWebSockets.js, rsyslog) so the figures read as ratios, and writes
 * `<outDir>/<scenario>-<date>.json` plus a short table.
 *
 * Every process it spawns is tracked and stopped at the end, also on failure
 * or abort; every wait is bounded.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { isKisekiError, KisekiError } from '../../core/errors.js';
import { benchPaths, assertBuilt, type BenchPaths } from './bench-paths.js';
import { findRsyslogd, runRsyslogBaseline, type RsyslogBaselineResult } from './baselines/rsyslog-baseline.js';
import { runUwsBaseline, type UwsBaselineResult } from './baselines/uws-baseline.js';
import {
  BENCH_SUPPORT_ID,
  abortRace,
  abortedError,
  createBenchTenant,
  createProcessTracker,
  inspectCounts,
  histogramQuantileBetween,
  increaseBetween,
  sampleValue,
  scrapeMetricsOrUndefined,
  scrapeMetrics,
  startKiseki,
  sumByLabel,
  type InspectCounts,
  type KisekiServer,
  type PromSample,
} from './kiseki-server.js';
import type { GcKind } from '../../core/gc-pauses.js';
import type { LatencyPercentiles } from './latency-histogram.js';
import { clientFleetActivity, fleetServerEnv, prepareFleetTenant, readFleetOutcome, settleBenchRollout, startBenchRollout, type FleetOutcome } from './fleet-activity.js';
import { diffCounters, startFleet, type ConnectResult, type Fleet, type FleetEndpoint, type FleetOptions, type FleetSnapshot } from './load-generator.js';
import { coresBetween, openFilesLimit, readProcSample, type ProcSample } from './proc-stats.js';
import { summariseProfiles, type ProfileSummary } from './profile-summary.js';
import type { Scenario } from './scenario.js';
import { StepSearch, type StepPurpose } from './step-search.js';

/** Options of {@link runScenario}. */
export interface RunOptions {
  scenario: Scenario;
  /** Folder of the result JSON; default bench/results. */
  outDir?: string;
  /** Run the uWS and rsyslog baselines after kiseki (default true). */
  baselines?: boolean;
  paths?: BenchPaths;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Write a CPU profile of the server (main thread and shard workers) into this folder and summarise it in the result. */
  profileDir?: string;
  /** Runs on the data directory after the tenant is created and before kiseki starts (e.g. notification settings). */
  prepare?: (dataDir: string) => Promise<void>;
  /** Runs after the fleet closed and before kiseki stops (e.g. waiting for notification mails). */
  beforeStop?: () => Promise<void>;
  /** Environment variables for the server only (e.g. KISEKI_SIGMA_ENABLED=false for the Sigma-off run). */
  serverEnv?: Readonly<Record<string, string>>;
  /** Tag appended to the result file name and recorded in the result (e.g. `sigma-off`). */
  variant?: string;
  /** Runs on the data directory after kiseki stopped and before it is removed (e.g. reading what was stored). */
  afterStop?: (dataDir: string) => Promise<void>;
  /** Where rsyslogd is (default: PATH and the sbin folders); a test passes one that finds nothing. */
  findRsyslogd?: () => string | undefined;
}

/** The machine a result came from. */
export interface MachineNote {
  nproc: number;
  cpuModel: string;
  node: string;
  kernel: string;
  memoryGiB: number;
  openFilesLimit: number;
  /** 1-minute load average when the run started (anything well above nproc means other work shared the cores). */
  loadAverageAtStart: number;
  /** The commit measured (`git rev-parse --short HEAD`, `+dirty` with uncommitted changes), or 'unknown' outside a clone. */
  commit: string;
  note: string;
}

/** Figures of one measured window. */
export interface WindowStats {
  seconds: number;
  eventsPerSec: number;
  batchesPerSec: number;
  offeredEventsPerSec: number;
  /** Durable acks: from a batch's send on the connection to its ack. */
  ackLatencyMs: LatencyPercentiles;
  /** From batch creation on the agent to its ack (includes time buffered on the agent). */
  deliveryLatencyMs: LatencyPercentiles;
  serverCores: number;
  clientCores: number;
  serverRssMB: number;
  serverRssAnonMB: number;
  /**
   * Where the server spent the acks' time in this window, per batch (kiseki_ingest_ack_stage_seconds,
   * quantiles interpolated within its buckets): wait for the commit group, lock (until its write
   * transaction runs), commit (write and flush), order (wait for earlier groups). Absent when the
   * server recorded none.
   */
  ackStagesMs?: Record<AckStage, { p50: number; p99: number }>;
  /**
   * Detection → quick report stored for the alerts of this window (kiseki_engine_report_latency_histogram_seconds,
   * interpolated within its buckets). Absent when the window stored no alert.
   */
  reportLatencyMs?: { p50: number; p99: number; alerts: number };
  /** GC pauses and event-loop delay of the server's threads in this window (threadPausesBetween). */
  threadPauses?: ThreadPauses;
}

/** GC pauses of one kind over a window: how many, their total and p99 (interpolated within the histogram's buckets), ms. */
export interface GcPauseSummary {
  count: number;
  totalMs: number;
  p99Ms: number;
}

/** What stopped the server's threads in a window: a pause on the ingest thread holds every ack, one on a shard every report. */
export interface ThreadPauses {
  /** The ingest thread's event-loop delay over the window, ms (prom-client's monitor, reset at each scrape): absent when not exported. */
  ingestLoopDelayMs?: { p99: number; max: number };
  ingestGc: Partial<Record<GcKind, GcPauseSummary>>;
  shardGc: Partial<Record<GcKind, GcPauseSummary>>;
}

const GC_KINDS: readonly GcKind[] = ['minor', 'major', 'incremental', 'weakcb'];

/**
 * The server threads' pauses between two scrapes: GC pauses by kind of the ingest thread
 * (kiseki_process_nodejs_gc_duration_seconds) and of the shards (kiseki_engine_shard_gc_seconds),
 * and the ingest thread's event-loop delay as of the later scrape (prom-client resets its monitor
 * at every scrape, so with no scrape in between that is the window's).
 */
export function threadPausesBetween(before: PromSample[], after: PromSample[]): ThreadPauses {
  const gc = (name: string): Partial<Record<GcKind, GcPauseSummary>> => {
    const out: Partial<Record<GcKind, GcPauseSummary>> = {};
    for (const kind of GC_KINDS) {
      const count = increaseBetween(before, after, `${name}_count`, { kind });
      if (count <= 0) continue;
      const sum = increaseBetween(before, after, `${name}_sum`, { kind });
      const p99 = histogramQuantileBetween(before, after, name, { kind }, 0.99) ?? 0;
      out[kind] = { count, totalMs: round(sum * 1000, 1), p99Ms: round(p99 * 1000, 2) };
    }
    return out;
  };
  const p99 = sampleValue(after, 'kiseki_process_nodejs_eventloop_lag_p99_seconds');
  const max = sampleValue(after, 'kiseki_process_nodejs_eventloop_lag_max_seconds');
  return {
    ...(p99 === undefined || max === undefined ? {} : { ingestLoopDelayMs: { p99: round(p99 * 1000, 2), max: round(max * 1000, 2) } }),
    ingestGc: gc('kiseki_process_nodejs_gc_duration_seconds'),
    shardGc: gc('kiseki_engine_shard_gc_seconds'),
  };
}

/** Longest wait for the shards to catch up before the 70 % step of `saturate`, s. */
const SEVENTY_RECOVER_SEC = 300;

/** How long the benchmark waits for the server's /metrics before it counts the scrape as missing. */
const SCRAPE_TIMEOUT_MS = 10_000;

/** The server's ack stages (core/metrics.ts). */
export const ACK_STAGES = ['wait', 'lock', 'commit', 'order'] as const;
export type AckStage = (typeof ACK_STAGES)[number];

/** Detection → report latency of the alerts stored between two scrapes, or undefined when there were none. */
export function reportLatencyBetween(before: PromSample[], after: PromSample[]): { p50: number; p99: number; alerts: number } | undefined {
  const name = 'kiseki_engine_report_latency_histogram_seconds';
  const p50 = histogramQuantileBetween(before, after, name, {}, 0.5);
  const p99 = histogramQuantileBetween(before, after, name, {}, 0.99);
  if (p50 === undefined || p99 === undefined) return undefined;
  const alerts = increaseBetween(before, after, `${name}_count`);
  return { p50: round(p50 * 1000, 2), p99: round(p99 * 1000, 2), alerts };
}

/** The ack stages' p50 / p99 between two scrapes of the server's metrics, or undefined when no batch was stored between them. */
export function ackStagesBetween(before: PromSample[], after: PromSample[]): Record<AckStage, { p50: number; p99: number }> | undefined {
  const name = 'kiseki_ingest_ack_stage_seconds';
  const out = {} as Record<AckStage, { p50: number; p99: number }>;
  for (const stage of ACK_STAGES) {
    const p50 = histogramQuantileBetween(before, after, name, { stage }, 0.5);
    const p99 = histogramQuantileBetween(before, after, name, { stage }, 0.99);
    if (p50 === undefined || p99 === undefined) return undefined;
    out[stage] = { p50: round(p50 * 1000, 2), p99: round(p99 * 1000, 2) };
  }
  return out;
}

export interface SaturateStep extends WindowStats {
  eventsPerAgentPerSec: number;
  /** Events the shards processed per second in the window (correlation, Sigma, analytics). */
  shardEventsPerSec: number;
  /** The shards processed at least 90 % of what was stored in the window: their backlog did not grow. */
  shardsKeptUp: boolean;
  /** Ack p99 within the limit, the offered rate acked, and the shards kept up. */
  passed: boolean;
  /** Why the step ran (bench/load/step-search.ts): the ramp, the second run of a rate that missed, the last ramp to the ceiling. */
  purpose: StepPurpose;
}

/** The result JSON (`bench/results/<scenario>-<date>.json`). */
export interface BenchResult {
  scenario: string;
  kind: Scenario['kind'];
  description: string;
  startedAt: string;
  wallSec: number;
  machine: MachineNote;
  config: Scenario;
  agents: number;
  clientProcesses: number;
  /** Sustained acked events/s: the measured window (saturate: the highest step that held its limits). */
  eventsPerSec: number;
  batchesPerSec: number;
  offeredEventsPerSec: number;
  ackLatencyMs: LatencyPercentiles;
  deliveryLatencyMs: LatencyPercentiles;
  /** Detection batch receipt → quick report stored (server Summary, last 10 min) with the p50 / p99 of its stages (queue, process, store: core/metrics.ts), or null without alerts. */
  reportLatencyMs: { p50: number; p99: number; p999: number; alerts: number; stages?: Record<'queue' | 'process' | 'store', { p50: number; p99: number }> } | null;
  detections: { sent: number; acked: number; alerts: number };
  server: { cpuCores: number; rssMB: number; rssAnonMB: number; peakRssMB: number; memoryPerAgentBytes: number };
  client: { cpuCores: number; rssMB: number; processes: number };
  connect: ConnectResult;
  rejects: Record<string, number>;
  batchesByResult: Record<string, number>;
  /** Batches the shards had to read back from the log because their queue was full. */
  catchUpBatches: number;
  clientErrors: Record<string, number>;
  countCheck: {
    /** Every acked batch is stored exactly once (and, after a full drain, nothing else and no seq gap). */
    ok: boolean;
    /** The shards had processed every stored event when the server stopped. */
    processedAll: boolean;
    batchesAcked: number;
    eventsAcked: number;
    drained: boolean;
    unackedAtEnd: number;
    serverExitCode: number | null;
    stored: InspectCounts;
  };
  /** Acked batches missing from storage (0 is the only acceptable value). */
  lostBatches: number;
  baselines: { uws: UwsBaselineResult | { skipped: string }; rsyslog: RsyslogBaselineResult | { skipped: string } };
  ratios: { vsUws: number | null; vsRsyslog: number | null; memoryVsUws: number | null };
  targets: { target: string; measured: string; met: boolean | null }[];
  window: WindowStats;
  steps?: SaturateStep[];
  /** saturate: the highest acked events/s of a step that kept up with its offered rate (ack p99 not considered). */
  throughputCeiling?: number;
  atSeventyPercent?: WindowStats & { eventsPerAgentPerSec: number };
  burst?: { outageSec: number; reconnect: ConnectResult; flushSec: number; flushEventsPerSec: number; flushed: boolean; after: WindowStats };
  pool: { events: number; bytes: number; mix: Record<string, number>; detectionRuns: number };
  /** Top self-time functions of the server's CPU profiles (with --profile). */
  profile?: ProfileSummary[];
  /** The run's variant (`sigma-on`, `sigma-off` with `--sigma both`), when it has one. */
  variant?: string;
  /** The scenario's fleet activity and what the server made of it (scenario `fleet`). */
  fleetActivity?: FleetOutcome;
  notes: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 0): number => Math.round(n * 10 ** d) / 10 ** d;

/** The checked-out commit of this repository, marked `+dirty` when tracked files changed since. */
function gitCommit(): string {
  const git = (args: string[]): string => execFileSync('git', args, { cwd: benchPaths().root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const head = git(['rev-parse', '--short', 'HEAD']);
    return git(['status', '--porcelain', '--untracked-files=no']) === '' ? head : `${head}+dirty`;
  } catch {
    return 'unknown';
  }
}

/** Reads the machine note of this host. */
export function machineNote(): MachineNote {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux.
  }
  return {
    nproc: availableParallelism(),
    cpuModel,
    node: process.version,
    kernel: release(),
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    openFilesLimit: openFilesLimit(),
    loadAverageAtStart: round(loadavg()[0] ?? 0, 2),
    commit: gitCommit(),
    note: 'server, load generator and baselines share this machine; on a shared VM run-to-run variance is up to ~30 %',
  };
}

function windowStats(a: FleetSnapshot, b: FleetSnapshot, pa: ProcSample | undefined, pb: ProcSample | undefined, offeredEventsPerSec: number, ma: PromSample[] | undefined, mb: PromSample[] | undefined): WindowStats {
  const d = diffCounters(a.counters, b.counters);
  const secs = Math.max(0.001, (b.atMs - a.atMs) / 1000);
  const ackStagesMs = ma === undefined || mb === undefined ? undefined : ackStagesBetween(ma, mb);
  const reportLatencyMs = ma === undefined || mb === undefined ? undefined : reportLatencyBetween(ma, mb);
  const threadPauses = ma === undefined || mb === undefined ? undefined : threadPausesBetween(ma, mb);
  return {
    seconds: round(secs, 2),
    eventsPerSec: Math.round(d.eventsAcked / secs),
    batchesPerSec: Math.round(d.batchesAcked / secs),
    offeredEventsPerSec: Math.round(offeredEventsPerSec),
    ackLatencyMs: b.ack.percentiles(),
    deliveryLatencyMs: b.delivery.percentiles(),
    serverCores: round(coresBetween(pa, pb), 2),
    clientCores: round((b.clientCpuSec - a.clientCpuSec) / secs, 2),
    serverRssMB: pb ? round(pb.rssBytes / 1e6) : 0,
    serverRssAnonMB: pb ? round(pb.rssAnonBytes / 1e6) : 0,
    ...(ackStagesMs === undefined ? {} : { ackStagesMs }),
    ...(reportLatencyMs === undefined ? {} : { reportLatencyMs }),
    ...(threadPauses === undefined ? {} : { threadPauses }),
  };
}

/**
 * The load generator's options for a scenario: its rate (saturate: the first step's), batch shape, window,
 * detections, connect pace and fleet activity, `agents` agents over its client processes, against `host:port`
 * or spread over `endpoints` (a cluster's ingest nodes).
 */
export function scenarioFleetOptions(
  s: Scenario,
  target: { host: string; port: number; endpoints?: readonly FleetEndpoint[]; enrollKey: string; agents: number; clientJs: string; processes?: number },
): FleetOptions {
  const processes = target.processes ?? s.clientProcesses;
  return {
    host: target.host,
    port: target.port,
    ...(target.endpoints === undefined ? {} : { endpoints: target.endpoints }),
    path: '/agent/v1',
    enrollKey: target.enrollKey,
    seed: s.seed,
    mode: 'open',
    eventsPerAgentPerSec: s.kind === 'saturate' ? (s.saturate?.startEventsPerAgentPerSec ?? s.eventsPerAgentPerSec) : s.eventsPerAgentPerSec,
    batchIntervalMs: s.batchIntervalMs,
    maxBatchEvents: s.maxBatchEvents,
    closedBatchEvents: 200,
    maxUnackedBatches: s.maxUnackedBatches,
    maxBufferedBatches: s.maxBufferedBatches,
    detectionRate: s.detectionRate,
    ...(s.hbIntervalMs === undefined ? {} : { hbIntervalMs: s.hbIntervalMs }),
    connectConcurrency: s.connectConcurrency,
    inventoryOnEnroll: s.inventoryOnEnroll,
    ...(s.eventMix ? { eventMix: s.eventMix } : {}),
    poolEvents: 16_384,
    helloTimeoutMs: 30_000,
    ...(s.fleet === undefined ? {} : { fleet: clientFleetActivity(s.fleet) }),
    agents: target.agents,
    ...(processes === undefined ? {} : { processes }),
    agentsPerProcess: s.agentsPerClientProcess,
    clientJs: target.clientJs,
  };
}


/**
 * Runs one scenario end to end and writes its result JSON.
 * @returns the result and the path of the JSON file.
 * @throws when kiseki or a client process fails, or on abort (after cleaning up).
 */
export async function runScenario(options: RunOptions): Promise<{ result: BenchResult; file: string }> {
  const s = options.scenario;
  const paths = options.paths ?? benchPaths();
  assertBuilt(paths);
  // A missing baseline stops the run before it starts: a result without its baseline cannot be compared.
  if ((options.baselines ?? true) && s.kind !== 'fanin' && (options.findRsyslogd ?? findRsyslogd)() === undefined) {
    throw new KisekiError('ERR_BENCH_BASELINE_MISSING', { reason: 'rsyslogd, the rsyslog baseline, is not installed: apt-get install rsyslog, or run with --no-baselines', baseline: 'rsyslog', install: 'apt-get install rsyslog' });
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const outDir = options.outDir ?? paths.resultsDir;
  const startedAt = new Date();
  const t0 = performance.now();
  const tracker = createProcessTracker();
  const dataDir = mkdtempSync(join(tmpdir(), 'kiseki-bench-'));
  const notes: string[] = [];
  let fleet: Fleet | undefined;
  let server: KisekiServer | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  let phase = 'starting';
  let phaseEndsAt = 0;

  const abort = abortRace(options.signal);
  const aborted = abort.aborted;

  let serverExited: Promise<never> = new Promise<never>(() => undefined);
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, aborted, serverExited, fleet ? fleet.failed : new Promise<never>(() => undefined)]);
  const wait = (ms: number): Promise<void> => guard(sleep(ms));

  try {
    const machine = machineNote();
    log(`[${s.name}] starting kiseki on ${dataDir}`);
    const enrollKey = await guard(createBenchTenant(paths.kisekiJs, dataDir));
    const adminToken = s.fleet === undefined ? undefined : await guard(prepareFleetTenant(dataDir, BENCH_SUPPORT_ID, s.fleet));
    if (options.prepare !== undefined) await guard(options.prepare(dataDir));
    const serverEnv = { ...fleetServerEnv(s.fleet), ...options.serverEnv };
    server = await guard(
      startKiseki({
        kisekiJs: paths.kisekiJs,
        dataDir,
        extraArgs: s.serverArgs,
        tracker,
        ...(Object.keys(serverEnv).length === 0 ? {} : { env: serverEnv }),
        ...(options.profileDir ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', options.profileDir] } : {}),
      }),
    );
    const srv = server;
    serverExited = new Promise<never>((_, reject) => {
      srv.child.once('exit', (code) => reject(new KisekiError('ERR_BENCH_FAILED', { reason: 'kiseki exited during the run', code, logTail: srv.logTail().slice(-1500) })));
    });
    serverExited.catch(() => undefined);
    await wait(500);
    if (s.kind === 'fanin') {
      const settle = s.fanin?.idleSettleSec ?? 25;
      log(`[${s.name}] letting the idle server settle for ${settle} s before reading its memory`);
      await wait(settle * 1000);
    }
    const idle = readProcSample(srv.pid);

    let agents = s.agents;
    if (s.kind === 'fanin') {
      const limit = machine.openFilesLimit - (s.fanin?.fdReserve ?? 400);
      if (agents > limit) {
        notes.push(`agents clamped from ${agents} to ${limit}: the server's open-file limit is ${machine.openFilesLimit}`);
        agents = limit;
      }
    }
    const offered = (eps: number): number => agents * eps;
    fleet = await guard(startFleet(scenarioFleetOptions(s, { host: '127.0.0.1', port: srv.ingestPort, enrollKey, agents, clientJs: paths.clientJs })));
    const f = fleet;

    // One progress line a second.
    let lastProg = { at: performance.now(), events: 0, proc: readProcSample(srv.pid) };
    progressTimer = setInterval(() => {
      const p = f.progress();
      const now = performance.now();
      const proc = readProcSample(srv.pid);
      const evps = ((p.counters.eventsAcked - lastProg.events) * 1000) / Math.max(1, now - lastProg.at);
      const left = phaseEndsAt > now ? ` ${Math.ceil((phaseEndsAt - now) / 1000)} s left` : '';
      log(
        `[${s.name}] ${phase}${left} | agents ${p.counters.connected} | acked ${fmtRate(evps)} ev/s | ack p99 ${p.recentAck.percentiles().p99} ms | unacked ${p.counters.unackedBatches} | server ${Math.round(coresBetween(lastProg.proc, proc) * 100)} % cpu ${proc ? Math.round(proc.rssBytes / 1e6) : 0} MB`,
      );
      lastProg = { at: now, events: p.counters.eventsAcked, proc };
    }, 1000);
    progressTimer.unref();

    phase = 'connecting';
    const connect = await guard(f.connect(300_000));
    log(`[${s.name}] ${connect.welcomed}/${connect.agents} agents connected in ${connect.seconds} s (${connect.perSec}/s)`);
    if (!connect.complete) notes.push(`only ${connect.welcomed} of ${connect.agents} agents connected`);

    const setPhase = (name: string, seconds: number): void => {
      phase = name;
      phaseEndsAt = performance.now() + seconds * 1000;
    };
    /**
     * The server's metrics, or undefined when it did not answer in time: past the knee its ingest thread
     * can stall for seconds (a run at 206k events/s offered saw none for 5 s), and one late scrape must
     * fail that step, not end the run and lose every repetition's summary.
     */
    const scrapeOrUndefined = async (): Promise<PromSample[] | undefined> => {
      const m = await guard(scrapeMetricsOrUndefined(srv.httpPort, SCRAPE_TIMEOUT_MS));
      if (m === undefined) notes.push(`the server did not answer /metrics within ${SCRAPE_TIMEOUT_MS / 1000} s during "${phase}"`);
      return m;
    };
    const snap = async (): Promise<{ fs: FleetSnapshot; proc: ProcSample | undefined; metrics: PromSample[] | undefined }> => ({
      fs: await guard(f.snapshot()),
      proc: readProcSample(srv.pid),
      metrics: await scrapeOrUndefined(),
    });

    let window: WindowStats;
    let steps: SaturateStep[] | undefined;
    let atSeventy: (WindowStats & { eventsPerAgentPerSec: number }) | undefined;
    let burst: BenchResult['burst'];
    let headline: { eventsPerSec: number; batchesPerSec: number; offered: number; ack: LatencyPercentiles; delivery: LatencyPercentiles };
    let memoryPerAgentBytes = 0;
    let throughputCeiling: number | undefined;
    let rollout: { id: string; percent: number; version: string } | undefined;

    if (s.kind === 'saturate' && s.saturate) {
      const cfg = s.saturate;
      steps = [];
      const search = new StepSearch({ start: cfg.startEventsPerAgentPerSec, factor: cfg.factor, maxSteps: cfg.maxSteps, retry: cfg.retry });
      f.setRate(cfg.startEventsPerAgentPerSec);
      f.generate(true);
      setPhase('warm-up', s.warmupSec);
      await wait(s.warmupSec * 1000);
      /** Events stored and events the shards processed so far (the server's counters). */
      const countsOf = (m: PromSample[] | undefined): { stored: number; processed: number } | undefined =>
        m === undefined ? undefined : { stored: sampleValue(m, 'kiseki_ingest_events_total') ?? 0, processed: sampleValue(m, 'kiseki_engine_events_total') ?? 0 };
      const shardCounts = async (): Promise<{ stored: number; processed: number } | undefined> => countsOf(await scrapeOrUndefined());
      /**
       * After a step that missed its limits the next one would measure the backlog that step left: the agents'
       * unacked batches and the events the shards have not processed yet. Waits (at most `maxSec`) until both are gone.
       */
      const recover = async (eps: number, maxSec = 60): Promise<void> => {
        f.setRate(eps);
        setPhase('recovering: agents and shards catching up', maxSec);
        const until = performance.now() + maxSec * 1000;
        for (;;) {
          const c = await shardCounts();
          const shardLag = c === undefined ? Number.POSITIVE_INFINITY : c.stored - c.processed;
          if (f.progress().counters.unackedBatches <= agents * 2 && shardLag <= Math.max(offered(eps), 10_000)) return;
          if (performance.now() > until) {
            notes.push(`a step started before the server had recovered from the one before (shards ${shardLag} events behind after ${maxSec} s)`);
            return;
          }
          await wait(500);
        }
      };
      let stepNo = 0;
      const runStep = async (eps: number, purpose: StepPurpose): Promise<SaturateStep> => {
        f.setRate(eps);
        const label = `step ${++stepNo}${purpose === 'ramp' ? '' : ` (${purpose})`}`;
        setPhase(`${label} settle (${fmtRate(offered(eps))} ev/s offered)`, cfg.settleSec);
        await wait(cfg.settleSec * 1000);
        const a = await snap();
        const ca = countsOf(a.metrics);
        setPhase(`${label} (${fmtRate(offered(eps))} ev/s offered)`, cfg.stepSec);
        await wait(cfg.stepSec * 1000);
        const b = await snap();
        const cb = countsOf(b.metrics);
        const w = windowStats(a.fs, b.fs, a.proc, b.proc, offered(eps), a.metrics, b.metrics);
        const keptUp = w.eventsPerSec >= cfg.minAchievedRatio * offered(eps);
        // Acks alone do not make a rate sustainable: shards that fall behind lose the detections' seconds-old promise.
        // A server that did not answer /metrics in time has not shown that they kept up.
        const answered = ca !== undefined && cb !== undefined;
        const stored = answered ? cb.stored - ca.stored : 0;
        const processed = answered ? cb.processed - ca.processed : 0;
        const shardsKeptUp = answered && processed >= 0.9 * stored;
        const passed = w.ackLatencyMs.p99 <= cfg.ackP99LimitMs && keptUp && shardsKeptUp;
        const verdict = passed ? 'held' : !keptUp ? 'fell behind' : !answered ? 'no metrics from the server' : !shardsKeptUp ? 'shards fell behind' : 'p99 over the limit';
        const shardEventsPerSec = Math.round(processed / w.seconds);
        log(`[${s.name}] ${label}: offered ${fmtRate(offered(eps))}, acked ${fmtRate(w.eventsPerSec)} ev/s, shards ${fmtRate(shardEventsPerSec)} ev/s, ack p99 ${w.ackLatencyMs.p99} ms, server ${w.serverCores} cores → ${verdict}`);
        const step: SaturateStep = { ...w, eventsPerAgentPerSec: round(eps, 2), shardEventsPerSec, shardsKeptUp, passed, purpose };
        steps!.push(step);
        return step;
      };
      let previous: SaturateStep | undefined;
      for (let next = search.next(); next !== undefined; next = search.next()) {
        if (previous !== undefined && !previous.passed) await recover(next.rate);
        previous = await runStep(next.rate, next.purpose);
        search.record({ held: previous.passed, keptUp: previous.eventsPerSec >= cfg.minAchievedRatio * previous.offeredEventsPerSec });
      }
      const maxRate = search.maximum;
      const best = maxRate === undefined ? undefined : steps.find((x) => x.passed && x.eventsPerAgentPerSec === round(maxRate, 2));
      const keptUpSteps = (): SaturateStep[] => steps!.filter((x) => x.eventsPerSec >= cfg.minAchievedRatio * x.offeredEventsPerSec).sort((x, y) => y.eventsPerSec - x.eventsPerSec);
      if (!best) notes.push(`no step held (ack p99 ≤ ${cfg.ackP99LimitMs} ms, the offered rate acked, the shards keeping up): the sustained maximum is below the first step; the 70 % step uses the throughput ceiling instead`);
      const ref = best ?? keptUpSteps()[0];
      if (ref) {
        const eps70 = ref.eventsPerAgentPerSec * 0.7;
        // Longer than between steps: a search that ended past the knee can leave the shards millions of events
        // behind (1.5 M after 60 s in one run), and the 70 % figures are meant for a server that keeps up.
        await recover(eps70, SEVENTY_RECOVER_SEC);
        setPhase(`70 % of the maximum (${fmtRate(offered(eps70))} ev/s) settle`, cfg.settleSec + 1);
        await wait((cfg.settleSec + 1) * 1000);
        const a = await snap();
        setPhase(`70 % of the maximum (${fmtRate(offered(eps70))} ev/s)`, s.durationSec);
        await wait(s.durationSec * 1000);
        const b = await snap();
        atSeventy = { ...windowStats(a.fs, b.fs, a.proc, b.proc, offered(eps70), a.metrics, b.metrics), eventsPerAgentPerSec: round(eps70, 2) };
      }
      // Last, past the knee: the throughput ceiling, where the ramp stopped before the server fell behind.
      const more = search.ceilingRamp;
      if (more !== undefined) {
        await recover(more.from);
        let eps = more.from;
        for (let i = 0; i < more.steps; i++, eps *= cfg.factor) {
          const st = await runStep(eps, 'ceiling');
          if (st.eventsPerSec < cfg.minAchievedRatio * st.offeredEventsPerSec) break;
        }
      }
      const ceiling = keptUpSteps()[0];
      throughputCeiling = ceiling?.eventsPerSec ?? 0;
      window = best ?? ceiling ?? (steps[0] as SaturateStep);
      headline = {
        eventsPerSec: best?.eventsPerSec ?? 0,
        batchesPerSec: best?.batchesPerSec ?? 0,
        offered: window.offeredEventsPerSec,
        ack: (atSeventy ?? window).ackLatencyMs,
        delivery: (atSeventy ?? window).deliveryLatencyMs,
      };
    } else if (s.kind === 'burst' && s.burst) {
      f.generate(true);
      setPhase('warm-up', s.warmupSec);
      await wait(s.warmupSec * 1000);
      const a = await snap();
      setPhase('outage (agents cut off, buffering)', s.burst.outageSec);
      const reconnect = await guard(f.outage(s.burst.outageSec * 1000, 120_000));
      log(`[${s.name}] ${reconnect.welcomed}/${reconnect.agents} agents back in ${reconnect.seconds} s (${reconnect.perSec}/s); backlog ${reconnect.backlogEvents} events`);
      setPhase('flushing the backlog', 120);
      const flushUntil = performance.now() + 120_000;
      const steadyUnacked = agents * 2;
      while (performance.now() < flushUntil && f.progress().counters.unackedBatches > steadyUnacked) await wait(100);
      const fl = await snap();
      const flushSec = Math.max(0.001, (Date.now() - reconnect.startedAtMs) / 1000);
      const flushed = fl.fs.counters.unackedBatches <= steadyUnacked;
      const flushWindow = windowStats(a.fs, fl.fs, a.proc, fl.proc, offered(s.eventsPerAgentPerSec), a.metrics, fl.metrics);
      setPhase('after the storm', s.durationSec);
      await wait(s.durationSec * 1000);
      const b = await snap();
      const after = windowStats(fl.fs, b.fs, fl.proc, b.proc, offered(s.eventsPerAgentPerSec), fl.metrics, b.metrics);
      const flushEvents = diffCounters(a.fs.counters, fl.fs.counters).eventsAcked;
      burst = { outageSec: s.burst.outageSec, reconnect, flushSec: round(flushSec, 2), flushEventsPerSec: Math.round(flushEvents / flushSec), flushed, after };
      if (!flushed) notes.push('the backlog was not flushed within 120 s');
      window = flushWindow;
      headline = { eventsPerSec: burst.flushEventsPerSec, batchesPerSec: flushWindow.batchesPerSec, offered: flushWindow.offeredEventsPerSec, ack: flushWindow.ackLatencyMs, delivery: flushWindow.deliveryLatencyMs };
    } else {
      f.generate(true);
      if (s.kind !== 'fanin') {
        setPhase('warm-up', s.warmupSec);
        await wait(s.warmupSec * 1000);
      }
      const a = await snap();
      setPhase(s.kind === 'fanin' ? 'holding the fleet' : 'measuring', s.durationSec);
      const plan = s.fleet?.rollout;
      if (plan !== undefined && adminToken !== undefined && plan.atSec < s.durationSec) {
        await wait(plan.atSec * 1000);
        rollout = { id: await guard(startBenchRollout(srv.httpPort, adminToken, BENCH_SUPPORT_ID, plan)), percent: plan.percent, version: plan.version };
        log(`[${s.name}] rollout ${rollout.id}: ${plan.percent} % of the devices to ${plan.version}`);
        await wait((s.durationSec - plan.atSec) * 1000);
      } else await wait(s.durationSec * 1000);
      const b = await snap();
      window = windowStats(a.fs, b.fs, a.proc, b.proc, offered(s.eventsPerAgentPerSec), a.metrics, b.metrics);
      headline = { eventsPerSec: window.eventsPerSec, batchesPerSec: window.batchesPerSec, offered: window.offeredEventsPerSec, ack: window.ackLatencyMs, delivery: window.deliveryLatencyMs };
    }
    if (rollout !== undefined && adminToken !== undefined) {
      setPhase('rollout: waiting for the upgraded agents', 60);
      if (!(await guard(settleBenchRollout(srv.httpPort, adminToken, BENCH_SUPPORT_ID, rollout.id, rollout.version, 60_000)))) {
        notes.push('not every device of the rollout had upgraded and come back within 60 s of the measured window');
      }
    }
    const memNow = readProcSample(srv.pid);
    if (idle && memNow && connect.welcomed > 0) memoryPerAgentBytes = Math.round((memNow.rssAnonBytes - idle.rssAnonBytes) / connect.welcomed);

    // Stop, drain, read the server's own figures, then stop it gracefully and count.
    f.generate(false);
    setPhase('draining', 60);
    const drain = await guard(f.drain(60_000));
    let metrics: PromSample[] = [];
    try {
      metrics = await guard(scrapeMetrics(srv.httpPort));
    } catch (err) {
      if (isKisekiError(err, 'ERR_ABORTED')) throw err;
      notes.push(`metrics scrape failed: ${(err as Error).message}`);
    }
    const catchUpBatches = sampleValue(metrics, 'kiseki_engine_catch_up_batches_total') ?? 0;
    const final = await snap();
    const clientRss = final.fs.clientRssBytes;
    clearInterval(progressTimer);
    progressTimer = undefined;
    phase = 'stopping';
    await f.close();
    fleet = undefined;
    if (options.beforeStop !== undefined) await guard(options.beforeStop());
    serverExited = new Promise<never>(() => undefined);
    const exitCode = await srv.stop(60_000);
    server = undefined;
    if (options.afterStop !== undefined) await guard(options.afterStop(dataDir));
    const stored = await guard(inspectCounts(paths.kisekiJs, dataDir));
    const fleetActivity = s.fleet === undefined ? undefined : await guard(readFleetOutcome(dataDir, BENCH_SUPPORT_ID, final.fs.counters, rollout));
    const profile = options.profileDir ? summariseProfiles(options.profileDir, 15) : undefined;
    const acked = final.fs.counters;
    const lostBatches = Math.max(0, acked.batchesAcked - stored.batches);
    const countOk =
      lostBatches === 0 &&
      stored.batches === stored.batchIds &&
      stored.events >= acked.eventsAcked &&
      (!drain.complete || (stored.batches === acked.batchesAcked && stored.events === acked.eventsAcked && stored.seqGaps === 0));
    const processedAll = stored.eventsProcessed === stored.events;
    if (!processedAll) {
      notes.push(
        `the shards had processed ${stored.eventsProcessed} of ${stored.events} stored events when kiseki stopped (exit ${exitCode}); ${catchUpBatches} batches went through the catch-up path`,
      );
      // What the server warned about is the first thing to read when its shards fell behind.
      notes.push(`server log (warnings and errors, last 2,000 characters): ${srv.logTail().slice(-2000)}`);
    }
    log(`[${s.name}] count check: ${acked.batchesAcked} batches acked, ${stored.batches} stored, ${lostBatches} lost → ${countOk ? 'ok' : 'MISMATCH'}`);

    // Baselines, same machine, same run.
    let uws: BenchResult['baselines']['uws'] = { skipped: 'disabled (--no-baselines)' };
    let rsyslog: BenchResult['baselines']['rsyslog'] = { skipped: 'disabled (--no-baselines)' };
    if (options.baselines ?? true) {
      const batchEvents = Math.max(1, Math.min(s.maxBatchEvents, Math.round(((window as Partial<SaturateStep>).eventsPerAgentPerSec ?? s.eventsPerAgentPerSec) * (s.batchIntervalMs / 1000))));
      phase = 'baseline uws';
      log(`[${s.name}] baseline: bare uWebSockets.js (${s.kind === 'fanin' ? 'idle fleet' : `closed loop, ${batchEvents}-event batches`})`);
      uws = await guard(
        runUwsBaseline({
          paths,
          tracker,
          mode: s.kind === 'fanin' ? 'idle' : 'throughput',
          agents: s.kind === 'fanin' ? agents : Math.min(agents, 1000),
          agentsPerProcess: s.agentsPerClientProcess,
          batchEvents,
          maxUnacked: s.maxUnackedBatches,
          warmupSec: 2,
          seconds: s.kind === 'fanin' ? 5 : 6,
          seed: s.seed,
          connectConcurrency: s.connectConcurrency,
          log,
        }),
      );
      if (s.kind === 'fanin') rsyslog = { skipped: 'not applicable to an idle fleet' };
      else {
        phase = 'baseline rsyslog';
        log(`[${s.name}] baseline: rsyslog imtcp → omfile`);
        rsyslog = await guard(runRsyslogBaseline({ senderJs: paths.syslogSenderJs, tracker, lines: 1_500_000, conns: 2, seed: s.seed }));
        if ('skipped' in rsyslog) log(`[${s.name}] rsyslog baseline skipped: ${rsyslog.skipped}`);
      }
    }
    const ratios = {
      vsUws: 'eventsPerSec' in uws && uws.eventsPerSec > 0 ? round(headline.eventsPerSec / uws.eventsPerSec, 3) : null,
      vsRsyslog: 'linesPerSec' in rsyslog && rsyslog.linesPerSec > 0 ? round(headline.eventsPerSec / rsyslog.linesPerSec, 3) : null,
      memoryVsUws: 'memoryPerAgentBytes' in uws && uws.memoryPerAgentBytes > 0 ? round(memoryPerAgentBytes / uws.memoryPerAgentBytes, 2) : null,
    };

    const alerts = sampleValue(metrics, 'kiseki_engine_alerts_total') ?? 0;
    const q = (quantile: string): number => round((sampleValue(metrics, 'kiseki_engine_report_latency_seconds', { quantile }) ?? Number.NaN) * 1000, 2);
    const stageQ = (stage: string, quantile: string): number => round((sampleValue(metrics, 'kiseki_engine_report_stage_seconds', { stage, quantile }) ?? Number.NaN) * 1000, 2);
    const stages = Object.fromEntries((['queue', 'process', 'store'] as const).map((st) => [st, { p50: stageQ(st, '0.5'), p99: stageQ(st, '0.99') }])) as Record<'queue' | 'process' | 'store', { p50: number; p99: number }>;
    const reportLatencyMs = alerts > 0 && Number.isFinite(q('0.5')) ? { p50: q('0.5'), p99: q('0.99'), p999: q('0.999'), alerts, ...(Number.isFinite(stages.queue.p50) ? { stages } : {}) } : null;
    const rejects = sumByLabel(metrics, 'kiseki_ingest_rejects_total', 'reason');
    for (const [k, v] of Object.entries(rejects)) if (v === 0) delete rejects[k];

    const result: BenchResult = {
      scenario: s.name,
      kind: s.kind,
      description: s.description,
      startedAt: startedAt.toISOString(),
      wallSec: round((performance.now() - t0) / 1000, 1),
      machine,
      config: s,
      agents,
      clientProcesses: f.processes,
      eventsPerSec: headline.eventsPerSec,
      batchesPerSec: headline.batchesPerSec,
      offeredEventsPerSec: headline.offered,
      ackLatencyMs: headline.ack,
      deliveryLatencyMs: headline.delivery,
      reportLatencyMs,
      detections: { sent: acked.detectionsSent, acked: acked.detectionsAcked, alerts },
      server: {
        cpuCores: window.serverCores,
        rssMB: window.serverRssMB,
        rssAnonMB: window.serverRssAnonMB,
        peakRssMB: memNow ? round(memNow.hwmBytes / 1e6) : 0,
        memoryPerAgentBytes,
      },
      client: { cpuCores: window.clientCores, rssMB: round(clientRss / 1e6), processes: f.processes },
      connect,
      rejects,
      batchesByResult: sumByLabel(metrics, 'kiseki_ingest_batches_total', 'result'),
      catchUpBatches,
      clientErrors: acked.errors,
      countCheck: { ok: countOk, processedAll, batchesAcked: acked.batchesAcked, eventsAcked: acked.eventsAcked, drained: drain.complete, unackedAtEnd: drain.unackedBatches, serverExitCode: exitCode, stored },
      lostBatches,
      baselines: { uws, rsyslog },
      ratios,
      targets: [],
      window,
      ...(steps ? { steps } : {}),
      ...(throughputCeiling === undefined ? {} : { throughputCeiling }),
      ...(atSeventy ? { atSeventyPercent: atSeventy } : {}),
      ...(burst ? { burst } : {}),
      pool: f.pool,
      ...(profile ? { profile } : {}),
      ...(options.variant === undefined ? {} : { variant: options.variant }),
      ...(fleetActivity === undefined ? {} : { fleetActivity }),
      notes,
    };
    result.targets = evaluateTargets(result);
    if (reportLatencyMs) notes.push('report latency is the server Summary over its last 10 minutes, warm-up included');
    if (s.kind !== 'fanin') notes.push('memoryPerAgentBytes outside fanin includes in-flight batch buffers');

    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${s.name}${options.variant === undefined ? '' : `-${options.variant}`}-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    return { result, file };
  } finally {
    if (progressTimer) clearInterval(progressTimer);
    abort.dispose();
    if (fleet) await fleet.close().catch(() => undefined);
    if (server) await server.stop(10_000).catch(() => undefined);
    await tracker.stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function fmtRate(n: number): string {
  if (n >= 1e6) return `${round(n / 1e6, 2)}M`;
  if (n >= 1e3) return `${round(n / 1e3, 1)}k`;
  return `${Math.round(n)}`;
}

/** The issue's targets that apply to this result's scenario kind, with what was measured. */
/**
 * The report latency a run's target and repetitions are judged on: saturate's 70 % step, as its ack target (the
 * whole run's figure includes the steps past the knee, where the shards fall minutes behind by design of the
 * search); the whole run's otherwise, or when the 70 % step stored no alert.
 */
export function judgedReportLatency(r: BenchResult): { p50: number; p99: number; alerts: number } | undefined {
  return (r.kind === 'saturate' ? r.atSeventyPercent?.reportLatencyMs : undefined) ?? r.reportLatencyMs ?? undefined;
}

export function evaluateTargets(r: BenchResult): BenchResult['targets'] {
  const t: BenchResult['targets'] = [];
  if (r.kind === 'saturate') {
    t.push({
      target: 'sustained ingest ≥ 250,000 events/s',
      measured: `${r.eventsPerSec.toLocaleString('en-US')} events/s with ack p99 ≤ ${r.config.saturate?.ackP99LimitMs ?? 100} ms (throughput ceiling ${(r.throughputCeiling ?? 0).toLocaleString('en-US')})`,
      met: r.eventsPerSec >= 250_000,
    });
    t.push({
      // Issue 18's goals: a durable ack near the disk's floor, and at least rsyslog's rate.
      target: 'ack p99 ≤ 10 ms at 70 % of the sustained maximum',
      measured: r.atSeventyPercent ? `${r.atSeventyPercent.ackLatencyMs.p99} ms at ${r.atSeventyPercent.eventsPerSec.toLocaleString('en-US')} events/s` : 'no 70 % step',
      met: r.atSeventyPercent ? r.atSeventyPercent.ackLatencyMs.p99 <= 10 : null,
    });
    t.push({ target: '≥ 1.0 × rsyslog lines/s', measured: r.ratios.vsRsyslog === null ? 'rsyslog not measured' : `${r.ratios.vsRsyslog} ×`, met: r.ratios.vsRsyslog === null ? null : r.ratios.vsRsyslog >= 1.0 });
  }
  const judged = judgedReportLatency(r);
  if (judged !== undefined) {
    const measured = judged === r.reportLatencyMs ? `${judged.p99} ms (${judged.alerts} alerts)` : `${judged.p99} ms at 70 % (${judged.alerts} alerts; whole run ${r.reportLatencyMs?.p99 ?? '-'} ms)`;
    t.push({ target: 'detection → quick report p99 ≤ 50 ms', measured, met: judged.p99 <= 50 });
  }
  if (r.kind === 'fanin') {
    t.push({ target: '≥ 19,000 concurrent agents in one server process', measured: `${r.connect.welcomed.toLocaleString('en-US')}`, met: r.connect.welcomed >= 19_000 });
    t.push({ target: '≤ 2 KB user-space memory per idle agent', measured: `${r.server.memoryPerAgentBytes.toLocaleString('en-US')} B`, met: r.server.memoryPerAgentBytes <= 2048 });
  }
  if (r.kind === 'burst' && r.burst) t.push({ target: '≥ 1,000 reconnects/s', measured: `${r.burst.reconnect.perSec.toLocaleString('en-US')}/s`, met: r.burst.reconnect.perSec >= 1000 });
  t.push({ target: 'every acked batch stored', measured: `${r.lostBatches} lost`, met: r.countCheck.ok });
  return t;
}
