/**
 * Issue 19's comparison: the same offered load (a steady scenario with a
 * `cluster` section) on the embedded server (`kiseki start`, run by
 * runner.ts exactly as every other scenario) and on clusters of this machine:
 * one nats-server, N ingest nodes and one shard node (kiseki-cluster.ts), the
 * agents split over the N ingest URLs (client process i on node i mod N).
 * Each configuration runs once per repetition (the order reversed every
 * second repetition, so a drift of the shared machine's load falls on all of
 * them); the summary gives the median acked events/s and ack p99 with their
 * min–max spread, and CPU seconds per process role in the measured window.
 *
 * Count check of a cluster run: after the drain every acked batch must be in
 * the stream (its message count, read from NATS: exactly the acked batches
 * when nothing was left unacked), and once the shard node has caught up it
 * must hold the stream's batches. A mismatch fails that run and its
 * configuration; a run that throws is recorded as failed and the next one
 * runs. Without nats-server the cluster configurations are skipped with the
 * install hint and the embedded one still runs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKisekiError, KisekiError } from '../../core/errors.js';
import { roundSpread, spread, type Spread } from '../spread.js';
import { assertBuilt, benchPaths, type BenchPaths } from './bench-paths.js';
import { findNatsServer, NATS_INSTALL_HINT, startClusterNode, startNatsServer, streamUsage, diskBytes, type ClusterNode, type NatsServerProcess } from './kiseki-cluster.js';
import { abortedError, abortRace, createBenchTenant, createProcessTracker, inspectCounts, type InspectCounts } from './kiseki-server.js';
import type { LatencyPercentiles } from './latency-histogram.js';
import { diffCounters, planClients, startFleet, type Fleet } from './load-generator.js';
import { readProcSample, type ProcSample } from './proc-stats.js';
import { machineNote, runScenario, scenarioFleetOptions, type MachineNote } from './runner.js';
import { hasArchiveNode, ingestNodesOf, type ClusterConfiguration, type Scenario } from './scenario.js';

/** The processes whose CPU a run reports: the embedded server, or nats-server and the nodes; and the load generator. */
export type ProcessRole = 'kiseki' | 'nats' | 'ingest' | 'shard' | 'archive' | 'client';

/** One configuration measured once. */
export interface MeasuredRun {
  configuration: ClusterConfiguration;
  repetition: number;
  startedAt: string;
  wallSec: number;
  eventsPerSec: number;
  batchesPerSec: number;
  offeredEventsPerSec: number;
  /** Durable acks: from a batch's send to its ack (cluster: the ingest node acks after the stream's publish ack). */
  ackLatencyMs: LatencyPercentiles;
  deliveryLatencyMs: LatencyPercentiles;
  windowSec: number;
  /** CPU seconds (user + system, every thread) of each role in the measured window; ingest sums its nodes. */
  cpuSeconds: Partial<Record<ProcessRole, number>>;
  /**
   * Cluster: bytes on disk per acked event after the run, the stream's (one replica), the shard node's data directory
   * and, with the archive node, its data directory (the raw log; no cold day closed in a run).
   */
  storage?: { streamBytesPerEvent: number; shardDirBytesPerEvent: number; archiveDirBytesPerEvent?: number };
  connect: { agents: number; welcomed: number; seconds: number };
  /** Cluster: agents per ingest node, in node order. */
  agentsPerIngest?: number[];
  countCheck: {
    ok: boolean;
    batchesAcked: number;
    eventsAcked: number;
    /** Nothing was left unacked after the drain. */
    drained: boolean;
    unackedAtEnd: number;
    /** Embedded: `kiseki inspect` of the data directory; cluster: the batch stream's messages. */
    storedIn: 'inspect' | 'stream';
    storedBatches: number;
    /** Cluster: the shard node's `kiseki inspect` once caught up (or when the wait ended). */
    shard?: InspectCounts & { caughtUp: boolean };
    /** With the archive node: its `kiseki inspect` once it had copied the stream (or when the wait ended). */
    archive?: InspectCounts & { caughtUp: boolean };
    /** Why the check failed, when it did. */
    mismatch?: string;
  };
  clientErrors: Record<string, number>;
  /** Embedded: the full result JSON runner.ts wrote. */
  result?: string;
  notes: string[];
}

