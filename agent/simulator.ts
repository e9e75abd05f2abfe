/**
 * Agent-fleet simulator (`kiseki simulate`, SPEC §3, docs/PROTOCOL.md). Each
 * simulated agent is a PC with a stable computer name, IPs and MACs that
 * enrolls once (identity kept in a JSON state file), then streams seeded trail
 * events from `trail-generator.ts` in batches through the shared protocol
 * client (`protocol-client.ts`: window of unacked batches, heartbeats,
 * reconnects with backoff, resends with the same ids, command replies). What
 * the window does not let out is buffered (bounded: generation pauses and is
 * counted, nothing is dropped). Commands are carried out like a real agent
 * would: isolation blocks outbound connections off the allow-list. After
 * `durationSec` it stops generating, waits (bounded) until everything is
 * acked, and reports counts, ack latency percentiles and errors by code.
 *
 * Every wait is bounded: the run resolves at the latest `durationSec` +
 * `drainTimeoutSec` + a few seconds of socket close after it starts, whatever
 * the server does.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AgentPolicy, CommandFrame, TrailEvent } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import { createConnectGate, createProtocolClient, DEFAULT_POLICY, type CommandOutcome, type ConnectGate, type WelcomeInfo } from './protocol-client.js';
import { createPrng, createTrailGenerator, failedLogonBurst, hashString, usbInsertEvent, type TrailGenerator, type UsbInsertion } from './trail-generator.js';
import { checkUpgradeArgs, createSimFleet } from './simulator-fleet.js';

/** Options of {@link runSimulation}. */
export interface SimulationOptions {
  /**
   * Agent endpoint, e.g. `ws://127.0.0.1:9100/agent/v1`, or the endpoints of
   * several ingest nodes: each agent starts on the first and moves to the next
   * whenever its connection fails or closes (protocol-client.ts).
   */
  url: string | readonly string[];
  /** Tenant enrollment key, used by agents without a saved identity. */
  enrollKey: string;
  /** Number of simulated agents. */
  agents: number;
  /** Events per second per agent (fractions accumulate across batches). */
  eps: number;
  /** How long agents generate events, seconds (fractions allowed). */
  durationSec: number;
  /** Interval between batches per agent, ms. Default 1000. */
  batchMs?: number;
  /** Seed for computer names and event content. Default 1. */
  seed?: number;
  /** JSON file holding each agent's identity and next seq. Default `./kiseki-sim-state.json`. */
  statePath?: string;
  /** Unacked batches in flight per connection; the server's `maxUnackedBatches` wins if smaller. Default 8. */
  maxUnacked?: number;
  /** Batches (sent or not) an agent may hold unacked before it pauses generation. Default 600. */
  maxBufferedBatches?: number;
  /** Probability per event of a detection chain (see trail-generator). Default 1/20,000. */
  detectRate?: number;
  /** Longest wait for outstanding acks after generation stops, seconds. Default 30. */
  drainTimeoutSec?: number;
  /** Connections in the handshake/hello phase at once. Default 200. */
  connectConcurrency?: number;
  /** Longest wait from connecting to `welcome`, ms, before the attempt is abandoned. Default 10,000. */
  helloTimeoutMs?: number;
  /** Interval of `onProgress` calls, ms. Default 1000. */
  progressIntervalMs?: number;
  /** Called every `progressIntervalMs` with running totals. */
  onProgress?: (progress: SimulationProgress) => void;
  /** Aborting stops generation at once, skips the drain, closes sockets, saves state and resolves. */
  signal?: AbortSignal;
  /** Aborting ends generation early, as if `durationSec` had run out: the drain still runs (a first Ctrl-C). */
  stopGeneration?: AbortSignal;
  /** Receives sentences about notable events (rate-limited); default: silent. */
  log?: (message: string, details?: Record<string, unknown>) => void;
  /**
   * Agents that go offline and come back (liveness, issue 16): the first
   * `share` of the agents close their connection `afterSec` into the run and
   * reconnect as the same device `downSec` later (what they had not got acked
   * is lost, as with a PC switched off hard: counted in `batchesUnacked`).
   */
  dropouts?: { share: number; afterSec: number; downSec: number };
  /** Failed-logon bursts (analytics thresholds): every `everySec`, the last `share` of the agents send `size` failed logons at once. */
  failedLogonBursts?: { share: number; everySec: number; size: number };
  /** Agent version agents without a saved one start with (`upgrade` commands change it). Default `3.2.1`. */
  agentVersion?: string;
  /** USB devices to insert: agent `agent` (index) reports each in its first batch after connecting. */
  usbInsertions?: (UsbInsertion & { agent: number })[];
}

/** Running totals passed to `onProgress`. */
export interface SimulationProgress {
  phase: 'running' | 'draining' | 'closing';
  /** Time since the run started, ms. */
  elapsedMs: number;
  /** Agents that hold a welcomed connection right now. */
  connected: number;
  batchesSent: number;
  batchesAcked: number;
  eventsSent: number;
  eventsAcked: number;
  /** Batches generated and not yet acked (sent or buffered). */
  batchesUnacked: number;
  reconnects: number;
  errors: Record<string, number>;
}

