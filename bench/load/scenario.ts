/**
 * Declarative load scenarios (bench/load/scenarios/NAME.json): how many
 * agents, how fast each produces events, the event mix, the detection rate,
 * how long to warm up and measure, the seed, and what the scenario's kind
 * does on top of steady load (an outage for `burst`, a rising rate for
 * `saturate`, idle agents for `fanin`; a `cluster` section measures the same
 * steady load on the embedded mode and on clusters). One strict schema validates every
 * file, so a typo in a scenario is an error, not a silently ignored knob.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';

const positive = z.number().positive();
const nonNegative = z.number().min(0);

/**
 * What a `cluster` scenario measures: `embedded` is `kiseki start` as in every other scenario; `ingest-N` is
 * one nats-server, N ingest nodes and one shard node (docs/CLUSTER.md), the agents split over the N ingest URLs;
 * `ingest-1-archive` adds the cluster's archive (an API node with `--archive`) to `ingest-1`.
 */
export const CLUSTER_CONFIGURATIONS = ['embedded', 'ingest-1', 'ingest-2', 'ingest-3', 'ingest-4', 'ingest-1-archive'] as const;
export type ClusterConfiguration = (typeof CLUSTER_CONFIGURATIONS)[number];

/** Ingest nodes of a configuration (0 for `embedded`). */
export function ingestNodesOf(c: ClusterConfiguration): number {
  return c === 'embedded' ? 0 : Number(/^ingest-(\d+)/.exec(c)![1]);
}

/** Whether a configuration runs the cluster's archive node. */
export function hasArchiveNode(c: ClusterConfiguration): boolean {
  return c.endsWith('-archive');
}

