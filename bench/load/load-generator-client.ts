/**
 * One load-generator client process: thousands of agents on raw TCP sockets
 * speaking the agent protocol (docs/PROTOCOL.md) with a minimal WebSocket
 * client of its own, so that the generator costs much less CPU than the
 * server it measures. Forked by load-generator.ts and driven over IPC
 * (load-generator-messages.ts).
 *
 * Each agent behaves like a real one: it enrolls with the tenant key on its
 * first connection and then authenticates with TMID + token, sends an
 * inventory after enrolling, keeps at most `min(maxUnackedBatches, policy)`
 * batches unacked in flight and buffers the rest (bounded: generation pauses
 * and is counted, nothing generated is dropped), heartbeats, answers pings,
 * and after any disconnect reconnects with exponential backoff and resends
 * every unacked batch with the same id and bytes. What makes it light:
 * batches are pre-encoded and pre-masked (load-generator-frames.ts), one
 * timer drives every agent's batch clock, one sweep enforces hello
 * timeouts, and acks are recognised without a MessagePack decode.
 *
 * Bounded by construction: the parent's `close` (or its death, seen as the
 * IPC channel closing) ends the process within ~1 s.
 *
 * This is the one agent-protocol speaker that does not use agent/'s
 * protocol client, on purpose: a `ws` socket, a MessagePack encode per batch
 * and a decode per ack for each of tens of thousands of agents would make the
 * generator compete with the server for the same cores (bench/load/README.md,
 * "Why the load generator has its own client"). Protocol changes go here too.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { decode, encode } from '@msgpack/msgpack';
import { createLatencyHistogram } from './latency-histogram.js';
import {
  buildDetectionRuns,
  buildEventPool,
  buildFleetExtras,
  createBatchFrameBuilder,
  createFrameReader,
  fastAckId,
  hexPad,
  maskedFrame,
  randomMaskByte,
  upgradeRequest,
  type BatchFrameBuilder,
  type BatchSpec,
  type EncodedEvents,
  type FrameReader,
} from './load-generator-frames.js';
import { emptyCounters, type ClientConfig, type ClientCounters, type ClientMessage, type ClientReport, type ParentMessage } from './load-generator-messages.js';

const TICK_MS = 5;
const REPORT_INTERVAL_MS = 1000;
const SWEEP_INTERVAL_MS = 250;
const BACKOFF_START_MS = 100;
const BACKOFF_CAP_MS = 5000;
const FATAL_CODES = new Set(['auth_failed', 'enroll_key_invalid']);
/** Constant tail of the per-batch SHA-256 tag (the head is unique per agent and seq). */
const SHA_TAIL = 'de7ec7ed'.repeat(4);

type AgentState = 'idle' | 'queued' | 'connecting' | 'upgrading' | 'hello' | 'ready';

interface Batch {
  readonly spec: BatchSpec;
  readonly n: number;
  readonly detections: number;
  /** performance.now() at creation. */
  readonly createdAt: number;
  /** performance.now() of the latest send. */
  sentAt: number;
  /** Connection it was last sent on (0: never sent). */
  connId: number;
  everSent: boolean;
}

interface Agent {
  readonly index: number;
  readonly computer: string;
  /** 16 hex characters unique to this agent in this run; batch ids and SHA tags start with it. */
  readonly idTag: string;
  readonly ips: string[];
  readonly macs: string[];
  tmid: string | undefined;
  token: string | undefined;
  state: AgentState;
  sock: net.Socket | undefined;
  connId: number;
  holdsSlot: boolean;
  reader: FrameReader | undefined;
  handshake: Buffer | undefined;
  accept: string;
  deadline: number;
  nextSeq: number;
  batchCounter: number;
  poolCursor: number;
  fraction: number;
  detAccum: number;
  runCursor: number;
  /** Timestamp the next batch's events start after, ms since epoch. */
  lastTsMs: number;
  outstanding: Map<string, Batch>;
  outstandingEvents: number;
  queue: Batch[];
  qHead: number;
  inflight: number;
  window: number;
  hbIntervalMs: number;
  maxBatchEvents: number;
  lastHbAt: number;
  attempt: number;
  reconnectTimer: NodeJS.Timeout | undefined;
  fatal: boolean;
  inventorySent: boolean;
  /** The agent version its `hello` reports; an `upgrade` command changes it. */
  version: string;
  /** performance.now() before which the agent stays offline (a dropout or an upgrade's restart); 0: none. */
  downUntil: number;
  /** Fractional failed-logon bursts and USB insertions due (scenario `fleet`). */
  logonAccum: number;
  usbAccum: number;
}

