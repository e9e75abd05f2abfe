/**
 * Issue 17's SIEM check: alerts and detections forwarded through the
 * notifier's outbox as RFC 5424 and CEF over TCP and TLS are received by a
 * real rsyslogd (run unprivileged as a child: imtcp, omfile with a template
 * that writes the parsed header fields and the message) and parsed; ECS goes
 * to an NDJSON file; a destination that is down is retried, not lost.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import type { NetworkIntelAlert, SigmaDetection } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { openHotStore, type HotStore, type NotifyRecipient } from '../../storage/index.js';
import { createNotifier } from '../notifier.js';

const RSYSLOGD = ['/usr/sbin/rsyslogd', '/sbin/rsyslogd'].find((p) => existsSync(p));
const HAS_GTLS = ['/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/rsyslog/lmnsd_gtls.so'].some((p) => existsSync(p));
const HAS_OPENSSL = spawnSync('openssl', ['version']).status === 0;
if (RSYSLOGD === undefined) console.log('skipping the rsyslog SIEM test: install rsyslog (apt-get install rsyslog rsyslog-gnutls)');
else if (!HAS_GTLS || !HAS_OPENSSL) console.log('skipping the TLS half of the rsyslog SIEM test: install rsyslog-gnutls and openssl');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Splits a CEF extension into keys and unescaped values. */
function cefExtension(ext: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(?:^|\s)([A-Za-z0-9_]+)=((?:\\.|[^\\])*?)(?=\s+[A-Za-z0-9_]+=|$)/g;
  for (const m of ext.matchAll(re)) out[m[1]!] = m[2]!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
  return out;
}

const T = Date.parse('2026-11-30T03:00:00.000Z');

