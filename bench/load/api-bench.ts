/**
 * API load benchmark: `GET /api/v1/devices?limit=100` against a store of
 * 20,000 devices, over a real loopback socket, closed loop with a fixed
 * number of concurrent clients. Prints requests/s and latency percentiles
 * and writes bench/results/api-devices-<date>.json.
 *
 *   node dist/bench/load/api-bench.js [--devices 20000] [--requests 5000] [--concurrency 16] [--role operator|admin]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpApp, startHttpServer } from '../../api/index.js';
import { parseFlags } from '../../core/cli-flags.js';
import { systemClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, sha256Hex, type DeviceRecord } from '../../storage/index.js';
import { KisekiError } from '../../core/errors.js';

const { values: flags } = parseFlags(process.argv.slice(2), {
  devices: { type: 'number' },
  requests: { type: 'number' },
  concurrency: { type: 'number' },
  role: { type: 'string' },
  out: { type: 'string' },
});
const values = { role: flags.role ?? 'operator', out: flags.out ?? 'bench/results' };
const devices = flags.devices ?? 20_000;
const total = flags.requests ?? 5000;
const concurrency = flags.concurrency ?? 16;

const dir = mkdtempSync(join(tmpdir(), 'kiseki-api-bench-'));
const store = openHotStore({ dataDir: dir });
try {
  const now = Date.now();
  await store.tenants.create({ supportId: 'BENCH', name: 'Bench', now });
  // One transaction for the fleet: enrollment one by one would measure fsyncs, not the API.
  const fleet: DeviceRecord[] = [];
  for (let i = 0; i < devices; i++) {
    const tmid = `${i.toString(16).padStart(8, '0').toUpperCase()}-0000-4000-8000-000000000000`;
    fleet.push({
        tmid,
        supportId: 'BENCH',
        computer: `PC-${String(i).padStart(5, '0')}`,
        agentVersion: '3.2.1',
        os: 'Windows 11 Pro 23H2',
        ips: [`10.1.${(i >> 8) & 255}.${i & 255}`],
        macs: ['00-15-5D-00-00-01'],
        tokenHash: sha256Hex(`t${i}`),
        firstSeen: now,
        lastSeen: now,
        connected: i % 3 !== 0,
    });
  }
  await store.devices.saveAll(fleet);
  const role = values.role === 'admin' ? 'admin' : 'operator';
  await store.identity.createUser({ id: 'bench.user', role, supportId: role === 'admin' ? 'BENCH' : null, password: 'bench-pass', now, mustChangePassword: false });
  const token = await store.identity.createSession('bench.user', 'token', now, 3_600_000);
  const app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: systemClock, logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
  });
  const server = await startHttpServer(app, { host: '127.0.0.1', port: 0 });
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

  const get = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  // Walk pages like a console would: next cursors, wrapping around at the end.
  const first = await get('/api/v1/devices?limit=100');
  if (first.status !== 200) throw new KisekiError('ERR_BENCH_FAILED', { reason: 'unexpected status', status: first.status, body: first.body });
  const latencies: number[] = [];
  let issued = 0;
  let errors = 0;
  const started = performance.now();
  async function client(): Promise<void> {
    let cursor: string | null = null;
    while (issued < total) {
      issued++;
      const t0 = performance.now();
      const r = await get(`/api/v1/devices?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      latencies.push(performance.now() - t0);
      if (r.status !== 200) {
        errors++;
        continue;
      }
      cursor = (JSON.parse(r.body) as { nextCursor: string | null }).nextCursor;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 100) / 100;
  const result = {
    bench: 'api-devices',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    devices,
    role,
    requests: latencies.length,
    concurrency,
    errors,
    requestsPerSec: Math.round(latencies.length / seconds),
    latencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, `api-devices-${result.date.slice(0, 10)}.json`), `${JSON.stringify(result, null, 2)}\n`);
  agent.destroy();
  await server.close();
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
