import { describe, expect, it } from 'vitest';
import { median, roundSpread, spread } from './spread.js';

describe('spread', () => {
  it('gives the median (the mean of the two middle values for an even count), min and max, whatever the order', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
    expect(median([7])).toBe(7);
  });

  it('rounds each figure, and refuses an empty list', () => {
    expect(roundSpread({ median: 1.2345, min: 1.001, max: 2.5 }, 2)).toEqual({ median: 1.23, min: 1, max: 2.5 });
    expect(() => spread([])).toThrow(RangeError);
    expect(() => median([])).toThrow(RangeError);
  });
});