describe.skipIf(RSYSLOGD === undefined)('SIEM forwarding into a real rsyslog listener', () => {
  let dir: string;
  let daemon: ChildProcess | undefined;
  let tcpPort = 0;
  let tlsPort = 0;
  let tls = false;
  let daemonLog = '';
  const out = (): string => join(dir, 'out.log');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-siem-rsyslog-'));
    tcpPort = await freePort();
    tlsPort = await freePort();
    tls = HAS_GTLS && HAS_OPENSSL;
    if (tls) {
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '2', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
      tls = r.status === 0;
    }
    writeFileSync(
      join(dir, 'rsyslog.conf'),
      [
        `global(workDirectory="${dir}" maxMessageSize="64k"${tls ? ` defaultNetstreamDriverCAFile="${dir}/cert.pem" defaultNetstreamDriverCertFile="${dir}/cert.pem" defaultNetstreamDriverKeyFile="${dir}/key.pem"` : ''})`,
        'module(load="imtcp")',
        `input(type="imtcp" port="${tcpPort}" address="127.0.0.1" ruleset="siem")`,
        ...(tls ? [`input(type="imtcp" port="${tlsPort}" address="127.0.0.1" ruleset="siem" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`] : []),
        // The parsed RFC 5424 fields, then the message: what a SIEM's syslog input sees.
        'template(name="parsed" type="string" string="%inputname%|%hostname%|%app-name%|%msgid%|%syslogfacility%|%syslogseverity%|%structured-data%|%msg%\\n")',
        `ruleset(name="siem") { action(type="omfile" file="${out()}" template="parsed" flushOnTXEnd="on" asyncWriting="off") }`,
        '',
      ].join('\n'),
    );
    daemon = spawn(RSYSLOGD!, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
    daemon.stderr?.on('data', (d: Buffer) => (daemonLog = (daemonLog + d.toString()).slice(-4000)));
    const up = await waitFor(async () => (await canConnect(tcpPort)) && (!tls || (await canConnect(tlsPort))), 20_000);
    if (!up) throw new Error(`rsyslogd did not listen: ${daemonLog}`);
  }, 60_000);

  afterAll(async () => {
    if (daemon !== undefined && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function seed(store: HotStore): Promise<{ intelId: string; detectionId: string; tmid: string }> {
    const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'T', now: 0 });
    const { device } = await store.devices.enroll(tenant, { computer: 'PC-FIN-07', agentVersion: '3', os: 'W', ips: ['10.0.4.23'], macs: [] }, 0);
    const alert: NetworkIntelAlert = {
      id: 'ni_000000000000000000000001',
      supportId: 'T1',
      createdAt: T + 1000,
      at: T,
      severity: 'Critical',
      confidence: 90,
      hits: [{ kind: 'ip', observed: '203.0.113.45', value: '203.0.113.45', source: 'taxii:feed', confidence: 90, labels: ['c2'], name: 'C2 | loader = x' }],
      network: { supportId: 'T1', receivedAt: T, ts: T, format: 'suricata', sourceAddress: '10.0.0.2', host: 'ids01', srcIp: '10.0.4.23', srcPort: 51234, dstIp: '203.0.113.45', dstPort: 443, protocol: 'TCP', action: 'alert', signature: 'ET MALWARE Beacon', raw: '{}' },
      device: { tmid: device.tmid, computer: 'PC-FIN-07', matchedBy: 'connection' },
      endpoint: { tmid: device.tmid, computer: 'PC-FIN-07', pg: '{p}', pid: 7344, image: 'C:\\Users\\a\\updater.exe', ts: T, seq: 2, lsn: 1, lip: '10.0.4.23', lport: 51234, rip: '203.0.113.45', rport: 443 },
      linkedAt: T + 1000,
      repeats: 0,
    };
    await store.intelAlerts.record(alert, 'k', 3600_000);
    const d: SigmaDetection = {
      id: 'sd_000000000000000000000001',
      supportId: 'T1',
      tmid: device.tmid,
      computer: 'PC-FIN-07',
      ruleId: '5b7b1c3e-0000-4000-8000-0000000a11ce',
      title: 'Whoami run',
      level: 'medium',
      severity: 'Medium',
      tags: ['attack.discovery'],
      author: 'Someone',
      lsn: 1,
      event: { tmid: device.tmid, seq: 1, ts: T + 5, k: 'proc.start' },
      pg: '{a}',
      image: 'C:\\Windows\\System32\\whoami.exe',
      at: T + 5,
      createdAt: T + 2000,
      repeats: 0,
    };
    await store.transaction(() => {
      store.detections.saveSync(d);
      store.detections.indexSync(d);
    });
    return { intelId: alert.id, detectionId: d.id, tmid: device.tmid };
  }

  it('delivers RFC 5424 and CEF over TCP (and TLS), parsed by rsyslog; ECS to a file; retries a destination that is down', async () => {
    const store = openHotStore({ dataDir: join(dir, 'data'), mapSizeBytes: 32 * 1024 * 1024 });
    try {
      const { intelId, detectionId, tmid } = await seed(store);
      const events: NotifyRecipient['events'] = ['intel.hit', 'detection.new'];
      const recipients: NotifyRecipient[] = [
        { id: 's5424', channel: 'siem', to: `tcp://127.0.0.1:${tcpPort}`, events, verdicts: [], siem: { format: 'rfc5424' } },
        { id: 'scef', channel: 'siem', to: `tcp://127.0.0.1:${tcpPort}`, events, verdicts: [], siem: { format: 'cef', framing: 'newline' } },
        ...(tls ? [{ id: 'stls', channel: 'siem' as const, to: `tls://localhost:${tlsPort}`, events, verdicts: [], siem: { format: 'cef' as const, caFile: join(dir, 'cert.pem') } }] : []),
      ];
      await store.notify.putSettings({ supportId: 'T1', recipients, maxPerHour: 1, updatedAt: 0, updatedBy: 't' });
      const downPort = await freePort();
      const ecsFile = join(dir, 'ecs.ndjson');
      const globalRecipients: NotifyRecipient[] = [
        { id: 'global-file', channel: 'siem', to: `file://${ecsFile}`, events, verdicts: [], siem: { format: 'ecs' } },
        { id: 'global-down', channel: 'siem', to: `tcp://127.0.0.1:${downPort}`, events: ['intel.hit'], verdicts: [], siem: { format: 'cef' } },
      ];
      const clock = createManualClock(T + 3000);
      const notifier = createNotifier({ store, clock, logger: createSilentLogger(), consoleUrl: 'http://c', siem: { hostname: 'kiseki-test', globalRecipients } });
      // Two events × (3 or 4 destinations up) sent, the destination that is down retried; no digest despite maxPerHour 1.
      const up = recipients.length + 1;
      expect(await notifier.tick()).toEqual({ sent: 2 * up, retried: 1, dead: 0 });

      const expected = 2 * recipients.length;
      const lines = (): string[] => (existsSync(out()) ? readFileSync(out(), 'utf8').split('\n').filter((l) => l !== '') : []);
      expect(await waitFor(() => lines().length >= expected, 20_000)).toBe(true);
      const parsed = lines().map((l) => {
        const f = l.split('|');
        return { input: f[0], hostname: f[1], app: f[2], msgid: f[3], facility: f[4], severity: f[5], sd: f[6], msg: f.slice(7).join('|') };
      });
      expect(parsed).toHaveLength(expected);
      for (const p of parsed) expect(p).toMatchObject({ input: 'imtcp', hostname: 'kiseki-test', app: 'kiseki', facility: '20' });

      // RFC 5424 with the ECS JSON as message: rsyslog parsed the header and the structured data.
      const j = parsed.filter((p) => p.msg.startsWith('{'));
      expect(j.map((p) => p.msgid).sort()).toEqual(['network-intel', 'sigma-detection']);
      const intelLine = j.find((p) => p.msgid === 'network-intel')!;
      expect(intelLine.severity).toBe('2');
      expect(intelLine.sd).toContain(`[kiseki@32473 eventId="nt_1_s5424" supportId="T1" severity="Critical" id="${intelId}"]`);
      const doc = JSON.parse(intelLine.msg) as Record<string, any>;
      expect(doc).toMatchObject({ event: { kind: 'alert', dataset: 'kiseki.intel', severity: 99 }, source: { ip: '10.0.4.23', port: 51234 }, destination: { ip: '203.0.113.45', port: 443 }, process: { pid: 7344, executable: 'C:\\Users\\a\\updater.exe' }, host: { id: tmid } });
      expect(doc.threat.indicator).toMatchObject({ type: 'ipv4-addr', ip: '203.0.113.45', confidence: 'High', provider: 'taxii:feed' });

      // CEF over syslog: header fields and extension parsed back, escapes included.
      const cef = parsed.filter((p) => p.msg.startsWith('CEF:'));
      expect(cef).toHaveLength(2 * (recipients.length - 1));
      const intelCef = cef.find((p) => p.msgid === 'network-intel')!.msg;
      const [, vendor, product, , signatureId, , severity] = intelCef.split('|');
      expect([vendor, product, signatureId, severity]).toEqual(['kiseki', 'kiseki', 'network-intel', '10']);
      const ext = cefExtension(intelCef.slice(intelCef.indexOf('|rt=') + 1));
      expect(ext).toMatchObject({ src: '10.0.4.23', spt: '51234', dst: '203.0.113.45', dpt: '443', cs2: '203.0.113.45', cs3: 'taxii:feed', cn1: '90', sourceProcessName: 'C:\\Users\\a\\updater.exe', dvchost: 'ids01', cs1: 'T1' });
      const sigmaCef = cefExtension(cef.find((p) => p.msgid === 'sigma-detection')!.msg.split('|').slice(7).join('|'));
      expect(sigmaCef).toMatchObject({ externalId: detectionId, cs4: '5b7b1c3e-0000-4000-8000-0000000a11ce', msg: 'Whoami run' });

      // ECS NDJSON file.
      const ecs = readFileSync(ecsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
      expect(ecs.map((d) => d.event.dataset).sort()).toEqual(['kiseki.intel', 'kiseki.sigma']);

      // The destination that was down: pending with its error, then delivered once it listens (no loss).
      const pending = store.notify.get('nt_1_global-down')!;
      expect(pending).toMatchObject({ state: 'pending', attempts: 1 });
      expect(pending.lastError).toMatch(/ECONNREFUSED/);
      const received: Buffer[] = [];
      const server = createServer((s) => s.on('data', (d) => received.push(d)));
      await new Promise<void>((r) => server.listen(downPort, '127.0.0.1', r));
      try {
        clock.advance(60_000);
        expect(await notifier.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
        expect(Buffer.concat(received).toString()).toMatch(/^\d+ <162>1 .* kiseki-test kiseki - network-intel \[kiseki@32473 .*\] CEF:0\|kiseki\|kiseki\|/);
      } finally {
        await new Promise((r) => server.close(r));
      }
      if (!tls) console.log('the TLS destination was not tested: rsyslog-gnutls or openssl missing');
    } finally {
      await store.close();
    }
  }, 60_000);
});
