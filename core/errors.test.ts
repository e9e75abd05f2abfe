import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeError, ERRORS, isKisekiError, KisekiError } from './errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The rows of the table in docs/ERRORS.md: code → status and message. */
function documentedCodes(): Map<string, { status: number; message: string }> {
  const rows = new Map<string, { status: number; message: string }>();
  for (const line of readFileSync(join(ROOT, 'docs/ERRORS.md'), 'utf8').split('\n')) {
    const m = /^\| `(ERR_[A-Z0-9_]+)` \| (\d{3}) \| ([^|]+) \|/.exec(line);
    if (m !== null) rows.set(m[1]!, { status: Number(m[2]), message: m[3]!.trim() });
  }
  return rows;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/*
 * Files converted on another branch at the time this test was written; each
 * entry must still exist (so a moved or converted file forces its removal).
 */
describe('the error registry', () => {
  it('docs/ERRORS.md documents exactly the registry codes, with their statuses and messages', () => {
    const documented = documentedCodes();
    expect([...documented.keys()].sort()).toEqual(Object.keys(ERRORS).sort());
    for (const [code, entry] of Object.entries(ERRORS)) expect({ code, ...documented.get(code) }).toEqual({ code, ...entry });
  });

  it('has no other Error subclass in the sources than KisekiError', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(ROOT)) {
      const rel = relative(ROOT, file).split('\\').join('/');
      if (rel === 'core/errors.ts' || rel === 'core/errors.test.ts') continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/class\s+(\w+)\s+extends\s+(\w*Error)\b/g)) offenders.push(`${rel}: ${m[1]} extends ${m[2]}`);
    }
    expect(offenders).toEqual([]);
  });

  it('builds errors with the registry status and a static message', () => {
    const err = new KisekiError('ERR_DAY_OPEN', { day: '2026-01-05' });
    expect(err).toMatchObject({ code: 'ERR_DAY_OPEN', status: 409, message: ERRORS.ERR_DAY_OPEN.message, details: { day: '2026-01-05' } });
    expect(isKisekiError(err, 'ERR_DAY_OPEN')).toBe(true);
    expect(isKisekiError(err, 'ERR_USAGE')).toBe(false);
    expect(isKisekiError(new Error('x'))).toBe(false);
  });

  it.each([
    { err: new KisekiError('ERR_USAGE', { reason: '--x needs a value' }), text: '--x needs a value' },
    { err: new KisekiError('ERR_NOT_FOUND'), text: 'The resource does not exist.' },
    { err: new KisekiError('ERR_TENANT_NOT_FOUND', { supportId: 'S1' }), text: 'No tenant has this support ID. {"supportId":"S1"}' },
  ])('describeError → $text', ({ err, text }) => {
    expect(describeError(err)).toBe(text);
  });
});
