/**
 * The agent protocol client (SPEC §3, docs/PROTOCOL.md): one device's link to
 * a kiseki agent endpoint, shared by the simulator (`kiseki simulate`), the
 * Sysmon import and `kiseki detect`. It says `hello` (enrolling with a tenant
 * key, or as a TMID with its token), reads the `welcome`, keeps at most
 * `min(maxUnacked, policy.maxUnackedBatches)` batches unacked in flight and
 * queues the rest, sends heartbeats at the policy's interval, hands `cmd`
 * frames to a handler and answers with `cmdr`, and on any lost connection
 * reconnects with exponential backoff (jittered) and resends every unacked
 * batch with the same id and bytes, in the order they were queued. Given
 * several endpoints (ingest nodes of one cluster), each reconnect goes to the
 * next one in the list, so an agent whose ingest node died moves to a
 * surviving one with its unacked batches.
 *
 * Server `error` frames are either retryable (the server is stopping, could
 * not commit, or timed the hello out: a new connection may succeed) or fatal
 * (bad credentials, a frame the server will never take): a fatal one stops
 * the client with a KisekiError, as does giving up after `maxAttempts`
 * connections in a row that delivered nothing.
 *
 * The load generator (bench/load/load-generator-client.ts) does not use this
 * client on purpose: it speaks the same protocol over raw sockets with
 * pre-encoded frames so that it costs far less CPU than the server it measures.
 */
import { Encoder, decode } from '@msgpack/msgpack';
import WebSocket, { type RawData } from 'ws';
import type { AgentPolicy, CommandFrame, CommandResultFrame, TrailEvent } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';

/** What an agent tells the server about its PC in `hello`. */
export interface HelloFacts {
  computer: string;
  agentVersion: string;
  os: string;
  ips: string[];
  macs: string[];
}

/** How the device authenticates: TMID + token when it has them, else the tenant's enrollment key. */
export interface AgentCredentials {
  tmid?: string;
  token?: string;
  enrollKey?: string;
}

/** A batch to deliver; `events[i].seq` must be `first + i` (the server checks). */
export interface OutgoingBatch {
  /** 32 lowercase hex characters; the same id on every resend. */
  id: string;
  first: number;
  last: number;
  events: TrailEvent[];
}

/** A queued batch as the handlers see it. */
export interface QueuedBatch {
  readonly id: string;
  readonly first: number;
  readonly last: number;
  /** Events in the batch (`last - first + 1`). */
  readonly count: number;
}

/** The server's `welcome`, checked. */
export interface WelcomeInfo {
  tmid: string;
  /** Present on enrollment only: keep it, the server stores only its hash. */
  token?: string;
  /** True when this welcome enrolled the device. */
  enrolled: boolean;
  /** One past the highest seq the server holds for the device. */
  nextSeq: number;
  policy: AgentPolicy;
  /** Unacked batches allowed in flight on this connection. */
  window: number;
}

/** The outcome of a command, sent back as `cmdr` after the immediate `acknowledged`. */
export type CommandOutcome = { status: 'done'; result?: Record<string, unknown> } | { status: 'failed'; error: string };

