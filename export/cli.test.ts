import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dayWindow } from './collection-day.js';
import { runExportCommand, type ExportCommandIo } from './cli.js';
import { addBatch, addDevice, addTenant, openTestStore, simpleEvents, unzipTest, type TestStore } from './test-support.js';
import { textSink } from '../test/support/text-sink.js';

const A = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const FOREIGN = 'FFFFFFFF-0000-4000-8000-000000000000';
const DAY = '2026-01-05';


describe('kiseki export (runExportCommand)', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = openTestStore();
    await addTenant(t, 'EX0001');
    await addTenant(t, 'OTHER1');
    await addDevice(t, 'EX0001', A, 'PC-A');
    await addDevice(t, 'OTHER1', FOREIGN, 'PC-Z');
    const { fromMs } = dayWindow(DAY);
    for (let i = 0; i < 70; i++) await addBatch(t, A, simpleEvents(1 + 3 * i, 3), { recvAt: fromMs + 60_000 * (i + 1) });
    await addBatch(t, FOREIGN, simpleEvents(1, 3), { recvAt: fromMs + 5000 });
    // The CLI opens its own store on the same directory (as `kiseki export` does next to a running server).
    await t.store.close();
  });
  afterEach(async () => t.close());

  async function run(args: string[], opts: { tty?: boolean; now?: number } = {}) {
    const stdout = textSink();
    const stderr = textSink();
    const io: ExportCommandIo = { dataDir: t.dir, stdout, stderr, isTTY: opts.tty ?? false, clock: { now: () => opts.now ?? dayWindow(DAY).toMs + 3600_000 }, config: { workerThreads: 0 } };
    const code = await runExportCommand(args, io);
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  }

  it.each([
    [['daily', '--date', DAY], 64, '--tenant is required'],
    [['daily', '--tenant', 'NOPE', '--date', DAY], 1, 'No tenant has this support ID.'],
    [['daily', '--tenant', 'EX0001', '--date', '2026-02-30'], 64, '--date must be a date like 2026-01-05'],
    [['daily', '--tenant', '../etc', '--date', DAY], 64, '--tenant is not a valid support ID'],
    [['daily', '--tenant', 'EX0001', '--date', '2026-01-06'], 75, 'collection day 2026-01-06 is still open: its archive can be made from 05:15 on 2026-01-07 JST; for what it holds so far, add --partial'],
    [['daily', '--tenant', 'EX0001', '--date', '2026-01-08', '--partial'], 64, 'collection day 2026-01-08 has not started yet'],
    [['daily', '--tenant', 'EX0001', '--dat', DAY], 64, 'unknown flag --dat'],
    [['spot30', '--tenant', 'EX0001', '--from', '2025-11-01', '--to', DAY], 64, 'at most 30 consecutive days'],
    [['spot1y', '--tenant', 'EX0001', '--tmid', FOREIGN], 64, `no device ${FOREIGN} in tenant EX0001`],
    [['spot1y', '--tenant', 'EX0001', '--tmid', A, '--computer', 'PC-B'], 64, 'is named PC-A, not PC-B'],
    [['frobnicate'], 64, 'unknown export command frobnicate'],
  ])('refuses %j with a clear message and exit code %i, never a stack trace', async (args, code, message) => {
    const r = await run(args);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('daily: JSON when not on a terminal; a second run finds the archive; no file for an empty day', async () => {
    const first = await run(['daily', '--tenant', 'EX0001', '--date', DAY]);
    expect(first.code, first.stderr).toBe(0);
    const result = JSON.parse(first.stdout) as { status: string; batches: number; events: number; zip: string; download: string; downloadJob: string };
    expect(result).toMatchObject({ status: 'archived', batches: 70, events: 210, downloadJob: `daily-ex0001-${DAY}` });
    expect(unzipTest(result.zip).ok).toBe(true);
    expect(existsSync(result.download)).toBe(true);
    const again = await run(['daily', '--tenant', 'EX0001', '--date', DAY]);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'exists', batches: 70 });
    const empty = await run(['daily', '--tenant', 'EX0001', '--date', '2026-01-04']);
    expect(JSON.parse(empty.stdout)).toMatchObject({ status: 'empty', batches: 0 });
    expect(JSON.parse(empty.stdout)).not.toHaveProperty('zip');
  });

  it('daily --partial: what an open day holds so far, marked partial, outside the cold tier', async () => {
    const now = dayWindow(DAY).fromMs + 30 * 60_000 + 30_000;
    const r = await run(['daily', '--tenant', 'EX0001', '--date', DAY, '--partial'], { now });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { status: string; partial: boolean; asOf: string; batches: number; events: number; download: string; manifest: string; downloadJob: string };
    // Batches received at minutes 1..30 of the day are in; those after `now` are not.
    expect(result).toMatchObject({ status: 'partial', partial: true, asOf: new Date(now).toISOString(), batches: 30, events: 90 });
    expect(unzipTest(result.download).ok).toBe(true);
    const manifest = JSON.parse(readFileSync(result.manifest, 'utf8')) as { partial?: { asOfMs: number }; window: { toMs: number } };
    expect(manifest.partial).toEqual({ asOfMs: now, asOf: new Date(now).toISOString() });
    expect(manifest.window.toMs).toBe(now);
    const job = JSON.parse(readFileSync(join(t.dir, 'exports', result.downloadJob, 'job.json'), 'utf8')) as { status: string; partialDays: string[]; params: Record<string, string> };
    expect(job).toMatchObject({ status: 'done', partialDays: [DAY], params: { date: DAY, partial: 'true' } });
    // The cold tier still waits for the whole day: once it is over, the full archive is made.
    const full = await run(['daily', '--tenant', 'EX0001', '--date', DAY]);
    expect(JSON.parse(full.stdout)).toMatchObject({ status: 'archived', batches: 70 });
  });

  it('daily on a terminal: progress bar on stderr, summary on stdout', async () => {
    const r = await run(['daily', '--tenant', 'EX0001', '--date', DAY, '--rebuild'], { tty: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/daily \[#+\.*\]\s+\d+% 2026-01-05 64\/70/);
    expect(r.stdout).toMatch(/^Archived: .*2026-01-05\.zip \(.*, 70 batches, 210 events\)/);
  });

  it('spot30, spot1y and close-days report their files as JSON', async () => {
    const now = dayWindow('2026-01-06').fromMs + 3600_000;
    const s30 = await run(['spot30', '--tenant', 'EX0001', '--from', '2026-01-04', '--to', '2026-01-06'], { now });
    expect(s30.code, s30.stderr).toBe(0);
    const r30 = JSON.parse(s30.stdout) as { files: { name: string; path: string; entries: number }[]; emptyDays: string[] };
    expect(r30.files.map((f) => [f.name, f.entries])).toEqual([['2026-01-05_SP.zip', 71]]);
    expect(r30.emptyDays).toEqual(['2026-01-04', '2026-01-06']);
    expect(unzipTest(r30.files[0]!.path).ok).toBe(true);

    const s1y = await run(['spot1y', '--tenant', 'EX0001', '--tmid', A, '--computer', 'PC-A'], { now });
    const r1y = JSON.parse(s1y.stdout) as { files: { name: string; entries: number }[]; jobId: string };
    expect(r1y.files.map((f) => [f.name, f.entries])).toEqual([[`${A}_AllData_2026-01-06.zip`, 71]]);

    const cd = await run(['close-days'], { now: dayWindow('2026-01-07').fromMs + 3600_000 });
    expect(cd.code, cd.stderr).toBe(0);
    const rc = JSON.parse(cd.stdout) as { closed: { supportId: string; day: string; status: string }[] };
    expect(rc.closed.filter((d) => d.status !== 'empty').map((d) => [d.supportId, d.day, d.status])).toEqual([
      ['EX0001', DAY, 'archived'],
      ['OTHER1', DAY, 'archived'],
    ]);
  });
});
