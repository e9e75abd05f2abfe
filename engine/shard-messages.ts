/**
 * Messages between the shard pool (ingest's thread) and shard workers. Batch
 * bytes travel as transferred ArrayBuffers: ownership moves, nothing is copied.
 */
import type { GcKind } from '../core/gc-pauses.js';

export interface ShardWorkerData {
  index: number;
  workers: number;
  dataDir: string;
  mapSizeBytes: number;
  flushIntervalMs: number;
  stateSnapshotIntervalMs: number;
  /** Directory of the threat-intelligence lists. */
  intelDir: string;
  /** Endpoint ms during which later events revise a report. */
  revisionWindowMs: number;
  maxDevicesInMemory: number;
  /** Approximate bytes of device state kept in memory; absent: the correlator's default. */
  deviceStateBudgetBytes?: number;
  /** How long the shard uses a tenant's cached fleet policy, ms; absent: 1000. */
  fleetPolicyRefreshMs?: number;
  /** Thresholds of the verdict's fleet prevalence factors; absent: the defaults. */
  prevalence?: { minDevices: number; minDays: number };
  /** Sigma rules in the shard; absent: off. */
  sigma?: ShardSigmaOptions;
  /** Streaming analytics (engine/analytics.ts); absent: off. */
  analytics?: boolean;
  /** Longest stretch of a catch-up between two chances to flush, ms; absent: 100. */
  catchUpSliceMs?: number;
  /** Shrink the young generation when the shard is quiet (core/heap-trim.ts); absent: off. */
  heapTrim?: boolean;
}

/** Where a shard's Sigma rules come from and how often it looks for changes. */
export interface ShardSigmaOptions {
  defaultPack: boolean;
  dir?: string;
  reloadIntervalMs: number;
}

export type ToShard =
  | { type: 'batch'; lsn: number; tmid: string; recvAt: number; events: ArrayBuffer }
  /** The pool skipped posting batches up to `upTo` while the shard was behind: read them from the log. */
  | { type: 'catchup'; upTo: number }
  | { type: 'stop' };

export type FromShard =
  /** youngGenerationMb: the worker's V8 young generation limit as it runs. */
  | { type: 'ready'; lastLsn: number; replayed: number; youngGenerationMb: number }
  /** `handled` messages were taken off the queue since the last progress message. */
  | { type: 'progress'; handled: number; lastLsn: number; events: number; invalidEvents: number; quarantined?: Record<string, number> }
  | { type: 'flushed'; checkpoint: number; heapUsedBytes: number; devicesInMemory: number }
  /** Alerts stored by the last flush, with the ms from their batch's receipt to the flush. */
  | { type: 'alerts'; count: number; latenciesMs: number[]; stagesMs: AlertStageTimes }
  /** Garbage-collection pauses since the last such message: [kind, seconds] each. */
  | { type: 'gc'; pauses: [GcKind, number][] }
  /** Devices with commands queued by the last flush (isolation on black). */
  | { type: 'commands'; tmids: string[] }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

/**
 * Where each alert's detection → report time went (ms, one entry per alert,
 * in the order of `latenciesMs`): `queue` from the batch's receipt to the
 * shard starting on it (ingest commit, dispatch, the shard's queue); `process`
 * the shard's work on that batch (state, Sigma, the quick report); `store`
 * from the batch processed to its flush committed (waiting for a running
 * flush, then the write).
 */
export interface AlertStageTimes {
  queue: number[];
  process: number[];
  store: number[];
}