/** Callbacks of {@link createProtocolClient}; all optional, all called synchronously. */
export interface ProtocolClientHandlers {
  /** After every welcome, before unacked batches are resent: the place to queue batches or send an inventory. */
  onWelcome?(welcome: WelcomeInfo): void;
  /** A batch was written to the socket; `resend` when it had been sent on an earlier connection. */
  onSent?(batch: QueuedBatch, resend: boolean): void;
  /** A queued batch was acked; `latencyMs` runs from its send on this connection (undefined when it was not sent on it). */
  onAck?(batch: QueuedBatch, ack: { dup: boolean; latencyMs: number | undefined }): void;
  /**
   * A `cmd` frame. The client answers `acknowledged` at once, then the outcome
   * as `cmdr`. Without a handler commands are not answered (they stay queued
   * at the server, as for a device that runs no agent).
   */
  onCommand?(command: CommandFrame): CommandOutcome | Promise<CommandOutcome>;
  /** A `policy` frame: the tenant's fleet policy changed (the same map as `welcome.policy.fleet`). */
  onPolicy?(fleet: Record<string, unknown>): void;
  /** An `error` frame (the server closes right after). */
  onServerError?(code: string, message: string, retryable: boolean): void;
  /** A frame the client could not use: `client_text_frame`, `client_undecodable_frame`, `client_unexpected_frame`, `client_stray_ack`. */
  onFrameProblem?(reason: string): void;
  /** A connection ended; `reconnect` tells whether another attempt is scheduled. */
  onDisconnect?(info: { welcomed: boolean; code: number; reconnect: boolean }): void;
  /** The client stopped for good (fatal error frame, gave up, unreachable). */
  onFailed?(err: KisekiError): void;
}

/** Options of {@link createProtocolClient}. */
export interface ProtocolClientOptions {
  /**
   * Agent endpoint, e.g. `ws://127.0.0.1:9100/agent/v1`, or several (ingest
   * nodes serving the same fleet): the first connection goes to the first,
   * and every reconnect to the next one, round robin.
   */
  url: string | readonly string[];
  credentials: AgentCredentials;
  facts: HelloFacts;
  /** Upper bound on unacked batches in flight; the server's `maxUnackedBatches` wins if smaller. Default 8. */
  maxUnacked?: number;
  /** Longest wait from opening a connection to its `welcome`, ms. Default 10,000. */
  helloTimeoutMs?: number;
  /** Longest wait for the next ack while batches are in flight, ms, before the connection is dropped and retried. Default: none (the server delays acks on purpose when it is behind). */
  ackTimeoutMs?: number;
  /** First reconnect delay ceiling, ms; doubled per attempt up to `maxReconnectDelayMs`. Default 100. */
  reconnectDelayMs?: number;
  /** Reconnect delay ceiling, ms. Default 5,000. */
  maxReconnectDelayMs?: number;
  /** Connections in a row that deliver nothing (no ack, or no welcome when nothing is queued) before the client gives up. Default: never. */
  maxAttempts?: number;
  /** Fail with ERR_AGENT_UNREACHABLE when the first connection to each endpoint cannot be opened (a CLI talking to a server that is not running). Default false. */
  failFastWhenUnreachable?: boolean;
  /** When batches are MessagePack-encoded: at `enqueue` (holds bytes, not objects, while buffered) or at first send. Default `enqueue`. */
  encodeAt?: 'enqueue' | 'send';
  /** Limits connections in their handshake (open → welcome) across many clients. */
  gate?: ConnectGate;
  /** Source of randomness for reconnect jitter, in [0, 1). Default Math.random. */
  random?: () => number;
  handlers?: ProtocolClientHandlers;
  /** Receives sentences about notable events (connection lost, no welcome in time); default silent. */
  log?: (message: string, details?: Record<string, unknown>) => void;
}

/** Counters of one client since it was created. */
export interface ProtocolClientStats {
  /** Connections opened or attempted. */
  connections: number;
  /** Reconnects scheduled after a lost or failed connection. */
  reconnects: number;
  /** Connections that ended before their welcome. */
  connectFailures: number;
  /** Distinct batches sent at least once. */
  batchesSent: number;
  /** Sends of a batch after its first connection. */
  batchesResent: number;
  batchesAcked: number;
  eventsAcked: number;
  /** Acks with `dup: true`: batches the server already held. */
  duplicateAcks: number;
  /** Acks for ids the client no longer (or never) held. */
  strayAcks: number;
  /** Server `error` frames by code. */
  errors: Record<string, number>;
}

