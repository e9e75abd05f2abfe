import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchPaths } from './bench-paths.js';
import { gcPauses } from './result-table.js';
import { ackStagesBetween, evaluateTargets, reportLatencyBetween, runScenario, threadPausesBetween, type BenchResult } from './runner.js';
import { histogramQuantileBetween, scrapeMetricsOrUndefined, type PromSample } from './kiseki-server.js';
import { listScenarios, loadScenario } from './scenario.js';
import { isKisekiError } from '../../core/errors.js';

const paths = benchPaths();
const outDir = mkdtempSync(join(tmpdir(), 'kiseki-bench-test-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('load benchmark scenarios', () => {
  it.each(listScenarios(paths.scenariosDir))('%s parses with the strict schema', (name) => {
    const s = loadScenario(name, paths.scenariosDir);
    expect(s.name).toBe(name);
  });

  it('names the known scenarios when one is missing', () => {
    let err: unknown;
    try {
      loadScenario(join(paths.scenariosDir, '..', 'no-such.json'), paths.scenariosDir);
    } catch (e) {
      err = e;
    }
    expect(isKisekiError(err, 'ERR_USAGE')).toBe(true);
    expect((err as { details: { reason: string; known: string[] } }).details.reason).toMatch(/unknown scenario/);
    expect((err as { details: { known: string[] } }).details.known).toContain('smoke');
  });
});

describe('load benchmark smoke run (correctness only)', () => {
  it('stores every acked batch and writes the result JSON', async () => {
    // The client processes run compiled code, which test/global-setup.ts keeps current.
    expect(existsSync(paths.clientJs), `${paths.clientJs} is missing`).toBe(true);
    const scenario = loadScenario('smoke', paths.scenariosDir);
    const { result, file } = await runScenario({ scenario, baselines: false, outDir, log: () => undefined });
    expect(result.countCheck.batchesAcked).toBeGreaterThan(0);
    expect(result.countCheck.stored.batches).toBe(result.countCheck.batchesAcked);
    expect(result.countCheck.stored.batchIds).toBe(result.countCheck.stored.batches);
    expect(result.countCheck.stored.events).toBe(result.countCheck.eventsAcked);
    expect(result.countCheck.stored.eventsProcessed).toBe(result.countCheck.stored.events);
    expect(result.countCheck.stored.seqGaps).toBe(0);
    expect(result.lostBatches).toBe(0);
    expect(result.countCheck.ok).toBe(true);
    expect(result.detections.sent).toBeGreaterThan(0);
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    for (const key of ['eventsPerSec', 'ackLatencyMs', 'reportLatencyMs', 'lostBatches', 'baselines', 'machine', 'countCheck']) expect(json).toHaveProperty(key);
    // The result names the commit it measured.
    expect(result.machine.commit).toMatch(/^([0-9a-f]{7,}(\+dirty)?|unknown)$/);
    // The server's ack stages of the measured window: batches were stored in it, each with a commit.
    const stages = result.window.ackStagesMs;
    expect(stages).toBeDefined();
    expect(stages!.commit.p50).toBeGreaterThan(0);
    expect(stages!.commit.p99).toBeGreaterThanOrEqual(stages!.commit.p50);
  }, 60_000);

  it('stops before starting anything when a baseline program is missing, with its install hint', async () => {
    const scenario = loadScenario('smoke', paths.scenariosDir);
    const run = runScenario({ scenario, baselines: true, outDir, log: () => undefined, findRsyslogd: () => undefined });
    await expect(run).rejects.toMatchObject({ code: 'ERR_BENCH_BASELINE_MISSING', details: { install: 'apt-get install rsyslog' } });
  });
});

describe('load benchmark with fleet activity (correctness only)', () => {
  it('drives dropouts, failed logons, blocked USB insertions and a rollout, and the server sees each', async () => {
    const scenario = loadScenario('fleet-smoke', paths.scenariosDir);
    const { result } = await runScenario({ scenario, baselines: false, outDir, log: () => undefined });
    expect(result.countCheck.ok).toBe(true);
    expect(result.countCheck.stored.eventsProcessed).toBe(result.countCheck.stored.events);
    const fa = result.fleetActivity!;
    expect(fa.agents.dropouts).toBeGreaterThan(0);
    expect(fa.agents.logonBursts).toBeGreaterThan(0);
    expect(fa.agents.usbInsertions).toBeGreaterThan(0);
    // Every insertion of the unlisted stick was stored and processed: one usb.blocked alert each.
    expect(fa.fleetAlerts).toEqual({ 'usb.blocked': fa.agents.usbInsertions });
    // Bursts of 12 failed logons pass the default rule (10 within 5 minutes).
    expect(fa.opsAlerts['analytics.threshold']).toBeGreaterThan(0);
    // Agents away 4 s with a 1 s liveness delay.
    expect((fa.opsAlerts['agent.offline'] ?? 0) + (fa.opsAlerts['agent.mass_offline'] ?? 0)).toBeGreaterThan(0);
    // The rollout's share upgraded, and only it.
    const r = fa.rollout!;
    expect(r.targets).toBeGreaterThan(0);
    expect(r.targets).toBeLessThan(result.agents);
    expect(r.upgrades).toEqual({ done: r.targets });
    expect(fa.agents.upgrades).toBe(r.targets);
    expect(r.versions).toEqual({ '3.2.1': result.agents - r.targets, '3.3.0': r.targets });
  }, 120_000);
});

