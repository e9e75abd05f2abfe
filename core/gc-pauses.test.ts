import { constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { gcKindOf, GcPauseLog } from './gc-pauses.js';

describe('GC pause log', () => {
  it('names the kinds as prom-client does', () => {
    expect(gcKindOf(constants.NODE_PERFORMANCE_GC_MINOR)).toBe('minor');
    expect(gcKindOf(constants.NODE_PERFORMANCE_GC_MAJOR)).toBe('major');
    expect(gcKindOf(constants.NODE_PERFORMANCE_GC_INCREMENTAL)).toBe('incremental');
    expect(gcKindOf(constants.NODE_PERFORMANCE_GC_WEAKCB)).toBe('weakcb');
    expect(gcKindOf(-1)).toBeUndefined();
  });

  it("records this thread's pauses and hands each over once", async () => {
    const log = new GcPauseLog();
    try {
      // Short-lived garbage well past any young generation: scavenges must run.
      let keep = 0;
      for (let i = 0; i < 2_000_000; i++) keep += [i, i + 1, { i }].length;
      expect(keep).toBe(6_000_000);
      // Observers are told after the current task.
      let pauses: ReturnType<GcPauseLog['take']> = [];
      for (let i = 0; i < 100 && pauses.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        pauses = log.take();
      }
      expect(pauses.some(([kind]) => kind === 'minor')).toBe(true);
      for (const [, seconds] of pauses) {
        expect(seconds).toBeGreaterThan(0);
        expect(seconds).toBeLessThan(5);
      }
      expect(log.take()).toEqual([]);
    } finally {
      log.stop();
    }
  });
});
