/**
 * The parent side of the load generator: forks as many client processes as
 * the fleet needs (the open-file limit is per process, so ~9,000 agents per
 * process by default), splits the agents between them, each on its own
 * loopback source address (127.0.0.2, .3, …) so their ephemeral ports never
 * collide, and drives them together: connect, generate on/off, change the
 * rate, cut the network for an outage, drain, close. Client reports arrive
 * once a second; `snapshot()` asks every client for an immediate one, so
 * measurement windows start and end at exact moments and the latency
 * histograms between two snapshots belong to exactly that window. With
 * several endpoints (a cluster's ingest nodes) the processes are spread over
 * them round robin (`planClients`).
 *
 * Every wait is bounded, and `close()` kills whatever does not exit in time.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createLatencyHistogram, type LatencyHistogram } from './latency-histogram.js';
import { emptyCounters, type ClientConfig, type ClientCounters, type ClientMessage, type ClientReport, type ParentMessage, type ReconnectReport } from './load-generator-messages.js';
import { KisekiError } from '../../core/errors.js';

/** What the fleet is asked to do; per-process settings are derived from it. */
export interface FleetOptions extends Omit<ClientConfig, 'clientIndex' | 'agentFrom' | 'agentCount' | 'localAddress'> {
  /** Agents in the whole fleet. */
  agents: number;
  /** Client processes; default ceil(agents / agentsPerProcess). */
  processes?: number;
  agentsPerProcess: number;
  /** The client script (dist/bench/load/load-generator-client.js). */
  clientJs: string;
  /** Use 127.0.0.2+ as source addresses (default true). */
  spreadSourceAddresses?: boolean;
  /**
   * Several servers to spread the fleet over (the ingest nodes of a cluster): client process i connects all
   * its agents to `endpoints[i % endpoints.length]` (clientEndpoint). Absent or empty: every process uses `host`
   * and `port`.
   */
  endpoints?: readonly FleetEndpoint[];
}

/** One server the agents connect to. */
export interface FleetEndpoint {
  host: string;
  port: number;
}

/**
 * The server client process `clientIndex` connects its agents to: `endpoints[clientIndex % n]` when the fleet
 * has endpoints, else its `host` and `port`. Round robin over processes, so with as many processes as endpoints
 * (or a multiple) each endpoint gets the same number of processes, and agents (±1 per process).
 */
export function clientEndpoint(clientIndex: number, options: Pick<FleetOptions, 'host' | 'port' | 'endpoints'>): FleetEndpoint {
  const list = options.endpoints ?? [];
  if (list.length === 0) return { host: options.host, port: options.port };
  return list[clientIndex % list.length]!;
}

/** Summed state of the fleet at one moment, plus the latency seen since the previous snapshot. */
export interface FleetSnapshot {
  /** performance.now() when the last client answered, ms. */
  atMs: number;
  counters: ClientCounters;
  /** Send → ack since the previous snapshot. */
  ack: LatencyHistogram;
  /** Creation → ack since the previous snapshot. */
  delivery: LatencyHistogram;
  /** CPU of all client processes since they started, seconds. */
  clientCpuSec: number;
  clientRssBytes: number;
}

/** Connection (or reconnection) timing of the whole fleet. */
export interface ConnectResult {
  agents: number;
  welcomed: number;
  complete: boolean;
  /** From the first client's start to the last welcome, seconds. */
  seconds: number;
  perSec: number;
  backlogBatches: number;
  backlogEvents: number;
  /** When the first client started connecting, ms since the epoch. */
  startedAtMs: number;
}

