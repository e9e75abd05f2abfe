import { describe, expect, it } from 'vitest';
import { toCsv } from './ledger.js';

describe('ledger CSV', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\r\nlines', '"two\r\nlines"'],
    ['=HYPERLINK("x")', `"'=HYPERLINK(""x"")"`],
    ['-1+2', "'-1+2"],
    ['@cmd', "'@cmd"],
    ['日本語 アプリ', '日本語 アプリ'],
  ])('writes %j as %j', (cell, want) => {
    expect(toCsv({ columns: ['c'], rows: [[cell]] })).toBe(`\ufeffc\r\n${want}\r\n`);
  });

  it('writes numbers, booleans and missing values as they are', () => {
    expect(toCsv({ columns: ['a', 'b', 'c', 'd'], rows: [[-5, true, undefined, null]] })).toBe('\ufeffa,b,c,d\r\n-5,true,,\r\n');
  });
});
