import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QuickReport } from '../../core/contracts.js';
import { describeError, isKisekiError } from '../../core/errors.js';
import { confusionMatrix, formatConfusionMatrix } from './confusion.js';
import { loadCaseFile, resolveCaseInput } from './eval-cases.js';
import { formatEvalText, summarize, type CaseResult } from './eval-command.js';
import { checkFacts, describeFact, factFound, renderReportLines } from './fact-match.js';

const ref = (seq: number, k: string) => ({ tmid: 'T', seq, ts: 1_600_000_000_000 + seq, k });

/** A small report in the shape the engine stores, with one unknown top-level field (a newer builder's). */
function report(): QuickReport {
  return {
    alertId: 'al_x',
    revision: 1,
    createdAt: 0,
    tmid: 'T',
    supportId: 'S',
    computer: 'PC',
    detection: { ref: ref(9, 'av.detect'), event: { path: 'C:\\Users\\a\\x.dll' } },
    originKind: 'script',
    executed: true,
    sections: [
      { id: 'origin', title: 'How the file came to be', summary: 'Written by powershell.exe.', items: [{ ref: ref(2, 'file.create'), event: { path: 'C:\\Users\\a\\x.dll', image: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe' }, note: 'created the detected file' }] },
      { id: 'chain', title: 'Process chain', summary: 'explorer.exe → rundll32.exe', items: [{ ref: ref(3, 'proc.start'), event: { image: 'C:\\Windows\\System32\\rundll32.exe', cmd: 'rundll32.exe C:\\Users\\a\\x.dll,Start' } }] },
      {
        id: 'network',
        title: 'Network',
        summary: '2 connections',
        items: [
          { ref: ref(4, 'net.conn'), event: { rip: '10.0.0.5', rport: 8443 } },
          { ref: ref(5, 'net.conn'), event: { rip: '10.0.0.6', rport: 80, answers: ['a.example', 'b.example'] } },
        ],
      },
    ],
    rules: [{ ruleId: 'behaviour.lsass', description: 'opened LSASS with full access', weight: 50, evidence: [ref(6, 'proc.access')] }],
    score: 80,
    verdict: 'black',
    factors: [{ name: 'credential access', evidence: { timage: 'C:\\Windows\\System32\\lsass.exe', access: '0x1fffff' } }],
  } as QuickReport;
}

describe('fact matcher', () => {
  it('finds a fact when one line of the section holds every string, case-insensitively', () => {
    const lines = renderReportLines(report());
    expect(factFound({ section: 'network', contains: ['10.0.0.5', '8443'] }, lines)).toBe(true);
    expect(factFound({ section: 'NETWORK', contains: ['10.0.0.5'.toUpperCase()] }, lines)).toBe(true);
    // Both strings exist in the section, but not on the same connection.
    expect(factFound({ section: 'network', contains: ['10.0.0.5', '80'] }, lines)).toBe(false);
    expect(factFound({ section: 'network', contains: ['10.0.0.6', '8443'] }, lines)).toBe(false);
    expect(factFound({ section: 'network', contains: ['b.example'] }, lines)).toBe(true);
  });

  it('looks only in the named sections; lists, titles and pseudo-sections work', () => {
    const lines = renderReportLines(report());
    expect(factFound({ section: 'chain', contains: ['10.0.0.5'] }, lines)).toBe(false);
    expect(factFound({ section: ['chain', 'network'], contains: ['10.0.0.5'] }, lines)).toBe(true);
    expect(factFound({ section: 'process chain', contains: ['x.dll,Start'] }, lines)).toBe(true);
    expect(factFound({ section: 'header', contains: ['executed=true'] }, lines)).toBe(true);
    expect(factFound({ section: 'header', contains: ['executed=false'] }, lines)).toBe(false);
    expect(factFound({ section: 'verdict', contains: ['lsass'] }, lines)).toBe(true);
    // An unknown top-level field of the report (here `factors`) is searched in `verdict`.
    expect(factFound({ section: 'verdict', contains: ['lsass.exe', '0x1fffff'] }, lines)).toBe(true);
    expect(factFound({ section: 'any', contains: ['powershell.exe', 'created the detected file'] }, lines)).toBe(true);
    expect(factFound({ section: 'registry', contains: ['x'] }, lines)).toBe(false);
  });

  it('treats a run of backslashes as one, so JSON-escaped and \\\\?\\ paths match', () => {
    const lines = renderReportLines(report());
    expect(factFound({ section: 'chain', contains: ['C:\\\\Windows\\\\System32\\\\rundll32.exe'] }, lines)).toBe(true);
    expect(factFound({ section: 'origin', contains: ['WindowsPowerShell\\v1.0'] }, lines)).toBe(true);
  });

  it('splits facts into found and missing, all missing without a report', () => {
    const facts = [
      { section: 'network', contains: ['10.0.0.5'] },
      { section: 'registry', contains: ['Run'] },
    ];
    const r = checkFacts(facts, report());
    expect(r.found.map(describeFact)).toEqual(['network[10.0.0.5]']);
    expect(r.missing.map(describeFact)).toEqual(['registry[Run]']);
    expect(checkFacts(facts, undefined).missing).toHaveLength(2);
  });
});

describe('confusion matrix', () => {
  it('counts expected × got, with a none column, and prints aligned rows with totals', () => {
    const m = confusionMatrix([
      { expected: 'black', got: 'black' },
      { expected: 'black', got: 'gray' },
      { expected: 'black', got: 'none' },
      { expected: 'white', got: 'gray' },
      { expected: 'gray', got: 'gray' },
    ]);
    expect(m.black).toEqual({ black: 1, gray: 1, white: 0, none: 1 });
    expect(m.white).toEqual({ black: 0, gray: 1, white: 0, none: 0 });
    const text = formatConfusionMatrix(m);
    expect(text[0]).toMatch(/expected \\ got\s+black\s+gray\s+white\s+none\s+total/);
    expect(text[1]).toMatch(/^black\s+1\s+1\s+0\s+1\s+3$/);
    expect(text[2]).toMatch(/^gray\s+0\s+1\s+0\s+0\s+1$/);
    expect(text[3]).toMatch(/^white\s+0\s+1\s+0\s+0\s+1$/);
  });

  it('passes only with every verdict right and at least 90 % of the facts', () => {
    const c = (name: string, expected: 'black' | 'gray' | 'white', got: 'black' | 'gray' | 'white' | 'none', found: number, of: number): CaseResult => ({
      name,
      device: 'PC',
      path: 'p',
      expected,
      got,
      correct: expected === got,
      score: 0,
      executed: true,
      originKind: 'local',
      alertId: 'a',
      factsFound: found,
      factsExpected: of,
      missing: [],
      events: 1,
      ms: 1,
    });
    expect(summarize([c('a', 'black', 'black', 9, 10), c('b', 'white', 'white', 0, 0)], 1).pass).toBe(true);
    expect(summarize([c('a', 'black', 'black', 8, 10)], 1).pass).toBe(false);
    const wrong = summarize([c('a', 'black', 'gray', 10, 10)], 1);
    expect(wrong.pass).toBe(false);
    expect(wrong.correctVerdicts).toBe(0);
    const text = formatEvalText(wrong);
    expect(text).toContain('MISS a');
    expect(text).toContain('Verdicts right: 0/1');
    expect(text).toContain('Result: FAIL');
  });
});

describe('case file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-cases-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (doc: unknown) => {
    const p = join(dir, 'cases.json');
    writeFileSync(p, JSON.stringify(doc));
    return p;
  };
  /** The operator-facing reason of what `fn` throws. */
  const reason = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return isKisekiError(err) ? describeError(err) : String(err);
    }
    return 'did not throw';
  };
  const good = { name: 'a', files: ['x.zip'], device: 'PC', path: 'C:\\x.exe', expected: 'black', facts: [{ section: 'chain', contains: ['x'] }] };

  it('loads a valid file and names the case and field of every problem', () => {
    expect(loadCaseFile(write({ cases: [good] })).cases[0]).toMatchObject({ name: 'a', expected: 'black' });
    expect(reason(() => loadCaseFile(write({ cases: [{ ...good, expected: 'red' }] })))).toMatch(/case a: expected must be black, gray or white/);
    expect(reason(() => loadCaseFile(write({ cases: [good, good] })))).toMatch(/case a is named twice/);
    expect(reason(() => loadCaseFile(write({ cases: [{ ...good, facts: [{ section: 'chain', contains: [] }] }] })))).toMatch(/case a, fact #1: contains/);
    expect(reason(() => loadCaseFile(write({ cases: [{ ...good, at: 'yesterday' }] })))).toMatch(/at must be an ISO time/);
    expect(reason(() => loadCaseFile(write([])))).toMatch(/"cases" list/);
    expect(reason(() => loadCaseFile(join(dir, 'missing.json')))).toMatch(/cannot read the case file/);
  });

  it('resolves trail files beside the case file first, then under the corpus folder', () => {
    const p = write({ cases: [good] });
    writeFileSync(join(dir, 'here.zip'), '');
    expect(resolveCaseInput(p, '/corpus', 'here.zip')).toBe(join(dir, 'here.zip'));
    expect(resolveCaseInput(p, '/corpus', 'otrf/x.zip')).toBe('/corpus/otrf/x.zip');
    expect(resolveCaseInput(p, '/corpus', '/abs/y.evtx')).toBe('/abs/y.evtx');
  });
});
