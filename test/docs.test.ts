/**
 * The README stays complete: every command bin/kiseki.ts dispatches is in its
 * command table, every document in docs/ is in its documentation list, and
 * no link leaves the repository (the README is read on machines without the
 * product's other folders).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

function dispatchedCommands(): string[] {
  const cli = readFileSync(join(ROOT, 'bin/kiseki.ts'), 'utf8');
  const main = cli.slice(cli.indexOf('async function main('));
  return [...main.matchAll(/case '([a-z][a-z-]*)':/g)].map((m) => m[1]!);
}

describe('README.md', () => {
  it('starts with npm install, npm start and npm test', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(firstBlock.split('\n').map((l) => l.split('#')[0]!.trim()).filter((l) => l !== '')).toEqual(['npm install', 'npm start', 'npm test']);
  });

  it.each(dispatchedCommands())('has `kiseki %s` in its command table', (command) => {
    const rows = readme.split('\n').filter((l) => l.startsWith('| `kiseki '));
    expect(rows.some((r) => r.includes(`\`kiseki ${command}`) || r.includes(`, \`kiseki ${command}`))).toBe(true);
  });

  it('lists every document of docs/', () => {
    const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'));
    expect(docs.length).toBeGreaterThan(5);
    for (const doc of docs) expect(readme, doc).toContain(`](docs/${doc})`);
  });

  it('links only inside the repository, to files that exist', () => {
    const targets = [...readme.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!);
    expect(targets.length).toBeGreaterThan(0);
    for (const t of targets) {
      expect(t, t).not.toMatch(/^(https?:|\/|\.\.)/);
      expect(() => readFileSync(join(ROOT, t.split('#')[0]!)), t).not.toThrow();
    }
    expect(readme).not.toMatch(/\.\.\/shared|npx kiseki \w/);
  });
});
