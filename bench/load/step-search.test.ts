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

  it('refuses a configuration that cannot rise', () => {
    expect(() => new StepSearch({ ...CFG, factor: 1 })).toThrow(RangeError);
  });
});
