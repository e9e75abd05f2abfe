/**
 * The defects a new user met on the command line, run through the built CLI:
 * JST dates for the tenant policy, the one flag parser's refusals, and
 * `export daily` of the collection day that is still open.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectionDayOf } from '../../export/index.js';
import { runCli, useServerFixture } from '../support/cli.js';

describe('kiseki CLI', () => {
  const fx = useServerFixture('kiseki-cli-', { beforeEach, afterEach });

  async function tenant(): Promise<void> {
    const r = await runCli(['tenant', 'create', '--name', 'Example Corp', '--support-id', 'EX0001', '--json', '--data', fx.dir]);
    expect(r.code, r.stderr).toBe(0);
  }

  it('stores --tuning-until 2026-12-31 as the end of that day in JST', async () => {
    await tenant();
    const r = await runCli(['tenant', 'policy', '--support-id', 'EX0001', '--tuning-until=2026-12-31', '--data', fx.dir]);
    expect(r.code, r.stderr).toBe(0);
    // 2027-01-01 00:00 JST: tuning covers the whole of 31 December in Japan.
    expect((JSON.parse(r.stdout) as { tuningUntil: number }).tuningUntil).toBe(Date.parse('2026-12-31T15:00:00Z'));
    const bad = await runCli(['tenant', 'policy', '--support-id', 'EX0001', '--tuning-until', '31/12/2026', '--data', fx.dir]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('--tuning-until takes a JST date like 2026-12-31');
  });

  it.each([
    [['inspect', '--bogus'], 'unknown flag --bogus'],
    [['alerts', '--support-id', 'EX0001', '--limit', 'ten'], '--limit takes a number, not "ten"'],
    [['report', '--alert'], '--alert needs a value'],
    [['tenant', 'create', '--name', 'A', '--name', 'B', '--support-id', 'S'], '--name is given more than once'],
    [['frobnicate'], 'unknown command frobnicate'],
  ])('refuses %j with exit code 64 and one clear line', async (args, message) => {
    const r = await runCli([...args, '--data', fx.dir]);
    expect(r.code).toBe(64);
    expect(r.stderr.split('\n')[0]).toBe(`kiseki: ${message}`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('export daily of today: "still open" with exit 75, and a partial archive with --partial', async () => {
    await tenant();
    const today = collectionDayOf(Date.now());
    const open = await runCli(['export', 'daily', '--tenant', 'EX0001', '--date', today, '--data', fx.dir]);
    expect(open.code).toBe(75);
    expect(open.stderr).toContain(`collection day ${today} is still open`);
    expect(open.stderr).toContain('add --partial');
    const partial = await runCli(['export', 'daily', '--tenant', 'EX0001', '--date', today, '--partial', '--data', fx.dir]);
    expect(partial.code, partial.stderr).toBe(0);
    expect(JSON.parse(partial.stdout)).toMatchObject({ command: 'daily', day: today, partial: true, status: 'empty', batches: 0 });
  });
});
