import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runSigmaCommand } from './cli.js';

function sink(): Writable & { text: () => string } {
  let buf = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  }) as Writable & { text: () => string };
  w.text = () => buf;
  return w;
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await runSigmaCommand(args, { stdout, stderr });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

const dir = mkdtempSync(join(tmpdir(), 'kiseki-sigma-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RULE_ID = '22222222-0000-4000-8000-000000000001';
const rules = join(dir, 'rules');
mkdirSync(join(rules, 'process_creation'), { recursive: true });
writeFileSync(
  join(rules, 'process_creation', 'whoami.yml'),
  `title: Whoami
id: ${RULE_ID}
status: test
author: Test Author
logsource: { category: process_creation, product: windows }
detection:
    selection: { Image|endswith: '\\whoami.exe' }
    condition: selection
level: high
`,
);
writeFileSync(join(rules, 'ps.yml'), `title: PowerShell script\nid: 22222222-0000-4000-8000-000000000002\nlogsource: { category: ps_script, product: windows }\ndetection:\n    selection: { ScriptBlockText|contains: x }\n    condition: selection\n`);

/** One evtx_dump record (pretty-printed, as the regression data holds them). */
function sysmon1(image: string, id: number): string {
  const rec = {
    Event: {
      System: { Provider: { '#attributes': { Name: 'Microsoft-Windows-Sysmon' } }, EventID: 1, Channel: 'Microsoft-Windows-Sysmon/Operational', Computer: 'pc1', EventRecordID: id, TimeCreated: { '#attributes': { SystemTime: '2025-10-27T00:04:12.105550Z' } } },
      EventData: { UtcTime: '2025-10-27 00:04:12.104', ProcessGuid: '0197231E-4A83-694D-9E0E-000000000800', ProcessId: 1, Image: image, CommandLine: image },
    },
  };
  return JSON.stringify(rec, null, 2);
}

function writeCase(name: string, events: string[], matchCount?: number): void {
  const c = join(dir, 'regression', 'rules', 'windows', 'process_creation', name);
  mkdirSync(c, { recursive: true });
  writeFileSync(join(c, `${RULE_ID}.json`), `${events.join('\n')}\n`);
  writeFileSync(
    join(c, 'info.yml'),
    `id: x\nrule_metadata:\n    - id: ${RULE_ID}\n      title: Whoami\nregression_tests_info:\n    - name: Positive Detection Test\n      type: evtx\n      provider: Microsoft-Windows-Sysmon\n${matchCount === undefined ? '' : `      match_count: ${matchCount}\n`}      path: regression_data/rules/windows/process_creation/${name}/${RULE_ID}.evtx\n`,
  );
}

describe('kiseki sigma', () => {
  it('list --json: loaded rules with severity and author, refused ones with their reason', async () => {
    const r = await run(['list', '--rules', rules, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { files: number; loaded: number; rules: { id: string; severity: string; author: string; kinds: string[] }[]; refused: { reason: string }[]; refusedByReason: Record<string, number> };
    expect(out).toMatchObject({ files: 2, loaded: 1, refusedByReason: { unsupported_logsource: 1 } });
    expect(out.rules[0]).toMatchObject({ id: RULE_ID, severity: 'Serious', author: 'Test Author', kinds: ['proc.start'] });
  });

  it('list (text) ends with a summary line', async () => {
    const r = await run(['list', '--rules', rules]);
    expect(r.stdout).toContain(RULE_ID);
    expect(r.stdout).toMatch(/refused\s+unsupported_logsource\s+ps\.yml/);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^1 of 2 rule files loaded from .*; refused: unsupported_logsource 1$/);
  });

  it('list without --rules lists the shipped pack', async () => {
    const r = await run(['list', '--json']);
    const out = JSON.parse(r.stdout) as { loaded: number; files: number; refused: unknown[] };
    expect(out.loaded).toBe(out.files);
    expect(out.refused).toEqual([]);
  });

  it('test --json: counts matched events against match_count; exit 0 only when all pass', async () => {
    writeCase('pass', [sysmon1('C:\\Windows\\System32\\whoami.exe', 1), sysmon1('C:\\Windows\\notepad.exe', 2)]);
    let r = await run(['test', '--rules', rules, '--cases', join(dir, 'regression'), '--json']);
    expect(JSON.parse(r.stdout)).toEqual({ cases: 1, passed: 1, failed: [] });
    expect(r.code).toBe(0);
    writeCase('fail', [sysmon1('C:\\Windows\\System32\\whoami.exe', 1), sysmon1('C:\\x\\whoami.exe', 2)], 1);
    r = await run(['test', '--rules', rules, '--cases', join(dir, 'regression'), '--json']);
    expect(JSON.parse(r.stdout)).toEqual({ cases: 2, passed: 1, failed: [{ case: 'windows/process_creation/fail', ruleId: RULE_ID, reason: 'matched 2 of 2 events, expected 1' }] });
    expect(r.code).toBe(1);
  });

  it('a missing rule directory fails with exit 1 and says which', async () => {
    const r = await run(['list', '--rules', join(dir, 'nope')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/kiseki sigma: .*nope is not a directory\n/);
  });

  it.each([
    [['test', '--rules', 'x']],
    [['nope']],
    [['list', '--bogus']],
  ])('usage errors exit 64: %j', async (args) => {
    const r = await run(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('Usage:');
  });
});