/** A run that did not finish (a node that would not start, a client that failed …). */
export interface FailedRun {
  configuration: ClusterConfiguration;
  repetition: number;
  startedAt: string;
  error: string;
}

export type ConfigurationRun = MeasuredRun | FailedRun;

/** The repetitions of one configuration. */
export interface ConfigurationSummary {
  configuration: ClusterConfiguration;
  ingestNodes: number;
  /** Runs measured (a run whose count check failed is measured, and counted in countCheckFailures). */
  measured: number;
  failed: number;
  countCheckFailures: number;
  /** Median (min–max) over the measured runs; null when none was. */
  eventsPerSec: Spread | null;
  ackP99Ms: Spread | null;
  cpuSeconds: Partial<Record<ProcessRole, Spread>>;
  /** Every run measured, its count check passed, none failed. */
  ok: boolean;
}

/** The comparison's JSON (`bench/results/<scenario>-<date>.json`). */
export interface ClusterComparison {
  scenario: string;
  description: string;
  startedAt: string;
  wallSec: number;
  machine: MachineNote;
  config: Scenario;
  reps: number;
  agents: number;
  clientProcesses: number;
  offeredEventsPerSec: number;
  configurations: ConfigurationSummary[];
  /** Configurations not run, with why (nats-server missing). */
  skipped: { configuration: ClusterConfiguration; reason: string }[];
  runs: ConfigurationRun[];
  notes: string[];
}

export function isMeasured(r: ConfigurationRun): r is MeasuredRun {
  return 'eventsPerSec' in r;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 0): number => Math.round(n * 10 ** d) / 10 ** d;
const ROLES: readonly ProcessRole[] = ['kiseki', 'nats', 'ingest', 'shard', 'archive', 'client'];

/** The label of a configuration in tables. */
export function configurationLabel(c: ClusterConfiguration): string {
  const n = ingestNodesOf(c);
  return n === 0 ? 'embedded' : `cluster, ${n} ingest node${n === 1 ? '' : 's'}${hasArchiveNode(c) ? ' + archive' : ''}`;
}

/** Client processes of every configuration: the scenario's, or enough for its agents, and never fewer than the ingest nodes. */
export function comparisonClientProcesses(s: Scenario): number {
  const ingest = Math.max(0, ...(s.cluster?.configurations ?? []).map(ingestNodesOf));
  return Math.max(s.clientProcesses ?? Math.ceil(s.agents / s.agentsPerClientProcess), ingest, 1);
}

/** The order of the configurations in repetition `rep` (0-based): as listed, reversed in every second one. */
export function repetitionOrder<T>(configurations: readonly T[], rep: number): T[] {
  return rep % 2 === 0 ? [...configurations] : [...configurations].reverse();
}

/**
 * The cluster count check: every acked batch is in the stream (exactly the acked batches when the drain left
 * nothing unacked: an unacked batch may have been published before its ack was lost), and a shard node that
 * caught up holds the stream's batches once each (and the acked events after a full drain).
 */
export function clusterCountCheck(
  acked: { batches: number; events: number },
  drained: boolean,
  stream: number,
  shard: (InspectCounts & { caughtUp: boolean }) | undefined,
  archive?: InspectCounts & { caughtUp: boolean },
): string | undefined {
  if (stream < acked.batches) return `the stream holds ${stream} batches, ${acked.batches} were acked`;
  if (drained && stream !== acked.batches) return `the stream holds ${stream} batches after a full drain, ${acked.batches} were acked`;
  for (const [name, node] of [['shard node', shard], ['archive node', archive]] as const) {
    if (!node?.caughtUp) continue;
    if (node.batches !== stream || node.batchIds !== node.batches) return `the ${name} stores ${node.batches} batches (${node.batchIds} ids), the stream holds ${stream}`;
    if (drained && node.events !== acked.events) return `the ${name} stores ${node.events} events, ${acked.events} were acked`;
  }
  return undefined;
}

