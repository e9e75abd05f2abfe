import { describe, expect, it } from 'vitest';
import { count, pluralOf } from './plural.js';

describe('count and pluralOf', () => {
  it.each([
    [0, 'child process', '0 child processes'],
    [1, 'child process', '1 child process'],
    [2, 'child process', '2 child processes'],
    [3, 'registry change', '3 registry changes'],
    [1, 'file read', '1 file read'],
    [2, 'box', '2 boxes'],
    [2, 'batch', '2 batches'],
    [2, 'flush', '2 flushes'],
    [2, 'entry', '2 entries'],
    [2, 'day', '2 days'],
    [5, 'event', '5 events'],
  ])('count(%i, %s) = %s', (n, noun, text) => {
    expect(count(n, noun)).toBe(text);
  });

  it('takes an irregular plural', () => {
    expect(count(2, 'index', 'indices')).toBe('2 indices');
    expect(count(1, 'index', 'indices')).toBe('1 index');
    expect(pluralOf('address')).toBe('addresses');
  });
});