/** Ack latency percentiles, ms, from the first send of a batch on a connection to its ack. */
export interface AckLatencySummary {
  p50: number;
  p99: number;
  max: number;
}

/** Result of {@link runSimulation}; plain JSON. */
export interface SimulationSummary {
  agents: number;
  /** Configured generation time, seconds. */
  durationSec: number;
  /** Distinct batches sent at least once (resends not counted). */
  batchesSent: number;
  /** Distinct batches acked (a repeated ack of one id counts once). */
  batchesAcked: number;
  eventsSent: number;
  eventsAcked: number;
  /** Batches generated and never acked (includes batches never sent). */
  batchesUnacked: number;
  eventsUnacked: number;
  /** `av.detect` events in batches sent at least once. */
  detectionsSent: number;
  ackLatencyMs: AckLatencySummary;
  /** Reconnection attempts after a connection was lost or failed. */
  reconnects: number;
  /** Server `error` frames by code, plus `client_*` codes for server frames the simulator could not read. */
  errors: Record<string, number>;
  /** eventsAcked / activeSec. */
  eventsPerSec: number;
  /** From the first welcome to the later of the end of generation and the last ack, seconds. */
  activeSec: number;
  /** Whole run, seconds. */
  wallSec: number;
  batchesGenerated: number;
  eventsGenerated: number;
  /** Batches sent again after a reconnect. */
  batchesResent: number;
  /** Acks for ids the agent no longer (or never) held: duplicates. */
  duplicateAcks: number;
  /** Agents that enrolled during this run. */
  enrolled: number;
  /** Agents stopped by `auth_failed` / `enroll_key_invalid`. */
  fatalAgents: number;
  /** Batch ticks skipped because the agent's buffer was full (events not generated, not dropped). */
  generationPaused: number;
  /** Connection attempts that ended before a welcome. */
  connectFailures: number;
  /** True when every batch of every live agent was acked before the drain timeout. */
  drained: boolean;
  /** True when the run was stopped through `signal`. */
  aborted: boolean;
  /** Response-action commands received (`cmd` frames), by kind; each answered with `cmdr`. */
  commands: Record<string, number>;
  /** Agents isolated at the end of the run. */
  isolatedAgents: number;
  /** Outbound connections an isolated agent blocked (reported as `net.conn` with `blocked: true`). */
  connectionsBlocked: number;
  /** Agents that went offline and came back (`dropouts`). */
  dropouts: number;
  /** Failed-logon bursts sent (`failedLogonBursts`). */
  failedLogonBursts: number;
  /** Fleet management (docs/FLEET.md): upgrades installed, events the tuning filters dropped at the source, USB insertions blocked. */
  fleet: { upgrades: number; tunedEvents: number; tunedBytes: number; usbBlocked: number; versions: Record<string, number> };
}

/** One agent's saved identity (state file). */
export interface SimulatorAgentState {
  index: number;
  computer: string;
  tmid?: string;
  token?: string;
  /** Seq of the next event the agent will generate. */
  nextSeq: number;
  /** Present while the server has the agent isolated. */
  isolation?: { allow: { cidr: string; port?: number }[] };
  /** Agent version after the last upgrade. */
  agentVersion?: string;
}

interface StateFile {
  version: 1;
  agents: SimulatorAgentState[];
}

const AGENT_VERSION = '3.2.1';
/** Latency samples kept; beyond this, reservoir sampling. */
const LATENCY_SAMPLES_MAX = 1_000_000;
const LOG_LINES_PER_SEC = 20;

// ---------------------------------------------------------------------------
// State file
// ---------------------------------------------------------------------------

interface StateStore {
  get(index: number): SimulatorAgentState | undefined;
  set(entry: SimulatorAgentState): void;
  /** Writes soon (coalesced), atomically. */
  scheduleSave(): void;
  /** Waits for pending writes and writes once more if anything changed. */
  flush(): Promise<void>;
}

