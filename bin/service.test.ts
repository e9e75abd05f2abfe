import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { startService } from './service.js';

describe('the service /healthz', () => {
  it('reads the real disk, LMDB and shard figures, and reports what crosses its thresholds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-service-'));
    // No file system has this much free space: the real statfs probe must report it. The other probes
    // (LMDB stats, shard positions, export failures) must read without failing and find nothing wrong.
    const config = loadConfig({
      dataDir: dir,
      ingest: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      engine: { shards: 1 },
      storage: { mapSizeBytes: 64 * 1024 * 1024 },
      health: { minFreeDiskBytes: Number.MAX_SAFE_INTEGER },
    });
    const service = await startService({ config, logger: createSilentLogger(), defaultMetrics: false });
    try {
      const res = await fetch(`http://127.0.0.1:${service.httpPort}/healthz`);
      const body = (await res.json()) as { status: string; problems: { code: string; details: Record<string, unknown> }[]; committedLsn: number };
      expect(res.status).toBe(503);
      expect(body.status).toBe('degraded');
      expect(body.problems).toEqual([{ code: 'low_disk_space', details: { freeBytes: expect.any(Number), minFreeBytes: Number.MAX_SAFE_INTEGER } }]);
      expect(body.problems[0]!.details.freeBytes).toBeGreaterThan(0);
      expect(body.committedLsn).toBe(0);
    } finally {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
