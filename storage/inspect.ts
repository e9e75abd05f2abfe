/**
 * A read-only census of the hot store for `kiseki inspect`: counts of tenants,
 * devices, stored batches and events, events per kind as derived by the
 * shards, seq gaps per device, and how far the shards lag behind the log.
 * Safe to run from another process while the server writes (LMDB readers
 * never block the writer).
 */
import type { HotStore } from './hot-store.js';
import { seqGaps } from './log.js';

export interface InspectReport {
  tenants: number;
  devices: number;
  /** Raw batches in the log. */
  batches: number;
  /** Entries in the batch-id index; equals `batches` when nothing is stored twice. */
  batchIds: number;
  /** Events in stored batches (ingest's count). */
  events: number;
  /** Events per kind as counted by the shards. */
  eventsByKind: Record<string, number>;
  /** Events the shards have processed (sum of eventsByKind). */
  eventsProcessed: number;
  /** Missing seq numbers summed over all devices. */
  seqGaps: number;
  /** Devices with at least one gap, with their gaps (first 100 devices). */
  seqGapDevices: { tmid: string; gaps: [number, number][] }[];
  /** Highest lsn in the log and the lowest shard checkpoint. */
  lastLsn: number;
  minCheckpoint: number;
  /** Stored events the shards set aside as poison, per reason (storage/quarantine.ts). */
  quarantined: Record<string, number>;
}

export function inspectStore(store: HotStore): InspectReport {
  let events = 0;
  let missing = 0;
  const seqGapDevices: InspectReport['seqGapDevices'] = [];
  for (const { tmid, trail } of store.log.trails()) {
    events += trail.events;
    const gaps = seqGaps(trail.ranges);
    if (gaps.length > 0) {
      for (const [from, to] of gaps) missing += to - from + 1;
      if (seqGapDevices.length < 100) seqGapDevices.push({ tmid, gaps });
    }
  }
  const eventsByKind: Record<string, number> = {};
  let eventsProcessed = 0;
  for (const counts of store.shardState.allKindCounts()) {
    for (const [kind, n] of Object.entries(counts)) {
      eventsByKind[kind] = (eventsByKind[kind] ?? 0) + n;
      eventsProcessed += n;
    }
  }
  const { batches, batchIds } = store.log.counts();
  return {
    tenants: store.tenants.count(),
    devices: store.devices.count(),
    batches,
    batchIds,
    events,
    eventsByKind,
    eventsProcessed,
    seqGaps: missing,
    seqGapDevices,
    lastLsn: store.log.lastLsn(),
    minCheckpoint: store.shardState.minCheckpoint(),
    quarantined: store.quarantine.countsByReason(),
  };
}
