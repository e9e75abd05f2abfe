import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import { DEFAULTS } from '../core/config.js';
import { createMetrics } from '../core/metrics.js';
import { openHotStore } from '../storage/index.js';
import { createHealthCheck, freeDiskBytes, type ExportFailure, type HealthProbes } from './health.js';
import { createHttpApp } from './http-app.js';

const GiB = 1024 ** 3;
const NOW = Date.parse('2026-03-01T00:00:00Z');
const thresholds = { minFreeDiskBytes: GiB, maxMapUsePercent: 90, maxShardLagLsn: 1000, exportFailureWindowMs: 3600_000 };

interface Figures {
  free: number;
  used: number;
  map: number;
  lag: number;
  committed: number;
  checkpoint: number;
  failures: ExportFailure[];
}

const healthy: Figures = { free: 50 * GiB, used: GiB, map: 4 * GiB, lag: 10, committed: 5000, checkpoint: 4990, failures: [] };

function probesOf(f: Figures): HealthProbes {
  return {
    freeDiskBytes: () => f.free,
    lmdbMapUse: () => ({ usedBytes: f.used, mapSizeBytes: f.map }),
    shardPositions: () => ({ lagLsn: f.lag, committedLsn: f.committed, slowestCheckpointLsn: f.checkpoint }),
    exportFailures: () => f.failures,
  };
}

function problemsOf(f: Partial<Figures>) {
  return createHealthCheck({ probes: probesOf({ ...healthy, ...f }), thresholds, clock: createManualClock(NOW) }).problems();
}

describe('createHealthCheck', () => {
  it.each([
    { name: 'healthy figures', f: {}, codes: [] },
    { name: 'free disk below the minimum', f: { free: GiB - 1 }, codes: ['low_disk_space'] },
    { name: 'free disk exactly at the minimum', f: { free: GiB }, codes: [] },
    { name: 'a full map with room on disk to grow', f: { used: 3.9 * GiB }, codes: [] },
    { name: 'a full map without room on disk to grow', f: { used: 3.9 * GiB, free: 2 * GiB }, codes: ['lmdb_map_full'] },
    { name: 'a full map and a full disk', f: { used: 3.9 * GiB, free: 1 }, codes: ['low_disk_space', 'lmdb_map_full'] },
    { name: 'a shard far behind its work', f: { lag: 1001 }, codes: ['shard_lag'] },
    { name: 'a shard exactly at the lag limit', f: { lag: 1000 }, codes: [] },
    { name: 'an idle shard with an old checkpoint (not behind)', f: { lag: 0, committed: 90_000, checkpoint: 10 }, codes: [] },
    { name: 'an export failure within the window', f: { failures: [{ at: NOW - 60_000, reason: 'disk full' }] }, codes: ['export_failed'] },
    { name: 'an export failure older than the window', f: { failures: [{ at: NOW - 2 * 3600_000, reason: 'disk full' }] }, codes: [] },
  ])('$name → $codes', ({ f, codes }) => {
    expect(problemsOf(f).map((p) => p.code)).toEqual(codes);
  });

  it('says what is wrong with the figures', () => {
    expect(problemsOf({ lag: 2000, committed: 9000, checkpoint: 7000 })).toEqual([{ code: 'shard_lag', details: { committedLsn: 9000, slowestCheckpointLsn: 7000, lagLsn: 2000, maxLagLsn: 1000 } }]);
    expect(problemsOf({ failures: [{ at: NOW - 120_000, reason: 'a' }, { at: NOW - 60_000, reason: 'ENOSPC' }] })).toEqual([
      { code: 'export_failed', details: { failures: 2, lastAt: new Date(NOW - 60_000).toISOString(), lastReason: 'ENOSPC', windowMs: 3600_000 } },
    ]);
  });

  it('reports a probe that throws instead of hiding it', () => {
    const probes = { ...probesOf(healthy), freeDiskBytes: () => { throw new Error('EACCES'); } };
    expect(createHealthCheck({ probes, thresholds, clock: createManualClock(NOW) }).problems()).toEqual([{ code: 'probe_failed', details: { check: 'disk', reason: 'EACCES' } }]);
  });
});

describe('/healthz', () => {
  const appWith = (f: Partial<Figures>) =>
    createHttpApp({
      metrics: createMetrics({ defaultMetrics: false }),
      health: { problems: () => problemsOf(f), details: () => ({ connections: 3 }) },
    });

  it('answers 200 ok when nothing is wrong', async () => {
    const res = await appWith({}).request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', connections: 3 });
  });

  it('answers 503 degraded with the problems', async () => {
    const res = await appWith({ free: 10, failures: [{ at: NOW, reason: 'x' }] }).request('/healthz');
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; problems: { code: string }[] };
    expect(body.status).toBe('degraded');
    expect(body.problems.map((p) => p.code)).toEqual(['low_disk_space', 'export_failed']);
  });
});

describe('the real probes', () => {
  it('read free disk space and LMDB use of a real data directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-health-'));
    const store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
    try {
      expect(freeDiskBytes(dir)).toBeGreaterThan(0);
      const use = store.mapUse();
      expect(use.mapSizeBytes).toBeGreaterThanOrEqual(64 * 1024 * 1024);
      expect(use.usedBytes).toBeGreaterThan(0);
      expect(use.usedBytes).toBeLessThanOrEqual(use.mapSizeBytes);
      // The defaults are valid thresholds for the check.
      expect(createHealthCheck({ probes: { freeDiskBytes: () => freeDiskBytes(dir), lmdbMapUse: () => use, shardPositions: () => ({ lagLsn: 0, committedLsn: 0, slowestCheckpointLsn: 0 }), exportFailures: () => [] }, thresholds: DEFAULTS.health, clock: createManualClock(NOW) }).problems().filter((p) => p.code === 'probe_failed')).toEqual([]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
