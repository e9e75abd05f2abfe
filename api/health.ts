/**
 * What /healthz checks: free disk space of the data directory, LMDB map use,
 * shard lag (how far the slowest shard's checkpoint is behind the work given
 * to it), recent export failures, and whether the batch log accepts writes. Each figure comes from a probe the composition root
 * wires to the real thing (statfs, lmdb env stats, the shard pool, the export
 * scheduler), so tests inject plain functions. A check whose probe throws is
 * itself a problem (`probe_failed`): a health endpoint must not hide failures.
 */
import { statfsSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';

/** One reason the service is degraded: a stable snake_case code and the figures behind it. */
export interface HealthProblem {
  code: 'low_disk_space' | 'lmdb_map_full' | 'shard_lag' | 'export_failed' | 'probe_failed' | 'storage_unavailable';
  details: Record<string, unknown>;
}

/** An export run that failed, as the export scheduler records it. */
export interface ExportFailure {
  /** When it failed, ms since the epoch. */
  at: number;
  reason: string;
}

/** Where the figures come from. Every probe is synchronous and cheap (called per request). */
export interface HealthProbes {
  /** Bytes available to the service on the data directory's file system. */
  freeDiskBytes(): number;
  /** Bytes of the LMDB environment in use and its current map size. */
  lmdbMapUse(): { usedBytes: number; mapSizeBytes: number; env?: string };
  /**
   * Shard progress: `lagLsn` is the largest distance (log positions) between
   * what a shard was given and its persisted checkpoint (an idle shard is not
   * behind); the committed position and the lowest checkpoint are shown with it.
   */
  shardPositions(): { lagLsn: number; committedLsn: number; slowestCheckpointLsn: number };
  /** Export failures, newest last (the scheduler keeps a short list). */
  exportFailures(): readonly ExportFailure[];
  /**
   * Set while the batch log refuses writes (its latest commit failed: disk or
   * map full, I/O error): ingest refuses batches until a retry succeeds.
   */
  storageFailure?(): { since: number; reason: string; failures: number } | undefined;
}

export interface HealthCheck {
  /** The current problems; empty when healthy. */
  problems(): HealthProblem[];
}

/**
 * A health check over `probes` with the thresholds of `config.health`.
 * LMDB grows its map when it fills (lmdb-js resizes on MDB_MAP_FULL), so a
 * nearly full map is a problem only when the disk cannot hold the growth:
 * `lmdb_map_full` needs both the map use above `maxMapUsePercent` and less
 * free disk than the map's current size.
 */
export function createHealthCheck(options: { probes: HealthProbes; thresholds: Readonly<Config['health']>; clock: Clock }): HealthCheck {
  const { probes, thresholds, clock } = options;
  const guarded = (check: string, run: () => HealthProblem | undefined): HealthProblem | undefined => {
    try {
      return run();
    } catch (err) {
      return { code: 'probe_failed', details: { check, reason: err instanceof Error ? err.message : String(err) } };
    }
  };
  return {
    problems() {
      const out: (HealthProblem | undefined)[] = [];
      let freeBytes: number | undefined;
      out.push(
        guarded('disk', () => {
          freeBytes = probes.freeDiskBytes();
          return freeBytes < thresholds.minFreeDiskBytes ? { code: 'low_disk_space', details: { freeBytes, minFreeBytes: thresholds.minFreeDiskBytes } } : undefined;
        }),
      );
      out.push(
        guarded('lmdb', () => {
          const { usedBytes, mapSizeBytes, env } = probes.lmdbMapUse();
          const usePercent = mapSizeBytes > 0 ? (usedBytes / mapSizeBytes) * 100 : 0;
          if (usePercent <= thresholds.maxMapUsePercent) return undefined;
          if (freeBytes !== undefined && freeBytes >= mapSizeBytes) return undefined;
          return { code: 'lmdb_map_full', details: { ...(env === undefined ? {} : { env }), usedBytes, mapSizeBytes, usePercent: Math.round(usePercent * 10) / 10, maxUsePercent: thresholds.maxMapUsePercent, freeDiskBytes: freeBytes ?? null } };
        }),
      );
      out.push(
        guarded('shards', () => {
          const { lagLsn, committedLsn, slowestCheckpointLsn } = probes.shardPositions();
          return lagLsn > thresholds.maxShardLagLsn ? { code: 'shard_lag', details: { committedLsn, slowestCheckpointLsn, lagLsn, maxLagLsn: thresholds.maxShardLagLsn } } : undefined;
        }),
      );
      out.push(
        guarded('storage', () => {
          const f = probes.storageFailure?.();
          return f === undefined ? undefined : { code: 'storage_unavailable', details: { since: new Date(f.since).toISOString(), reason: f.reason, failedCommits: f.failures } };
        }),
      );
      out.push(
        guarded('exports', () => {
          const since = clock.now() - thresholds.exportFailureWindowMs;
          const recent = probes.exportFailures().filter((f) => f.at >= since);
          if (recent.length === 0) return undefined;
          const last = recent.at(-1)!;
          return { code: 'export_failed', details: { failures: recent.length, lastAt: new Date(last.at).toISOString(), lastReason: last.reason, windowMs: thresholds.exportFailureWindowMs } };
        }),
      );
      return out.filter((p): p is HealthProblem => p !== undefined);
    },
  };
}

/**
 * Bytes available to unprivileged users on the file system holding `path`
 * (statfs `bavail` × block size).
 */
export function freeDiskBytes(path: string): number {
  const s = statfsSync(path);
  return Number(s.bavail) * Number(s.bsize);
}