export interface Fleet {
  readonly processes: number;
  readonly pids: number[];
  /** Pool facts from the clients (events, bytes, mix of the first client). */
  readonly pool: { events: number; bytes: number; mix: Record<string, number>; detectionRuns: number };
  connect(timeoutMs: number): Promise<ConnectResult>;
  generate(on: boolean): void;
  setRate(eventsPerAgentPerSec: number): void;
  snapshot(timeoutMs?: number): Promise<FleetSnapshot>;
  /** The latest periodic reports summed (no waiting), and the send → ack histogram since the last call. */
  progress(): { counters: ClientCounters; recentAck: LatencyHistogram; clientCpuSec: number };
  /** Cuts every connection for `durationMs` while agents keep generating; resolves when all are back (or the timeout). */
  outage(durationMs: number, reconnectTimeoutMs: number): Promise<ConnectResult>;
  /** Waits until nothing is unacked (or the timeout). */
  drain(timeoutMs: number): Promise<{ complete: boolean; unackedBatches: number }>;
  close(): Promise<void>;
  /** Rejects when a client process fails or exits early. */
  readonly failed: Promise<never>;
}


/** Adds `b` into `a` (numbers summed, errors merged). */
export function addCounters(a: ClientCounters, b: ClientCounters): ClientCounters {
  const out = { ...a, errors: { ...a.errors } };
  for (const key of Object.keys(b) as (keyof ClientCounters)[]) {
    if (key === 'errors') continue;
    (out[key] as number) = (a[key] as number) + (b[key] as number);
  }
  for (const [code, n] of Object.entries(b.errors)) out.errors[code] = (out.errors[code] ?? 0) + n;
  return out;
}

/** `b - a` for cumulative counters (gauges keep b's value). */
export function diffCounters(a: ClientCounters, b: ClientCounters): ClientCounters {
  const out = { ...b, errors: { ...b.errors } };
  for (const key of Object.keys(b) as (keyof ClientCounters)[]) {
    if (key === 'errors' || key === 'connected' || key === 'unackedBatches' || key === 'unackedEvents') continue;
    (out[key] as number) = (b[key] as number) - (a[key] as number);
  }
  for (const [code, n] of Object.entries(b.errors)) {
    const d = n - (a.errors[code] ?? 0);
    if (d > 0) out.errors[code] = d;
    else delete out.errors[code];
  }
  return out;
}

/** One client process's share of the fleet. */
export interface ClientPlan {
  clientIndex: number;
  /** Index of its first agent in the fleet, and how many it runs. */
  agentFrom: number;
  agentCount: number;
  endpoint: FleetEndpoint;
}

/**
 * How the fleet is split: the number of processes (`processes`, default enough to keep each under
 * `agentsPerProcess`, never more than one per agent), each process's contiguous range of agents (the first
 * `agents % processes` get one more), and its server (clientEndpoint).
 */
export function planClients(options: Pick<FleetOptions, 'agents' | 'processes' | 'agentsPerProcess' | 'host' | 'port' | 'endpoints'>): ClientPlan[] {
  const processes = Math.max(1, Math.min(options.agents, options.processes ?? Math.ceil(options.agents / options.agentsPerProcess)));
  const perProcess = Math.floor(options.agents / processes);
  const extra = options.agents % processes;
  const out: ClientPlan[] = [];
  let from = 0;
  for (let i = 0; i < processes; i++) {
    const count = perProcess + (i < extra ? 1 : 0);
    out.push({ clientIndex: i, agentFrom: from, agentCount: count, endpoint: clientEndpoint(i, options) });
    from += count;
  }
  return out;
}

