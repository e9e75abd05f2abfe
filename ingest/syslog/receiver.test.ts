import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../core/config.js';
import type { NetworkLogRecord } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { openHotStore, type HotStore } from '../../storage/index.js';
import { startSyslogReceiver, type SyslogReceiver, type SyslogReceiverSettings } from './receiver.js';
import { createSyslogRouter } from './routing.js';
import { findOpenssl, makeTestPki, sendStream, waitUntil } from './test-support.js';

const TOKEN = 'relay-token-0123456789abcdef';
const SQUID = '1710234000.123    154 10.0.0.5 TCP_MISS/200 1520 GET http://example.com/index.html - HIER_DIRECT/93.184.216.34 text/html';
const CEF = 'CEF:0|Check Point|VPN-1|R81|Drop|Drop|5|act=Drop src=10.0.0.5 dst=198.51.100.23 dpt=445';

describe('syslog receiver', () => {
  let dir: string;
  let store: HotStore;
  let receiver: SyslogReceiver | undefined;
  let batches: NetworkLogRecord[][];
  let registry: Registry;

  const start = async (over: Partial<SyslogReceiverSettings> = {}, cidrs = ['127.0.0.0/8']): Promise<SyslogReceiver> => {
    const { enabled: _e, routesFile: _r, ...base } = DEFAULTS.syslog;
    receiver = await startSyslogReceiver({
      settings: { ...base, host: '127.0.0.1', tcpPort: 0, udpPort: 0, tlsPort: -1, ...over },
      store,
      router: createSyslogRouter([
        { supportId: 'T1', cidrs },
        { supportId: 'T2', token: TOKEN },
      ]),
      logger: createSilentLogger(),
      registry,
      onRecords: (records) => {
        // Called only after the commit: the records must already be readable.
        store.refreshReads();
        expect(store.netlog.count()).toBeGreaterThanOrEqual(records.length);
        batches.push(records);
      },
    });
    return receiver;
  };
  const total = (): number => batches.reduce((n, b) => n + b.length, 0);
  const failures = (): Record<string, number> => {
    store.refreshReads();
    return Object.fromEntries(store.netlog.failures().map((f) => [`${f.supportId}:${f.reason}`, f.count]));
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-syslog-'));
    store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
    batches = [];
    registry = new Registry();
  });
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores TCP lines (both framings), routes by token, counts failures by reason, and exports metrics', async () => {
    const r = await start({ maxLineBytes: 1024 });
    const octet = `<134>1 2024-03-12T09:00:00Z fw01 cef - - - ${CEF}`;
    const tokenLine = `<134>1 2024-03-12T09:00:00Z relay squid - - [kiseki@32473 token="${TOKEN}"] ${SQUID}`;
    const data = [`<13>Mar 12 09:00:00 proxy01 squid: ${SQUID}\n`, `${Buffer.byteLength(octet)} ${octet}`, `${tokenLine}\n`, '<13>Mar 12 09:00:00 h t: not a log\n', `<13>${'x'.repeat(2000)}\n`, '<999>bad\n'].join('');
    await sendStream(r.tcpPort!, data);
    await r.flush();
    expect(await waitUntil(() => total() === 3, 10_000)).toBe(true);
    await r.flush();
    store.refreshReads();
    expect(store.netlog.count('T1')).toBe(2);
    expect(store.netlog.count('T2')).toBe(1);
    expect(failures()).toEqual({ 'T1:unknown_format': 1, 'T1:line_too_long': 1, 'T1:bad_syslog_header': 1 });
    const [t2] = [...store.netlog.scan('T2')];
    expect(t2?.record).toMatchObject({ supportId: 'T2', format: 'squid', host: 'relay', sourceAddress: '127.0.0.1', raw: tokenLine });
    const text = await registry.metrics();
    expect(text).toMatch(/kiseki_syslog_records_total\{tenant="T1",format="squid"\} 1/);
    expect(text).toMatch(/kiseki_syslog_parse_failures_total\{tenant="T1",reason="line_too_long"\} 1/);
    expect(r.stats()).toMatchObject({ messages: 6, stored: 3 });
  });

  it('counts lines from an unrouted sender as unknown_tenant', async () => {
    const r = await start({}, ['10.0.0.0/8']);
    await sendStream(r.tcpPort!, `<13>Mar 12 09:00:00 proxy01 squid: ${SQUID}\n`);
    expect(await waitUntil(async () => (await r.flush(), failures()[':unknown_tenant'] === 1), 10_000)).toBe(true);
    expect(store.netlog.count()).toBe(0);
  });

  it('takes one message per UDP datagram', async () => {
    const r = await start();
    const sock = createSocket('udp4');
    await new Promise<void>((res) => sock.send(`<13>Mar 12 09:00:00 fw01 cef: ${CEF}\n`, r.udpPort!, '127.0.0.1', () => res()));
    sock.close();
    expect(await waitUntil(() => total() === 1, 10_000)).toBe(true);
    expect(batches[0]![0]).toMatchObject({ format: 'cef', action: 'blocked', dstPort: 445, host: 'fw01' });
  });

  it('closes connections beyond maxConnections and counts them', async () => {
    const r = await start({ maxConnections: 1 });
    const first = connect(r.tcpPort!, '127.0.0.1');
    await new Promise((res) => first.once('connect', res));
    expect(await waitUntil(() => r.stats().connections === 1, 10_000)).toBe(true);
    const second = connect(r.tcpPort!, '127.0.0.1');
    await new Promise((res) => second.once('close', res));
    expect(r.stats().connectionsRejected).toBe(1);
    first.destroy();
  });

  it.skipIf(findOpenssl() === undefined)('receives over TLS with a certificate from the configuration (skipped without openssl: apt-get install openssl)', async () => {
    const pki = makeTestPki(dir);
    const r = await start({ tlsPort: 0, tlsCertFile: pki.certFile, tlsKeyFile: pki.keyFile });
    expect(r.tlsPort).toBeGreaterThan(0);
    await sendStream(r.tlsPort!, `<13>Mar 12 09:00:00 proxy01 squid: ${SQUID}\n`, { ca: readFileSync(pki.caFile, 'utf8') });
    expect(await waitUntil(() => total() === 1, 10_000)).toBe(true);
  });
});
