/**
 * Detection → mail accepted, under the steady load benchmark: runs a load
 * scenario (default steady-1k) with an SMTP server in this process as the
 * tenant's e-mail recipient, and measures, for every notification mail, the
 * time from the alert's creation on the server (`X-Kiseki-Event-At`) to the
 * SMTP server accepting the message. The mail carries the quick report as
 * PDF, so Chromium's rendering is inside the figure. Target (issue 15): p99
 * ≤ 60 s.
 *
 * Run: `npx tsc -p tsconfig.json && node dist/bench/load/notify-latency.js [--scenario steady-1k] [--duration 30] [--agents N] [--detection-rate R]`
 * The notification settings are written to the data directory before kiseki
 * starts (the `prepare` hook); the load itself goes through the protocol.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { parseFlags } from '../../core/cli-flags.js';
import { openHotStore } from '../../storage/index.js';
import { benchPaths } from './bench-paths.js';
import { runScenario } from './runner.js';
import { loadScenario } from './scenario.js';

const { values } = parseFlags(process.argv.slice(2), { scenario: { type: 'string' }, duration: { type: 'number' }, agents: { type: 'number' }, 'detection-rate': { type: 'number' } });
const paths = benchPaths();
const base = loadScenario(values.scenario ?? 'steady-1k', paths.scenariosDir);
const latencies: number[] = [];
const server = new SMTPServer({
  authOptional: true,
  hideSTARTTLS: true,
  logger: false,
  onData(stream, _session, cb) {
    let head = '';
    stream.on('data', (c: Buffer) => {
      if (head.length < 4096) head += c.toString('utf8');
    });
    stream.on('end', () => {
      const at = Number(/^X-Kiseki-Event-At:\s*(\d+)/im.exec(head)?.[1]);
      if (Number.isFinite(at)) latencies.push(Date.now() - at);
      cb();
    });
  },
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.server.address() as AddressInfo).port;
// Inherited by the kiseki process the runner spawns: the in-process server offers no STARTTLS.
process.env.KISEKI_SMTP_REQUIRE_TLS = 'false';
const scenario = {
  ...base,
  ...(values.duration === undefined ? {} : { durationSec: values.duration }),
  ...(values.agents === undefined ? {} : { agents: values.agents }),
  ...(values['detection-rate'] === undefined ? {} : { detectionRate: values['detection-rate'] }),
  serverArgs: [...(base.serverArgs ?? []), '--smtp-host', '127.0.0.1', '--smtp-port', String(port)],
};
const { result, file } = await runScenario({
  scenario,
  paths,
  baselines: false,
  // Mails still queued when the load ends are waited for: until none arrived for 60 s (at most 5 min).
  async beforeStop() {
    const until = Date.now() + 300_000;
    let seen = -1;
    let quietSince = Date.now();
    while (Date.now() < until && Date.now() - quietSince < 60_000) {
      if (latencies.length !== seen) {
        seen = latencies.length;
        quietSince = Date.now();
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  },
  async prepare(dataDir) {
    const store = openHotStore({ dataDir });
    await store.notify.putSettings({
      supportId: 'BENCH-1',
      recipients: [{ id: 'bench', channel: 'email', to: 'soc@bench.example', events: ['alert.new'], verdicts: ['black', 'gray', 'white'] }],
      maxPerHour: 1_000_000,
      updatedAt: Date.now(),
      updatedBy: 'bench',
    });
    await store.close();
  },
});
await new Promise<void>((resolve) => server.close(() => resolve()));
latencies.sort((a, b) => a - b);
const pct = (p: number): number | null => (latencies.length === 0 ? null : latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!);
console.log(
  JSON.stringify({
    scenario: scenario.name,
    alerts: result.detections.alerts,
    mails: latencies.length,
    detectionToMailAcceptedMs: { p50: pct(50), p99: pct(99), max: latencies.at(-1) ?? null },
    result: file,
  }),
);