/** One device's protocol client. */
export interface ProtocolClient {
  /** Starts connecting (once). */
  start(): void;
  /** Queues a batch; it goes out as soon as the window allows, and again after every reconnect until acked. An id already queued is ignored. */
  enqueue(batch: OutgoingBatch): void;
  /** Sends a non-batch frame (`inv`, `hb`) if a welcomed connection is open; returns whether it was sent. */
  send(frame: Record<string, unknown> & { t: string }): boolean;
  /** Batches and events queued and not yet acked (sent or not). */
  unacked(): { batches: number; events: number };
  /** True while a welcomed connection is open. */
  readonly connected: boolean;
  /** The error that stopped the client, if any. */
  readonly failure: KisekiError | undefined;
  /** The latest welcome, if any. */
  readonly welcome: WelcomeInfo | undefined;
  stats(): ProtocolClientStats;
  /** Resolves once a welcome was received and nothing is unacked; rejects when the client fails or is closed first. */
  drained(): Promise<void>;
  /** Stops reconnecting, closes the socket (1000) and resolves when it is closed; bounded by ~3 s. */
  close(): Promise<void>;
  /**
   * Restarts the agent as after an upgrade: later hellos carry `facts`
   * (e.g. a new `agentVersion`), and the open connection is closed (1000)
   * so that the next one introduces the device with them; unacked batches
   * are resent as after any reconnect.
   */
  restart(facts: Partial<HelloFacts>): void;
}

/** Limits how many connections are in their handshake at once. */
export interface ConnectGate {
  acquire(): Promise<void>;
  release(): void;
  /** Lets every waiter through (at shutdown: they see that their client stopped and release). */
  openAll(): void;
}

/** Protocol error codes after which a new connection may succeed; every other code is final. */
// superseded: another connection with this device's token took over; reconnecting takes it back, so a
// copied token cannot keep the real device away (docs/PROTOCOL.md, one live connection per device).
export const RETRYABLE_ERROR_CODES: ReadonlySet<string> = new Set(['server_shutting_down', 'internal_error', 'hello_timeout', 'superseded', 'storage_unavailable']);

/** Used when a welcome carries no usable policy (docs/PROTOCOL.md defaults). */
export const DEFAULT_POLICY: Readonly<AgentPolicy> = Object.freeze({ batchIntervalMs: 1000, maxBatchEvents: 5000, maxUnackedBatches: 8, hbIntervalMs: 30_000 });

/** Longest wait for a socket to close after `close()`, ms, before it is terminated. */
const CLOSE_GRACE_MS = 2000;
/** Server frames larger than this are refused by the socket (the server sends small frames). */
const MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024;

// One encoder for every client: encoding is synchronous and encode() returns a copy.
const encoder = new Encoder({ ignoreUndefined: true });

interface Pending extends QueuedBatch {
  frame: OutgoingBatch | undefined;
  bytes: Uint8Array | undefined;
  everSent: boolean;
  /** Connection it was last sent on (0: none). */
  connId: number;
  /** performance.now() of its send on that connection. */
  sentAtPerfMs: number;
}