let cfg: ClientConfig;
let builder: BatchFrameBuilder;
let maskByte = 0x5a;
let agents: Agent[] = [];
let generating = false;
let stopped = false;
let suspended = false;
let eventsPerAgentPerSec = 0;
let hbFrame: Buffer;
let inventoryFrame: Buffer;
/** Indexes of the fleet extras in the frame builder (-1: the scenario has none). */
let extraLogonBurst = -1;
let extraUsbInsertion = -1;
/** Bursts and insertions due per agent and batch interval. */
let logonBurstsPerBatch = 0;
let usbInsertionsPerBatch = 0;
let dropoutTimer: NodeJS.Timeout | undefined;
let dropoutCursor = 0;
/** How long an upgrading agent is away (its installer restarts it). */
const UPGRADE_RESTART_MS = 1000;
const runPrefix = randomBytes(4).toString('hex');

const counters: ClientCounters = emptyCounters();
const ackHist = createLatencyHistogram();
const deliveryHist = createLatencyHistogram();

function send(msg: ClientMessage): void {
  if (process.connected) process.send?.(msg);
}

function countError(code: string): void {
  counters.errors[code] = (counters.errors[code] ?? 0) + 1;
}

// ---------------------------------------------------------------------------
// Connection slots (handshakes in progress)
// ---------------------------------------------------------------------------

let activeSlots = 0;
let waiting: Agent[] = [];
let waitingHead = 0;

function requestConnect(a: Agent): void {
  if (stopped || suspended || a.fatal || a.state !== 'idle') return;
  a.state = 'queued';
  if (activeSlots < cfg.connectConcurrency) {
    activeSlots++;
    a.holdsSlot = true;
    openSocket(a);
  } else waiting.push(a);
}

function releaseSlot(a: Agent): void {
  if (!a.holdsSlot) return;
  a.holdsSlot = false;
  activeSlots--;
  while (activeSlots < cfg.connectConcurrency && waitingHead < waiting.length) {
    const next = waiting[waitingHead++] as Agent;
    if (next.state !== 'queued' || stopped || suspended) {
      if (next.state === 'queued') next.state = 'idle';
      continue;
    }
    activeSlots++;
    next.holdsSlot = true;
    openSocket(next);
  }
  if (waitingHead > 1024 && waitingHead * 2 > waiting.length) {
    waiting = waiting.slice(waitingHead);
    waitingHead = 0;
  }
}

// ---------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------

function openSocket(a: Agent): void {
  const id = ++a.connId;
  a.state = 'connecting';
  a.deadline = performance.now() + cfg.helloTimeoutMs;
  const sock = net.connect({ host: cfg.host, port: cfg.port, ...(cfg.localAddress ? { localAddress: cfg.localAddress } : {}) });
  a.sock = sock;
  sock.setNoDelay(true);
  sock.on('connect', () => {
    if (a.connId !== id) return;
    const { request, accept } = upgradeRequest(cfg.host, cfg.port, cfg.path);
    a.accept = accept;
    a.state = 'upgrading';
    sock.write(request);
  });
  sock.on('data', (chunk: Buffer) => {
    if (a.connId !== id) return;
    if (a.state === 'upgrading') onHandshakeData(a, chunk);
    else if (a.reader && !a.reader.push(chunk)) {
      countError('client_protocol_violation');
      sock.destroy();
    }
  });
  sock.on('error', () => undefined); // 'close' follows and decides what to do.
  sock.on('close', () => {
    if (a.connId !== id) return;
    onClose(a);
  });
}

