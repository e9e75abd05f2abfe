/**
 * No import circle among the source files: builds the graph of relative
 * imports (type-only ones included, since they tie modules together just the
 * same for a reader) of every .ts file and fails on any strongly connected
 * component of more than one file, or a file importing itself.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIP = new Set(['node_modules', 'dist', '.git']);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const IMPORT = /(?:^|\s)(?:import|export)\s[^'";]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^import\s+['"](\.{1,2}\/[^'"]+)['"]/gm;

/** The relative imports of a file's text, as written. */
export function relativeImports(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** Strongly connected components of more than one node, or nodes with a self edge (Tarjan). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('import graph', () => {
  it('finds circles, and only circles', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a', 'd']],
      ['e', ['a']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c'], ['d']]);
  });

  it('reads relative imports, exports and dynamic imports', () => {
    const text = "import type { A } from './a.js';\nexport { b } from '../b.js';\nconst c = await import('./c.js');\nimport 'node:fs';\nimport { x } from 'hono';";
    expect(relativeImports(text)).toEqual(['./a.js', '../b.js', './c.js']);
  });

  it('has no circle among the source files', () => {
    const graph = new Map<string, string[]>();
    const files = sourceFiles(ROOT);
    for (const file of files) {
      const from = relative(ROOT, file).split(sep).join('/');
      const edges: string[] = [];
      for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
        // A `.js` import names a .ts or (JSX) .tsx source.
        const ts = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        const target = existsSync(ts) ? ts : `${ts}x`;
        if (existsSync(target)) edges.push(relative(ROOT, target).split(sep).join('/'));
      }
      graph.set(from, edges);
    }
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph)).toEqual([]);
  });
});
