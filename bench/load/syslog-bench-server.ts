/**
 * The kiseki side of the syslog benchmark, as its own process so that its
 * CPU time is its own: a hot store in a temporary directory and the syslog
 * receiver on a free loopback TCP port (every sender routed to one tenant).
 * Prints `{event: 'listening', port}`, then, once `expected` messages were
 * framed and committed, `{event: 'done', stored, failed, cpuSec, wallSec}`
 * measured from the first message to the last commit on disk.
 *
 * Every stored batch goes through intel matching as in `kiseki start`
 * (engine/intel: the network matcher over an index of 20,000 listed IPs,
 * 2,000 CIDRs and 20,000 domains, `evil.example.net` of the Squid sample among
 * them), so the figure is parse + route + store + intel match (+ the alerts of
 * the lines that hit).
 *
 * Run with one JSON argument: `{ expected, dir }`.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../core/clock.js';
import { DEFAULTS } from '../../core/config.js';
import { createSilentLogger } from '../../core/logger.js';
import { createNetworkIntelMatcher, createThreatIntel } from '../../engine/index.js';
import { createSyslogRouter, startSyslogReceiver } from '../../ingest/syslog/index.js';
import { openHotStore } from '../../storage/index.js';

const { expected, dir } = JSON.parse(process.argv[2] ?? '{}') as { expected: number; dir: string };
const store = openHotStore({ dataDir: dir, mapSizeBytes: 2 * 1024 * 1024 * 1024 });
const intelDir = join(dir, 'intel');
mkdirSync(intelDir, { recursive: true });
// Indicators in documentation ranges and names, so that the samples' real destinations mostly miss, as in production.
writeFileSync(join(intelDir, 'ips.txt'), Array.from({ length: 20_000 }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255}`).join('\n'));
writeFileSync(join(intelDir, 'cidrs.txt'), Array.from({ length: 2_000 }, (_, i) => `100.${64 + (i >> 8)}.${i & 255}.0/24`).join('\n'));
writeFileSync(join(intelDir, 'domains.txt'), ['evil.example.net', ...Array.from({ length: 20_000 }, (_, i) => `bad${i}.example.org`)].join('\n'));
const logger = createSilentLogger();
const matcher = createNetworkIntelMatcher({ store, intel: createThreatIntel(intelDir), clock: systemClock, logger });
let matching: Promise<unknown> = Promise.resolve();
let alerts = 0;
let hooked = 0;
const { enabled: _enabled, routesFile: _routes, ...settings } = DEFAULTS.syslog;
const receiver = await startSyslogReceiver({
  settings: { ...settings, host: '127.0.0.1', tcpPort: 0, udpPort: -1, tlsPort: -1 },
  store,
  router: createSyslogRouter([{ supportId: 'BENCH', cidrs: ['127.0.0.0/8'] }]),
  logger,
  onRecords: (records) => {
    hooked += records.length;
    matching = matching.then(() => matcher.onRecords(records)).then((created) => {
      alerts += created.length;
    });
  },
});
process.stdout.write(`${JSON.stringify({ event: 'listening', port: receiver.tcpPort })}\n`);
let cpu0: NodeJS.CpuUsage | undefined;
let t0 = 0;
for (;;) {
  const s = receiver.stats();
  if (cpu0 === undefined && s.messages > 0) {
    cpu0 = process.cpuUsage();
    t0 = performance.now();
  }
  if (s.messages >= expected) break;
  await new Promise((r) => setTimeout(r, 2));
}
await receiver.flush();
await matching;
const cpu = process.cpuUsage(cpu0);
const wallSec = (performance.now() - t0) / 1000;
const s = receiver.stats();
const failed = Object.values(s.failed).reduce((a, b) => a + b, 0);
process.stdout.write(`${JSON.stringify({ event: 'done', stored: s.stored, failed, hooked, intelAlerts: alerts, commits: s.commits, cpuSec: (cpu.user + cpu.system) / 1e6, wallSec })}\n`);
await receiver.close();
await matcher.stop();
await store.close();
rmSync(dir, { recursive: true, force: true });