function onHandshakeData(a: Agent, chunk: Buffer): void {
  const buf = a.handshake ? Buffer.concat([a.handshake, chunk]) : chunk;
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    a.handshake = buf.length > 16_384 ? undefined : buf;
    if (buf.length > 16_384) a.sock?.destroy();
    return;
  }
  a.handshake = undefined;
  const head = buf.toString('latin1', 0, end);
  if (!head.startsWith('HTTP/1.1 101') || !head.includes(a.accept)) {
    countError('client_upgrade_refused');
    a.sock?.destroy();
    return;
  }
  a.state = 'hello';
  a.reader = createFrameReader((opcode, payload) => onFrame(a, opcode, payload));
  const hello: Record<string, unknown> = { t: 'hello', computer: a.computer, agentVersion: a.version, os: 'Windows 11 Pro 23H2 (10.0.22631)', ips: a.ips, macs: a.macs };
  if (a.tmid !== undefined && a.token !== undefined) {
    hello.tmid = a.tmid;
    hello.token = a.token;
  } else hello.enrollKey = cfg.enrollKey;
  a.sock?.write(maskedFrame(encode(hello), maskByte));
  const rest = buf.subarray(end + 4);
  if (rest.length > 0 && !a.reader.push(Buffer.from(rest))) a.sock?.destroy();
}

function onClose(a: Agent): void {
  const wasReady = a.state === 'ready';
  a.sock = undefined;
  a.reader = undefined;
  a.handshake = undefined;
  a.inflight = 0;
  a.state = 'idle';
  releaseSlot(a);
  if (wasReady && a.downUntil !== 0) {
    const awayMs = Math.max(0, a.downUntil - performance.now());
    // Went away on purpose (a dropout, an upgrade's restart): back when it is over, not counted as a drop.
    counters.connected--;
    if (!stopped && !a.fatal && !a.reconnectTimer) {
      a.reconnectTimer = setTimeout(() => {
        a.reconnectTimer = undefined;
        a.downUntil = 0;
        requestConnect(a);
      }, awayMs);
    }
    return;
  }
  if (wasReady) {
    counters.connected--;
    if (!stopped && !suspended) counters.dropped++;
  } else if (!stopped && !suspended) counters.connectFailures++;
  if (!stopped && !suspended && !a.fatal) scheduleReconnect(a);
}

function scheduleReconnect(a: Agent): void {
  if (a.reconnectTimer) return;
  a.attempt++;
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** Math.min(a.attempt - 1, 16));
  const delay = ceiling / 2 + Math.random() * (ceiling / 2);
  counters.reconnects++;
  a.reconnectTimer = setTimeout(() => {
    a.reconnectTimer = undefined;
    requestConnect(a);
  }, delay);
}

// ---------------------------------------------------------------------------
// Frames from the server
// ---------------------------------------------------------------------------

function onFrame(a: Agent, opcode: number, payload: Buffer): void {
  if (opcode === 0x2) {
    const id = fastAckId(payload);
    if (id !== undefined) return onAck(a, id);
    let frame: unknown;
    try {
      frame = decode(payload);
    } catch {
      return countError('client_undecodable_frame');
    }
    if (typeof frame !== 'object' || frame === null) return countError('client_unexpected_frame');
    const f = frame as Record<string, unknown>;
    switch (f.t) {
      case 'ack':
        if (typeof f.id === 'string') onAck(a, f.id);
        return;
      case 'welcome':
        return onWelcome(a, f);
      case 'hb':
        counters.heartbeatsAnswered++;
        return;
      case 'cmd':
        return onCommand(a, f);
      case 'policy':
        counters.policies++;
        return;
      case 'error': {
        const code = typeof f.code === 'string' ? f.code : 'unknown';
        countError(code);
        if (FATAL_CODES.has(code)) a.fatal = true;
        return;
      }
      default:
        return countError('client_unexpected_frame');
    }
  }
  if (opcode === 0x9) {
    a.sock?.write(maskedFrame(payload, maskByte, 0xa));
    return;
  }
  if (opcode === 0x8) {
    a.sock?.end();
    return;
  }
  if (opcode === 0x1) countError('client_text_frame');
}