/** A gate letting `max` handshakes run at once; the others wait in order. */
export function createConnectGate(max: number): ConnectGate {
  let active = 0;
  let open = false;
  const waiters: Array<() => void> = [];
  let head = 0;
  return {
    acquire() {
      if (open || active < max) {
        active++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    release() {
      if (head < waiters.length) {
        // The slot passes straight to the next waiter; `active` stays the same.
        const next = waiters[head] as () => void;
        waiters[head++] = () => undefined;
        if (head > 1024 && head * 2 > waiters.length) {
          waiters.splice(0, head);
          head = 0;
        }
        next();
      } else if (active > 0) active--;
    },
    openAll() {
      open = true;
      while (head < waiters.length) {
        const next = waiters[head++] as () => void;
        active++;
        next();
      }
    },
  };
}

function isPolicy(v: unknown): v is AgentPolicy {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return typeof p.maxUnackedBatches === 'number' && typeof p.hbIntervalMs === 'number' && typeof p.maxBatchEvents === 'number';
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function encodeBatch(b: OutgoingBatch): Uint8Array {
  return encoder.encode({ t: 'batch', id: b.id, sentAt: Date.now(), first: b.first, last: b.last, events: b.events });
}

/**
 * Creates the protocol client of one device. Nothing happens until `start()`.
 *
 * Bounds: a connection without a welcome after `helloTimeoutMs` (10 s) is
 * dropped; with `ackTimeoutMs` set, so is one whose acks stall that long;
 * `close()` takes at most ~3 s.
 */
export function createProtocolClient(options: ProtocolClientOptions): ProtocolClient {
  const handlers = options.handlers ?? {};
  const log = options.log ?? (() => undefined);
  const random = options.random ?? Math.random;
  const maxUnacked = Math.max(1, Math.floor(options.maxUnacked ?? 8));
  const helloTimeoutMs = Math.max(100, options.helloTimeoutMs ?? 10_000);
  const ackTimeoutMs = options.ackTimeoutMs;
  const backoffStartMs = Math.max(1, options.reconnectDelayMs ?? 100);
  const backoffCapMs = Math.max(backoffStartMs, options.maxReconnectDelayMs ?? 5000);
  const maxAttempts = options.maxAttempts ?? Infinity;
  const encodeAtEnqueue = (options.encodeAt ?? 'enqueue') === 'enqueue';
  const computer = options.facts.computer;
  const urls: readonly string[] = typeof options.url === 'string' ? [options.url] : [...options.url];
  /** The endpoint of the current (or next) connection; moves on after every closed connection. */
  let urlIndex = 0;
  /** Whether any connection ever opened (fail-fast applies only while none has). */
  let everOpened = false;
  /** What hello says; `restart` changes it. */
  let facts: HelloFacts = { ...options.facts };
  let { tmid, token } = options.credentials;

  const stats: ProtocolClientStats = {
    connections: 0,
    reconnects: 0,
    connectFailures: 0,
    batchesSent: 0,
    batchesResent: 0,
    batchesAcked: 0,
    eventsAcked: 0,
    duplicateAcks: 0,
    strayAcks: 0,
    errors: {},
  };

  /** Every queued, unacked batch, in queue order. */
  const pending = new Map<string, Pending>();
  let pendingEvents = 0;
  /** Batches to send on the current connection, in order (acked ones are skipped). */
  let toSend: Pending[] = [];
  let toSendHead = 0;
  let inflight = 0;
  let window = maxUnacked;
  /** True while the welcome handler runs. */
  let holdPump = false;

  let ws: WebSocket | undefined;
  let connId = 0;
  let welcomed = false;
  let welcome: WelcomeInfo | undefined;
  let holdsSlot = false;
  let started = false;
  let stopped = false;
  let failure: KisekiError | undefined;
  /** Backoff exponent; reset by a welcome. */
  let backoffAttempt = 0;
  /** Connections in a row that delivered nothing; reset by an ack. */
  let fruitless = 0;
  let lastProblem = '';
  let helloTimer: NodeJS.Timeout | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let hbTimer: NodeJS.Timeout | undefined;
  let ackTimer: NodeJS.Timeout | undefined;
  let closedResolve: (() => void) | undefined;
  const drainWaiters: Array<{ resolve: () => void; reject: (err: KisekiError) => void }> = [];

  function releaseSlot(): void {
    if (holdsSlot) {
      holdsSlot = false;
      options.gate?.release();
    }
  }

  function sendFrame(frame: unknown): boolean {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encoder.encode(frame), { binary: true });
    return true;
  }

  function clearConnectionTimers(): void {
    if (helloTimer) clearTimeout(helloTimer);
    if (hbTimer) clearInterval(hbTimer);
    if (ackTimer) clearTimeout(ackTimer);
    helloTimer = hbTimer = ackTimer = undefined;
  }

  function settleDrainWaiters(): void {
    if (failure !== undefined) {
      for (const w of drainWaiters.splice(0)) w.reject(failure);
    } else if (welcome !== undefined && pending.size === 0) {
      for (const w of drainWaiters.splice(0)) w.resolve();
    }
  }

  function fail(err: KisekiError): void {
    if (failure !== undefined) return;
    failure = err;
    stopped = true;
    if (reconnectTimer) clearTimeout(reconnectTimer);
    reconnectTimer = undefined;
    clearConnectionTimers();
    const sock = ws;
    if (sock && sock.readyState !== WebSocket.CLOSED) {
      try {
        sock.close(1000);
      } catch {
        sock.terminate();
      }
    }
    settleDrainWaiters();
    handlers.onFailed?.(err);
  }

  async function connect(): Promise<void> {
    if (stopped) return;
    if (options.gate) {
      await options.gate.acquire();
      holdsSlot = true;
      if (stopped) {
        releaseSlot();
        return;
      }
    }
    const id = ++connId;
    stats.connections++;
    const url = urls[urlIndex];
    if (url === undefined) {
      releaseSlot();
      fail(new KisekiError('ERR_AGENT_UNREACHABLE', { url: '', problem: 'no endpoint URL given' }));
      return;
    }
    let sock: WebSocket;
    try {
      sock = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: helloTimeoutMs, maxPayload: MAX_SERVER_FRAME_BYTES });
    } catch (err) {
      releaseSlot();
      fail(new KisekiError('ERR_AGENT_UNREACHABLE', { url, problem: `not a WebSocket URL (${(err as Error).message})` }));
      return;
    }
    ws = sock;
    sock.binaryType = 'nodebuffer';
    let opened = false;
    let openError: (Error & { code?: string }) | undefined;
    helloTimer = setTimeout(() => {
      if (ws === sock && !welcomed) {
        lastProblem = `no welcome within ${helloTimeoutMs} ms`;
        log('No welcome in time; reconnecting.', { computer });
        sock.terminate();
      }
    }, helloTimeoutMs);
    sock.on('open', () => {
      if (ws !== sock) return;
      opened = true;
      everOpened = true;
      const hello: Record<string, unknown> = { t: 'hello', ...facts };
      if (tmid !== undefined && token !== undefined) {
        hello.tmid = tmid;
        hello.token = token;
      } else if (options.credentials.enrollKey !== undefined) hello.enrollKey = options.credentials.enrollKey;
      sendFrame(hello);
    });
    sock.on('message', (data: RawData, isBinary: boolean) => {
      if (ws !== sock || id !== connId) return;
      if (!isBinary) {
        handlers.onFrameProblem?.('client_text_frame');
        return;
      }
      let frame: unknown;
      try {
        frame = decode(toBuffer(data));
      } catch {
        handlers.onFrameProblem?.('client_undecodable_frame');
        return;
      }
      if (typeof frame !== 'object' || frame === null || Array.isArray(frame) || typeof (frame as { t?: unknown }).t !== 'string') {
        handlers.onFrameProblem?.('client_unexpected_frame');
        return;
      }
      onFrame(frame as Record<string, unknown> & { t: string });
    });
    sock.on('error', (err: Error) => {
      if (ws !== sock) return;
      if (!opened) openError = err;
      lastProblem = err.message;
      log('Agent connection failed.', { computer, error: err.message });
    });
    sock.on('close', (code: number) => {
      if (ws !== sock) return;
      ws = undefined;
      clearConnectionTimers();
      const wasWelcomed = welcomed;
      welcomed = false;
      inflight = 0;
      releaseSlot();
      if (!wasWelcomed) stats.connectFailures++;
      if (closedResolve) closedResolve();
      // Fail fast only once every endpoint was tried and none opened (one connection with a single URL, as before).
      if (!everOpened && stats.connections === urls.length && options.failFastWhenUnreachable && failure === undefined) {
        const reason = openError?.code ?? openError?.message ?? `closed (${code})`;
        fail(new KisekiError('ERR_AGENT_UNREACHABLE', { url: urls.join(','), problem: reason }));
      }
      // The next attempt goes to the next endpoint, so a dead one is not retried before the others.
      urlIndex = (urlIndex + 1) % urls.length;
      lastProblem ||= `the connection closed (${code})`;
      fruitless++;
      const reconnect = !stopped && fruitless < maxAttempts;
      handlers.onDisconnect?.({ welcomed: wasWelcomed, code, reconnect });
      if (reconnect) {
        log('Agent connection closed; reconnecting.', { computer, code, ...(urls.length > 1 ? { next: urls[urlIndex] } : {}) });
        scheduleReconnect();
      } else if (!stopped) {
        fail(new KisekiError('ERR_AGENT_GAVE_UP', { url: urls.join(','), attempts: fruitless, lastProblem }));
      }
    });
  }

  function scheduleReconnect(): void {
    if (stopped || reconnectTimer) return;
    backoffAttempt++;
    const ceiling = Math.min(backoffCapMs, backoffStartMs * 2 ** Math.min(backoffAttempt - 1, 16));
    // Equal jitter: agents that lost the same server do not come back in step.
    const delay = ceiling / 2 + random() * (ceiling / 2);
    stats.reconnects++;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      lastProblem = '';
      void connect();
    }, delay);
  }

  function onFrame(frame: Record<string, unknown> & { t: string }): void {
    switch (frame.t) {
      case 'ack':
        if (typeof frame.id === 'string') onAck(frame.id, frame.dup === true);
        else handlers.onFrameProblem?.('client_unexpected_frame');
        return;
      case 'welcome':
        onWelcome(frame);
        return;
      case 'error': {
        const code = typeof frame.code === 'string' ? frame.code : 'unknown';
        const message = typeof frame.message === 'string' ? frame.message : '';
        const retryable = RETRYABLE_ERROR_CODES.has(code);
        stats.errors[code] = (stats.errors[code] ?? 0) + 1;
        lastProblem = `the server refused: ${code}${message === '' ? '' : ` (${message})`}`;
        log('Agent received an error frame.', { computer, code, message });
        handlers.onServerError?.(code, message, retryable);
        if (!retryable) fail(new KisekiError('ERR_AGENT_REJECTED', { url: urls[urlIndex] ?? '', code, message }));
        // The server closes after an error frame; closing from this side too means a server that does not cannot stall the client.
        else ws?.close(1000);
        return;
      }
      case 'hb':
        return;
      case 'cmd':
        onCommand(frame as unknown as CommandFrame);
        return;
      case 'policy':
        if (typeof frame.fleet === 'object' && frame.fleet !== null) handlers.onPolicy?.(frame.fleet as Record<string, unknown>);
        else handlers.onFrameProblem?.('client_unexpected_frame');
        return;
      default:
        handlers.onFrameProblem?.('client_unexpected_frame');
    }
  }

  function onWelcome(frame: Record<string, unknown>): void {
    if (welcomed) return;
    if (typeof frame.tmid !== 'string') {
      handlers.onFrameProblem?.('client_unexpected_frame');
      return;
    }
    if (helloTimer) clearTimeout(helloTimer);
    helloTimer = undefined;
    releaseSlot();
    welcomed = true;
    backoffAttempt = 0;
    const enrolled = tmid === undefined || tmid !== frame.tmid;
    tmid = frame.tmid;
    if (typeof frame.token === 'string') token = frame.token;
    else if (enrolled) log('Enrollment welcome carried no token; later reconnects will fail.', { computer });
    const policy = isPolicy(frame.policy) ? frame.policy : { ...DEFAULT_POLICY };
    window = Math.max(1, Math.min(maxUnacked, policy.maxUnackedBatches));
    const nextSeq = typeof frame.nextSeq === 'number' && Number.isSafeInteger(frame.nextSeq) && frame.nextSeq >= 1 ? frame.nextSeq : 1;
    welcome = { tmid, ...(typeof frame.token === 'string' ? { token: frame.token } : {}), enrolled, nextSeq, policy, window };
    if (policy.hbIntervalMs > 0) {
      hbTimer = setInterval(() => sendFrame({ t: 'hb', ts: Date.now() }), Math.max(1000, policy.hbIntervalMs));
      hbTimer.unref();
    }
    // Nothing queued means nothing to deliver: the welcome itself is the progress.
    if (pending.size === 0) fruitless = 0;
    // Batches queued by the handler go out with the resends below, in queue order, not from inside enqueue().
    holdPump = true;
    try {
      handlers.onWelcome?.(welcome);
    } finally {
      holdPump = false;
    }
    if (stopped) return;
    // Resend every unacked batch, same id and bytes, in queue order, then go on.
    toSend = [...pending.values()];
    toSendHead = 0;
    inflight = 0;
    pump();
    settleDrainWaiters();
  }

  function onAck(id: string, dup: boolean): void {
    const b = pending.get(id);
    if (!b) {
      stats.strayAcks++;
      handlers.onFrameProblem?.('client_stray_ack');
      return;
    }
    pending.delete(id);
    pendingEvents -= b.count;
    fruitless = 0;
    let latencyMs: number | undefined;
    if (b.connId === connId && b.everSent) {
      inflight--;
      latencyMs = performance.now() - b.sentAtPerfMs;
      armAckTimer();
    }
    stats.batchesAcked++;
    stats.eventsAcked += b.count;
    if (dup) stats.duplicateAcks++;
    b.frame = undefined;
    b.bytes = undefined;
    handlers.onAck?.(b, { dup, latencyMs });
    pump();
    if (pending.size === 0) settleDrainWaiters();
  }

  function armAckTimer(): void {
    if (ackTimeoutMs === undefined) return;
    if (inflight === 0) {
      if (ackTimer) clearTimeout(ackTimer);
      ackTimer = undefined;
      return;
    }
    if (ackTimer) {
      ackTimer.refresh();
      return;
    }
    const sock = ws;
    ackTimer = setTimeout(() => {
      ackTimer = undefined;
      if (ws !== sock || !sock) return;
      lastProblem = `no ack within ${ackTimeoutMs} ms`;
      log('No ack in time; reconnecting.', { computer });
      sock.terminate();
    }, ackTimeoutMs);
  }

  function pump(): void {
    const sock = ws;
    if (holdPump || !welcomed || !sock || sock.readyState !== WebSocket.OPEN) return;
    let sentAny = false;
    while (inflight < window && toSendHead < toSend.length) {
      const b = toSend[toSendHead] as Pending;
      toSendHead++;
      if (!pending.has(b.id)) continue;
      if (b.bytes === undefined) {
        b.bytes = encodeBatch(b.frame as OutgoingBatch);
        b.frame = undefined;
      }
      sock.send(b.bytes, { binary: true });
      b.connId = connId;
      b.sentAtPerfMs = performance.now();
      inflight++;
      sentAny = true;
      const resend = b.everSent;
      if (resend) stats.batchesResent++;
      else {
        b.everSent = true;
        stats.batchesSent++;
      }
      handlers.onSent?.(b, resend);
    }
    if (toSendHead > 256 && toSendHead * 2 > toSend.length) {
      toSend = toSend.slice(toSendHead);
      toSendHead = 0;
    }
    if (sentAny || inflight === 0) armAckTimer();
  }

  function onCommand(frame: CommandFrame): void {
    const handler = handlers.onCommand;
    if (handler === undefined || typeof frame.id !== 'string') return;
    const reply = (r: Omit<CommandResultFrame, 't' | 'id'>): void => {
      sendFrame({ t: 'cmdr', id: frame.id, ...r });
    };
    reply({ status: 'acknowledged' });
    const settle = (outcome: CommandOutcome): void => {
      if (outcome.status === 'done') reply(outcome.result === undefined ? { status: 'done' } : { status: 'done', result: outcome.result });
      else reply({ status: 'failed', error: outcome.error });
    };
    let outcome: CommandOutcome | Promise<CommandOutcome>;
    try {
      outcome = handler(frame);
    } catch (err) {
      settle({ status: 'failed', error: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (outcome instanceof Promise) outcome.then(settle, (err: unknown) => settle({ status: 'failed', error: err instanceof Error ? err.message : String(err) }));
    else settle(outcome);
  }

  return {
    start() {
      if (started) return;
      started = true;
      void connect();
    },
    enqueue(batch) {
      // Queuing an id twice would count its events twice and send it twice: the first copy wins.
      if (pending.has(batch.id)) return;
      const count = batch.last - batch.first + 1;
      const b: Pending = {
        id: batch.id,
        first: batch.first,
        last: batch.last,
        count,
        frame: encodeAtEnqueue ? undefined : batch,
        bytes: encodeAtEnqueue ? encodeBatch(batch) : undefined,
        everSent: false,
        connId: 0,
        sentAtPerfMs: 0,
      };
      pending.set(b.id, b);
      pendingEvents += count;
      // Without a welcomed connection there is nothing to send on; the next welcome queues everything pending.
      if (welcomed) {
        toSend.push(b);
        pump();
      }
    },
    send(frame) {
      return welcomed ? sendFrame(frame) : false;
    },
    unacked() {
      return { batches: pending.size, events: pendingEvents };
    },
    get connected() {
      return welcomed;
    },
    get failure() {
      return failure;
    },
    get welcome() {
      return welcome;
    },
    stats() {
      return { ...stats, errors: { ...stats.errors } };
    },
    drained() {
      return new Promise<void>((resolve, reject) => {
        drainWaiters.push({ resolve, reject });
        settleDrainWaiters();
      });
    },
    restart(next) {
      facts = { ...facts, ...next };
      const sock = ws;
      if (stopped || !sock) return;
      try {
        sock.close(1000, 'agent restarting');
      } catch {
        sock.terminate();
      }
    },
    async close() {
      stopped = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      settleDrainWaiters();
      const closedEarly = new KisekiError('ERR_AGENT_CLOSED', { url: urls.join(','), batchesUnacked: pending.size });
      for (const w of drainWaiters.splice(0)) w.reject(closedEarly);
      const sock = ws;
      if (!sock) return;
      const closed = new Promise<void>((resolve) => {
        closedResolve = resolve;
      });
      const grace = setTimeout(() => sock.terminate(), CLOSE_GRACE_MS);
      try {
        sock.close(1000, 'agent closing');
      } catch {
        sock.terminate();
      }
      // 'close' always follows terminate(); the extra timer only guards against a missed event.
      let hardStop: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (hardStop = setTimeout(resolve, CLOSE_GRACE_MS + 1000)))]);
      clearTimeout(grace);
      clearTimeout(hardStop);
    },
  };
}

/**
 * Checks that something speaking WebSocket listens at `url`, then closes.
 * @throws KisekiError ERR_AGENT_UNREACHABLE with the url and the socket's reason.
 */
export async function probeAgentEndpoint(url: string, timeoutMs = 5000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    } catch (err) {
      reject(new KisekiError('ERR_AGENT_UNREACHABLE', { url, problem: `not a WebSocket URL (${(err as Error).message})` }));
      return;
    }
    ws.once('open', () => {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      ws.close(1000);
      resolve();
    });
    ws.once('error', (err: Error & { code?: string }) => reject(new KisekiError('ERR_AGENT_UNREACHABLE', { url, problem: err.code ?? err.message })));
  });
}
