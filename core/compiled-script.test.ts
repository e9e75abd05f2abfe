import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compiledScript } from './compiled-script.js';

describe('compiled scripts', () => {
  it('finds a compiled module of the same folder under dist/ when run from the sources, and nothing for a missing one', () => {
    const url = compiledScript('plural.js', import.meta.url);
    expect(url).toBeDefined();
    expect(fileURLToPath(url!)).toMatch(/dist\/core\/plural\.js$/);
    expect(existsSync(fileURLToPath(url!))).toBe(true);
    expect(compiledScript('no-such-worker.js', import.meta.url)).toBeUndefined();
  });

  it('prefers the script next to the caller (the caller runs from dist/)', () => {
    const caller = new URL('../dist/core/compiled-script.js', import.meta.url).href;
    expect(fileURLToPath(compiledScript('plural.js', caller)!)).toMatch(/dist\/core\/plural\.js$/);
  });
});