async function openStateStore(path: string, onError: (err: unknown) => void): Promise<StateStore> {
  const entries = new Map<number, SimulatorAgentState>();
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    let parsed: Partial<StateFile> | null;
    try {
      parsed = JSON.parse(text) as Partial<StateFile> | null;
    } catch (err) {
      throw new KisekiError('ERR_INVALID_INPUT', { file: path, reason: 'the simulator state file is not JSON' }, { cause: err });
    }
    if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.agents)) throw new KisekiError('ERR_INVALID_INPUT', { file: path, reason: 'the simulator state file has no agents array' });
    for (const a of parsed.agents) {
      if (typeof a?.index === 'number' && typeof a.computer === 'string' && typeof a.nextSeq === 'number') entries.set(a.index, a);
    }
  }
  let dirty = false;
  let writing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let tmpCounter = 0;

  async function writeNow(): Promise<void> {
    dirty = false;
    const body: StateFile = { version: 1, agents: [...entries.values()].sort((a, b) => a.index - b.index) };
    const tmp = `${path}.${process.pid}.${tmpCounter++}.tmp`;
    await mkdir(dirname(path), { recursive: true });
    try {
      await writeFile(tmp, `${JSON.stringify(body, null, 1)}\n`);
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  function startWrite(): void {
    if (writing) return;
    writing = writeNow()
      .catch(onError)
      .finally(() => {
        writing = undefined;
        if (dirty) startWrite();
      });
  }

  return {
    get: (index) => entries.get(index),
    set(entry) {
      entries.set(entry.index, entry);
      dirty = true;
    },
    scheduleSave() {
      dirty = true;
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        startWrite();
      }, 200);
    },
    async flush() {
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      while (writing) await writing;
      if (dirty) {
        await writeNow();
      }
    },
  };
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

interface LatencyRecorder {
  add(ms: number): void;
  summary(): AckLatencySummary;
}

