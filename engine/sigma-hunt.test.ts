import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SigmaDetection } from '../core/contracts.js';
import { addDays, dayWindow } from '../export/collection-day.js';
import { buildDayArchive } from '../export/index.js';
import { addBatch, addDevice, addTenant, openTestStore, type TestStore } from '../export/test-support.js';
import { runSigmaStoreCommand } from './sigma-hunt-cli.js';

const TMID = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const DAY = '2026-01-05';
const RULE_ID = '5b7b1c3e-0000-4000-8000-00000000f00d';
const RULE = `title: Encoded PowerShell from Word
id: ${RULE_ID}
status: test
level: critical
author: kiseki tests
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\\powershell.exe'
    CommandLine|contains: ' -enc '
    ParentImage|endswith: '\\WINWORD.EXE'
  condition: selection
`;

function events(seq: number, ts: number, pg: string): Record<string, unknown>[] {
  const word = `{w-${pg}}`;
  return [
    { ts, k: 'proc.start', seq, pg: word, pid: 1, image: 'C:\\Office\\WINWORD.EXE', cmd: 'WINWORD.EXE' },
    // No parent fields copied: ParentImage resolves through the hunt's process table.
    { ts: ts + 1, k: 'proc.start', seq: seq + 1, pg, pid: 2, ppg: word, image: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', cmd: 'powershell -enc AAAA' },
    { ts: ts + 2, k: 'file.write', seq: seq + 2, pg, path: 'C:\\x.txt', size: 1, vol: 'fixed' },
  ];
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(c, _e, cb) {
        chunks.push(String(c));
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

let t: TestStore;
let rulesDir: string;

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runSigmaStoreCommand(args, { stdout: out.stream, stderr: err.stream, dataDir: t.dir, now: dayWindow(addDays(DAY, 3)).fromMs });
  return { code, out: out.text(), err: err.text() };
}

beforeEach(async () => {
  t = openTestStore('kiseki-hunt-');
  rulesDir = join(t.dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'r.yml'), RULE);
  await addTenant(t, 'EX0001');
  await addDevice(t, 'EX0001', TMID, 'PC-01');
});
afterEach(async () => {
  await t.close();
});

describe('kiseki sigma hunt', () => {
  it('runs rules over cold archives and the hot store, each batch once, with JSON output', async () => {
    const d0 = dayWindow(DAY);
    const d1 = dayWindow(addDays(DAY, 1));
    // Day 0: archived, then rolled out of the hot store: cold only.
    const b0 = await addBatch(t, TMID, events(1, d0.fromMs + 1000, '{p0}'), { recvAt: d0.fromMs + 2000 });
    // Day 1: archived and still hot: read once, from the archive.
    await addBatch(t, TMID, events(10, d1.fromMs + 1000, '{p1}'), { recvAt: d1.fromMs + 2000 });
    const opts = (day: string) => ({ dataDir: t.dir, supportId: 'EX0001', day, deflateLevel: 6, parquetRowGroupRows: 1000, parquetCompression: 'zstd' as const, now: dayWindow(addDays(DAY, 2)).toMs });
    expect((await buildDayArchive(t.store, opts(DAY))).status).toBe('archived');
    expect((await buildDayArchive(t.store, opts(addDays(DAY, 1)))).status).toBe('archived');
    await t.store.log.dropDeviceBatches(TMID, { belowLsn: b0.lsn + 1, receivedBefore: d0.toMs });
    expect(t.store.log.batch(b0.lsn)).toBeUndefined();
    // Day 2: hot only.
    const d2 = dayWindow(addDays(DAY, 2));
    await addBatch(t, TMID, events(20, d2.fromMs + 1000, '{p2}'), { recvAt: d2.fromMs + 2000 });

    const r = await run(['hunt', '--tenant', 'EX0001', '--since', String(d0.fromMs), '--rules', rulesDir, '--json']);
    expect(r.code, r.err).toBe(0);
    const result = JSON.parse(r.out);
    expect(result.hits.map((h: { pg: string; source: string }) => `${h.pg}:${h.source}`)).toEqual(['{p0}:cold', '{p1}:cold', '{p2}:hot']);
    expect(result.hits[0]).toMatchObject({ ruleId: RULE_ID, severity: 'Critical', tmid: TMID, computer: 'PC-01', k: 'proc.start', seq: 2 });
    expect(result.batches).toBe(3);
    expect(result.events).toBe(9);
    expect(result.byRule).toEqual({ [RULE_ID]: 3 });

    // --since skips what is older; text output names the hits.
    const later = await run(['hunt', '--tenant', 'EX0001', '--since', String(d1.fromMs), '--rules', rulesDir]);
    expect(later.code).toBe(0);
    expect(later.out).toContain('2 hits of 1 rules');
    expect(later.out).toContain('Encoded PowerShell from Word');
  });

  it('keeps one rule with --rule and refuses an unknown one or a missing tenant as usage errors', async () => {
    expect((await run(['hunt', '--tenant', 'EX0001', '--rules', rulesDir, '--rule', RULE_ID, '--json'])).code).toBe(0);
    expect((await run(['hunt', '--tenant', 'EX0001', '--rules', rulesDir, '--rule', 'nope'])).code).toBe(64);
    expect((await run(['hunt', '--rules', rulesDir])).code).toBe(64);
    expect((await run(['hunt', '--tenant', 'EX0001', '--since', 'yesterday-ish'])).code).toBe(64);
  });
});

describe('kiseki sigma detections', () => {
  it("lists a tenant's stored detections, newest first, filtered by device and rule", async () => {
    const at = dayWindow(addDays(DAY, 2)).fromMs;
    const mk = (i: number, ruleId: string): SigmaDetection => ({
      id: `sd_${i}`,
      supportId: 'EX0001',
      tmid: TMID,
      computer: 'PC-01',
      ruleId,
      title: `Rule ${ruleId}`,
      level: 'high',
      severity: 'Serious',
      tags: [],
      author: 'a',
      lsn: i,
      event: { tmid: TMID, seq: i, ts: at + i, k: 'proc.start' },
      pg: '{p}',
      image: 'C:\\p.exe',
      at: at + i,
      createdAt: at + i,
      repeats: i,
    });
    await t.store.transaction(() => {
      for (const d of [mk(1, 'r1'), mk(2, 'r2'), mk(3, 'r1')]) {
        t.store.detections.saveSync(d);
        t.store.detections.indexSync(d);
      }
    });
    const r = await run(['detections', '--tenant', 'EX0001', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).detections.map((d: SigmaDetection) => d.id)).toEqual(['sd_3', 'sd_2', 'sd_1']);
    expect(JSON.parse((await run(['detections', '--tenant', 'EX0001', '--rule', 'r1', '--json'])).out).detections).toHaveLength(2);
    expect(JSON.parse((await run(['detections', '--tenant', 'EX0001', '--device', 'other', '--json'])).out).detections).toHaveLength(0);
    const text = (await run(['detections', '--tenant', 'EX0001'])).out;
    expect(text).toContain('3 detections of EX0001');
    expect(text).toContain('+3 repeats');
  });
});
