/**
 * SigmaHQ's regression cases and rules (../shared/sigma beside the
 * repository, or beside one of its parent folders for a worktree): the
 * conformance goal, every failure explained in docs/SIGMA.md, and the
 * prefiltered matcher agreeing with plain evaluation of every rule.
 * Skipped, with a one-line reason, where the folder is absent (a user's clone).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mapRecord } from '../../ingest/import/index.js';
import { parseJsonStream, runConformance } from './conformance.js';
import { findSharedSigmaDir, loadSigmaRules } from './loader.js';
import { createSigmaMatcher } from './matcher.js';
import type { ProcessFacts } from './types.js';
// The trail generator's events, through the micro benchmarks' fixture helper (the generator's one import point).
import { fixtureEvents } from '../../bench/micro/micro-fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const found = findSharedSigmaDir(ROOT);
const SHARED = found !== undefined && existsSync(join(found, 'regression')) ? found : undefined;
if (SHARED === undefined) process.stdout.write('engine/sigma conformance: skipped, ../shared/sigma (SigmaHQ rules and regression data) is not beside the repository\n');

function* jsonFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* jsonFiles(p);
    else if (e.endsWith('.json')) yield p;
  }
}

describe.skipIf(SHARED === undefined)('SigmaHQ regression cases', () => {
  const shared = SHARED!;

  it('passes at least 95 % of the cases, and docs/SIGMA.md explains every failure', () => {
    const r = runConformance(join(shared, 'rules', 'windows'), join(shared, 'regression'));
    expect(r.cases).toBe(148);
    expect(r.passed / r.cases).toBeGreaterThanOrEqual(0.95);
    const docs = readFileSync(join(ROOT, 'docs', 'SIGMA.md'), 'utf8');
    for (const f of r.failed) expect(docs, `docs/SIGMA.md must explain ${f.case}`).toContain(f.case);
    expect(docs).toContain(`${r.passed} of ${r.cases}`);
  });

  it('the prefiltered index finds exactly what evaluating every rule finds (regression and generated events)', () => {
    const loaded = loadSigmaRules(join(shared, 'rules', 'windows'));
    const regression: Record<string, unknown>[] = [];
    for (const file of jsonFiles(join(shared, 'regression'))) {
      for (const rec of parseJsonStream(readFileSync(file, 'utf8'))) {
        const m = mapRecord(rec);
        if (m.ok) regression.push(m.event);
      }
    }
    expect(regression.length).toBeGreaterThan(150);
    // Generated trail events (ports as numbers, registry keys and values apart, parents in the process table).
    const generated = fixtureEvents(20_000, 4, 11, 0.01) as Record<string, unknown>[];
    const table = new Map<string, ProcessFacts>();
    for (const e of [...regression, ...generated]) if (e.k === 'proc.start' && typeof e.pg === 'string') table.set(e.pg, e);
    const resolver = { process: (pg: string) => table.get(pg) };
    const matcher = createSigmaMatcher(loaded.rules, { resolver });
    let total = 0;
    for (const e of [...regression, ...generated]) {
      const k = e.k as string;
      const want: string[] = [];
      for (const r of loaded.rules) {
        if (r.guard !== undefined && !r.guard(e)) continue;
        const onExact = r.info.kinds.includes(k) && r.exact!.evaluate(e, resolver);
        const onData = r.info.prefixes.some((p) => k.startsWith(p)) && r.data!.evaluate(e, resolver);
        if (onExact || onData) want.push(r.info.id);
      }
      const got = matcher.match(e).map((h) => h.id);
      expect(got.sort(), `${k} ${JSON.stringify(e).slice(0, 200)}`).toEqual(want.sort());
      total += got.length;
    }
    expect(total).toBeGreaterThan(regression.length / 2);
  });
});
