import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMetrics } from './metrics.js';

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
});
