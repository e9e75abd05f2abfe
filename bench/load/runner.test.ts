import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchPaths } from './bench-paths.js';
import { runScenario } from './runner.js';
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