function createLatencyRecorder(rng: () => number): LatencyRecorder {
  const samples: number[] = [];
  let seen = 0;
  let max = 0;
  return {
    add(ms) {
      seen++;
      if (ms > max) max = ms;
      if (samples.length < LATENCY_SAMPLES_MAX) samples.push(ms);
      else {
        const j = Math.floor(rng() * seen);
        if (j < LATENCY_SAMPLES_MAX) samples[j] = ms;
      }
    },
    summary() {
      if (samples.length === 0) return { p50: 0, p99: 0, max: 0 };
      const sorted = Float64Array.from(samples).sort();
      const at = (p: number): number => round2(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number);
      return { p50: at(0.5), p99: at(0.99), max: round2(max) };
    },
  };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

const MODELS = ['OptiPlex 7090', 'ThinkPad X1 Carbon Gen 11', 'HP EliteBook 840 G9', 'VersaPro VKT16M', "Let's note CF-SV1", 'Surface Laptop 5'];
const APPS = [
  { name: 'Google Chrome', version: '122.0.6261.129', publisher: 'Google LLC' },
  { name: 'Microsoft 365 Apps for enterprise - ja-jp', version: '16.0.17328.20162', publisher: 'Microsoft Corporation' },
  { name: 'Microsoft Edge', version: '122.0.2365.80', publisher: 'Microsoft Corporation' },
  { name: 'Microsoft Teams', version: '24033.811.2738.2546', publisher: 'Microsoft Corporation' },
  { name: '7-Zip 23.01 (x64)', version: '23.01', publisher: 'Igor Pavlov' },
  { name: 'Adobe Acrobat Reader (64-bit)', version: '23.008.20470', publisher: 'Adobe' },
  { name: 'Zoom Workplace (64-bit)', version: '5.17.11', publisher: 'Zoom Video Communications, Inc.' },
  { name: 'Notepad++ (64-bit x64)', version: '8.6.4', publisher: 'Notepad++ Team' },
];

// ---------------------------------------------------------------------------
// Simulation
// ---------------------------------------------------------------------------

interface Stats {
  batchesGenerated: number;
  eventsGenerated: number;
  batchesSent: number;
  eventsSent: number;
  batchesAcked: number;
  eventsAcked: number;
  batchesResent: number;
  duplicateAcks: number;
  detectionsSent: number;
  reconnects: number;
  connectFailures: number;
  enrolled: number;
  fatalAgents: number;
  generationPaused: number;
  errors: Record<string, number>;
  connected: number;
  commands: Record<string, number>;
  connectionsBlocked: number;
  dropouts: number;
  failedLogonBursts: number;
  upgrades: number;
}

type Phase = 'running' | 'draining' | 'closing';

interface Ctx {
  readonly url: string | readonly string[];
  readonly enrollKey: string;
  readonly agents: number;
  readonly eps: number;
  readonly batchMs: number;
  readonly seed: number;
  readonly maxUnacked: number;
  readonly maxBufferedBatches: number;
  readonly detectRate: number | undefined;
  readonly helloTimeoutMs: number;
  readonly agentVersion: string;
  readonly usbInsertions: readonly (UsbInsertion & { agent: number })[];
  readonly stats: Stats;
  readonly gate: ConnectGate;
  readonly latency: LatencyRecorder;
  readonly state: StateStore;
  readonly rng: () => number;
  readonly log: (message: string, details?: Record<string, unknown>) => void;
  readonly failedLogonBursts: SimulationOptions['failedLogonBursts'];
  phase: Phase;
  /** performance.now() after which no batch is generated. */
  genStopAtMs: number;
  firstWelcomeAtMs: number | undefined;
  lastAckAtMs: number;
  /** Called whenever an agent may have finished draining. */
  onProgressMaybeDrained: () => void;
}

interface SimAgent {
  start(): void;
  /** True when nothing generated is left unacked, or the agent can never deliver again. */
  isDrained(): boolean;
  unacked(): { batches: number; events: number };
  isolated(): boolean;
  /** Fleet-policy totals and the version the agent runs. */
  fleet(): { tunedEvents: number; tunedBytes: number; usbBlocked: number; version: string };
  close(): Promise<void>;
}

/**
 * One simulated PC: the trail generator and its batch clock on top of the
 * shared protocol client, which owns the connection, the window, acks,
 * resends, heartbeats and command replies.
 */
function createSimAgent(ctx: Ctx, index: number): SimAgent {
  const saved = ctx.state.get(index);
  const computer = saved?.computer ?? `PC-${ctx.seed}-${String(index).padStart(5, '0')}`;
  let tmid = saved?.tmid;
  let token = saved?.token;
  let nextSeq = saved?.nextSeq ?? 1;
  const host = index + 1;
  const ips = [`10.${100 + Math.floor(host / 65_024)}.${Math.floor(host / 254) % 256}.${1 + (host % 254)}`];
  const macHash = hashString(computer, ctx.seed);
  const macs = [
    `00-15-5D-${((macHash >>> 16) & 255).toString(16).padStart(2, '0')}-${((macHash >>> 8) & 255).toString(16).padStart(2, '0')}-${(macHash & 255).toString(16).padStart(2, '0')}`.toUpperCase(),
  ];
  const os = 'Windows 11 Pro 23H2 (10.0.22631)';

  let generator: TrailGenerator | undefined;
  let stopped = false;
  let policy: AgentPolicy = DEFAULT_POLICY;
  /** Network isolation as ordered by the server: only these destinations stay reachable. */
  let isolation: { allow: { cidr: string; port?: number }[] } | undefined = saved?.isolation;
  /** `av.detect` events per generated batch that holds any, until its first send. */
  const detectionsByBatch = new Map<string, number>();
  let tickTimer: NodeJS.Timeout | undefined;
  let nextTickAtMs = 0;
  let fraction = 0;
  /** Fleet policy at the source (simulator-fleet.ts), the version installed, devices still to insert. */
  const fleet = createSimFleet();
  let agentVersion = saved?.agentVersion ?? ctx.agentVersion;
  let usbToInsert = ctx.usbInsertions.filter((u) => u.agent === index);

  const client = createProtocolClient({
    url: ctx.url,
    credentials: tmid !== undefined && token !== undefined ? { tmid, token } : { enrollKey: ctx.enrollKey },
    facts: { computer, agentVersion, os, ips, macs },
    maxUnacked: ctx.maxUnacked,
    helloTimeoutMs: ctx.helloTimeoutMs,
    gate: ctx.gate,
    random: ctx.rng,
    log: ctx.log,
    handlers: {
      onWelcome,
      onSent(b, resend) {
        if (resend) {
          ctx.stats.batchesResent++;
          return;
        }
        ctx.stats.batchesSent++;
        ctx.stats.eventsSent += b.count;
        const detections = detectionsByBatch.get(b.id);
        if (detections !== undefined) {
          ctx.stats.detectionsSent += detections;
          detectionsByBatch.delete(b.id);
        }
      },
      onAck(b, ack) {
        if (ack.latencyMs !== undefined) ctx.latency.add(ack.latencyMs);
        ctx.stats.batchesAcked++;
        ctx.stats.eventsAcked += b.count;
        ctx.lastAckAtMs = performance.now();
        if (client.unacked().batches === 0) ctx.onProgressMaybeDrained();
      },
      onCommand,
      onPolicy(f) {
        fleet.applyPolicy(f);
      },
      onServerError(code) {
        countError(code);
      },
      onFrameProblem(reason) {
        if (reason === 'client_stray_ack') ctx.stats.duplicateAcks++;
        else countError(reason);
      },
      onDisconnect(info) {
        if (info.welcomed) ctx.stats.connected--;
        else ctx.stats.connectFailures++;
        if (info.reconnect) ctx.stats.reconnects++;
      },
      onFailed() {
        ctx.stats.fatalAgents++;
        stopped = true;
        if (tickTimer) clearTimeout(tickTimer);
        tickTimer = undefined;
        ctx.onProgressMaybeDrained();
      },
    },
  });

  function countError(code: string): void {
    ctx.stats.errors[code] = (ctx.stats.errors[code] ?? 0) + 1;
  }

  /** Executes a response action like a real agent; the client sends `acknowledged` first and this outcome after. */
  function onCommand(frame: CommandFrame): CommandOutcome {
    ctx.stats.commands[frame.kind] = (ctx.stats.commands[frame.kind] ?? 0) + 1;
    const args = frame.args ?? {};
    switch (frame.kind) {
      case 'isolate': {
        const allow = Array.isArray(args.allow) ? (args.allow as { cidr: string; port?: number }[]) : [];
        isolation = { allow };
        saveState();
        return { status: 'done', result: { isolated: true, allow } };
      }
      case 'release':
        isolation = undefined;
        saveState();
        return { status: 'done', result: { isolated: false } };
      case 'delete-file':
        return { status: 'done', result: { deleted: true, path: args.path } };
      case 'collect-file':
        return { status: 'done', result: { collected: true, path: args.path, size: 4096 } };
      case 'set-policy':
        return { status: 'done', result: { applied: true } };
      case 'upgrade':
        return upgrade(args);
      default:
        return { status: 'failed', error: `unsupported command kind ${String(frame.kind)}` };
    }
  }

  /** Installs an agent version: reports done, then restarts so that the next hello carries the new version. */
  function upgrade(args: Record<string, unknown>): CommandOutcome {
    const checked = checkUpgradeArgs(args);
    if ('error' in checked) return { status: 'failed', error: checked.error };
    const from = agentVersion;
    if (checked.version === from) return { status: 'done', result: { version: from, unchanged: true } };
    agentVersion = checked.version;
    ctx.stats.upgrades++;
    saveState();
    // After the cmdr (sent when this returns), as an installer restarts the service.
    setTimeout(() => client.restart({ agentVersion: checked.version }), 50).unref();
    return { status: 'done', result: { version: checked.version, from } };
  }

  /** While isolated, outbound connections to destinations off the allow-list are blocked and reported. */
  function applyIsolation(events: TrailEvent[]): void {
    if (isolation === undefined) return;
    for (const e of events) {
      if (e.k !== 'net.conn' || e.dir !== 'out' || typeof e.rip !== 'string') continue;
      if (allowed(e.rip, typeof e.rport === 'number' ? e.rport : undefined, isolation.allow)) continue;
      e.blocked = true;
      e.reason = 'isolation';
      ctx.stats.connectionsBlocked++;
    }
  }

  function onWelcome(welcome: WelcomeInfo): void {
    ctx.stats.connected++;
    const now = performance.now();
    ctx.firstWelcomeAtMs ??= now;
    if (welcome.enrolled) ctx.stats.enrolled++;
    tmid = welcome.tmid;
    if (welcome.token !== undefined) token = welcome.token;
    if (welcome.nextSeq > nextSeq) nextSeq = welcome.nextSeq;
    policy = welcome.policy;
    fleet.applyPolicy(welcome.policy.fleet);
    saveState();
    generator ??= createTrailGenerator({
      seed: (hashString(computer, ctx.seed) ^ Math.imul(nextSeq, 0x9e3779b1)) >>> 0,
      computer,
      ip: ips[0] as string,
      ...(ctx.detectRate === undefined ? {} : { detectRate: ctx.detectRate }),
    });
    client.send(inventory());
    if (tickTimer === undefined && !stopped) {
      // Spread agents evenly over one batch interval so they do not fire together.
      nextTickAtMs = now + ((index % ctx.agents) / ctx.agents) * ctx.batchMs + ctx.batchMs * 0.01 * ctx.rng();
      tickTimer = setTimeout(tick, Math.max(0, nextTickAtMs - now));
    }
  }

  function saveState(): void {
    const entry: SimulatorAgentState = { index, computer, nextSeq, agentVersion, ...(isolation === undefined ? {} : { isolation }) };
    if (tmid !== undefined) entry.tmid = tmid;
    if (token !== undefined) entry.token = token;
    ctx.state.set(entry);
    ctx.state.scheduleSave();
  }

  function tick(): void {
    tickTimer = undefined;
    if (stopped) return;
    const now = performance.now();
    if (ctx.phase === 'running' && now < ctx.genStopAtMs) generate();
    nextTickAtMs += ctx.batchMs;
    // After a long stall (event loop blocked), skip the missed ticks instead of bursting.
    if (nextTickAtMs < now - 5 * ctx.batchMs) nextTickAtMs = now + ctx.batchMs;
    tickTimer = setTimeout(tick, Math.max(0, nextTickAtMs - now));
  }

  let nextBurstAtMs = performance.now() + (ctx.failedLogonBursts?.everySec ?? 0) * 1000;
  /** A failed-logon burst when one is due for this agent (`failedLogonBursts`), as a batch of its own. */
  function maybeBurst(): void {
    const b = ctx.failedLogonBursts;
    // The last `share` of the agents: apart from the first ones `dropouts` takes, so bursts are not lost with them.
    if (b === undefined || index < ctx.agents - Math.round(b.share * ctx.agents) || performance.now() < nextBurstAtMs) return;
    nextBurstAtMs += b.everySec * 1000;
    const first = nextSeq;
    nextSeq += b.size;
    ctx.stats.failedLogonBursts++;
    ctx.stats.batchesGenerated++;
    ctx.stats.eventsGenerated += b.size;
    client.enqueue({ id: randomBytes(16).toString('hex'), first, last: first + b.size - 1, events: failedLogonBurst(b.size, first, Date.now(), `198.51.100.${1 + (index % 254)}`) });
  }

  function generate(): void {
    if (!generator) return;
    maybeBurst();
    const exact = (ctx.eps * ctx.batchMs) / 1000 + fraction;
    let remaining = Math.floor(exact);
    fraction = exact - remaining;
    const maxEvents = Math.max(1, policy.maxBatchEvents);
    while (remaining > 0) {
      if (client.unacked().batches >= ctx.maxBufferedBatches) {
        ctx.stats.generationPaused++;
        return;
      }
      const n = Math.min(remaining, maxEvents);
      remaining -= n;
      makeBatch(generator, n);
    }
  }

  /** Inserts the USB devices due, applies the fleet policy (tuned events take no seq), reports what changed. */
  function fleetFilter(generated: TrailEvent[], first: number): TrailEvent[] {
    if (usbToInsert.length > 0 && generated.length > 0) {
      const ts = (generated[generated.length - 1] as TrailEvent).ts;
      for (const u of usbToInsert) generated.push({ ...usbInsertEvent(u), ts });
      usbToInsert = [];
    }
    const events = fleet.filter(generated);
    if (events.length !== generated.length) for (let i = 0; i < events.length; i++) (events[i] as TrailEvent).seq = first + i;
    const tuned = fleet.takeTuned();
    if (tuned !== undefined && !client.send({ t: 'hb', ts: Date.now(), tuned })) fleet.restoreTuned(tuned);
    if (fleet.takeUsbChanged()) client.send(inventory());
    return events;
  }

  function makeBatch(gen: TrailGenerator, n: number): void {
    const first = nextSeq;
    const events: TrailEvent[] = fleetFilter(gen.next(n, first, Date.now()), first);
    n = events.length;
    if (n === 0) return;
    applyIsolation(events);
    nextSeq += n;
    let detections = 0;
    for (let i = 0; i < events.length; i++) if ((events[i] as TrailEvent).k === 'av.detect') detections++;
    // Random ids, never from the seed: a second run with the same seed must not reuse ids.
    const id = randomBytes(16).toString('hex');
    if (detections > 0) detectionsByBatch.set(id, detections);
    ctx.stats.batchesGenerated++;
    ctx.stats.eventsGenerated += n;
    client.enqueue({ id, first, last: first + n - 1, events });
  }

  function inventory(): Record<string, unknown> & { t: string } {
    const h = hashString(computer, 17);
    return {
      t: 'inv',
      model: MODELS[h % MODELS.length],
      manufacturer: 'Generic',
      osVersion: '10.0.22631.3296',
      os,
      drives: [{ letter: 'C:', type: 'fixed', fs: 'NTFS', sizeBytes: 512_110_190_592, freeBytes: 200_000_000_000 + (h % 100_000_000_000), bitlocker: true }],
      usb: [{ vendorId: '046d', productId: 'c534', vendor: 'Logitech', model: 'Unifying Receiver', type: 'hid' }, ...fleet.attachedUsb()],
      apps: APPS.slice(0, 4 + (h % (APPS.length - 3))),
      windowsUpdate: { lastSearchAt: Date.now() - 3_600_000, lastInstalledAt: Date.now() - 5 * 86_400_000, pendingReboot: h % 7 === 0, pending: h % 3 === 0 ? ['KB5035853'] : [] },
    };
  }

  return {
    start() {
      client.start();
    },
    isDrained() {
      return client.failure !== undefined || client.unacked().batches === 0;
    },
    isolated() {
      return isolation !== undefined;
    },
    fleet() {
      return { ...fleet.stats, version: agentVersion };
    },
    unacked() {
      return client.unacked();
    },
    async close() {
      stopped = true;
      if (tickTimer) clearTimeout(tickTimer);
      tickTimer = undefined;
      if (generator !== undefined || tmid !== undefined) saveState();
      await client.close();
    },
  };
}

/**
 * Runs a fleet of simulated agents against a kiseki agent endpoint.
 *
 * Generation lasts `durationSec`; the drain lasts at most `drainTimeoutSec`
 * (default 30); closing sockets at most ~3 s. The state file (default
 * `./kiseki-sim-state.json`) is written after enrollments and at the end.
 *
 * @returns counts, ack latency (ms) and errors; `batchesUnacked` > 0 means the
 *   drain timed out or the run was aborted.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationSummary> {
  const startedAtMs = performance.now();
  const agentsCount = Math.max(0, Math.floor(options.agents));
  const batchMs = Math.max(10, options.batchMs ?? 1000);
  const seed = options.seed ?? 1;
  const statePath = options.statePath ?? './kiseki-sim-state.json';
  const drainTimeoutMs = Math.max(0, (options.drainTimeoutSec ?? 30) * 1000);
  const userLog = options.log;
  let logWindowStart = 0;
  let logLines = 0;
  let logSuppressed = 0;
  const log = (message: string, details?: Record<string, unknown>): void => {
    if (!userLog) return;
    const now = performance.now();
    if (now - logWindowStart >= 1000) {
      if (logSuppressed > 0) userLog(`${logSuppressed} simulator log lines were suppressed in the last second.`);
      logWindowStart = now;
      logLines = 0;
      logSuppressed = 0;
    }
    if (logLines >= LOG_LINES_PER_SEC) {
      logSuppressed++;
      return;
    }
    logLines++;
    userLog(details ? `${message} ${JSON.stringify(details)}` : message, details);
  };

  const state = await openStateStore(statePath, (err) => log('Simulator state file could not be written.', { path: statePath, error: String(err) }));
  const stats: Stats = {
    batchesGenerated: 0,
    eventsGenerated: 0,
    batchesSent: 0,
    eventsSent: 0,
    batchesAcked: 0,
    eventsAcked: 0,
    batchesResent: 0,
    duplicateAcks: 0,
    detectionsSent: 0,
    reconnects: 0,
    connectFailures: 0,
    enrolled: 0,
    fatalAgents: 0,
    generationPaused: 0,
    errors: {},
    connected: 0,
    commands: {},
    connectionsBlocked: 0,
    dropouts: 0,
    failedLogonBursts: 0,
    upgrades: 0,
  };
  const rng = createPrng(hashString('simulator', seed));
  let wake: (() => void) | undefined;
  const ctx: Ctx = {
    url: options.url,
    enrollKey: options.enrollKey,
    agents: Math.max(1, agentsCount),
    eps: Math.max(0, options.eps),
    batchMs,
    seed,
    maxUnacked: Math.max(1, Math.floor(options.maxUnacked ?? 8)),
    maxBufferedBatches: Math.max(1, Math.floor(options.maxBufferedBatches ?? 600)),
    detectRate: options.detectRate,
    helloTimeoutMs: Math.max(100, options.helloTimeoutMs ?? 10_000),
    agentVersion: options.agentVersion ?? AGENT_VERSION,
    usbInsertions: options.usbInsertions ?? [],
    stats,
    gate: createConnectGate(Math.max(1, Math.floor(options.connectConcurrency ?? 200))),
    latency: createLatencyRecorder(rng),
    state,
    rng,
    log,
    failedLogonBursts: options.failedLogonBursts,
    phase: 'running',
    genStopAtMs: startedAtMs + Math.max(0, options.durationSec) * 1000,
    firstWelcomeAtMs: undefined,
    lastAckAtMs: 0,
    onProgressMaybeDrained: () => {
      if (ctx.phase === 'draining' && wake) wake();
    },
  };

  const agents: SimAgent[] = [];
  for (let i = 0; i < agentsCount; i++) agents.push(createSimAgent(ctx, i));

  const signal = options.signal;
  let aborted = signal?.aborted ?? false;
  const onAbort = (): void => {
    aborted = true;
    if (wake) wake();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const stopGeneration = options.stopGeneration;
  let generationStopped = stopGeneration?.aborted ?? false;
  const onStopGeneration = (): void => {
    generationStopped = true;
    if (wake) wake();
  };
  stopGeneration?.addEventListener('abort', onStopGeneration, { once: true });

  const progress = (): SimulationProgress => {
    let batchesUnacked = 0;
    for (const a of agents) batchesUnacked += a.unacked().batches;
    return {
      phase: ctx.phase,
      elapsedMs: Math.round(performance.now() - startedAtMs),
      connected: stats.connected,
      batchesSent: stats.batchesSent,
      batchesAcked: stats.batchesAcked,
      eventsSent: stats.eventsSent,
      eventsAcked: stats.eventsAcked,
      batchesUnacked,
      reconnects: stats.reconnects,
      errors: { ...stats.errors },
    };
  };
  const progressTimer = options.onProgress
    ? setInterval(() => {
        try {
          options.onProgress?.(progress());
        } catch (err) {
          log('onProgress threw; ignored.', { error: String(err) });
        }
      }, Math.max(50, options.progressIntervalMs ?? 1000))
    : undefined;

  /** Sleeps until `untilMs` (performance.now() scale), an abort, or `ready()` turns true. */
  const waitUntil = async (untilMs: number, ready: () => boolean): Promise<void> => {
    while (!aborted && !ready()) {
      const left = untilMs - performance.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 250));
        function done(): void {
          clearTimeout(t);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  };

  let generationEndedAtMs = ctx.genStopAtMs;
  let drained = false;
  const retired: SimAgent[] = [];
  const dropoutTimers = options.dropouts === undefined || aborted ? [] : scheduleDropouts(ctx, agents, retired, options.dropouts);
  try {
    if (!aborted) for (const a of agents) a.start();
    await waitUntil(ctx.genStopAtMs, () => generationStopped);
    generationEndedAtMs = Math.min(ctx.genStopAtMs, performance.now());
    ctx.genStopAtMs = generationEndedAtMs;
    ctx.phase = 'draining';
    const allDrained = (): boolean => agents.every((a) => a.isDrained());
    await waitUntil(performance.now() + drainTimeoutMs, allDrained);
    drained = allDrained();
    if (!drained) log('Drain timed out with unacked batches.', { drainTimeoutSec: drainTimeoutMs / 1000 });
  } finally {
    ctx.phase = 'closing';
    for (const t of dropoutTimers) clearTimeout(t);
    ctx.gate.openAll();
    await Promise.all(agents.concat(retired).map((a) => a.close()));
    if (progressTimer) clearInterval(progressTimer);
    signal?.removeEventListener('abort', onAbort);
    stopGeneration?.removeEventListener('abort', onStopGeneration);
    try {
      await state.flush();
    } catch (err) {
      log('Simulator state file could not be written.', { path: statePath, error: String(err) });
    }
    if (logSuppressed > 0 && userLog) userLog(`${logSuppressed} simulator log lines were suppressed in the last second.`);
  }

  let batchesUnacked = 0;
  let eventsUnacked = 0;
  for (const a of agents.concat(retired)) {
    const u = a.unacked();
    batchesUnacked += u.batches;
    eventsUnacked += u.events;
  }
  const endedAtMs = performance.now();
  const activeStart = ctx.firstWelcomeAtMs;
  const activeSec = activeStart === undefined ? 0 : Math.max(0, (Math.max(ctx.lastAckAtMs, generationEndedAtMs) - activeStart) / 1000);
  return {
    agents: agentsCount,
    durationSec: options.durationSec,
    batchesSent: stats.batchesSent,
    batchesAcked: stats.batchesAcked,
    eventsSent: stats.eventsSent,
    eventsAcked: stats.eventsAcked,
    batchesUnacked,
    eventsUnacked,
    detectionsSent: stats.detectionsSent,
    ackLatencyMs: ctx.latency.summary(),
    reconnects: stats.reconnects,
    errors: { ...stats.errors },
    eventsPerSec: activeSec > 0 ? Math.round(stats.eventsAcked / activeSec) : 0,
    activeSec: round2(activeSec),
    wallSec: round2((endedAtMs - startedAtMs) / 1000),
    batchesGenerated: stats.batchesGenerated,
    eventsGenerated: stats.eventsGenerated,
    batchesResent: stats.batchesResent,
    duplicateAcks: stats.duplicateAcks,
    enrolled: stats.enrolled,
    fatalAgents: stats.fatalAgents,
    generationPaused: stats.generationPaused,
    connectFailures: stats.connectFailures,
    drained,
    aborted,
    commands: { ...stats.commands },
    isolatedAgents: agents.filter((a) => a.isolated()).length,
    connectionsBlocked: stats.connectionsBlocked,
    dropouts: stats.dropouts,
    failedLogonBursts: stats.failedLogonBursts,
    fleet: fleetSummary(agents, stats.upgrades),
  };
}

