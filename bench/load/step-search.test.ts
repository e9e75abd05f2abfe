import { describe, expect, it } from 'vitest';
import { StepSearch, type StepPurpose, type StepSearchConfig } from './step-search.js';

const CFG: StepSearchConfig = { start: 10, factor: 2, maxSteps: 12, refineSteps: 2, confirm: true };

/**
 * Runs a search against a server whose true maximum is `max` (rates up to it hold, rates up to
 * `ceiling` keep up) and whose `noisy` rates, on their first run only, show the opposite.
 */
function search(cfg: StepSearchConfig, max: number, ceiling: number, noisy: number[] = []): { steps: [number, StepPurpose][]; maximum: number | undefined; ceilingRamp: { from: number; steps: number } | undefined } {
  const s = new StepSearch(cfg);
  const steps: [number, StepPurpose][] = [];
  const flipped = new Set<number>();
  for (let n = 0; n < 100; n++) {
    const step = s.next();
    if (step === undefined) break;
    steps.push([Math.round(step.rate * 100) / 100, step.purpose]);
    let held = step.rate <= max;
    const noise = noisy.find((r) => Math.abs(r - step.rate) < 1e-9);
    if (noise !== undefined && !flipped.has(noise)) {
      flipped.add(noise);
      held = !held;
    }
    s.record({ held, keptUp: held || step.rate <= ceiling });
  }
  expect(s.done).toBe(true);
  return { steps, maximum: s.maximum, ceilingRamp: s.ceilingRamp };
}

describe('StepSearch', () => {
  it('ramps until the server falls behind, confirms the highest rate that held, then halves the gap above it twice', () => {
    const r = search(CFG, 50, 100);
    expect(r.steps).toEqual([
      [10, 'ramp'],
      [20, 'ramp'],
      [40, 'ramp'],
      [80, 'ramp'], // p99 over the limit but kept up: may be one noisy step, the ramp goes on
      [160, 'ramp'], // fell behind
      [40, 'confirm'],
      [56.57, 'refine'], // √(40·80): did not hold
      [47.57, 'refine'], // √(40·56.57): held, then held again
      [47.57, 'confirm'],
    ]);
    expect(r.maximum).toBeCloseTo(47.57, 2);
    // The ramp found the ceiling already: nothing left to ramp.
    expect(r.ceilingRamp).toBeUndefined();
  });

  it('stops the ramp at two steps in a row over the ack limit and leaves the ceiling for last', () => {
    // Keeps up to 1,000 but holds the ack limit only to 50: the ramp stops at 160, not at the ceiling.
    const r = search({ ...CFG, refineSteps: 0 }, 50, 1000);
    expect(r.steps).toEqual([
      [10, 'ramp'],
      [20, 'ramp'],
      [40, 'ramp'],
      [80, 'ramp'],
      [160, 'ramp'],
      [40, 'confirm'],
    ]);
    expect(r.maximum).toBe(40);
    expect(r.ceilingRamp).toEqual({ from: 320, steps: 7 });
  });

  it('does not take one lucky step for the maximum: a rate that fails its confirmation gives way to the next lower one', () => {
    // 80 holds by chance in the ramp, fails when confirmed; 40 is then confirmed.
    const r = search({ ...CFG, refineSteps: 0 }, 50, 100, [80]);
    expect(r.steps.filter(([, p]) => p === 'confirm')).toEqual([
      [80, 'confirm'],
      [40, 'confirm'],
    ]);
    expect(r.maximum).toBe(40);
  });

  it('survives one unlucky step in the ramp: a later rate that held is still the candidate', () => {
    // 20 fails by chance; the ramp goes on (it kept up) and 40 holds and is confirmed.
    const r = search({ ...CFG, refineSteps: 0 }, 50, 100, [20]);
    expect(r.maximum).toBe(40);
  });

  it('a midpoint that holds once but not on its confirmation does not raise the maximum', () => {
    const r = search({ ...CFG, refineSteps: 1 }, 50, 100, [56.568542494923804]);
    // 56.57 is above the true maximum: it holds by chance, fails the confirmation.
    expect(r.steps.slice(-2)).toEqual([
      [56.57, 'refine'],
      [56.57, 'confirm'],
    ]);
    expect(r.maximum).toBe(40);
  });

  it('without confirmation every step runs once', () => {
    const r = search({ ...CFG, confirm: false }, 50, 100);
    expect(r.steps.map(([, p]) => p)).toEqual(['ramp', 'ramp', 'ramp', 'ramp', 'ramp', 'refine', 'refine']);
    expect(r.maximum).toBeCloseTo(47.57, 2);
  });

  it('has no maximum when no step held, and stops the ramp at maxSteps', () => {
    expect(search(CFG, 5, 100).maximum).toBeUndefined();
    const capped = search({ ...CFG, maxSteps: 3, refineSteps: 0 }, 1e9, 1e9);
    expect(capped.steps).toEqual([
      [10, 'ramp'],
      [20, 'ramp'],
      [40, 'ramp'],
      [40, 'confirm'],
    ]);
    expect(capped.maximum).toBe(40);
  });

  it('refuses a configuration that cannot rise', () => {
    expect(() => new StepSearch({ ...CFG, factor: 1 })).toThrow(RangeError);
  });
});
