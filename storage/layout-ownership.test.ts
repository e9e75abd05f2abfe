/**
 * Keeps storage/ the only owner of LMDB: outside this folder no file imports
 * lmdb, reaches into a storage module other than its index.ts (where the raw
 * tables could leak out), builds a key tuple for a table, or calls lmdb-js
 * table methods. Scans every .ts source file of the repository.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIP = new Set(['node_modules', 'dist', '.git']);

/** Every .ts and .tsx file under the repository root, as paths relative to it. */
export function sourceFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(relative(ROOT, path).split(sep).join('/'));
  }
  return out;
}

/** The names of the raw tables (storage/tables.ts); a `store.<name>.` outside storage would be direct table access. */
const TABLE_ONLY_NAMES = [
  'enrollKeys', 'tenantDevices', 'inventory', 'batches', 'deviceBatches', 'batchIds', 'trails', 'checkpoints', 'stateCheckpoints',
  'kindCounts', 'deviceState', 'tenantAlerts', 'deviceAlerts', 'alertsByTime', 'reports', 'verdictHistory', 'alertDedup',
  'analystVerdicts', 'comments', 'deviceCommands', 'isolation', 'users', 'sessions', 'loginAttempts', 'audit',
];

const RULES: { name: string; pattern: RegExp }[] = [
  { name: 'imports lmdb', pattern: /from\s+['"]lmdb['"]|import\(\s*['"]lmdb['"]\s*\)|require\(\s*['"]lmdb['"]\s*\)/ },
  { name: 'imports a storage module other than storage/index.js', pattern: /from\s+['"](?:\.\.?\/)+(?:\.\.\/)*storage\/(?!index\.js['"])[^'"]+['"]/ },
  { name: 'builds a key tuple for a table', pattern: /\.(?:get|put|remove|putSync|removeSync|getEntry|doesExist|ifNoExists)\(\s*\[/ },
  { name: 'builds a key tuple for a range read', pattern: /\.(?:getRange|getKeys|getValues)\(\s*\{[^}]*\b(?:start|end)\s*:\s*\[/ },
  { name: 'calls an lmdb-js table method', pattern: /\.(?:getRange|getKeys|getValues|getCount|putSync|removeSync|ifNoExists|resetReadTxn|openDB)\(/ },
  { name: 'reaches a raw table of the store', pattern: new RegExp(`\\bstore\\??\\.(?:${TABLE_ONLY_NAMES.join('|')})\\b`) },
];

/** The rule violations in one file's text: `rule: line` strings. */
export function violations(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    for (const rule of RULES) if (rule.pattern.test(lines[i]!)) out.push(`${rule.name}: ${i + 1}: ${lines[i]!.trim()}`);
  }
  return out;
}

describe('storage owns every table and key layout', () => {
  it.each([
    ["import { open } from 'lmdb';", 'imports lmdb'],
    ["import type { Tables } from '../storage/tables.js';", 'imports a storage module other than storage/index.js'],
    ['store.alerts.get([tmid, 1]);', 'builds a key tuple for a table'],
    ['db.getKeys({ start: [tmid, 0], end: [tmid, 9] })', 'builds a key tuple for a range read'],
    ['for (const e of db.getRange()) n++;', 'calls an lmdb-js table method'],
    ['const t = store.trails;', 'reaches a raw table of the store'],
  ])('flags %s', (line, rule) => {
    expect(violations(line).map((v) => v.split(':')[0])).toContain(rule);
  });

  it('accepts repository calls', () => {
    expect(violations("import { openHotStore } from '../storage/index.js';\nstore.alerts.effective(id);\nstore.log.trail(tmid);")).toEqual([]);
  });

  it('finds no violation in any file outside storage/', () => {
    const files = sourceFiles().filter((f) => !f.startsWith('storage/'));
    expect(files.length).toBeGreaterThan(50);
    const found: string[] = [];
    for (const f of files) for (const v of violations(readFileSync(join(ROOT, f), 'utf8'))) found.push(`${f}: ${v}`);
    expect(found).toEqual([]);
  });
});
