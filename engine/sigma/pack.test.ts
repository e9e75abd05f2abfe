/**
 * The default rule pack (engine/sigma/rules/): every file loads, is `stable`
 * or `test`, and is the unchanged SigmaHQ file of the same path where
 * ../shared/sigma is present.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultRulesDir, findSharedSigmaDir, loadSigmaRules } from './loader.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('default rule pack', () => {
  const dir = defaultRulesDir();
  const loaded = loadSigmaRules(dir);

  it('loads every file, each stable or test, with its author kept', () => {
    expect(loaded.refused).toEqual([]);
    expect(loaded.rules.length).toBe(loaded.files);
    expect(loaded.rules.length).toBeGreaterThan(1500);
    for (const r of loaded.rules) expect(['stable', 'test'], r.info.file).toContain(r.info.status);
    expect(loaded.rules.filter((r) => r.info.author === '')).toEqual([]);
    expect(existsSync(join(dir, 'LICENSE'))).toBe(true);
  });

  const shared = findSharedSigmaDir(ROOT);
  it.skipIf(shared === undefined)('holds SigmaHQ’s files unchanged', () => {
    for (const r of loaded.rules) {
      expect(readFileSync(join(dir, r.info.file), 'utf8'), r.info.file).toBe(readFileSync(join(shared!, 'rules', r.info.file), 'utf8'));
    }
  });
});
