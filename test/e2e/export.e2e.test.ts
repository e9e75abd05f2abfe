/**
 * End to end: real agents (the simulator) send trail logs to a real server;
 * after it stops, `kiseki export close-days` archives the collection day and
 * the archives are checked with real readers: Info-ZIP `unzip -t`, Python
 * `zipfile`, and DuckDB, whose counts per kind must equal what the shards
 * counted in the hot store. Then the two log spots are built from the cold
 * archive.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectionDayOf, dayWindow, runExportCommand } from '../../export/index.js';
import { duckdb, pythonZip, unzipTest } from '../../export/test-support.js';
import { openHotStore } from '../../storage/index.js';
import { eventually, runCli, startServer, useServerFixture } from '../support/cli.js';
import { textSink } from '../support/text-sink.js';


describe('exports end to end', () => {
  const fx = useServerFixture('kiseki-export-e2e-', { beforeEach, afterEach });

  it('archives what the agents sent: daily zip and Parquet agree with the hot store, log spots copy from them', async () => {
    const created = await runCli(['tenant', 'create', '--name', 'Example Corp', '--support-id', 'EX0001', '--json', '--data', fx.dir]);
    expect(created.code, created.stderr).toBe(0);
    const key = (JSON.parse(created.stdout) as { enrollKey: string }).enrollKey;
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0']);
    const sim = await runCli(['simulate', '--url', `ws://127.0.0.1:${fx.server.ingestPort}/agent/v1`, '--enroll-key', key, '--state', join(fx.dir, 'sim.json'), '--seed', '3', '--agents', '4', '--eps', '100', '--duration', '2', '--batch-ms', '200']);
    expect(sim.code, sim.stderr).toBe(0);
    const acked = (JSON.parse(sim.stdout) as { eventsAcked: number }).eventsAcked;
    expect(acked).toBeGreaterThan(0);
    const census = await eventually(async () => {
      const r = await runCli(['inspect', '--json', '--data', fx.dir]);
      const j = JSON.parse(r.stdout) as { events: number; eventsProcessed: number; eventsByKind: Record<string, number> };
      return j.eventsProcessed === acked ? j : undefined;
    });
    fx.server.child.kill('SIGTERM');
    expect(await fx.server.exited).toBe(0);

    const store = openHotStore({ dataDir: fx.dir });
    const devices = [...store.devices.scan()];
    const recv = [...store.log.range(1, store.log.lastLsn() + 1)].map((e) => e.value.recvAt);
    await store.close();
    const firstDay = collectionDayOf(Math.min(...recv));
    const lastDay = collectionDayOf(Math.max(...recv));
    const now = dayWindow(lastDay).toMs + 16 * 60_000;
    const run = async (args: string[]) => {
      const stdout = textSink();
      const stderr = textSink();
      const code = await runExportCommand(args, { dataDir: fx.dir, stdout, stderr, isTTY: false, clock: { now: () => now } });
      expect(code, stderr.text()).toBe(0);
      return JSON.parse(stdout.text()) as Record<string, unknown>;
    };

    const closed = (await run(['close-days'])) as { closed: { day: string; status: string; events: number }[] };
    const archived = closed.closed.filter((d) => d.status === 'archived');
    expect(archived.map((d) => d.day)).toEqual(firstDay === lastDay ? [firstDay] : [firstDay, lastDay]);
    expect(archived.reduce((n, d) => n + d.events, 0)).toBe(acked);

    const cold = join(fx.dir, 'cold', 'it360-log', 'EX0001');
    for (const d of archived) {
      const zip = join(cold, `${d.day}.zip`);
      expect(unzipTest(zip).ok).toBe(true);
      const py = pythonZip(zip);
      expect(py.bad).toBeNull();
      for (const name of py.names.filter((n) => n.endsWith('.zip'))) {
        expect(name).toMatch(new RegExp(`^${d.day}/[^/]+/[0-9A-F-]{36}_\\d{15}-[0-9a-f]{32}\\.zip$`));
        const log = Object.values(py.nested[name]!.text)[0]!;
        for (const line of log.split('\r\n').slice(0, -1)) expect(JSON.parse(line)).toHaveProperty('seq');
      }
    }
    const byKind = await duckdb(`SELECT k, count(*)::INTEGER AS n FROM read_parquet('${cold}/*.parquet') GROUP BY k`);
    expect(Object.fromEntries(byKind.map((r) => [r.k, r.n]))).toEqual(census.eventsByKind);

    const spot30 = (await run(['spot30', '--tenant', 'EX0001', '--from', firstDay, '--to', lastDay])) as { files: { name: string; path: string }[] };
    expect(spot30.files.map((f) => f.name)).toEqual(archived.map((d) => `${d.day}_SP.zip`));
    for (const f of spot30.files) expect(unzipTest(f.path).ok).toBe(true);
    const device = devices[0]!;
    const spot1y = (await run(['spot1y', '--tenant', 'EX0001', '--tmid', device.tmid, '--computer', device.computer])) as { files: { name: string; path: string }[] };
    expect(spot1y.files.map((f) => f.name)).toEqual([`${device.tmid}_AllData_${new Date(now + 9 * 3600_000).toISOString().slice(0, 10)}.zip`]);
    expect(pythonZip(spot1y.files[0]!.path).bad).toBeNull();
  });
});
