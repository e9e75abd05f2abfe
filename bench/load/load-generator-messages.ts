/**
 * Messages between the load generator's parent (load-generator.ts, in the
 * runner) and its client processes (load-generator-client.ts) over the
 * child_process IPC channel. Types only: both sides import them, so a field
 * renamed on one side is a compile error on the other.
 */
import type { SparseCounts } from './latency-histogram.js';

/** Everything a client process needs to run its share of the fleet. */
export interface ClientConfig {
  clientIndex: number;
  host: string;
  port: number;
  /** WebSocket path, e.g. `/agent/v1`. */
  path: string;
  /** Source address of this process's sockets (127.0.0.x), so each process has its own ephemeral ports. */
  localAddress?: string;
  enrollKey: string;
  /** Index of this process's first agent in the fleet. */
  agentFrom: number;
  agentCount: number;
  seed: number;
  /** `open`: batches on a clock, whatever the acks do; `closed`: a new batch for every ack (ceiling runs). */
  mode: 'open' | 'closed';
  eventsPerAgentPerSec: number;
  batchIntervalMs: number;
  maxBatchEvents: number;
  /** Events per batch in closed mode. */
  closedBatchEvents: number;
  maxUnackedBatches: number;
  maxBufferedBatches: number;
  detectionRate: number;
  hbIntervalMs?: number;
  connectConcurrency: number;
  inventoryOnEnroll: boolean;
  eventMix?: Record<string, number>;
  /** Events in the pre-encoded pool. */
  poolEvents: number;
  /** Longest wait from TCP connect to `welcome`, ms. */
  helloTimeoutMs: number;
  /** Fleet activity on top of the load (issue 16; the scenario's `fleet` section). */
  fleet?: ClientFleetActivity;
}

/** What the agents do besides sending their events: go offline and come back, failed logons, USB insertions. */
export interface ClientFleetActivity {
  /** Every `everySec`, the next `share` of this process's agents drops its connection for `downSec`, generating meanwhile. */
  dropouts?: { share: number; everySec: number; downSec: number };
  /** Bursts of `size` failed network logons per agent and hour. */
  logonBursts?: { perAgentPerHour: number; size: number };
  /** Insertions of a USB storage device no allow-list names, per agent and hour. */
  usbInsertions?: { perAgentPerHour: number };
}

/** Cumulative counters of one client process (or of the whole fleet, summed). */
export interface ClientCounters {
  /** Agents with a welcomed connection now (a gauge). */
  connected: number;
  welcomes: number;
  enrolled: number;
  connectFailures: number;
  reconnects: number;
  batchesGenerated: number;
  eventsGenerated: number;
  /** Distinct batches sent at least once. */
  batchesSent: number;
  eventsSent: number;
  batchesResent: number;
  /** Distinct batches acked. */
  batchesAcked: number;
  eventsAcked: number;
  /** Acks for batches no longer held (already acked): duplicates. */
  duplicateAcks: number;
  detectionsSent: number;
  detectionsAcked: number;
  /** Batch ticks skipped because the agent's buffer was full. */
  generationPaused: number;
  /** Batches generated and not acked yet (a gauge). */
  unackedBatches: number;
  unackedEvents: number;
  heartbeatsSent: number;
  heartbeatsAnswered: number;
  framesSentBytes: number;
  /** Connections closed by the peer or failed after the welcome. */
  dropped: number;
  /** Fleet activity (scenario `fleet`): connections the agents closed on purpose and got back, */
  dropouts: number;
  /** failed-logon bursts and USB insertions put into batches, */
  logonBursts: number;
  usbInsertions: number;
  /** `upgrade` commands installed (answered `done`, reconnected with the new version), other commands answered, */
  upgrades: number;
  commandsDone: number;
  /** and fleet policies pushed by the server. */
  policies: number;
  /** Server `error` frames by code, plus `client_*` codes for what the client could not read. */
  errors: Record<string, number>;
}

/** A client's report: counters, latency histogram deltas since its previous report, its own CPU and memory. */
export interface ClientReport {
  type: 'report';
  clientIndex: number;
  /** Answer to a `snapshot` request with this tag, or undefined for the periodic report. */
  tag?: number;
  /** Date.now() of the report. */
  atMs: number;
  counters: ClientCounters;
  /** Send → ack, µs buckets (delta). */
  ack: SparseCounts;
  /** Batch creation → ack, µs buckets (delta): includes time spent buffered on the agent. */
  delivery: SparseCounts;
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
}

/** Reconnect storm timing, reported once every agent is back after an outage. */
export interface ReconnectReport {
  type: 'reconnected';
  clientIndex: number;
  agents: number;
  /** performance.timeOrigin + now of the outage end (reconnects start), ms since epoch. */
  startedAtMs: number;
  /** Last welcome after the outage, ms since epoch. */
  lastWelcomeAtMs: number;
  /** Agents welcomed again after the outage. */
  welcomed: number;
  /** True when every agent was welcomed before the timeout. */
  complete: boolean;
  /** Batches and events generated and unacked when the outage ended (the backlog to flush). */
  backlogBatches: number;
  backlogEvents: number;
}

export type ParentMessage =
  | { type: 'start'; config: ClientConfig }
  | { type: 'connect' }
  | { type: 'generate'; on: boolean }
  | { type: 'rate'; eventsPerAgentPerSec: number }
  | { type: 'snapshot'; tag: number }
  | { type: 'outage'; durationMs: number; reconnectTimeoutMs: number }
  | { type: 'drain'; timeoutMs: number }
  | { type: 'close' };

export type ClientMessage =
  | { type: 'ready'; clientIndex: number; poolEvents: number; poolBytes: number; poolMix: Record<string, number>; detectionRuns: number }
  | { type: 'connected'; clientIndex: number; agents: number; welcomed: number; startedAtMs: number; lastWelcomeAtMs: number; complete: boolean; backlogBatches: number; backlogEvents: number }
  | ClientReport
  | ReconnectReport
  | { type: 'drained'; clientIndex: number; complete: boolean; unackedBatches: number }
  | { type: 'failed'; clientIndex: number; message: string };

/** An empty set of counters. */
export function emptyCounters(): ClientCounters {
  return {
    connected: 0,
    welcomes: 0,
    enrolled: 0,
    connectFailures: 0,
    reconnects: 0,
    batchesGenerated: 0,
    eventsGenerated: 0,
    batchesSent: 0,
    eventsSent: 0,
    batchesResent: 0,
    batchesAcked: 0,
    eventsAcked: 0,
    duplicateAcks: 0,
    detectionsSent: 0,
    detectionsAcked: 0,
    generationPaused: 0,
    unackedBatches: 0,
    unackedEvents: 0,
    heartbeatsSent: 0,
    heartbeatsAnswered: 0,
    framesSentBytes: 0,
    dropped: 0,
    dropouts: 0,
    logonBursts: 0,
    usbInsertions: 0,
    upgrades: 0,
    commandsDone: 0,
    policies: 0,
    errors: {},
  };
}