/** Forks the client processes, hands each its share, and resolves once every pool is built. */
export async function startFleet(options: FleetOptions, readyTimeoutMs = 60_000): Promise<Fleet> {
  const plan = planClients(options);
  const processes = plan.length;
  const children: ChildProcess[] = [];
  const latest: (ClientReport | undefined)[] = new Array(processes).fill(undefined);
  const listeners = new Set<(m: ClientMessage) => void>();
  let segAck = createLatencyHistogram();
  let segDelivery = createLatencyHistogram();
  let recentAck = createLatencyHistogram();
  let closing = false;
  let failReject: (err: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    failReject = reject;
  });
  failed.catch(() => undefined);

  const onMessage = (m: ClientMessage): void => {
    if (m.type === 'report') {
      latest[m.clientIndex] = m;
      segAck.merge(m.ack);
      segDelivery.merge(m.delivery);
      recentAck.merge(m.ack);
    }
    if (m.type === 'failed') failReject(new KisekiError('ERR_BENCH_FAILED', { reason: 'a load-generator client failed', client: m.clientIndex, message: m.message }));
    for (const l of [...listeners]) l(m);
  };

  /** Resolves with one message per client matching `pick`, or rejects after `timeoutMs`. */
  const collect = <T extends ClientMessage>(pick: (m: ClientMessage) => m is T, timeoutMs: number, what: string): Promise<T[]> =>
    new Promise<T[]>((resolve, reject) => {
      const got = new Map<number, T>();
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new KisekiError('ERR_BENCH_FAILED', { reason: `load generator: ${what} timed out`, timeoutMs, answered: got.size, clients: processes }));
      }, timeoutMs);
      const listener = (m: ClientMessage): void => {
        if (!pick(m)) return;
        got.set(m.clientIndex, m);
        if (got.size === processes) {
          clearTimeout(timer);
          listeners.delete(listener);
          resolve([...got.values()]);
        }
      };
      listeners.add(listener);
      failed.catch((err: unknown) => {
        clearTimeout(timer);
        listeners.delete(listener);
        reject(err instanceof Error ? err : new KisekiError('ERR_BENCH_FAILED', { reason: String(err) }));
      });
    });

  const broadcast = (msg: ParentMessage): void => {
    for (const c of children) if (c.connected) c.send(msg);
  };

  const readyP = collect((m): m is Extract<ClientMessage, { type: 'ready' }> => m.type === 'ready', readyTimeoutMs, 'pool build');
  for (const { clientIndex: i, agentFrom, agentCount, endpoint } of plan) {
    const child = fork(options.clientJs, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=4096'] });
    children.push(child);
    child.on('message', (m: ClientMessage) => onMessage(m));
    child.on('exit', (code, signal) => {
      if (!closing) failReject(new KisekiError('ERR_BENCH_FAILED', { reason: 'a load-generator client exited early', client: i, code, signal }));
    });
    const config: ClientConfig = {
      clientIndex: i,
      host: endpoint.host,
      port: endpoint.port,
      path: options.path,
      ...(options.spreadSourceAddresses === false ? {} : { localAddress: `127.0.0.${2 + (i % 250)}` }),
      enrollKey: options.enrollKey,
      agentFrom,
      agentCount,
      seed: options.seed,
      mode: options.mode,
      eventsPerAgentPerSec: options.eventsPerAgentPerSec,
      batchIntervalMs: options.batchIntervalMs,
      maxBatchEvents: options.maxBatchEvents,
      closedBatchEvents: options.closedBatchEvents,
      maxUnackedBatches: options.maxUnackedBatches,
      maxBufferedBatches: options.maxBufferedBatches,
      detectionRate: options.detectionRate,
      ...(options.hbIntervalMs === undefined ? {} : { hbIntervalMs: options.hbIntervalMs }),
      connectConcurrency: options.connectConcurrency,
      inventoryOnEnroll: options.inventoryOnEnroll,
      ...(options.eventMix ? { eventMix: options.eventMix } : {}),
      poolEvents: options.poolEvents,
      helloTimeoutMs: options.helloTimeoutMs,
      ...(options.fleet === undefined ? {} : { fleet: options.fleet }),
    };
    child.send({ type: 'start', config } satisfies ParentMessage);
  }

  const killAll = async (): Promise<void> => {
    closing = true;
    const exits = children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
        }),
    );
    broadcast({ type: 'close' });
    const grace = setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 3000);
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
    clearTimeout(grace);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };

  let ready: Extract<ClientMessage, { type: 'ready' }>[];
  try {
    ready = await Promise.race([readyP, failed]);
  } catch (err) {
    await killAll();
    throw err;
  }
  const first = ready.find((r) => r.clientIndex === 0) ?? (ready[0] as Extract<ClientMessage, { type: 'ready' }>);

  const sum = (): { counters: ClientCounters; clientCpuSec: number; clientRssBytes: number } => {
    let counters = emptyCounters();
    let cpu = 0;
    let rss = 0;
    for (const r of latest) {
      if (!r) continue;
      counters = addCounters(counters, r.counters);
      cpu += (r.cpuUserUs + r.cpuSystemUs) / 1e6;
      rss += r.rssBytes;
    }
    return { counters, clientCpuSec: cpu, clientRssBytes: rss };
  };

  const toConnectResult = (msgs: { agents: number; welcomed: number; complete: boolean; startedAtMs: number; lastWelcomeAtMs: number; backlogBatches: number; backlogEvents: number }[]): ConnectResult => {
    const agents = msgs.reduce((s, m) => s + m.agents, 0);
    const welcomed = msgs.reduce((s, m) => s + m.welcomed, 0);
    const start = Math.min(...msgs.map((m) => m.startedAtMs));
    const end = Math.max(...msgs.map((m) => m.lastWelcomeAtMs));
    const seconds = Math.max(0.001, (end - start) / 1000);
    return {
      agents,
      welcomed,
      complete: msgs.every((m) => m.complete),
      seconds: Math.round(seconds * 1000) / 1000,
      perSec: Math.round(welcomed / seconds),
      backlogBatches: msgs.reduce((s, m) => s + m.backlogBatches, 0),
      backlogEvents: msgs.reduce((s, m) => s + m.backlogEvents, 0),
      startedAtMs: start,
    };
  };

  let tagSeq = 0;
  return {
    processes,
    pids: children.map((c) => c.pid ?? 0),
    pool: { events: first.poolEvents, bytes: first.poolBytes, mix: first.poolMix, detectionRuns: first.detectionRuns },
    failed,
    async connect(timeoutMs) {
      const p = collect((m): m is Extract<ClientMessage, { type: 'connected' }> => m.type === 'connected', timeoutMs, 'connect');
      broadcast({ type: 'connect' });
      return toConnectResult(await p);
    },
    generate(on) {
      broadcast({ type: 'generate', on });
    },
    setRate(eventsPerAgentPerSec) {
      broadcast({ type: 'rate', eventsPerAgentPerSec });
    },
    async snapshot(timeoutMs = 10_000) {
      const tag = ++tagSeq;
      const p = collect((m): m is ClientReport => m.type === 'report' && m.tag === tag, timeoutMs, 'snapshot');
      broadcast({ type: 'snapshot', tag });
      await p;
      const s = sum();
      const snap: FleetSnapshot = { atMs: performance.now(), counters: s.counters, ack: segAck, delivery: segDelivery, clientCpuSec: s.clientCpuSec, clientRssBytes: s.clientRssBytes };
      segAck = createLatencyHistogram();
      segDelivery = createLatencyHistogram();
      return snap;
    },
    progress() {
      const s = sum();
      const out = { counters: s.counters, recentAck: recentAck, clientCpuSec: s.clientCpuSec };
      recentAck = createLatencyHistogram();
      return out;
    },
    async outage(durationMs, reconnectTimeoutMs) {
      const p = collect((m): m is ReconnectReport => m.type === 'reconnected', durationMs + reconnectTimeoutMs + 10_000, 'reconnect');
      broadcast({ type: 'outage', durationMs, reconnectTimeoutMs });
      return toConnectResult(await p);
    },
    async drain(timeoutMs) {
      const p = collect((m): m is Extract<ClientMessage, { type: 'drained' }> => m.type === 'drained', timeoutMs + 5000, 'drain');
      broadcast({ type: 'drain', timeoutMs });
      const msgs = await p;
      return { complete: msgs.every((m) => m.complete), unackedBatches: msgs.reduce((s, m) => s + m.unackedBatches, 0) };
    },
    close: killAll,
  };
}
