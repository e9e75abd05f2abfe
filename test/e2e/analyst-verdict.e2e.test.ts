/**
 * The CLI and the API read the same effective verdict: after an operator
 * changes an alert's verdict through the API, `kiseki alerts` and
 * `kiseki report` (the built CLI, another process) show the analyst's
 * verdict, and the report's verdict history says what it was before.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp } from '../../api/index.js';
import { createManualClock } from '../../core/clock.js';
import type { AlertRecord } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore } from '../../storage/index.js';
import { runCli } from '../support/cli.js';

const T0 = Date.UTC(2026, 10, 1);
const ALERT = 'al_0000000000000000000000aa';
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-verdict-'));
  const store = openHotStore({ dataDir: dir });
  try {
    await store.tenants.create({ supportId: 'TA', name: 'Tenant A', now: T0 });
    const alert: AlertRecord = {
      id: ALERT, tmid: 'D1', supportId: 'TA', computer: 'PC-1', sha256: 'a'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked',
      detectedAt: T0, createdAt: T0 + 10, state: 'reported', verdict: 'gray', score: 0, revision: 1, repeats: 0, openUntil: T0, isolationRequested: false,
    };
    await store.transaction(() => {
      store.alerts.saveSync(alert);
      store.alerts.indexSync(alert);
      store.alerts.putVerdictChangeSync({ alertId: ALERT, at: T0 + 10, revision: 1, from: null, to: 'gray', by: 'engine' });
    });
    await store.identity.createUser({ id: 'op.sato', role: 'operator', supportId: null, password: 'pass-word', now: T0, mustChangePassword: false });
    const token = await store.identity.createSession('op.sato', 'token', T0, 3_600_000);
    const app = createHttpApp({
      metrics: createMetrics({ defaultMetrics: false }),
      health: { problems: () => [], details: () => ({}) },
      api: { store, clock: createManualClock(T0 + 1000), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
    });
    const res = await app.request(`/api/v1/alerts/${ALERT}/verdict`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ verdict: 'black', comment: 'confirmed by the analyst' }),
    });
    expect(res.status).toBe(200);
    await store.flushed();
  } finally {
    await store.close();
  }
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('analyst verdict in the CLI', () => {
  it('kiseki alerts shows the verdict the analyst set through the API', async () => {
    const json = await runCli(['alerts', '--support-id', 'TA', '--json', '--data', dir]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ id: ALERT, verdict: 'black', engineVerdict: 'gray', verdictBy: 'op.sato' })]);
    const text = await runCli(['alerts', '--support-id', 'TA', '--data', dir]);
    expect(text.stdout).toMatch(new RegExp(`^${ALERT} .* black `, 'm'));
  }, 60_000);

  it('kiseki report shows it with the verdict it replaced', async () => {
    const r = await runCli(['report', '--alert', ALERT, '--json', '--data', dir]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.alert).toMatchObject({ verdict: 'black', verdictBy: 'op.sato' });
    expect(out.verdicts.at(-1)).toMatchObject({ from: 'gray', to: 'black', by: 'op.sato', revision: null });
  }, 60_000);
});
