import { describe, expect, it } from 'vitest';
import { createLiteralScanner, foldCase } from './literal-scanner.js';

function found(literals: string[], text: string): number[] {
  const sc = createLiteralScanner(literals.map((literal, output) => ({ literal, output })));
  const out = new Set<number>();
  sc.scan(text, (o) => out.add(o));
  return [...out].sort((a, b) => a - b);
}

function naive(literals: string[], text: string): number[] {
  const t = foldCase(text);
  return literals.map((l, i) => (t.includes(foldCase(l)) ? i : -1)).filter((i) => i >= 0);
}

describe('createLiteralScanner', () => {
  it('reports every literal that occurs, case-insensitively, overlapping ones included', () => {
    const lits = ['he', 'she', 'his', 'hers', '\\cmd.exe', 'CMD', 'ÄBC'];
    expect(found(lits, 'ushers')).toEqual([0, 1, 3]);
    expect(found(lits, 'C:\\Windows\\System32\\CMD.EXE')).toEqual([4, 5]);
    expect(found(lits, 'äbc')).toEqual([6]);
    expect(found(lits, 'nothing at all')).toEqual([]);
  });

  it('agrees with a plain substring search on random texts', () => {
    let seed = 7;
    // A small LCG: the test needs varied input, not statistical quality.
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const alphabet = 'abcAB\\.- ';
    const pick = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
    for (let round = 0; round < 200; round++) {
      const lits = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => pick(1 + Math.floor(rnd() * 4)));
      const text = pick(Math.floor(rnd() * 40));
      expect(found(lits, text), `${JSON.stringify(lits)} in ${JSON.stringify(text)}`).toEqual(naive(lits, text));
    }
  });

  it('scans a value given in parts as if it were one string', () => {
    const sc = createLiteralScanner([{ literal: 'run\\updater', output: 1 }]);
    const hits: number[] = [];
    sc.reset();
    sc.feed('HKLM\\...\\Run', (o) => hits.push(o));
    sc.feed('\\', (o) => hits.push(o));
    sc.feed('Updater', (o) => hits.push(o));
    expect(hits).toEqual([1]);
    sc.reset();
    sc.feed('Run', (o) => hits.push(o));
    sc.reset();
    sc.feed('\\Updater', (o) => hits.push(o));
    expect(hits).toEqual([1]);
  });
});