/** Summarises the runs of one configuration. */
export function summariseConfiguration(configuration: ClusterConfiguration, runs: readonly ConfigurationRun[]): ConfigurationSummary {
  const mine = runs.filter((r) => r.configuration === configuration);
  const measured = mine.filter(isMeasured);
  const of = (xs: number[], digits: number): Spread | null => (xs.length === 0 ? null : roundSpread(spread(xs), digits));
  const cpuSeconds: Partial<Record<ProcessRole, Spread>> = {};
  for (const role of ROLES) {
    const xs = measured.flatMap((r) => (r.cpuSeconds[role] === undefined ? [] : [r.cpuSeconds[role]]));
    if (xs.length > 0) cpuSeconds[role] = roundSpread(spread(xs), 1);
  }
  const countCheckFailures = measured.filter((r) => !r.countCheck.ok).length;
  const failed = mine.length - measured.length;
  return {
    configuration,
    ingestNodes: ingestNodesOf(configuration),
    measured: measured.length,
    failed,
    countCheckFailures,
    eventsPerSec: of(measured.map((r) => r.eventsPerSec), 0),
    ackP99Ms: of(measured.map((r) => r.ackLatencyMs.p99), 1),
    cpuSeconds,
    ok: mine.length > 0 && failed === 0 && countCheckFailures === 0,
  };
}

/** Options of {@link runClusterComparison}. */
export interface ComparisonOptions {
  /** A steady scenario with a `cluster` section. */
  scenario: Scenario;
  reps: number;
  outDir?: string;
  paths?: BenchPaths;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Where nats-server is (default findNatsServer); undefined skips the cluster configurations. */
  natsServer?: string | undefined;
}


/**
 * Runs every configuration `reps` times and writes the comparison JSON.
 * @throws KisekiError ERR_ABORTED on abort (every process stopped first), ERR_BENCH_FAILED when not built.
 */
