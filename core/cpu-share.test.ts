import { describe, expect, it } from 'vitest';
import { createCpuShareMeter, processCpuMicros } from './cpu-share.js';

describe('createCpuShareMeter', () => {
  it('answers the share of all cores used since the previous read', () => {
    let at = 0;
    let cpu = 0;
    const meter = createCpuShareMeter({ cores: 2, now: () => at, cpuMicros: () => cpu });
    at = 1000;
    cpu = 500_000; // half a core-second in one second, on two cores
    expect(meter()).toBeCloseTo(0.25);
    at = 3000;
    cpu = 4_500_000; // two core-seconds in two seconds: the whole machine
    expect(meter()).toBeCloseTo(1);
    expect(meter()).toBe(0); // no time passed
  });

  it('measures this process by default', () => {
    const meter = createCpuShareMeter({ cores: 1 });
    const start = processCpuMicros();
    while (processCpuMicros() - start < 20_000); // 20 ms of CPU, however long the machine takes to give it
    expect(meter()).toBeGreaterThan(0);
  });
});
