/**
 * The kiseki side of the syslog benchmark, as its own process so that its
 * CPU time is its own: a hot store in a temporary directory and the syslog
 * receiver on a free loopback TCP port (every sender routed to one tenant).
 * Prints `{event: 'listening', port}`, then, once `expected` messages were
 * framed and committed, `{event: 'done', stored, failed, cpuSec, wallSec}`
 * measured from the first message to the last commit on disk.
 *
 * The `onRecords` hook is where intel matching (issue 17, net-b) plugs in; here
 * it only counts, so the figure is parse + route + store.
 *
 * Run with one JSON argument: `{ expected, dir }`.
 */
import { rmSync } from 'node:fs';
import { DEFAULTS } from '../../core/config.js';
import { createSilentLogger } from '../../core/logger.js';
import { createSyslogRouter, startSyslogReceiver } from '../../ingest/syslog/index.js';
import { openHotStore } from '../../storage/index.js';

const { expected, dir } = JSON.parse(process.argv[2] ?? '{}') as { expected: number; dir: string };
const store = openHotStore({ dataDir: dir, mapSizeBytes: 2 * 1024 * 1024 * 1024 });
let hooked = 0;
const { enabled: _enabled, routesFile: _routes, ...settings } = DEFAULTS.syslog;
const receiver = await startSyslogReceiver({
  settings: { ...settings, host: '127.0.0.1', tcpPort: 0, udpPort: -1, tlsPort: -1 },
  store,
  router: createSyslogRouter([{ supportId: 'BENCH', cidrs: ['127.0.0.0/8'] }]),
  logger: createSilentLogger(),
  onRecords: (records) => {
    hooked += records.length;
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
const cpu = process.cpuUsage(cpu0);
const wallSec = (performance.now() - t0) / 1000;
const s = receiver.stats();
const failed = Object.values(s.failed).reduce((a, b) => a + b, 0);
process.stdout.write(`${JSON.stringify({ event: 'done', stored: s.stored, failed, hooked, commits: s.commits, cpuSec: (cpu.user + cpu.system) / 1e6, wallSec })}\n`);
await receiver.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
