/**
 * The console's devices page at 20,000 devices: server time of one request
 * through the Hono app (session lookup, scoped lazy scan, 50 rows rendered
 * with JSX), for an operator's first page, a tenant admin's first page, a
 * page deep in the list (cursor), and a filter that matches nothing (the
 * worst case, bounded by the page's 5,000-device scan budget). Target: ≤ 200 ms.
 * Prints median and spread (min, p99, max) besides the usual columns.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { createHttpApp } from '../../api/index.js';
import { createManualClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, type DeviceRecord } from '../../storage/index.js';
import { isMain } from './micro-fixtures.js';
import { printTable, rowsOf, type MicroTable } from './micro-report.js';

const DEVICES = 20_000;
const T0 = Date.UTC(2026, 10, 1);

/** Runs the devices-page benchmark and prints its table. */
export async function runBench(): Promise<MicroTable[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-console-bench-'));
  const store = openHotStore({ dataDir: dir });
  try {
    await store.tenants.create({ supportId: 'BENCH', name: 'Bench Co', now: T0 });
    const devices: DeviceRecord[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const hex = i.toString(16).padStart(12, '0').toUpperCase();
      devices.push({
        tmid: `0000${hex.slice(0, 4)}-0000-4000-8000-${hex}`,
        supportId: 'BENCH',
        computer: `PC-${String(i).padStart(5, '0')}`,
        agentVersion: i % 10 === 0 ? '3.1.0' : '3.2.0',
        os: 'Windows 11 Pro 23H2',
        ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
        macs: ['00:11:22:33:44:55'],
        tokenHash: '0'.repeat(64),
        firstSeen: T0,
        lastSeen: T0 + i * 1000,
        connected: i % 3 !== 0,
      } as DeviceRecord);
    }
    await store.devices.saveAll(devices);
    await store.identity.createUser({ id: 'op.bench', role: 'operator', supportId: null, password: 'bench-pass', now: T0, mustChangePassword: false });
    await store.identity.createUser({ id: 'admin.bench', role: 'admin', supportId: 'BENCH', password: 'bench-pass', now: T0, mustChangePassword: false });
    const op = await store.identity.createSession('op.bench', 'session', T0, 86_400_000);
    const admin = await store.identity.createSession('admin.bench', 'session', T0, 86_400_000);
    const app = createHttpApp({
      metrics: createMetrics({ defaultMetrics: false }),
      health: { problems: () => [], details: () => ({}) },
      api: { store, clock: createManualClock(T0 + 3_600_000), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
    });
    const get = async (path: string, token: string): Promise<number> => {
      const res = await app.request(`http://127.0.0.1${path}`, { headers: { cookie: `kiseki_session=${token}` } });
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
      return (await res.text()).length;
    };
    const deep = Buffer.from(JSON.stringify([devices[15_000]!.tmid])).toString('base64url');
    let sink = 0;
    const bench = new Bench({ time: 3000, warmupTime: 500 });
    bench
      .add('operator, first page (50 of 20,000)', async () => {
        sink += await get('/devices', op);
      })
      .add('tenant admin, first page', async () => {
        sink += await get('/devices', admin);
      })
      .add('tenant admin, page after device 15,000', async () => {
        sink += await get(`/devices?cursor=${deep}`, admin);
      })
      .add('tenant admin, filter matching nothing (stops at the 5,000-device scan budget)', async () => {
        sink += await get('/devices?q=NO-SUCH-PC', admin);
      });
    await bench.run();
    if (sink < 0) throw new Error('unreachable');
    const table: MicroTable = {
      bench: `console devices page at ${DEVICES.toLocaleString('en-US')} devices (server time through app.request)`,
      item: 'page',
      itemsPerOp: 1,
      rows: rowsOf(bench, 1),
      verdict: 'pages read lazily in TMID order and stop after 51 rows; a filter matching few devices stops after 5,000 reads and offers to continue',
    };
    printTable(table);
    for (const t of bench.tasks) {
      const l = (t.result as { latency?: { p50?: number; min?: number; max?: number; p99?: number } } | undefined)?.latency;
      process.stdout.write(`  ${t.name}: median ${l?.p50?.toFixed(2)} ms, min ${l?.min?.toFixed(2)} ms, p99 ${l?.p99?.toFixed(2)} ms, max ${l?.max?.toFixed(2)} ms\n`);
    }
    return [table];
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) await runBench();