describe('server histograms between two scrapes', () => {
  const series = (name: string, stage: string, counts: [string, number][]): PromSample[] => counts.map(([le, value]) => ({ name: `${name}_bucket`, labels: { stage, le }, value }));
  const name = 'kiseki_ingest_ack_stage_seconds';

  it('interpolates a quantile within its bucket over the counts added between the scrapes, as histogram_quantile does', () => {
    // 40 observations before the window (all fast) must not count; in it, 50 ≤ 1 ms, 40 in (1, 2] ms, 10 in (2, 5] ms.
    const before = series(name, 'commit', [['0.001', 40], ['0.002', 40], ['0.005', 40], ['+Inf', 40]]);
    const after = series(name, 'commit', [['0.001', 90], ['0.002', 130], ['0.005', 140], ['+Inf', 140]]);
    expect(histogramQuantileBetween(before, after, name, { stage: 'commit' }, 0.5)).toBeCloseTo(0.001, 9);
    expect(histogramQuantileBetween(before, after, name, { stage: 'commit' }, 0.99)).toBeCloseTo(0.0047, 9);
    // Another stage's series, and an interval without observations, give nothing.
    expect(histogramQuantileBetween(before, after, name, { stage: 'wait' }, 0.5)).toBeUndefined();
    expect(histogramQuantileBetween(after, after, name, { stage: 'commit' }, 0.5)).toBeUndefined();
  });

  it('answers the highest finite bound when the quantile falls in the +Inf bucket', () => {
    const after = series(name, 'order', [['0.001', 1], ['5', 2], ['+Inf', 10]]);
    expect(histogramQuantileBetween([], after, name, { stage: 'order' }, 0.99)).toBe(5);
  });

  it('reports the ack stages in milliseconds only when each stage has observations', () => {
    const one = (stage: string): PromSample[] => series(name, stage, [['0.001', 0], ['0.01', 10], ['+Inf', 10]]);
    const after = [...one('wait'), ...one('lock'), ...one('commit'), ...one('order')];
    const each = { p50: 5.5, p99: 9.91 };
    expect(ackStagesBetween([], after)).toEqual({ wait: each, lock: each, commit: each, order: each });
    expect(ackStagesBetween([], one('commit'))).toBeUndefined();
  });

  it("sums each thread's GC pauses by kind over the window and takes the ingest thread's event-loop delay from the later scrape", () => {
    const gcScrape = (name: string, kind: string, counts: [string, number][], sum: number): PromSample[] => [
      ...counts.map(([le, value]) => ({ name: `${name}_bucket`, labels: { kind, le }, value })),
      { name: `${name}_count`, labels: { kind }, value: counts.at(-1)![1] },
      { name: `${name}_sum`, labels: { kind }, value: sum },
    ];
    const ingest = 'kiseki_process_nodejs_gc_duration_seconds';
    const shard = 'kiseki_engine_shard_gc_seconds';
    const loop = (p99: number, max: number): PromSample[] => [
      { name: 'kiseki_process_nodejs_eventloop_lag_p99_seconds', labels: {}, value: p99 },
      { name: 'kiseki_process_nodejs_eventloop_lag_max_seconds', labels: {}, value: max },
    ];
    // Before: 10 scavenges of the ingest thread (50 ms); in the window 20 more, 18 within 10 ms and 2 in (10, 20] ms (250 ms in all).
    const before = [...gcScrape(ingest, 'minor', [['0.01', 10], ['0.02', 10], ['+Inf', 10]], 0.05), ...loop(0.5, 0.9)];
    const after = [
      ...gcScrape(ingest, 'minor', [['0.01', 28], ['0.02', 30], ['+Inf', 30]], 0.3),
      ...gcScrape(ingest, 'major', [['0.01', 0], ['0.02', 0], ['+Inf', 0]], 0),
      ...gcScrape(shard, 'major', [['0.1', 0], ['0.5', 1], ['+Inf', 1]], 0.29),
      ...loop(0.012, 0.031),
    ];
    const pauses = threadPausesBetween(before, after);
    expect(pauses.ingestGc).toEqual({ minor: { count: 20, totalMs: 250, p99Ms: 19 } });
    expect(pauses.shardGc).toEqual({ major: { count: 1, totalMs: 290, p99Ms: 496 } });
    expect(pauses.ingestLoopDelayMs).toEqual({ p99: 12, max: 31 });
    expect(gcPauses(pauses.ingestGc)).toBe('minor 20 × p99 19 ms (250 ms)');
    expect(gcPauses({})).toBe('none');
    // A server that exports no event-loop figures (another registry) gives GC pauses alone.
    expect(threadPausesBetween([], []).ingestLoopDelayMs).toBeUndefined();
  });

  it("gives the report latency of one window's alerts, and judges saturate's report target at 70 %, not over the whole run", () => {
    const h = 'kiseki_engine_report_latency_histogram_seconds';
    const scrape = (counts: [string, number][]): PromSample[] => [
      ...counts.map(([le, value]) => ({ name: `${h}_bucket`, labels: { le }, value })),
      { name: `${h}_count`, labels: {}, value: counts.at(-1)![1] },
    ];
    // Before the window: 100 reports minutes late (a shard catching up); in it: 200 reports, all within 20 ms.
    const before = scrape([['0.01', 0], ['0.02', 0], ['60', 0], ['120', 100], ['+Inf', 100]]);
    const after = scrape([['0.01', 150], ['0.02', 300], ['60', 300], ['120', 300], ['+Inf', 300]]);
    const window = reportLatencyBetween(before, after)!;
    expect(window.alerts).toBe(200);
    expect(window.p99).toBeLessThanOrEqual(20);
    expect(reportLatencyBetween(after, after)).toBeUndefined();
    const run = {
      kind: 'saturate',
      eventsPerSec: 60_000,
      throughputCeiling: 200_000,
      config: {},
      ratios: { vsRsyslog: null },
      lostBatches: 0,
      countCheck: { ok: true },
      reportLatencyMs: { p50: 1_000, p99: 80_000, p999: 90_000, alerts: 300 },
      atSeventyPercent: { eventsPerSec: 42_000, ackLatencyMs: { p99: 20 }, reportLatencyMs: window },
    } as unknown as BenchResult;
    const report = evaluateTargets(run).find((t) => t.target.startsWith('detection'))!;
    expect(report.met).toBe(true);
    expect(report.measured).toContain('at 70 %');
    expect(report.measured).toContain('whole run 80000 ms');
    // Without a 70 % window (other scenarios), the run's figure is judged.
    const other = evaluateTargets({ ...run, kind: 'steady', atSeventyPercent: undefined } as unknown as BenchResult).find((t) => t.target.startsWith('detection'))!;
    expect(other.met).toBe(false);
    // Issue 18's ack and rsyslog goals: 20 ms at 70 % and 0.9 × rsyslog miss them, 10 ms and 1.0 × meet them.
    const judge = (ackP99: number, vsRsyslog: number) => {
      const targets = evaluateTargets({ ...run, ratios: { vsRsyslog }, atSeventyPercent: { ...run.atSeventyPercent!, ackLatencyMs: { p99: ackP99 } } } as unknown as BenchResult);
      return [targets.find((t) => t.target.startsWith('ack p99'))!.met, targets.find((t) => t.target.includes('rsyslog'))!.met];
    };
    expect(judge(20, 0.9)).toEqual([false, false]);
    expect(judge(10, 1.0)).toEqual([true, true]);
  });
});

describe('scraping a server that may stall', () => {
  it('answers the samples, undefined when the server does not answer in time, and throws when nothing listens', async () => {
    const { createServer } = await import('node:http');
    let stall = false;
    const server = createServer((req, res) => {
      if (stall) return; // never answers: a stalled event loop
      res.end('kiseki_ingest_events_total 42\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      expect(await scrapeMetricsOrUndefined(port, 2000)).toEqual([{ name: 'kiseki_ingest_events_total', labels: {}, value: 42 }]);
      stall = true;
      expect(await scrapeMetricsOrUndefined(port, 200)).toBeUndefined();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await expect(scrapeMetricsOrUndefined(port, 200)).rejects.toThrow();
  });
});
