import { describe, expect, it } from 'vitest';
import { createLatencyHistogram } from './latency-histogram.js';

describe('latency histogram', () => {
  it('reads percentiles within 1 % of the exact sample percentile', () => {
    const h = createLatencyHistogram();
    for (let i = 1; i <= 10_000; i++) h.recordUs(i * 10); // 10 µs .. 100 ms
    const p = h.percentiles();
    expect(p.count).toBe(10_000);
    expect(Math.abs(p.p50 - 50) / 50).toBeLessThan(0.01);
    expect(Math.abs(p.p99 - 99) / 99).toBeLessThan(0.01);
    expect(Math.abs(p.p999 - 99.9) / 99.9).toBeLessThan(0.01);
    expect(p.max).toBe(100);
  });

  it('merges sparse deltas into the same result as recording directly', () => {
    const a = createLatencyHistogram();
    const merged = createLatencyHistogram();
    for (const v of [5, 50, 500, 5000, 50_000]) a.recordUs(v);
    merged.merge(a.takeDelta());
    expect(a.takeDelta()).toEqual([]);
    a.recordUs(7);
    merged.merge(a.takeDelta());
    expect(merged.count()).toBe(6);
    expect(merged.quantileUs(0.5)).toBeCloseTo(a.quantileUs(0.5), 0);
  });

  it('is empty-safe', () => {
    expect(createLatencyHistogram().percentiles()).toEqual({ count: 0, p50: 0, p99: 0, p999: 0, max: 0 });
  });
});
