import { describe, expect, it } from 'vitest';
import { StepSearch, type StepPurpose, type StepSearchConfig } from './step-search.js';

const CFG: StepSearchConfig = { start: 10, factor: 2, maxSteps: 12, retry: true };

/**
 * Runs a search against a server whose true maximum is `max` (rates up to it hold, rates up to
 * `ceiling` keep up) and whose `noisy` rates, on their first run only, show the opposite.
 */
function search(cfg: StepSearchConfig, max: number, ceiling: number, noisy: number[] = []) {
  const s = new StepSearch(cfg);
  const steps: [number, StepPurpose][] = [];
  const flipped = new Set<number>();
  for (let n = 0; n < 100; n++) {
    const step = s.next();
    if (step === undefined) break;
    steps.push([step.rate, step.purpose]);
    let held = step.rate <= max;
    if (noisy.includes(step.rate) && !flipped.has(step.rate)) {
      flipped.add(step.rate);
      held = !held;
    }
    s.record({ held, keptUp: held || step.rate <= ceiling });
  }
  expect(s.done).toBe(true);
  return { steps, maximum: s.maximum, ceilingRamp: s.ceilingRamp };
}

describe('StepSearch', () => {
  it('ramps while steps hold, runs a missed rate once more, and stops when it misses again', () => {
    const r = search(CFG, 50, 1000);
    expect(r.steps).toEqual([
      [10, 'ramp'],
      [20, 'ramp'],
      [40, 'ramp'],
      [80, 'ramp'],
      [80, 'retry'],
    ]);
    expect(r.maximum).toBe(40);
    // It kept up at 80: the ceiling lies above, for the runner's last ramp.
    expect(r.ceilingRamp).toEqual({ from: 160, steps: 7 });
  });

  it('survives one unlucky step: a rate that misses once and holds on its second run lets the ramp go on', () => {
    const r = search(CFG, 50, 1000, [20]);
    expect(r.steps.slice(0, 4)).toEqual([
      [10, 'ramp'],
      [20, 'ramp'],
      [20, 'retry'],
      [40, 'ramp'],
    ]);
    expect(r.maximum).toBe(40);
  });

  it('without retries one unlucky step ends the search', () => {
    expect(search({ ...CFG, retry: false }, 50, 1000, [20]).maximum).toBe(10);
  });

  it('leaves no ceiling ramp when the last step fell behind the offered rate', () => {
    const r = search(CFG, 50, 60);
    expect(r.maximum).toBe(40);
    expect(r.ceilingRamp).toBeUndefined();
  });

  it('has no maximum when no step held, and stops at maxSteps', () => {
    expect(search(CFG, 5, 1000).maximum).toBeUndefined();
    const capped = search({ ...CFG, maxSteps: 3 }, 1e9, 1e9);
    expect(capped.steps).toEqual([
      [10, 'ramp'],
      [20, 'ramp'],
      [40, 'ramp'],
    ]);
    expect(capped.maximum).toBe(40);
    expect(capped.ceilingRamp).toBeUndefined();
  });

  it('with refine steps, bisects between the rate that held and the one that missed, then leaves the ceiling ramp where the ramp stopped', () => {
    // True maximum 60: the ramp holds 40 and misses 80 twice; refining tries √(40·80) ≈ 56.6 (holds), then √(56.6·80) ≈ 67.3 (misses).
    const r = search({ ...CFG, refine: 2 }, 60, 1000);
    expect(r.steps.map(([rate, purpose]) => [Math.round(rate * 10) / 10, purpose])).toEqual([
      [10, 'ramp'],
      [20, 'ramp'],
      [40, 'ramp'],
      [80, 'ramp'],
      [80, 'retry'],
      [56.6, 'refine'],
      [67.3, 'refine'],
    ]);
    expect(r.maximum).toBeCloseTo(Math.sqrt(40 * 80), 9);
    expect(r.ceilingRamp).toEqual({ from: 160, steps: 5 });
    // A refine step that misses moves the upper bound: maximum 45 → 56.6 misses, √(40·56.6) ≈ 47.6 misses too.
    const low = search({ ...CFG, refine: 2 }, 45, 1000);
    expect(low.steps.slice(5).map(([rate, purpose]) => [Math.round(rate * 10) / 10, purpose])).toEqual([
      [56.6, 'refine'],
      [47.6, 'refine'],
    ]);
    expect(low.maximum).toBe(40);
    // Nothing to refine below a first step that missed, and refine steps count against maxSteps.
    expect(search({ ...CFG, refine: 2 }, 5, 1000).steps).toEqual([
      [10, 'ramp'],
      [10, 'retry'],
    ]);
    expect(search({ ...CFG, refine: 5, maxSteps: 6 }, 60, 1000).steps).toHaveLength(6);
  });

  it('refuses a configuration that cannot rise', () => {
    expect(() => new StepSearch({ ...CFG, factor: 1 })).toThrow(RangeError);
  });
});
