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

/** Random literal sets and texts over `alphabet`: the scanner must find what a substring search finds. */
function agreesOnRandomTexts(seed: number, alphabet: string, rounds: number, maxLiterals: number, maxLiteralLength: number, maxTextLength: number): void {
  // A small LCG: the test needs varied input, not statistical quality.
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pick = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
  for (let round = 0; round < rounds; round++) {
    const lits = Array.from({ length: 1 + Math.floor(rnd() * maxLiterals) }, () => pick(1 + Math.floor(rnd() * maxLiteralLength)));
    const text = pick(Math.floor(rnd() * maxTextLength));
    expect(found(lits, text), `${JSON.stringify(lits)} in ${JSON.stringify(text)}`).toEqual(naive(lits, text));
  }
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
    agreesOnRandomTexts(7, 'abcAB\\.- ', 200, 12, 4, 40);
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

describe('createLiteralScanner, edge cases', () => {
  it('skips empty literals and reports duplicates and nested literals under each output', () => {
    expect(found(['', 'abc', 'abc', 'b', 'abcd'], 'xxABCDxx')).toEqual([1, 2, 3, 4]);
    expect(found([''], 'anything')).toEqual([]);
  });

  it('treats `*` and `?` in a literal as plain characters (the compiler splits wildcards off first)', () => {
    expect(found(['a*b', 'c?d'], 'xA*Bx c?D')).toEqual([0, 1]);
    expect(found(['a*b'], 'axxb')).toEqual([]);
  });

  it('folds non-ASCII letters, and characters that fold into ASCII, as the literals were folded', () => {
    expect(found(['ÉTÉ', 'straße', 'ÿ', 'k'], 'été STRASSE Straße Ÿ')).toEqual([0, 1, 2]);
    // U+212A KELVIN SIGN lower-cases to an ASCII `k`.
    expect(found(['k'], '\u212a')).toEqual([0]);
    expect(found(['\u212a'], 'K')).toEqual([0]);
    expect(found(['日本'], 'x日本語')).toEqual([0]);
    expect(found(['日本'], '日x本')).toEqual([]);
  });

  it('restarts after a character of no literal and continues fail links across non-ASCII text', () => {
    expect(found(['aab', 'ab'], 'aaé aab')).toEqual([0, 1]);
    expect(found(['éé', 'é'], 'éxéé')).toEqual([0, 1]);
  });

  it('agrees with a plain substring search on random texts with non-ASCII characters', () => {
    agreesOnRandomTexts(11, 'aAéÉ\u212akK日\\ ', 300, 8, 3, 30);
  });
});
