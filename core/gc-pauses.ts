/**
 * Garbage-collection pauses of a thread, as the `gc` performance entries
 * report them. The main thread's go to prom-client's own GC histogram
 * (core/metrics.ts); a shard worker has no registry, so it keeps its pauses
 * here and hands them to the main thread (engine/shard-worker.ts), which
 * observes them in `kiseki_engine_shard_gc_seconds`. A pause on the ingest
 * thread holds every ack, one on a shard every report: issue 18 asks for
 * both next to the ack and report stages.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

export type GcKind = 'minor' | 'major' | 'incremental' | 'weakcb';

/** Seconds: fine where scavenges are (about 1-20 ms), coarse where full collections are. */
export const GC_PAUSE_BUCKETS: readonly number[] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2];

/** The kind names prom-client gives `nodejs_gc_duration_seconds`, by perf_hooks' codes. */
export function gcKindOf(code: number): GcKind | undefined {
  switch (code) {
    case constants.NODE_PERFORMANCE_GC_MINOR:
      return 'minor';
    case constants.NODE_PERFORMANCE_GC_MAJOR:
      return 'major';
    case constants.NODE_PERFORMANCE_GC_INCREMENTAL:
      return 'incremental';
    case constants.NODE_PERFORMANCE_GC_WEAKCB:
      return 'weakcb';
    default:
      return undefined;
  }
}

/** Pauses kept between two `take()` calls at most: a thread that is never asked cannot grow without bound. */
const MAX_PENDING = 4096;

/** Records this thread's GC pauses until `stop()`; `take()` hands over those since the last call. */
export class GcPauseLog {
  private pending: [GcKind, number][] = [];
  private readonly observer: PerformanceObserver;

  constructor() {
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = gcKindOf((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1);
        if (kind !== undefined && this.pending.length < MAX_PENDING) this.pending.push([kind, e.duration / 1000]);
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** The pauses since the last call, [kind, seconds] each, oldest first. */
  take(): [GcKind, number][] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  stop(): void {
    this.observer.disconnect();
  }
}