/**
 * Answers a command as a real agent does: `acknowledged`, then `done`. An
 * `upgrade` to a version not yet installed installs it and restarts: the
 * connection closes and the agent comes back after {@link UPGRADE_RESTART_MS}
 * with the new version in its `hello`. Other commands (isolate, release, …)
 * change nothing here.
 */
function onCommand(a: Agent, f: Record<string, unknown>): void {
  if (typeof f.id !== 'string' || a.sock === undefined) return countError('client_unexpected_frame');
  const args = (typeof f.args === 'object' && f.args !== null ? f.args : {}) as Record<string, unknown>;
  a.sock.write(maskedFrame(encode({ t: 'cmdr', id: f.id, status: 'acknowledged' }), maskByte));
  if (f.kind === 'upgrade' && typeof args.version === 'string') {
    a.sock.write(maskedFrame(encode({ t: 'cmdr', id: f.id, status: 'done', result: { version: args.version } }), maskByte));
    // A command resent before the server recorded the `done` (it resends after each welcome until then) finds
    // the version installed: the installer answers again and does not restart.
    if (a.version === args.version) return;
    a.version = args.version;
    counters.upgrades++;
    a.downUntil = performance.now() + UPGRADE_RESTART_MS;
    a.sock.end();
    return;
  }
  a.sock.write(maskedFrame(encode({ t: 'cmdr', id: f.id, status: 'done', result: {} }), maskByte));
  counters.commandsDone++;
}

/** One dropout round: the next share of the agents closes its connection and stays away `downSec`. */
function dropoutRound(): void {
  const d = cfg.fleet?.dropouts;
  if (d === undefined || agents.length === 0 || stopped) return;
  const n = Math.max(1, Math.round(d.share * agents.length));
  const now = performance.now();
  for (let k = 0; k < n; k++) {
    const a = agents[dropoutCursor++ % agents.length] as Agent;
    if (a.state !== 'ready' || a.sock === undefined) continue;
    a.downUntil = now + d.downSec * 1000;
    counters.dropouts++;
    a.sock.destroy();
  }
}

interface ConnectTracking {
  startedAtMs: number;
  lastWelcomeAtMs: number;
  welcomed: number;
  reported: boolean;
  kind: 'connected' | 'reconnected';
  deadline: number;
  backlogBatches: number;
  backlogEvents: number;
}

let connectTracking: ConnectTracking | undefined;

function track(kind: ConnectTracking['kind'], timeoutMs: number): ConnectTracking {
  const now = Date.now();
  return { startedAtMs: now, lastWelcomeAtMs: now, welcomed: 0, reported: false, kind, deadline: now + timeoutMs, backlogBatches: counters.unackedBatches, backlogEvents: counters.unackedEvents };
}

function onWelcome(a: Agent, f: Record<string, unknown>): void {
  if (a.state !== 'hello') return;
  a.state = 'ready';
  releaseSlot(a);
  a.attempt = 0;
  counters.connected++;
  counters.welcomes++;
  if (typeof f.tmid === 'string') a.tmid = f.tmid;
  if (typeof f.token === 'string') {
    a.token = f.token;
    counters.enrolled++;
  }
  if (typeof f.nextSeq === 'number' && f.nextSeq > a.nextSeq) a.nextSeq = f.nextSeq;
  const policy = (typeof f.policy === 'object' && f.policy !== null ? f.policy : {}) as Record<string, unknown>;
  const serverWindow = typeof policy.maxUnackedBatches === 'number' ? policy.maxUnackedBatches : cfg.maxUnackedBatches;
  a.window = Math.max(1, Math.min(cfg.maxUnackedBatches, serverWindow));
  a.hbIntervalMs = cfg.hbIntervalMs ?? (typeof policy.hbIntervalMs === 'number' ? policy.hbIntervalMs : 30_000);
  a.maxBatchEvents = Math.max(1, Math.min(cfg.maxBatchEvents, typeof policy.maxBatchEvents === 'number' ? policy.maxBatchEvents : cfg.maxBatchEvents));
  a.lastHbAt = performance.now();
  if (cfg.inventoryOnEnroll && !a.inventorySent) {
    a.inventorySent = true;
    a.sock?.write(inventoryFrame);
  }
  // Resend every unacked batch, same id and bytes, in seq order (Map keeps insertion order).
  a.queue = [...a.outstanding.values()];
  a.qHead = 0;
  a.inflight = 0;
  if (cfg.mode === 'closed' && generating) fillClosedWindow(a);
  pump(a);
  if (connectTracking) {
    connectTracking.welcomed++;
    connectTracking.lastWelcomeAtMs = Date.now();
    checkConnectTracking();
  }
}