function fleetSummary(agents: readonly SimAgent[], upgrades: number): SimulationSummary['fleet'] {
  const out = { upgrades, tunedEvents: 0, tunedBytes: 0, usbBlocked: 0, versions: {} as Record<string, number> };
  for (const a of agents) {
    const f = a.fleet();
    out.tunedEvents += f.tunedEvents;
    out.tunedBytes += f.tunedBytes;
    out.usbBlocked += f.usbBlocked;
    out.versions[f.version] = (out.versions[f.version] ?? 0) + 1;
  }
  return out;
}

/**
 * Agents that go offline and come back (`dropouts`): at `afterSec` the first
 * `share` of the agents close their connection; `downSec` later a new agent
 * with the same saved identity takes each one's place (the same device to the
 * server). Returns the timers, cleared when the run ends.
 */
function scheduleDropouts(ctx: Ctx, agents: SimAgent[], retired: SimAgent[], d: NonNullable<SimulationOptions['dropouts']>): NodeJS.Timeout[] {
  const count = Math.min(agents.length, Math.round(d.share * agents.length));
  const timers: NodeJS.Timeout[] = [];
  timers.push(
    setTimeout(() => {
      if (ctx.phase !== 'running') return;
      for (let i = 0; i < count; i++) {
        const old = agents[i]!;
        retired.push(old);
        ctx.stats.dropouts++;
        void old.close().then(() => {
          timers.push(
            setTimeout(() => {
              if (ctx.phase !== 'running') return;
              const next = createSimAgent(ctx, i);
              agents[i] = next;
              next.start();
            }, d.downSec * 1000),
          );
        });
      }
    }, d.afterSec * 1000),
  );
  return timers;
}

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

/** True when `ip:port` matches an allow-list entry (IPv4 address or CIDR, optional port). */
export function allowed(ip: string, port: number | undefined, allow: readonly { cidr: string; port?: number }[]): boolean {
  const addr = ipv4ToInt(ip);
  for (const entry of allow) {
    if (entry.port !== undefined && entry.port !== port) continue;
    const [base, bitsText] = entry.cidr.split('/');
    if (addr === undefined || base === undefined) {
      if (base === ip) return true;
      continue;
    }
    const net = ipv4ToInt(base);
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (net === undefined || !(bits >= 0 && bits <= 32)) continue;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if (((addr & mask) >>> 0) === ((net & mask) >>> 0)) return true;
  }
  return false;
}
