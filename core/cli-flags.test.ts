import { describe, expect, it } from 'vitest';
import { COMMON_FLAGS, parseFlags, parseJstDate, peekDataDir, requireFlag } from './cli-flags.js';
import { KisekiError } from './errors.js';

const SPECS = {
  ...COMMON_FLAGS,
  tenant: { type: 'string' },
  limit: { type: 'number' },
  json: { type: 'boolean' },
  file: { type: 'string', multiple: true },
} as const;

describe('parseFlags', () => {
  it.each([
    { args: ['--tenant', 'S1'], values: { tenant: 'S1' } },
    { args: ['--tenant=S1'], values: { tenant: 'S1' } },
    { args: ['--tenant='], values: { tenant: '' } },
    { args: ['--tenant=a=b'], values: { tenant: 'a=b' } },
    { args: ['--limit', '20'], values: { limit: 20 } },
    { args: ['--limit=-3'], values: { limit: -3 } },
    { args: ['--limit', '-3'], values: { limit: -3 } },
    { args: ['--json'], values: { json: true } },
    { args: ['--json=false'], values: { json: false } },
    { args: ['-h'], values: { help: true } },
    { args: ['--file', 'a', '--file=b'], values: { file: ['a', 'b'] } },
    { args: ['--data', './d', '--json', '--tenant', 'S'], values: { data: './d', json: true, tenant: 'S' } },
    { args: [], values: {} },
  ])('$args → $values', ({ args, values }) => {
    expect(parseFlags(args, SPECS).values).toEqual(values);
  });

  it.each([
    { args: ['--nope'], reason: 'unknown flag --nope' },
    { args: ['-x'], reason: 'unknown flag -x' },
    { args: ['--'], reason: undefined },
    { args: ['--tenant'], reason: '--tenant needs a value' },
    { args: ['--tenant', '--json'], reason: '--tenant needs a value' },
    { args: ['--limit', 'ten'], reason: '--limit takes a number, not "ten"' },
    { args: ['--limit='], reason: '--limit takes a number, not ""' },
    { args: ['--json=yes'], reason: '--json is a switch: give it alone (or as --json=true|false), not "yes"' },
    { args: ['--tenant', 'a', '--tenant', 'b'], reason: '--tenant is given more than once' },
    { args: ['stray'], reason: 'unexpected argument stray' },
    { args: ['--', 'x'], reason: 'unexpected argument x' },
  ])('$args is refused: $reason', ({ args, reason }) => {
    if (reason === undefined) {
      expect(parseFlags(args, SPECS).values).toEqual({});
      return;
    }
    let caught: unknown;
    try {
      parseFlags(args, SPECS);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KisekiError);
    expect(caught).toMatchObject({ code: 'ERR_USAGE', status: 400, details: { reason } });
  });

  it('collects bare arguments only when allowed, and everything after --', () => {
    expect(parseFlags(['a.json', '--json', 'b.json', '--', '--tenant'], SPECS, { positionals: true })).toEqual({
      values: { json: true },
      positionals: ['a.json', 'b.json', '--tenant'],
    });
  });

  it('does not treat inherited object keys as flags', () => {
    expect(() => parseFlags(['--constructor', 'x'], SPECS)).toThrow(KisekiError);
    expect(() => parseFlags(['--toString'], SPECS)).toThrow(KisekiError);
  });
});

describe('requireFlag and peekDataDir', () => {
  it.each([
    { values: { tenant: ' S1 ' }, out: 'S1' },
    { values: { tenant: '' }, out: undefined },
    { values: {}, out: undefined },
  ])('requireFlag($values)', ({ values, out }) => {
    if (out === undefined) expect(() => requireFlag(values, 'tenant')).toThrow(expect.objectContaining({ details: { reason: '--tenant is required' } }));
    else expect(requireFlag(values, 'tenant')).toBe(out);
  });

  it.each([
    { args: ['daily', '--data', '/d', '--date', 'x'], dir: '/d' },
    { args: ['--data=/e'], dir: '/e' },
    { args: ['--', '--data', '/f'], dir: undefined },
    { args: ['daily'], dir: undefined },
  ])('peekDataDir($args) = $dir', ({ args, dir }) => {
    expect(peekDataDir(args)).toBe(dir);
  });
});

describe('parseJstDate', () => {
  it.each([
    // A bare date covers the whole JST day: its end is the next day's 00:00 JST = 15:00 UTC.
    { text: '2026-12-31', iso: '2026-12-31T15:00:00.000Z' },
    { text: '2024-02-29', iso: '2024-02-29T15:00:00.000Z' },
    { text: '2026-12-31 09:30', iso: '2026-12-31T00:30:00.000Z' },
    { text: '2026-12-31T00:00:00', iso: '2026-12-30T15:00:00.000Z' },
    { text: '2026-12-31T00:00:00.5', iso: '2026-12-30T15:00:00.500Z' },
    { text: '2026-12-31T00:00:00Z', iso: '2026-12-31T00:00:00.000Z' },
    { text: '2026-12-31T00:00:00+09:00', iso: '2026-12-30T15:00:00.000Z' },
    { text: '2026-02-30', iso: undefined },
    { text: '2026-13-01', iso: undefined },
    { text: '2026-12-31 24:00', iso: undefined },
    { text: 'tomorrow', iso: undefined },
    { text: '12/31/2026', iso: undefined },
  ])('$text → $iso', ({ text, iso }) => {
    const t = parseJstDate(text);
    expect(t === undefined ? undefined : new Date(t).toISOString()).toBe(iso);
  });
});
