import { describe, expect, it } from 'vitest';
import { createSyslogFramer } from './framing.js';

function run(chunks: string[], max = 64): { messages: string[]; tooLong: number } {
  const messages: string[] = [];
  let tooLong = 0;
  const f = createSyslogFramer(max, { message: (m) => messages.push(m), tooLong: () => tooLong++ });
  for (const c of chunks) f.push(Buffer.from(c));
  f.end();
  return { messages, tooLong };
}

describe('syslog framing (RFC 6587)', () => {
  it.each([
    ['newline framing, CR dropped', ['<13>a\n<13>b\r\n'], ['<13>a', '<13>b']],
    ['octet counting', ['6 <13>ab5 <13>c'], ['<13>ab', '<13>c']],
    ['both on one stream', ['5 <13>a<13>b\n4 <13>'], ['<13>a', '<13>b', '<13>']],
    ['a length split across chunks', ['1', '0 <13>abcde', 'f'], ['<13>abcdef']],
    ['a message split across chunks', ['<13>he', 'llo\n'], ['<13>hello']],
    ['bare lines starting with digits stay newline framed', ['1710234000.123 5 x\n'], ['1710234000.123 5 x']],
    ['an unterminated last line is delivered at the end', ['<13>last'], ['<13>last']],
    ['empty lines are skipped', ['\n\n<13>a\n'], ['<13>a']],
    ['multi-byte characters', ['<13>日本語\n'], ['<13>日本語']],
  ])('%s', (_name, chunks, expected) => {
    expect(run(chunks).messages).toEqual(expected);
  });

  it('skips an oversized newline-framed line to its LF and counts it once', () => {
    const long = 'x'.repeat(100);
    expect(run([`<13>${long.slice(0, 70)}`, `${long}\n<13>ok\n`])).toEqual({ messages: ['<13>ok'], tooLong: 1 });
  });

  it('skips an oversized octet-counted message by its length', () => {
    const body = `<13>${'y'.repeat(96)}`;
    expect(run([`${body.length} ${body.slice(0, 30)}`, `${body.slice(30)}5 <13>z`])).toEqual({ messages: ['<13>z'], tooLong: 1 });
  });
});
