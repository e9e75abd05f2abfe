import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { compiledScript } from './compiled-script.js';
import { QuietHeapTrimmer, type QuietHeapTrimHooks } from './heap-trim.js';

function fakeHooks(newSpace: number): QuietHeapTrimHooks & { clock: { t: number }; collects: number; space: { bytes: number } } {
  const clock = { t: 0 };
  const space = { bytes: newSpace };
  const hooks = {
    clock,
    space,
    collects: 0,
    now: () => clock.t,
    newSpaceBytes: () => space.bytes,
    collect: async () => {
      hooks.collects++;
      space.bytes = 1 << 20;
    },
  };
  return hooks;
}

const OPTIONS = { quietWorkPerPeriod: 100, minNewSpaceBytes: 32 << 20, minIntervalMs: 60_000 };

describe('QuietHeapTrimmer', () => {
  it('trims after a quiet period with a large young generation, not after a busy one or on the first call', async () => {
    const h = fakeHooks(128 << 20);
    const t = new QuietHeapTrimmer(h, OPTIONS);
    // First call: only the baseline.
    expect(await t.check(0)).toBe(false);
    h.clock.t += 10_000;
    // Busy: 101 units in the period.
    expect(await t.check(101)).toBe(false);
    h.clock.t += 10_000;
    expect(await t.check(201)).toBe(true);
    expect(h.collects).toBe(1);
    expect(t.trims).toBe(1);
  });

  it('leaves a small young generation alone and waits minIntervalMs between trims', async () => {
    const h = fakeHooks(8 << 20);
    const t = new QuietHeapTrimmer(h, OPTIONS);
    await t.check(0);
    h.clock.t += 10_000;
    expect(await t.check(0)).toBe(false);
    h.space.bytes = 64 << 20;
    expect(await t.check(0)).toBe(true);
    h.space.bytes = 64 << 20;
    h.clock.t += 59_999;
    expect(await t.check(0)).toBe(false);
    h.clock.t += 1;
    expect(await t.check(0)).toBe(true);
    expect(h.collects).toBe(2);
  });

  it('does not start a second collection while one runs', async () => {
    const h = fakeHooks(128 << 20);
    let release!: () => void;
    h.collect = () => {
      h.collects++;
      return new Promise<void>((r) => (release = r));
    };
    const t = new QuietHeapTrimmer(h, { ...OPTIONS, minIntervalMs: 0 });
    await t.check(0);
    const first = t.check(0);
    expect(await t.check(0)).toBe(false);
    release();
    expect(await first).toBe(true);
    expect(h.collects).toBe(1);
  });

  it("the low-memory collection shrinks a worker's grown young generation (real V8)", async () => {
    // A worker with the shard's 192 MB young generation, grown by objects that survive, then trimmed.
    const compiled = compiledScript('heap-trim.js', import.meta.url);
    expect(compiled, 'dist/core/heap-trim.js: run npm run build').toBeDefined();
    const source = `
      const { parentPort } = require('node:worker_threads');
      (async () => {
        const { lowMemoryCollector, newSpaceBytes } = await import(${JSON.stringify(compiled!.href)});
        const keep = [];
        for (let r = 0; r < 30; r++) {
          for (let i = 0; i < 200000; i++) { const o = { a: 'x' + i, b: [i] }; if (i % 3 === 0) keep.push(o); }
          if (keep.length > 300000) keep.splice(0, 100000);
        }
        const grown = newSpaceBytes();
        keep.length = 0;
        const collect = await lowMemoryCollector();
        await collect();
        parentPort.postMessage({ grown, trimmed: newSpaceBytes() });
      })().catch((e) => parentPort.postMessage({ error: String(e) }));`;
    const w = new Worker(source, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 192 } });
    const result = await new Promise<{ grown?: number; trimmed?: number; error?: string }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(result.error).toBeUndefined();
    expect(result.grown!).toBeGreaterThan(64 << 20);
    expect(result.trimmed!).toBeLessThan(16 << 20);
  }, 60_000);
});
