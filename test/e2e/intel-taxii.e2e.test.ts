/**
 * Issue 17's intel check: a STIX bundle served by a test TAXII 2.1 server is
 * polled into the intel directory; an agent's net.conn goes through the real
 * shard path (worker thread, connection index); a Suricata alert on the same
 * connection becomes one network-intel alert holding both pieces of
 * evidence, and its feed event becomes a webhook notification.
 */
import { encode } from '@msgpack/msgpack';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { systemClock } from '../../core/clock.js';
import type { NetworkLogRecord } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { createNetworkIntelMatcher, createShardPool, createTaxiiPoller, createThreatIntel, type ShardPool } from '../../engine/index.js';
import { createNotifier } from '../../notify/index.js';
import { openHotStore, type HotStore } from '../../storage/index.js';

const C2 = '203.0.113.45';
const AUTH = `Basic ${Buffer.from('feed:s3cret').toString('base64')}`;

/** A TAXII 2.1 server with one collection of two pages; records the `added_after` of each objects request. */
function taxiiServer(): Promise<{ server: Server; url: string; addedAfter: (string | null)[] }> {
  const addedAfter: (string | null)[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/taxii+json;version=2.1', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== AUTH) return send(401, { title: 'unauthorised' });
    if (!String(req.headers.accept).includes('application/taxii+json;version=2.1')) return send(406, { title: 'not acceptable' });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (u.pathname === '/taxii2/') return send(200, { title: 'Test TAXII', api_roots: [`${base}/api1/`], default: `${base}/api1/` });
    if (u.pathname === '/api1/collections/') return send(200, { collections: [{ id: '91a7b528-80eb-42ed-a74d-c6fbd5a26116', title: 'C2 indicators', can_read: true, can_write: false }] });
    if (u.pathname === '/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/') {
      addedAfter.push(u.searchParams.get('added_after'));
      if (u.searchParams.get('added_after') !== null) return send(200, { more: false }, {});
      if (u.searchParams.get('next') === null) {
        return send(
          200,
          {
            more: true,
            next: 'page2',
            objects: [
              {
                type: 'indicator',
                spec_version: '2.1',
                id: 'indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f',
                created: '2026-11-01T00:00:00.000Z',
                modified: '2026-11-01T00:00:00.000Z',
                name: 'C2 of a loader',
                pattern_type: 'stix',
                pattern: `[ipv4-addr:value = '${C2}']`,
                valid_from: '2026-11-01T00:00:00.000Z',
                confidence: 90,
                indicator_types: ['malicious-activity'],
              },
            ],
          },
          { 'X-TAXII-Date-Added-First': '2026-11-01T00:00:00.000Z', 'X-TAXII-Date-Added-Last': '2026-11-01T00:00:00.000Z' },
        );
      }
      return send(
        200,
        {
          more: false,
          objects: [
            { type: 'indicator', spec_version: '2.1', id: 'indicator--0b1c3d9a-0000-4000-8000-000000000002', created: '2026-11-02T00:00:00.000Z', modified: '2026-11-02T00:00:00.000Z', pattern_type: 'stix', pattern: "[domain-name:value = 'loader-c2.example']", valid_from: '2026-11-02T00:00:00.000Z', confidence: 60 },
          ],
        },
        { 'X-TAXII-Date-Added-Last': '2026-11-02T00:00:00.000Z' },
      );
    }
    send(404, { title: 'not found' });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/taxii2/`, addedAfter })));
}

describe('intel: TAXII-polled STIX indicator, Suricata alert and the endpoint connection behind it', () => {
  let dir: string;
  let store: HotStore;
  let pool: ShardPool | undefined;
  let taxii: Server | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-intel-e2e-'));
    store = openHotStore({ dataDir: join(dir, 'data'), mapSizeBytes: 64 * 1024 * 1024 });
  });
  afterEach(async () => {
    await pool?.close();
    await store.close();
    await new Promise((r) => (taxii === undefined ? r(undefined) : taxii.close(r)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('becomes one alert with both pieces of evidence, and notifies', async () => {
    const intelDir = join(dir, 'intel');
    const t = await taxiiServer();
    taxii = t.server;
    const poller = createTaxiiPoller({
      servers: [{ name: 'testfeed', url: t.url, collection: 'C2 indicators', username: 'feed', password: 's3cret' }],
      intelDir,
      clock: systemClock,
      logger: createSilentLogger(),
    });
    expect(await poller.pollAll()).toEqual({ testfeed: 2 });
    // The second poll asks only for what was added after the last page.
    expect(await poller.pollAll()).toEqual({ testfeed: 0 });
    expect(t.addedAfter).toEqual([null, null, '2026-11-02T00:00:00.000Z']);

    const { tenant } = await store.tenants.create({ supportId: 'T1', name: 'Tenant', now: 0 });
    const { device } = await store.devices.enroll(tenant, { computer: 'PC-FIN-07', agentVersion: '3', os: 'Windows 11', ips: ['10.0.4.23'], macs: [] }, 0);

    // The endpoint side through the real shard path: a worker thread indexes the net.conn.
    pool = createShardPool({
      workers: 1,
      dataDir: join(dir, 'data'),
      mapSizeBytes: 64 * 1024 * 1024,
      flushIntervalMs: 10,
      maxQueuedBatches: 64,
      stateSnapshotIntervalMs: 60_000,
      intelDir,
      revisionWindowMs: 60_000,
      maxDevicesInMemory: 100,
      logger: createSilentLogger(),
    });
    await pool.start();
    const ts = Date.parse('2026-11-30T03:00:00.000Z');
    const pg = '{c37ebd7d-9f30-68ed-7a04-000000002a00}';
    const events = encode([
      { ts: ts - 5000, k: 'proc.start', seq: 1, pg, pid: 7344, image: 'C:\\Users\\a\\AppData\\Roaming\\upd\\updater.exe', cmd: 'updater.exe -s', user: 'S-1-5-21-1' },
      { ts, k: 'net.conn', seq: 2, pg, pid: 7344, user: 'S-1-5-21-1', proto: 'tcp', dir: 'out', lip: '10.0.4.23', lport: 51234, rip: C2, rport: 443 },
    ]);
    await store.log.commitBatches([{ lsn: 1, record: { tmid: device.tmid, id: '1'.padStart(32, '0'), sentAt: 0, recvAt: 0, first: 1, last: 2, n: 2, z: compress(events) } }]);
    pool.dispatch(1, device.tmid, new Uint8Array(events), 0);
    await pool.drained(1);

    const intel = createThreatIntel(intelDir);
    expect(intel.counts()).toMatchObject({ ip: 1, domain: 1 });
    const matcher = createNetworkIntelMatcher({ store, intel, clock: systemClock, logger: createSilentLogger() });
    const suricata: NetworkLogRecord = {
      supportId: 'T1',
      receivedAt: ts + 800,
      ts: ts + 300,
      format: 'suricata',
      sourceAddress: '10.0.0.2',
      host: 'ids01',
      srcIp: '10.0.4.23',
      srcPort: 51234,
      dstIp: C2,
      dstPort: 443,
      protocol: 'TCP',
      action: 'alert',
      signature: 'ET MALWARE Loader CnC Beacon',
      vendorSeverity: '1',
      raw: `{"timestamp":"2026-11-30T03:00:00.300+0000","event_type":"alert","src_ip":"10.0.4.23","src_port":51234,"dest_ip":"${C2}","dest_port":443,"proto":"TCP","alert":{"action":"allowed","signature":"ET MALWARE Loader CnC Beacon","severity":1}}`,
    };
    const benign: NetworkLogRecord = { ...suricata, dstIp: '198.51.100.1', raw: 'benign' };
    const created = await matcher.onRecords([benign, suricata]);
    expect(created).toHaveLength(1);

    const stored = [...store.intelAlerts.scanTenant('T1')];
    expect(stored).toHaveLength(1);
    const a = stored[0]!;
    expect(a.severity).toBe('Critical');
    expect(a.hits).toEqual([expect.objectContaining({ kind: 'ip', observed: C2, value: C2, source: 'taxii:testfeed', confidence: 90, ref: 'indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f', name: 'C2 of a loader' })]);
    // The network evidence: the Suricata record as received.
    expect(a.network).toMatchObject({ format: 'suricata', signature: 'ET MALWARE Loader CnC Beacon', raw: suricata.raw });
    // The endpoint evidence: the process behind the connection, from the shard's index.
    expect(a.device).toEqual({ tmid: device.tmid, computer: 'PC-FIN-07', matchedBy: 'connection' });
    expect(a.endpoint).toMatchObject({ tmid: device.tmid, pg, pid: 7344, image: 'C:\\Users\\a\\AppData\\Roaming\\upd\\updater.exe', seq: 2, lsn: 1, lip: '10.0.4.23', lport: 51234, rip: C2, rport: 443 });

    // A redelivered line (rsyslog resending after a reconnect) is not a second alert.
    expect(await matcher.onRecords([suricata])).toEqual([]);
    expect(matcher.stats).toMatchObject({ records: 3, alerts: 1, duplicates: 1 });

    // Notified through notify/: feed → outbox → webhook.
    const bodies: unknown[] = [];
    const fakeFetch = (async (_url: string | URL | Request, init?: RequestInit) => {
      bodies.push(JSON.parse(String(init?.body)));
      return new Response('', { status: 200 });
    }) as typeof fetch;
    await store.notify.putSettings({ supportId: 'T1', recipients: [{ id: 'soc', channel: 'webhook', to: 'http://soc.example/hook', events: ['intel.hit'], verdicts: [] }], maxPerHour: 100, updatedAt: 0, updatedBy: 'test' });
    const notifier = createNotifier({ store, clock: systemClock, logger: createSilentLogger(), consoleUrl: 'http://c', fetch: fakeFetch });
    expect(await notifier.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
    expect(bodies[0]).toMatchObject({ events: [{ kind: 'intel.hit', alertId: a.id, severity: 'Critical', computer: 'PC-FIN-07', threat: `Critical: ${C2} (suricata, alert)` }] });
  });
});
