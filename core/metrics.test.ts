import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMetrics, shardGcObserver } from './metrics.js';

describe('process metrics', () => {
  afterEach(() => vi.restoreAllMocks());

  it.runIf(process.platform === 'linux')('counts open descriptors without a synchronous readdir on the scraping thread', async () => {
    const readdirSync = vi.spyOn(fs, 'readdirSync');
    const metrics = createMetrics();
    const text = await metrics.registry.metrics();
    expect(readdirSync.mock.calls.filter(([dir]) => String(dir).startsWith('/proc/self/fd'))).toEqual([]);
    const line = text.split('\n').find((l) => l.startsWith('kiseki_process_process_open_fds '));
    expect(line).toBeDefined();
    const fds = Number(line!.split(' ')[1]);
    // stdin, stdout, stderr at least, and no more than the process may open.
    expect(fds).toBeGreaterThanOrEqual(3);
    expect(fds).toBeLessThan(fs.readdirSync('/proc/self/fd').length + 16);
  });

  it('registers no process metrics when asked not to', async () => {
    const text = await createMetrics({ defaultMetrics: false }).registry.metrics();
    expect(text).not.toMatch(/^kiseki_process_(process|nodejs)_/m);
  });

  it("puts the shards' GC pauses into kiseki_engine_shard_gc_seconds by kind", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    shardGcObserver(metrics)([
      ['minor', 0.004],
      ['minor', 0.012],
      ['major', 0.29],
    ]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('kiseki_engine_shard_gc_seconds_count{kind="minor"} 2');
    expect(text).toContain('kiseki_engine_shard_gc_seconds_bucket{le="0.005",kind="minor"} 1');
    expect(text).toContain('kiseki_engine_shard_gc_seconds_count{kind="major"} 1');
  });
});