export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    description: z.string().min(1),
    /**
     * `steady`: constant open-loop load; `fanin`: as many mostly idle agents as the fd limit allows;
     * `burst`: steady load, a network outage, then every agent reconnects and flushes its backlog;
     * `saturate`: open-loop steps of rising rate until ack p99 passes the limit, then a step at 70 % of the maximum.
     */
    kind: z.enum(['steady', 'fanin', 'burst', 'saturate']),
    /** Concurrent agents; `fanin` clamps it to what the per-process fd limit allows. */
    agents: z.number().int().min(1).max(200_000),
    /** Events each agent produces per second (fractions accumulate across batches). */
    eventsPerAgentPerSec: nonNegative,
    /** Interval between an agent's batches, ms (the policy's batchIntervalMs). */
    batchIntervalMs: z.number().int().min(10).max(60_000).default(1000),
    /** Largest batch, events (the policy's maxBatchEvents caps it too). */
    maxBatchEvents: z.number().int().min(1).max(100_000).default(5000),
    /**
     * Share of each event-kind family in the pool (keys: proc, file, reg, net, logon, logoff, usb, …, the part of
     * the kind before the first dot). Absent: the trail generator's natural mix.
     */
    eventMix: z.record(z.string().regex(/^[a-z]+$/), positive).optional(),
    /** Probability per event that the event is part of a detection chain ending in `av.detect`. */
    detectionRate: z.number().min(0).max(0.1),
    /**
     * Measured time, seconds (after warm-up). `fanin`: how long the connected fleet is held before memory is read;
     * `burst`: the time measured after the reconnect storm; `saturate`: the step at 70 % of the maximum.
     */
    durationSec: positive.max(3600),
    /** Load before measuring starts, seconds. */
    warmupSec: nonNegative.max(600).default(3),
    seed: z.number().int().default(1),
    /** Batches in flight per connection (the server's maxUnackedBatches wins if smaller). */
    maxUnackedBatches: z.number().int().min(1).max(1024).default(8),
    /** Batches an agent may hold unacked (sent or buffered) before it pauses generation. */
    maxBufferedBatches: z.number().int().min(1).default(600),
    /** Client processes; default: enough to keep each under `agentsPerClientProcess`. */
    clientProcesses: z.number().int().min(1).max(32).optional(),
    /** Most agents one client process holds (each is one socket; the fd limit is per process). */
    agentsPerClientProcess: z.number().int().min(1).max(19_000).default(9000),
    /** Handshakes in progress at once per client process. */
    connectConcurrency: z.number().int().min(1).max(10_000).default(256),
    /** Send an inventory frame after enrollment, as a real agent does. */
    inventoryOnEnroll: z.boolean().default(true),
    /** Heartbeat interval override, ms; default: the server's policy (30 s). */
    hbIntervalMs: z.number().int().min(1000).optional(),
    /** Extra flags for `kiseki start` (e.g. ["--shards", "1"]). */
    serverArgs: z.array(z.string()).default([]),
    burst: z
      .object({
        /** How long every agent is cut off while it keeps generating, seconds (durationSec is measured after the reconnect). */
        outageSec: positive.max(600),
      })
      .strict()
      .optional(),
    saturate: z
      .object({
        startEventsPerAgentPerSec: positive,
        /** Rate multiplier between steps. */
        factor: z.number().min(1.05).max(4).default(1.3),
        maxSteps: z.number().int().min(1).max(40).default(12),
        settleSec: nonNegative.max(60).default(2),
        stepSec: positive.max(120).default(5),
        /** A step whose ack p99 passes this ends the ramp. */
        ackP99LimitMs: positive.default(100),
        /** A step that acks less than this share of what was offered ends the ramp. */
        minAchievedRatio: z.number().min(0.5).max(1).default(0.95),
        /** Run a rate that missed its limits once more before it ends the search (bench/load/step-search.ts). */
        retry: z.boolean().default(true),
      })
      .strict()
      .optional(),
    /**
     * Fleet operations on top of the load (issue 16, docs/FLEET.md): agents that go offline and come back, failed
     * logons, USB insertions off the allow-list (the tenant gets USB control in block mode), a staged upgrade.
     */
    fleet: z
      .object({
        /** Every `everySec`, the next `share` of the agents closes its connection and stays away `downSec`, generating meanwhile. */
        dropouts: z.object({ share: z.number().min(0).max(1), everySec: positive.max(3600), downSec: positive.max(3600) }).strict().optional(),
        /** The tenant's liveness delay, seconds: a device silent this long raises an offline alert (the server checks every second). */
        offlineAfterSec: z.number().int().min(1).max(86_400).optional(),
        /** Bursts of `size` failed network logons per agent and hour (the default rule alerts at 10 within 5 minutes). */
        logonBursts: z.object({ perAgentPerHour: positive.max(3600), size: z.number().int().min(1).max(200).default(12) }).strict().optional(),
        /** Insertions of a USB storage device no allow-list names, per agent and hour. */
        usbInsertions: z.object({ perAgentPerHour: positive.max(3600) }).strict().optional(),
        /** `atSec` into the measured time, a rollout of `percent` % of the devices to `version` (one stage). */
        rollout: z.object({ atSec: nonNegative.max(3600), percent: z.number().min(0.01).max(100), version: z.string().min(1).max(32).default('3.3.0') }).strict().optional(),
      })
      .strict()
      .optional(),
    /**
     * Issue 19: the same offered load on the embedded mode and on clusters of 1 … N ingest nodes on this machine
     * (bench/load/cluster-compare.ts). `steady` only; `serverArgs` apply to the embedded server alone.
     */
    cluster: z
      .object({
        /** What to measure, in this order in the first repetition (reversed in every second one); each at most once. */
        configurations: z
          .array(z.enum(CLUSTER_CONFIGURATIONS))
          .min(1)
          .refine((xs) => new Set(xs).size === xs.length, { message: 'each configuration may be named once' }),
        /** Extra flags for every `kiseki start --role ingest` and for the `--role shard` node. */
        ingestArgs: z.array(z.string()).default([]),
        shardArgs: z.array(z.string()).default([]),
        /** After the drain, the longest wait for the shard node to store and process every batch of the stream, seconds. */
        shardCatchUpSec: positive.max(600).default(60),
      })
      .strict()
      .optional(),
    fanin: z
      .object({
        /** fds left for the server's own files, pipes and workers when clamping `agents`. */
        fdReserve: z.number().int().min(50).max(5000).default(400),
        /**
         * Seconds the started server is left idle before its memory is read as the baseline: a quiet shard gives
         * back the young generation its start-up grew 10–20 s after it starts (core/heap-trim.ts), and a baseline
         * read before that made the fleet look smaller than it is.
         */
        idleSettleSec: z.number().min(0).max(300).default(25),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.kind === 'burst' && s.burst === undefined) ctx.addIssue({ code: 'custom', message: 'kind burst needs a burst section', path: ['burst'] });
    if (s.kind === 'saturate' && s.saturate === undefined) ctx.addIssue({ code: 'custom', message: 'kind saturate needs a saturate section', path: ['saturate'] });
    if (s.fleet?.rollout !== undefined && s.kind !== 'steady') ctx.addIssue({ code: 'custom', message: 'a fleet rollout runs in steady scenarios only', path: ['fleet', 'rollout'] });
    if (s.cluster !== undefined) {
      if (s.kind !== 'steady') ctx.addIssue({ code: 'custom', message: 'a cluster comparison runs in steady scenarios only', path: ['cluster'] });
      // The fleet section drives the embedded server's HTTP API and data directory: no cluster node has both.
      if (s.fleet !== undefined) ctx.addIssue({ code: 'custom', message: 'a cluster comparison cannot have a fleet section', path: ['fleet'] });
      const ingestNodes = Math.max(...s.cluster.configurations.map(ingestNodesOf));
      // Client process i connects to ingest node i mod N: fewer processes than nodes would leave a node idle.
      if (s.clientProcesses !== undefined && s.clientProcesses < ingestNodes) {
        ctx.addIssue({ code: 'custom', message: `clientProcesses must be at least the largest number of ingest nodes (${ingestNodes})`, path: ['clientProcesses'] });
      }
      if (s.agents < ingestNodes) ctx.addIssue({ code: 'custom', message: `agents must be at least the largest number of ingest nodes (${ingestNodes})`, path: ['agents'] });
    }
  });

/** A validated scenario with defaults filled in. */
export type Scenario = z.infer<typeof scenarioSchema>;

/** Parses and validates a scenario object; throws KisekiError ERR_INVALID_INPUT naming the first bad field in `details`. */
export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KisekiError('ERR_INVALID_INPUT', { source, field: issue?.path.join('.') || '(root)', reason: issue?.message ?? 'invalid' });
  }
  return r.data;
}

/** Names of the scenario files in `dir` (without `.json`), sorted. */
export function listScenarios(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => basename(f, '.json'))
    .sort();
}

/**
 * Loads a scenario by name from `dir`, or from a path ending in `.json`.
 * @throws KisekiError ERR_USAGE when no such scenario exists, ERR_INVALID_INPUT when it is invalid.
 */
export function loadScenario(nameOrPath: string, dir: string): Scenario {
  const path = nameOrPath.endsWith('.json') ? nameOrPath : join(dir, `${nameOrPath}.json`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new KisekiError('ERR_USAGE', { reason: `unknown scenario ${JSON.stringify(nameOrPath)}`, known: listScenarios(dir) });
  }
  return parseScenario(JSON.parse(text) as unknown, path);
}