function onAck(a: Agent, id: string): void {
  const b = a.outstanding.get(id);
  if (!b) {
    counters.duplicateAcks++;
    return;
  }
  a.outstanding.delete(id);
  a.outstandingEvents -= b.n;
  counters.unackedBatches--;
  counters.unackedEvents -= b.n;
  const now = performance.now();
  if (b.connId === a.connId && b.everSent) {
    a.inflight--;
    ackHist.recordUs((now - b.sentAt) * 1000);
  }
  deliveryHist.recordUs((now - b.createdAt) * 1000);
  counters.batchesAcked++;
  counters.eventsAcked += b.n;
  counters.detectionsAcked += b.detections;
  if (cfg.mode === 'closed' && generating) fillClosedWindow(a);
  pump(a);
  if (drainWaiter && counters.unackedBatches === 0) drainWaiter();
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

function makeBatch(a: Agent, n: number): void {
  let run = -1;
  let runEvents = 0;
  const runs = builder.runs;
  if (cfg.detectionRate > 0 && runs.length > 0) {
    a.detAccum = Math.min(4, a.detAccum + n * cfg.detectionRate);
    const candidate = runs[a.runCursor % runs.length];
    if (a.detAccum >= 1 && candidate !== undefined) {
      run = a.runCursor % runs.length;
      runEvents = candidate.count;
      a.runCursor++;
      a.detAccum -= 1;
      // A batch smaller than the detection chain grows to hold it (rare: a few events per detection).
      if (runEvents > n) n = runEvents;
    }
  }
  let extra = -1;
  let extraEvents = 0;
  if (extraLogonBurst >= 0 || extraUsbInsertion >= 0) {
    a.logonAccum = Math.min(4, a.logonAccum + logonBurstsPerBatch);
    a.usbAccum = Math.min(4, a.usbAccum + usbInsertionsPerBatch);
    if (a.logonAccum >= 1 && extraLogonBurst >= 0) {
      extra = extraLogonBurst;
      a.logonAccum -= 1;
      counters.logonBursts++;
    } else if (a.usbAccum >= 1 && extraUsbInsertion >= 0) {
      extra = extraUsbInsertion;
      a.usbAccum -= 1;
      counters.usbInsertions++;
    }
    if (extra >= 0) {
      extraEvents = (builder.extras[extra] as EncodedEvents).count;
      if (runEvents + extraEvents > n) n = runEvents + extraEvents;
    }
  }
  const nowMs = Date.now();
  const first = a.nextSeq;
  const poolCount = n - runEvents - extraEvents;
  const spec: BatchSpec = {
    id: a.idTag + hexPad(a.batchCounter++, 16),
    sentAtMs: nowMs,
    first,
    poolStart: a.poolCursor,
    poolCount,
    run,
    extra,
    tsFromMs: Math.min(a.lastTsMs, nowMs),
    tsToMs: nowMs,
    shaTag: a.idTag + hexPad(first, 16) + SHA_TAIL,
  };
  a.lastTsMs = nowMs;
  a.nextSeq += n;
  a.poolCursor = (a.poolCursor + poolCount) % builder.pool.count;
  const b: Batch = { spec, n, detections: run >= 0 ? 1 : 0, createdAt: performance.now(), sentAt: 0, connId: 0, everSent: false };
  a.outstanding.set(spec.id, b);
  a.outstandingEvents += n;
  a.queue.push(b);
  counters.batchesGenerated++;
  counters.eventsGenerated += n;
  counters.unackedBatches++;
  counters.unackedEvents += n;
}

function pump(a: Agent): void {
  const sock = a.sock;
  if (a.state !== 'ready' || !sock) return;
  while (a.inflight < a.window && a.qHead < a.queue.length) {
    const b = a.queue[a.qHead++] as Batch;
    if (!a.outstanding.has(b.spec.id)) continue;
    const frame = builder.build(b.spec);
    sock.write(frame);
    counters.framesSentBytes += frame.length;
    b.sentAt = performance.now();
    b.connId = a.connId;
    a.inflight++;
    if (b.everSent) counters.batchesResent++;
    else {
      b.everSent = true;
      counters.batchesSent++;
      counters.eventsSent += b.n;
      counters.detectionsSent += b.detections;
    }
  }
  if (a.qHead > 256 && a.qHead * 2 > a.queue.length) {
    a.queue = a.queue.slice(a.qHead);
    a.qHead = 0;
  }
}

function fillClosedWindow(a: Agent): void {
  while (a.outstanding.size < a.window) makeBatch(a, cfg.closedBatchEvents);
}

/** One agent's batch clock tick (open mode): generate this interval's events, heartbeat when due. */
function agentTick(a: Agent, now: number): void {
  if (generating && cfg.mode === 'open' && !a.fatal) {
    const exact = (eventsPerAgentPerSec * cfg.batchIntervalMs) / 1000 + a.fraction;
    let total = Math.floor(exact);
    a.fraction = exact - total;
    while (total > 0) {
      if (a.outstanding.size >= cfg.maxBufferedBatches) {
        counters.generationPaused++;
        break;
      }
      const n = Math.min(total, a.maxBatchEvents);
      makeBatch(a, n);
      total -= n;
    }
    pump(a);
  }
  if (a.state === 'ready' && a.sock && now - a.lastHbAt >= a.hbIntervalMs) {
    a.lastHbAt = now;
    a.sock.write(hbFrame);
    counters.heartbeatsSent++;
  }
}

// ---------------------------------------------------------------------------
// Clocks, sweeps, reports
// ---------------------------------------------------------------------------

let ringStart = 0;
let ringDone = 0;
let ringTimer: NodeJS.Timeout | undefined;
let sweepTimer: NodeJS.Timeout | undefined;
let reportTimer: NodeJS.Timeout | undefined;
let drainWaiter: (() => void) | undefined;

function startRing(): void {
  ringStart = performance.now();
  ringDone = 0;
  ringTimer = setInterval(() => {
    const n = agents.length;
    if (n === 0) return;
    const now = performance.now();
    const due = Math.floor(((now - ringStart) * n) / cfg.batchIntervalMs);
    // More than one full round behind (a stalled loop): skip, do not burst.
    if (due - ringDone > n) ringDone = due - n;
    while (ringDone < due) {
      agentTick(agents[ringDone % n] as Agent, now);
      ringDone++;
    }
  }, TICK_MS);
}

function sweep(): void {
  const now = performance.now();
  for (const a of agents) {
    if ((a.state === 'connecting' || a.state === 'upgrading' || a.state === 'hello') && now > a.deadline) {
      countError('client_hello_timeout');
      a.sock?.destroy();
    }
  }
  checkConnectTracking();
}

function checkConnectTracking(): void {
  const t = connectTracking;
  if (!t || t.reported) return;
  const all = t.welcomed >= agents.filter((a) => !a.fatal).length;
  if (!all && Date.now() < t.deadline) return;
  t.reported = true;
  connectTracking = undefined;
  const base = {
    clientIndex: cfg.clientIndex,
    agents: agents.length,
    startedAtMs: t.startedAtMs,
    lastWelcomeAtMs: t.lastWelcomeAtMs,
    welcomed: t.welcomed,
    complete: all,
    backlogBatches: t.backlogBatches,
    backlogEvents: t.backlogEvents,
  };
  send(t.kind === 'connected' ? { type: 'connected', ...base } : { type: 'reconnected', ...base });
}

function report(tag?: number): void {
  const cpu = process.cpuUsage();
  const msg: ClientReport = {
    type: 'report',
    clientIndex: cfg.clientIndex,
    ...(tag === undefined ? {} : { tag }),
    atMs: Date.now(),
    counters: { ...counters, errors: { ...counters.errors } },
    ack: ackHist.takeDelta(),
    delivery: deliveryHist.takeDelta(),
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rssBytes: process.memoryUsage.rss(),
  };
  send(msg);
}

function createAgent(index: number): Agent {
  const host = index + 1;
  return {
    index,
    computer: `BENCH-${cfg.seed}-${String(index).padStart(5, '0')}`,
    idTag: runPrefix + hexPad(index, 8),
    ips: [`10.${100 + Math.floor(host / 65_024)}.${Math.floor(host / 254) % 256}.${1 + (host % 254)}`],
    macs: [`00-15-5D-${hexPad((host >>> 16) & 255, 2)}-${hexPad((host >>> 8) & 255, 2)}-${hexPad(host & 255, 2)}`.toUpperCase()],
    tmid: undefined,
    token: undefined,
    state: 'idle',
    sock: undefined,
    connId: 0,
    holdsSlot: false,
    reader: undefined,
    handshake: undefined,
    accept: '',
    deadline: 0,
    nextSeq: 1,
    batchCounter: 0,
    poolCursor: (Math.imul(index + 1, 0x9e3779b1) >>> 0) % builder.pool.count,
    fraction: ((index * 0.618_033_988_75) % 1) * 0.999,
    detAccum: (index * 0.381_966) % 1,
    runCursor: index,
    lastTsMs: Date.now() - cfg.batchIntervalMs,
    outstanding: new Map(),
    outstandingEvents: 0,
    queue: [],
    qHead: 0,
    inflight: 0,
    window: cfg.maxUnackedBatches,
    hbIntervalMs: cfg.hbIntervalMs ?? 30_000,
    maxBatchEvents: cfg.maxBatchEvents,
    lastHbAt: 0,
    attempt: 0,
    reconnectTimer: undefined,
    fatal: false,
    inventorySent: false,
    version: '3.2.1',
    downUntil: 0,
    logonAccum: (index * 0.137_913) % 1,
    usbAccum: (index * 0.271_828) % 1,
  };
}

function inventory(): Record<string, unknown> {
  return {
    t: 'inv',
    model: 'OptiPlex 7090',
    manufacturer: 'Dell Inc.',
    osVersion: '10.0.22631.3296',
    drives: [{ letter: 'C:', type: 'fixed', fs: 'NTFS', sizeBytes: 512_110_190_592, freeBytes: 201_000_000_000, bitlocker: true }],
    usb: [{ vendorId: '046d', productId: 'c534', vendor: 'Logitech', model: 'Unifying Receiver', type: 'hid' }],
    apps: [
      { name: 'Google Chrome', version: '122.0.6261.129', publisher: 'Google LLC' },
      { name: 'Microsoft 365 Apps for enterprise - ja-jp', version: '16.0.17328.20162', publisher: 'Microsoft Corporation' },
      { name: '7-Zip 23.01 (x64)', version: '23.01', publisher: 'Igor Pavlov' },
    ],
    windowsUpdate: { lastSearchAt: Date.now() - 3_600_000, lastInstalledAt: Date.now() - 5 * 86_400_000, pendingReboot: false, pending: [] },
  };
}

// ---------------------------------------------------------------------------
// Commands from the parent
// ---------------------------------------------------------------------------

function shutdown(code: number): void {
  stopped = true;
  if (ringTimer) clearInterval(ringTimer);
  if (sweepTimer) clearInterval(sweepTimer);
  if (reportTimer) clearInterval(reportTimer);
  if (dropoutTimer) clearInterval(dropoutTimer);
  for (const a of agents) {
    if (a.reconnectTimer) clearTimeout(a.reconnectTimer);
    a.sock?.destroy();
  }
  setTimeout(() => process.exit(code), 100).unref();
}

function onMessage(msg: ParentMessage): void {
  switch (msg.type) {
    case 'start': {
      cfg = msg.config;
      eventsPerAgentPerSec = cfg.eventsPerAgentPerSec;
      maskByte = randomMaskByte();
      const pool = buildEventPool({ seed: cfg.seed, events: cfg.poolEvents, maskByte, ...(cfg.eventMix ? { mix: cfg.eventMix } : {}) });
      const runs = cfg.detectionRate > 0 ? buildDetectionRuns(cfg.seed + cfg.clientIndex, 32, maskByte) : [];
      const fleet = cfg.fleet;
      const extras: EncodedEvents[] = [];
      if (fleet?.logonBursts !== undefined || fleet?.usbInsertions !== undefined) {
        const built = buildFleetExtras(fleet.logonBursts?.size ?? 12, maskByte);
        if (fleet.logonBursts !== undefined) {
          extraLogonBurst = extras.push(built.logonBurst) - 1;
          logonBurstsPerBatch = (fleet.logonBursts.perAgentPerHour * cfg.batchIntervalMs) / 3_600_000;
        }
        if (fleet.usbInsertions !== undefined) {
          extraUsbInsertion = extras.push(built.usbInsertion) - 1;
          usbInsertionsPerBatch = (fleet.usbInsertions.perAgentPerHour * cfg.batchIntervalMs) / 3_600_000;
        }
      }
      builder = createBatchFrameBuilder(pool, runs, maskByte, extras);
      hbFrame = maskedFrame(encode({ t: 'hb' }), maskByte);
      inventoryFrame = maskedFrame(encode(inventory()), maskByte);
      agents = Array.from({ length: cfg.agentCount }, (_, k) => createAgent(cfg.agentFrom + k));
      sweepTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
      reportTimer = setInterval(() => report(), REPORT_INTERVAL_MS);
      startRing();
      send({ type: 'ready', clientIndex: cfg.clientIndex, poolEvents: pool.count, poolBytes: pool.bytes.length, poolMix: pool.mix, detectionRuns: runs.length });
      return;
    }
    case 'connect':
      connectTracking = track('connected', Math.max(60_000, cfg.helloTimeoutMs * 6));
      for (const a of agents) requestConnect(a);
      return;
    case 'generate':
      generating = msg.on;
      // Dropouts happen while the fleet generates, so the final drain finds every agent back.
      if (generating && cfg.fleet?.dropouts !== undefined && dropoutTimer === undefined) dropoutTimer = setInterval(dropoutRound, cfg.fleet.dropouts.everySec * 1000);
      if (!generating && dropoutTimer !== undefined) {
        clearInterval(dropoutTimer);
        dropoutTimer = undefined;
      }
      if (generating && cfg.mode === 'closed') for (const a of agents) if (a.state === 'ready') (fillClosedWindow(a), pump(a));
      return;
    case 'rate':
      eventsPerAgentPerSec = msg.eventsPerAgentPerSec;
      return;
    case 'snapshot':
      report(msg.tag);
      return;
    case 'outage': {
      suspended = true;
      for (const a of agents) {
        if (a.reconnectTimer) clearTimeout(a.reconnectTimer);
        a.reconnectTimer = undefined;
        if (a.state === 'queued') a.state = 'idle';
        a.sock?.destroy();
      }
      setTimeout(() => {
        if (stopped) return;
        suspended = false;
        connectTracking = track('reconnected', msg.reconnectTimeoutMs);
        for (const a of agents) requestConnect(a);
      }, msg.durationMs);
      return;
    }
    case 'drain': {
      const done = (complete: boolean): void => {
        drainWaiter = undefined;
        clearTimeout(timer);
        send({ type: 'drained', clientIndex: cfg.clientIndex, complete, unackedBatches: counters.unackedBatches });
      };
      const timer = setTimeout(() => done(false), msg.timeoutMs);
      if (counters.unackedBatches === 0) done(true);
      else drainWaiter = () => done(true);
      return;
    }
    case 'close':
      report();
      shutdown(0);
      return;
  }
}

process.on('message', (msg: ParentMessage) => {
  try {
    onMessage(msg);
  } catch (err) {
    send({ type: 'failed', clientIndex: cfg?.clientIndex ?? -1, message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    shutdown(1);
  }
});
// The runner went away: never outlive it.
process.on('disconnect', () => shutdown(1));