export async function runClusterComparison(options: ComparisonOptions): Promise<{ comparison: ClusterComparison; file: string }> {
  const s = options.scenario;
  const cluster = s.cluster;
  if (cluster === undefined) throw new KisekiError('ERR_USAGE', { reason: `scenario ${s.name} has no cluster section` });
  const paths = options.paths ?? benchPaths();
  assertBuilt(paths);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const outDir = options.outDir ?? paths.resultsDir;
  const nats = 'natsServer' in options ? options.natsServer : findNatsServer();
  const startedAt = new Date();
  const t0 = performance.now();
  const machine = machineNote();
  const clientProcesses = comparisonClientProcesses(s);
  const scenario: Scenario = { ...s, clientProcesses };
  const skipped: ClusterComparison['skipped'] = [];
  const notes: string[] = [];
  let configurations = cluster.configurations;
  if (nats === undefined && configurations.some((c) => c !== 'embedded')) {
    const reason = `nats-server is not installed: ${NATS_INSTALL_HINT}`;
    for (const c of configurations) if (c !== 'embedded') skipped.push({ configuration: c, reason });
    configurations = configurations.filter((c) => c === 'embedded');
    log(`[${s.name}] cluster configurations skipped: ${reason}`);
  }
  const runs: ConfigurationRun[] = [];
  for (let rep = 0; rep < options.reps; rep++) {
    for (const configuration of repetitionOrder(configurations, rep)) {
      if (options.signal?.aborted) throw abortedError();
      log(`[${s.name}] repetition ${rep + 1} of ${options.reps}: ${configurationLabel(configuration)}`);
      const runStarted = new Date().toISOString();
      try {
        const run =
          configuration === 'embedded'
            ? await runEmbedded(scenario, rep + 1, paths, outDir, log, options.signal)
            : await runCluster({ scenario, configuration, repetition: rep + 1, paths, natsServer: nats!, log, ...(options.signal === undefined ? {} : { signal: options.signal }) });
        runs.push(run);
        log(
          `[${s.name}] ${configurationLabel(configuration)}: ${run.eventsPerSec.toLocaleString('en-US')} events/s acked, ack p99 ${run.ackLatencyMs.p99} ms, count check ${run.countCheck.ok ? 'ok' : `FAILED: ${run.countCheck.mismatch ?? 'mismatch'}`}`,
        );
      } catch (err) {
        if (isKisekiError(err, 'ERR_ABORTED') || options.signal?.aborted) throw err;
        const message = isKisekiError(err) ? `${String(err.details?.reason ?? err.message)}${typeof err.details?.logTail === 'string' ? ` (log: ${err.details.logTail.slice(-600)})` : ''}` : err instanceof Error ? err.message : String(err);
        runs.push({ configuration, repetition: rep + 1, startedAt: runStarted, error: message });
        log(`[${s.name}] ${configurationLabel(configuration)} FAILED: ${message}`);
      }
    }
  }
  const comparison: ClusterComparison = {
    scenario: s.name,
    description: s.description,
    startedAt: startedAt.toISOString(),
    wallSec: round((performance.now() - t0) / 1000, 1),
    machine,
    config: scenario,
    reps: options.reps,
    agents: s.agents,
    clientProcesses,
    offeredEventsPerSec: Math.round(s.agents * s.eventsPerAgentPerSec),
    configurations: configurations.map((c) => summariseConfiguration(c, runs)),
    skipped,
    runs,
    notes,
  };
  notes.push('server, nodes, nats-server and load generator share this machine; cluster CPU is the sum of its processes');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${s.name}-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(comparison, null, 2)}\n`);
  return { comparison, file };
}

/** The embedded configuration: runner.ts's steady run of the scenario, without baselines. */
async function runEmbedded(s: Scenario, repetition: number, paths: BenchPaths, outDir: string, log: (line: string) => void, signal: AbortSignal | undefined): Promise<MeasuredRun> {
  const { result: r, file } = await runScenario({ scenario: s, baselines: false, outDir, paths, log, variant: 'embedded', ...(signal === undefined ? {} : { signal }) });
  const w = r.window;
  const c = r.countCheck;
  return {
    configuration: 'embedded',
    repetition,
    startedAt: r.startedAt,
    wallSec: r.wallSec,
    eventsPerSec: r.eventsPerSec,
    batchesPerSec: r.batchesPerSec,
    offeredEventsPerSec: r.offeredEventsPerSec,
    ackLatencyMs: r.ackLatencyMs,
    deliveryLatencyMs: r.deliveryLatencyMs,
    windowSec: w.seconds,
    cpuSeconds: { kiseki: round(w.serverCores * w.seconds, 2), client: round(w.clientCores * w.seconds, 2) },
    connect: { agents: r.connect.agents, welcomed: r.connect.welcomed, seconds: r.connect.seconds },
    countCheck: {
      ok: c.ok,
      batchesAcked: c.batchesAcked,
      eventsAcked: c.eventsAcked,
      drained: c.drained,
      unackedAtEnd: c.unackedAtEnd,
      storedIn: 'inspect',
      storedBatches: c.stored.batches,
      ...(c.ok ? {} : { mismatch: `${c.batchesAcked} batches acked, ${c.stored.batches} stored (${c.stored.batchIds} ids, ${c.stored.seqGaps} seq gaps)` }),
    },
    clientErrors: r.clientErrors,
    result: file,
    notes: r.notes,
  };
}

/** CPU seconds of a process between two readings (0 when either is missing). */
function cpuBetween(a: ProcSample | undefined, b: ProcSample | undefined): number {
  return a === undefined || b === undefined ? 0 : b.cpuSec - a.cpuSec;
}

/** One cluster configuration, measured once: nats-server, the ingest nodes, the shard node, the fleet. */
async function runCluster(o: {
  scenario: Scenario;
  configuration: ClusterConfiguration;
  repetition: number;
  paths: BenchPaths;
  natsServer: string;
  log: (line: string) => void;
  signal?: AbortSignal;
}): Promise<MeasuredRun> {
  const s = o.scenario;
  const cfg = s.cluster!;
  const nodes = ingestNodesOf(o.configuration);
  const tag = `[${s.name} ${o.configuration}]`;
  const startedAt = new Date();
  const t0 = performance.now();
  const tracker = createProcessTracker();
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-cbench-'));
  const notes: string[] = [];
  let fleet: Fleet | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  let phase = 'starting';
  let phaseEndsAt = 0;

  const abort = abortRace(o.signal);
  const aborted = abort.aborted;
  // Any process of the cluster that exits before the stop fails the run.
  let stopping = false;
  let exitReject: (e: Error) => void = () => undefined;
  const exited = new Promise<never>((_, reject) => {
    exitReject = reject;
  });
  exited.catch(() => undefined);
  const watch = <T extends NatsServerProcess | ClusterNode>(p: T, name: string): T => {
    p.child.once('exit', (code, signal) => {
      if (!stopping) exitReject(new KisekiError('ERR_BENCH_FAILED', { reason: `${name} exited during the run`, code, signal, logTail: p.logTail().slice(-1500) }));
    });
    return p;
  };
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, aborted, exited, fleet ? fleet.failed : new Promise<never>(() => undefined)]);
  const wait = (ms: number): Promise<void> => guard(sleep(ms));
  const setPhase = (name: string, seconds: number): void => {
    phase = name;
    phaseEndsAt = performance.now() + seconds * 1000;
  };

  try {
    o.log(`${tag} starting nats-server, ${nodes} ingest node${nodes === 1 ? '' : 's'} and a shard node in ${dir}`);
    const nats = watch(await guard(startNatsServer({ binary: o.natsServer, storeDir: join(dir, 'nats'), tracker })), 'nats-server');
    const ingestDirs = Array.from({ length: nodes }, (_, i) => join(dir, `ingest-${i + 1}`));
    // The tenant lives on the first ingest node's directory; the others find it in kiseki-directory at enrollment.
    const enrollKey = await guard(createBenchTenant(o.paths.kisekiJs, ingestDirs[0]!));
    const ingest: ClusterNode[] = [];
    for (const [i, dataDir] of ingestDirs.entries()) {
      ingest.push(watch(await guard(startClusterNode({ kisekiJs: o.paths.kisekiJs, role: 'ingest', natsUrl: nats.url, dataDir, nodeId: `ingest-${i + 1}`, extraArgs: cfg.ingestArgs, tracker })), `ingest node ${i + 1}`));
    }
    const shardDir = join(dir, 'shard');
    const shard = watch(await guard(startClusterNode({ kisekiJs: o.paths.kisekiJs, role: 'shard', natsUrl: nats.url, dataDir: shardDir, nodeId: 'shard-1', extraArgs: cfg.shardArgs, tracker })), 'shard node');
    const archiveDir = join(dir, 'archive');
    const archive = hasArchiveNode(o.configuration)
      ? watch(await guard(startClusterNode({ kisekiJs: o.paths.kisekiJs, role: 'api', natsUrl: nats.url, dataDir: archiveDir, nodeId: 'archive-1', extraArgs: ['--archive'], tracker })), 'archive node')
      : undefined;

    const endpoints = ingest.map((n) => ({ host: '127.0.0.1', port: n.ingestPort }));
    const fleetOptions = scenarioFleetOptions(s, { host: '127.0.0.1', port: endpoints[0]!.port, endpoints, enrollKey, agents: s.agents, clientJs: o.paths.clientJs });
    const agentsPerIngest = endpoints.map((e) => planClients(fleetOptions).filter((c) => c.endpoint.port === e.port).reduce((n, c) => n + c.agentCount, 0));
    fleet = await guard(startFleet(fleetOptions));
    const f = fleet;

    let last = { at: performance.now(), events: 0 };
    progressTimer = setInterval(() => {
      const p = f.progress();
      const now = performance.now();
      const evps = ((p.counters.eventsAcked - last.events) * 1000) / Math.max(1, now - last.at);
      const left = phaseEndsAt > now ? ` ${Math.ceil((phaseEndsAt - now) / 1000)} s left` : '';
      o.log(`${tag} ${phase}${left} | agents ${p.counters.connected} | acked ${Math.round(evps).toLocaleString('en-US')} ev/s | ack p99 ${p.recentAck.percentiles().p99} ms | unacked ${p.counters.unackedBatches}`);
      last = { at: now, events: p.counters.eventsAcked };
    }, 1000);
    progressTimer.unref();

    phase = 'connecting';
    const connect = await guard(f.connect(300_000));
    o.log(`${tag} ${connect.welcomed}/${connect.agents} agents connected in ${connect.seconds} s over ${nodes} ingest node(s): ${agentsPerIngest.join(' + ')}`);
    if (!connect.complete) notes.push(`only ${connect.welcomed} of ${connect.agents} agents connected`);

    const procs = (): { nats: ProcSample | undefined; ingest: (ProcSample | undefined)[]; shard: ProcSample | undefined; archive: ProcSample | undefined } => ({
      nats: readProcSample(nats.pid),
      ingest: ingest.map((n) => readProcSample(n.pid)),
      shard: readProcSample(shard.pid),
      archive: archive === undefined ? undefined : readProcSample(archive.pid),
    });
    f.generate(true);
    setPhase('warm-up', s.warmupSec);
    await wait(s.warmupSec * 1000);
    const a = { fs: await guard(f.snapshot()), p: procs() };
    setPhase('measuring', s.durationSec);
    await wait(s.durationSec * 1000);
    const b = { fs: await guard(f.snapshot()), p: procs() };
    const secs = Math.max(0.001, (b.fs.atMs - a.fs.atMs) / 1000);
    const d = diffCounters(a.fs.counters, b.fs.counters);
    const cpuSeconds: MeasuredRun['cpuSeconds'] = {
      nats: round(cpuBetween(a.p.nats, b.p.nats), 2),
      ingest: round(ingest.reduce((n, _, i) => n + cpuBetween(a.p.ingest[i], b.p.ingest[i]), 0), 2),
      shard: round(cpuBetween(a.p.shard, b.p.shard), 2),
      ...(archive === undefined ? {} : { archive: round(cpuBetween(a.p.archive, b.p.archive), 2) }),
      client: round(b.fs.clientCpuSec - a.fs.clientCpuSec, 2),
    };

    f.generate(false);
    setPhase('draining', 60);
    const drain = await guard(f.drain(60_000));
    const final = await guard(f.snapshot());
    clearInterval(progressTimer);
    progressTimer = undefined;
    await f.close();
    fleet = undefined;
    const acked = final.counters;

    // The store of record: every acked batch must be in the stream.
    phase = 'count check';
    const usage = await guard(streamUsage(nats.url));
    const stream = usage.messages;
    // The shard node's copy, once it has stored and processed the stream (bounded).
    setPhase('waiting for the shard node to catch up', cfg.shardCatchUpSec);
    const until = performance.now() + cfg.shardCatchUpSec * 1000;
    let shardCounts: InspectCounts | undefined;
    let caughtUp = false;
    for (;;) {
      shardCounts = await guard(inspectCounts(o.paths.kisekiJs, shardDir));
      caughtUp = shardCounts.batches >= stream && shardCounts.eventsProcessed === shardCounts.events;
      if (caughtUp || performance.now() > until) break;
      await wait(1000);
    }
    const shardState = { ...shardCounts, caughtUp };
    if (!caughtUp) notes.push(`the shard node had stored ${shardCounts.batches} of the stream's ${stream} batches and processed ${shardCounts.eventsProcessed} of ${shardCounts.events} events after ${cfg.shardCatchUpSec} s`);
    // The archive node's copy of the stream, once complete (bounded the same way).
    let archiveState: (InspectCounts & { caughtUp: boolean }) | undefined;
    if (archive !== undefined) {
      setPhase('waiting for the archive node to copy the stream', cfg.shardCatchUpSec);
      const archiveUntil = performance.now() + cfg.shardCatchUpSec * 1000;
      for (;;) {
        const counts = await guard(inspectCounts(o.paths.kisekiJs, archiveDir));
        archiveState = { ...counts, caughtUp: counts.batches >= stream };
        if (archiveState.caughtUp || performance.now() > archiveUntil) break;
        await wait(1000);
      }
      if (!archiveState.caughtUp) notes.push(`the archive node had stored ${archiveState.batches} of the stream's ${stream} batches after ${cfg.shardCatchUpSec} s`);
    }
    const mismatch = clusterCountCheck({ batches: acked.batchesAcked, events: acked.eventsAcked }, drain.complete, stream, shardState, archiveState);
    if (!drain.complete) notes.push(`${drain.unackedBatches} batches were still unacked after the 60 s drain`);
    const onArchive = archiveState === undefined ? '' : `, ${archiveState.batches} on the archive node`;
    o.log(`${tag} count check: ${acked.batchesAcked} batches acked, ${stream} in the stream, ${shardCounts.batches} on the shard node${onArchive} → ${mismatch === undefined ? 'ok' : `MISMATCH: ${mismatch}`}`);

    stopping = true;
    phase = 'stopping';
    for (const n of ingest) await n.stop(30_000);
    await shard.stop(30_000);
    await archive?.stop(30_000);
    await nats.stop(30_000);
    // What the run left on disk, per acked event: the stream (one replica) and the shard and archive nodes' data directories.
    const perEvent = (bytes: number): number => round(bytes / acked.eventsAcked, 1);
    const storage =
      acked.eventsAcked > 0
        ? {
            streamBytesPerEvent: perEvent(usage.bytes),
            shardDirBytesPerEvent: perEvent(diskBytes(shardDir)),
            ...(archive === undefined ? {} : { archiveDirBytesPerEvent: perEvent(diskBytes(archiveDir)) }),
          }
        : undefined;
    return {
      configuration: o.configuration,
      repetition: o.repetition,
      startedAt: startedAt.toISOString(),
      wallSec: round((performance.now() - t0) / 1000, 1),
      eventsPerSec: Math.round(d.eventsAcked / secs),
      batchesPerSec: Math.round(d.batchesAcked / secs),
      offeredEventsPerSec: Math.round(s.agents * s.eventsPerAgentPerSec),
      ackLatencyMs: b.fs.ack.percentiles(),
      deliveryLatencyMs: b.fs.delivery.percentiles(),
      windowSec: round(secs, 2),
      cpuSeconds,
      ...(storage === undefined ? {} : { storage }),
      connect: { agents: connect.agents, welcomed: connect.welcomed, seconds: connect.seconds },
      agentsPerIngest,
      countCheck: {
        ok: mismatch === undefined,
        batchesAcked: acked.batchesAcked,
        eventsAcked: acked.eventsAcked,
        drained: drain.complete,
        unackedAtEnd: drain.unackedBatches,
        storedIn: 'stream',
        storedBatches: stream,
        shard: shardState,
        ...(archiveState === undefined ? {} : { archive: archiveState }),
        ...(mismatch === undefined ? {} : { mismatch }),
      },
      clientErrors: acked.errors,
      notes,
    };
  } finally {
    stopping = true;
    if (progressTimer) clearInterval(progressTimer);
    abort.dispose();
    if (fleet) await fleet.close().catch(() => undefined);
    await tracker.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
