/**
 * Network-log intel hit → notification delivered (issue 17's target: p99 ≤ 10 s).
 * In one process, as `kiseki start` runs them: the network matcher
 * (engine/intel) fed with Suricata-like records at `--rate` records/s of which
 * `--hit-ratio` hit a listed address, and the notifier on its default 1 s
 * interval (feed → outbox → webhook) delivering to a webhook server in this
 * process. For each hit: from the moment its record is handed to `onRecords`
 * (what the syslog receiver does right after storing it) to the webhook
 * request arriving. The syslog receiver's own parse and store time is not in
 * this figure (milliseconds; see the ingest benchmark).
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/load/intel-notify-latency.js [--duration 30] [--rate 2000] [--hit-ratio 0.01] [--interval-ms 1000]`
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../../core/cli-flags.js';
import { systemClock } from '../../core/clock.js';
import type { NetworkLogRecord } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { createNetworkIntelMatcher, createThreatIntel } from '../../engine/index.js';
import { createNotifier } from '../../notify/index.js';
import { openHotStore } from '../../storage/index.js';

const { values } = parseFlags(process.argv.slice(2), { duration: { type: 'number' }, rate: { type: 'number' }, 'hit-ratio': { type: 'number' }, 'interval-ms': { type: 'number' } });
const durationSec = values.duration ?? 30;
const rate = values.rate ?? 2000;
const hitRatio = values['hit-ratio'] ?? 0.01;
const intervalMs = values['interval-ms'] ?? 1000;

const dir = mkdtempSync(join(tmpdir(), 'kiseki-intel-latency-'));
const intelDir = join(dir, 'intel');
mkdirSync(intelDir);
// 10,000 listed addresses and networks: the index size does not change the lookup (tries and maps).
const listed: string[] = [];
for (let i = 0; i < 10_000; i++) listed.push(`198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
writeFileSync(join(intelDir, 'ips.txt'), `${listed.join('\n')}\n203.0.113.0/24\n`);
const store = openHotStore({ dataDir: join(dir, 'data'), mapSizeBytes: 256 * 1024 * 1024 });
await store.tenants.create({ supportId: 'BENCH-1', name: 'bench', now: Date.now() });

const started = new Map<string, number>();
const latencies: number[] = [];
const hook = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    const at = Date.now();
    for (const e of (JSON.parse(body) as { events: { alertId?: string }[] }).events) {
      const t0 = e.alertId === undefined ? undefined : started.get(e.alertId);
      if (t0 !== undefined) latencies.push(at - t0);
    }
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
await store.notify.putSettings({
  supportId: 'BENCH-1',
  recipients: [{ id: 'bench', channel: 'webhook', to: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`, events: ['intel.hit'], verdicts: [] }],
  maxPerHour: 1_000_000,
  updatedAt: Date.now(),
  updatedBy: 'bench',
});

const matcher = createNetworkIntelMatcher({ store, intel: createThreatIntel(intelDir), clock: systemClock, logger: createSilentLogger() });
const notifier = createNotifier({ store, clock: systemClock, logger: createSilentLogger(), consoleUrl: 'http://bench' });
notifier.start(intervalMs);

let n = 0;
let hits = 0;
const record = (hit: boolean): NetworkLogRecord => {
  n++;
  const now = Date.now();
  const dstIp = hit ? `203.0.113.${n % 250}` : `192.0.2.${n % 250}`;
  return { supportId: 'BENCH-1', receivedAt: now, ts: now, format: 'suricata', sourceAddress: '10.0.0.2', srcIp: `10.1.${(n >> 8) & 255}.${n & 255}`, srcPort: 1024 + (n % 60_000), dstIp, dstPort: 443, action: 'alert', raw: `line ${n}` };
};
// Records arrive in batches of 100 ms, as a receiver hands them over.
const end = Date.now() + durationSec * 1000;
const perTick = Math.max(1, Math.round(rate / 10));
while (Date.now() < end) {
  const tick = Date.now();
  const batch: NetworkLogRecord[] = [];
  for (let i = 0; i < perTick; i++) batch.push(record(Math.random() < hitRatio));
  const t0 = Date.now();
  const created = await matcher.onRecords(batch);
  for (const a of created) started.set(a.id, t0);
  hits += created.length;
  await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - tick))));
}
// Wait for the last notifications (at most 30 s).
const until = Date.now() + 30_000;
while (latencies.length < hits && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
await notifier.stop();
await new Promise<void>((r) => hook.close(() => r()));
await store.close();
rmSync(dir, { recursive: true, force: true });
latencies.sort((a, b) => a - b);
const pct = (p: number): number | null => (latencies.length === 0 ? null : latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!);
console.log(JSON.stringify({ durationSec, recordsPerSec: rate, records: n, hits, notified: latencies.length, notifierIntervalMs: intervalMs, hitToNotificationMs: { p50: pct(50), p99: pct(99), max: latencies.at(-1) ?? null } }));
