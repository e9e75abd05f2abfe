/**
 * `kiseki eval` end to end on the import's own fixture (no ../shared needed):
 * the trail is imported in-process, the detection raised, the report read
 * back and compared; the text and JSON outputs and the exit codes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { textSink } from '../../test/support/text-sink.js';
import { runEvalCommand, type EvalResult } from './eval-command.js';

const FIXTURE = resolve(dirname(fileURLToPath(import.meta.url)), '../../ingest/import/fixtures/download-chain.nxlog.jsonl');

/** The fixture's story: Chrome downloads invoice_0415.pdf.exe, which runs, connects to 198.51.100.7 and starts cmd → PowerShell. */
const downloadCase = {
  name: 'fixture-download',
  files: [FIXTURE],
  device: 'PC-IMPORT-01',
  path: 'C:\\Users\\tanaka\\Downloads\\invoice_0415.pdf.exe',
  expected: 'black',
  facts: [
    { section: 'origin', contains: ['chrome.exe'] },
    { section: 'network', contains: ['198.51.100.7'] },
    { section: 'descendants', contains: ['cmd.exe'] },
    { section: 'header', contains: ['executed=true'] },
    { section: 'registry', contains: ['no such value anywhere'] },
  ],
};

describe('kiseki eval', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-eval-cmd-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const casesFile = (cases: unknown[]) => {
    const p = join(dir, 'cases.json');
    writeFileSync(p, JSON.stringify({ cases }));
    return p;
  };

  it('imports the trail, raises the detection and checks the report, in JSON', async () => {
    const out = textSink();
    const err = textSink();
    const code = await runEvalCommand(['--cases', casesFile([downloadCase]), '--json', '--no-sigma', '--report'], { stdout: out, stderr: err });
    const result = JSON.parse(out.text()) as EvalResult;
    const c = result.cases[0]!;
    expect(c.error).toBeUndefined();
    expect(c.got).not.toBe('none');
    expect(c.alertId).toMatch(/^al_/);
    expect(c.events).toBeGreaterThan(10);
    // Four facts are in the fixture and must be found; the fifth is missing on purpose.
    expect(c.factsFound).toBe(4);
    expect(c.missing).toEqual(['registry[no such value anywhere]']);
    expect(c.report?.sections.map((s) => s.id)).toContain('origin');
    expect(result.factShare).toBeCloseTo(0.8);
    // 80 % of the facts is below the bar: the run fails whatever the verdict.
    expect(result.pass).toBe(false);
    expect(code).toBe(1);
    expect(result.matrix.black[c.got]).toBe(1);
  });

  it('prints case lines, the report on request, the matrix and the totals as text', async () => {
    const out = textSink();
    const err = textSink();
    await runEvalCommand(['--cases', casesFile([downloadCase, { ...downloadCase, name: 'wrong-device', device: 'PC-NOWHERE' }]), '--no-sigma', '--report'], { stdout: out, stderr: err });
    const text = out.text();
    expect(text).toMatch(/fixture-download\s+black → (black|gray|white)/);
    expect(text).toContain('missing: registry[no such value anywhere]');
    expect(text).toContain('      | Alert al_');
    expect(text).toMatch(/MISS wrong-device\s+black → none/);
    expect(text).toContain('error: case wrong-device: no events of device PC-NOWHERE in its files (hosts: PC-IMPORT-01.corp.example)');
    expect(text).toMatch(/expected \\ got\s+black\s+gray\s+white\s+none\s+total/);
    expect(text).toContain('Facts found:    4/10 (40.0 %)');
    expect(text).toContain('Result: FAIL');
    expect(err.text()).toContain('kiseki eval: fixture-download black →');
  });

  it('runs only the named cases and refuses a bad command line with exit code 64', async () => {
    const file = casesFile([downloadCase, { ...downloadCase, name: 'other' }]);
    const out = textSink();
    await runEvalCommand(['--cases', file, '--case', 'other', '--json', '--no-sigma'], { stdout: out, stderr: textSink() });
    expect((JSON.parse(out.text()) as EvalResult).cases.map((c) => c.name)).toEqual(['other']);

    const err = textSink();
    expect(await runEvalCommand(['--cases', file, '--case', 'nope'], { stdout: textSink(), stderr: err })).toBe(64);
    expect(err.text()).toContain('no case named nope');
    expect(await runEvalCommand([], { stdout: textSink(), stderr: textSink() })).toBe(64);
    expect(await runEvalCommand(['--cases', file, '--sigma', dir, '--no-sigma'], { stdout: textSink(), stderr: textSink() })).toBe(64);
    const bad = textSink();
    expect(await runEvalCommand(['--cases', join(dir, 'missing.json')], { stdout: textSink(), stderr: bad })).toBe(1);
    expect(bad.text()).toContain('cannot read the case file');
  });
});
