/**
 * Agent management end to end (issue 16, docs/FLEET.md), with the service
 * and simulated agents in this process: a 10 % rollout upgrades exactly the
 * devices its stable hash names and no more; a tuning filter's events are
 * never stored (dropped by the agents, and by the shard for an agent that
 * ignores the policy) and the saving is reported; a USB device off the
 * allow-list raises an alert; the inventory ledger CSV opens in Python's csv
 * module with the API's counts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress } from 'zstd-napi';
import { createProtocolClient, runSimulation, type SimulationOptions, type SimulationSummary } from '../../agent/index.js';
import { startService, type RunningService } from '../../bin/service.js';
import { loadConfig } from '../../core/config.js';
import { inPercentStage } from '../../core/fleet-policy.js';
import { createSilentLogger } from '../../core/logger.js';
import { eventually } from '../support/cli.js';

let dir: string;
let service: RunningService;
let api: string;
let token: string;
const keys: Record<string, string> = {};
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false });

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string; bytes: Buffer; headers: Headers }> {
  const request = () =>
    fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  let res: Response;
  try {
    res = await request();
  } catch (err) {
    // A kept-alive socket the server closed as it was reused (ECONNRESET): idempotent requests are sent again once.
    if (method === 'POST') throw err;
    res = await request();
  }
  // Bytes as sent (Response.text() would strip a byte-order mark).
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, bytes, headers: res.headers };
}

/** Starts a simulation that generates until `stop()`, then drains and resolves its summary. */
function simulate(supportId: string, options: Partial<SimulationOptions>): { stop: () => Promise<SimulationSummary> } {
  const stopGeneration = new AbortController();
  const run = runSimulation({
    url: `ws://127.0.0.1:${service.ingestPort}/agent/v1`,
    enrollKey: keys[supportId]!,
    agents: 1,
    eps: 5,
    durationSec: 120,
    batchMs: 250,
    seed: 5,
    statePath: join(dir, `sim-${supportId}.json`),
    detectRate: 0,
    drainTimeoutSec: 30,
    stopGeneration: stopGeneration.signal,
    ...options,
  });
  return {
    async stop() {
      stopGeneration.abort();
      return run;
    },
  };
}

async function connected(supportId: string, n: number): Promise<string[]> {
  return eventually(async () => {
    const tmids = [...service.store.devices.scanTenant(supportId)].filter((d) => d.connected).map((d) => d.tmid);
    return tmids.length === n ? tmids : undefined;
  }, 600);
}

/** Every event the raw log holds for a device. */
function storedEvents(tmid: string): Record<string, unknown>[] {
  service.store.refreshReads();
  const out: Record<string, unknown>[] = [];
  for (const lsn of service.store.log.deviceLsns(tmid, 0, Number.MAX_SAFE_INTEGER)) {
    const b = service.store.log.batch(lsn)!;
    out.push(...(unpackr.unpack(decompress(b.z)) as Record<string, unknown>[]));
  }
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-fleet-e2e-'));
  const config = loadConfig({ dataDir: dir, ingest: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 }, engine: { shards: 1 } });
  service = await startService({ config, logger: createSilentLogger(), defaultMetrics: false });
  api = `http://127.0.0.1:${service.httpPort}`;
  const now = Date.now();
  for (const supportId of ['RO01', 'TU01', 'US01']) keys[supportId] = (await service.store.tenants.create({ supportId, name: `Fleet ${supportId}`, now })).enrollKey;
  await service.store.identity.createUser({ id: 'op.fleet', role: 'operator', supportId: null, password: 'fleet-pass-1', now, mustChangePassword: false });
  token = await service.store.identity.createSession('op.fleet', 'session', now, 3_600_000);
}, 120_000);

afterAll(async () => {
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('agent management end to end', () => {
  it('a 10 % stage upgrades exactly the devices its hash names, and the ledger CSV matches the API counts', async () => {
    const agents = 100;
    const sim = simulate('RO01', { agents, eps: 2, batchMs: 1000, agentVersion: '3.2.1' });
    const tmids = await connected('RO01', agents);
    const share = tmids.filter((t) => inPercentStage(t, 10)).sort();
    expect((await http('GET', '/api/v1/tenants/RO01/agent-versions')).json).toEqual({ versions: { '3.2.1': agents } });

    const pkg = (version: string, c: string) => ({ version, url: `https://updates.example/agent-${version}.msi`, sha256: c.repeat(64) });
    const created = await http('POST', '/api/v1/tenants/RO01/rollouts', { target: pkg('3.3.0', 'a'), previous: pkg('3.2.1', 'b'), stages: [{ percent: 10 }, { percent: 100 }] });
    expect(created.status).toBe(201);
    expect([...created.json.queued].sort()).toEqual(share);
    const id = created.json.rollout.id as string;

    // Each chosen agent reports done, restarts, and says hello with the new version.
    const status = await eventually(async () => {
      const s = (await http('GET', `/api/v1/tenants/RO01/rollouts/${id}`)).json;
      return s.upgrades.done === share.length && s.versions['3.3.0'] === share.length ? s : undefined;
    }, 600);
    expect(status).toMatchObject({ devicesInStage: share.length, targets: share.length, versions: { '3.3.0': share.length, '3.2.1': agents - share.length } });
    const upgraded = [...service.store.devices.scanTenant('RO01')].filter((d) => d.agentVersion === '3.3.0').map((d) => d.tmid).sort();
    expect(upgraded).toEqual(share);

    const summary = await sim.stop();
    expect(summary.fleet.upgrades).toBe(share.length);
    expect(summary.fleet.versions).toEqual(share.length === 0 ? { '3.2.1': agents } : { '3.3.0': share.length, '3.2.1': agents - share.length });
    expect(service.store.rollouts.status(id)!.targets).toBe(share.length);

    // The agents sent their inventory at connect and on every USB change; with them stopped the ledger
    // stands still, and its CSV opens in Python's csv module with the API's counts.
    await service.drained();
    const counts = (await http('GET', '/api/v1/tenants/RO01/ledger')).json;
    expect(counts).toMatchObject({ devices: agents, withInventory: agents });
    expect(counts.apps).toBeGreaterThan(agents * 3);
    for (const kind of ['apps', 'updates', 'drives', 'usb'] as const) {
      const res = await http('GET', `/api/v1/tenants/RO01/ledger.csv?kind=${kind}`);
      expect(res.headers.get('content-type')).toContain('text/csv');
      const bytes = res.bytes;
      expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const py = spawnSync('python3', ['-c', 'import csv,io,json,sys; rows=list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline=""))); print(json.dumps({"header": rows[0], "rows": len(rows) - 1, "widths": sorted({len(r) for r in rows})}))'], { input: bytes });
      expect(py.status, py.stderr.toString()).toBe(0);
      const parsed = JSON.parse(py.stdout.toString()) as { header: string[]; rows: number; widths: number[] };
      expect(parsed.header.slice(0, 2)).toEqual(['computer', 'tmid']);
      expect(parsed.widths).toEqual([parsed.header.length]);
      expect(parsed.rows).toBe(counts[kind]);
    }
  }, 300_000);

  it("keeps a tuning filter's events out of storage and reports the saving", async () => {
    const put = await http('PUT', '/api/v1/tenants/TU01/fleet-policy', { tuning: [{ kind: 'file.read' }, { kind: 'net.dns' }] });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ version: 1, tuning: [{ kind: 'file.read' }, { kind: 'net.dns' }] });
    const sim = simulate('TU01', { agents: 3, eps: 40, seed: 9 });
    const tmids = await connected('TU01', 3);
    await new Promise((r) => setTimeout(r, 3000));
    const summary = await sim.stop();
    expect(summary.batchesUnacked).toBe(0);
    expect(summary.fleet.tunedEvents).toBeGreaterThan(0);
    // Nothing of those kinds reached the log, and none is counted.
    for (const tmid of tmids) {
      const kinds = new Set(storedEvents(tmid).map((e) => e.k));
      expect(kinds.has('file.read') || kinds.has('net.dns')).toBe(false);
      expect(kinds.has('proc.start')).toBe(true);
    }
    await eventually(async () => {
      const s = (await http('GET', '/api/v1/tenants/TU01/tuning/savings')).json;
      return s.total.agentEvents === summary.fleet.tunedEvents ? s : undefined;
    }, 300);
    const savings = (await http('GET', '/api/v1/tenants/TU01/tuning/savings')).json;
    expect(savings.total.agentBytes).toBe(summary.fleet.tunedBytes);

    // An agent that ignores the policy: the raw batch is stored as sent (and acked), the shard drops the events.
    const client = createProtocolClient({
      url: `ws://127.0.0.1:${service.ingestPort}/agent/v1`,
      credentials: { enrollKey: keys.TU01! },
      facts: { computer: 'OLD-AGENT', agentVersion: '2.0.0', os: 'Windows 10', ips: [], macs: [] },
    });
    client.start();
    await eventually(async () => (client.connected ? true : undefined));
    const ts = Date.now();
    client.enqueue({
      id: 'f'.repeat(32),
      first: 1,
      last: 4,
      events: [
        { ts, seq: 1, k: 'proc.start', pg: '{a}', image: 'C:\\Windows\\notepad.exe' },
        { ts, seq: 2, k: 'file.read', pg: '{a}', path: 'C:\\a.txt', vol: 'fixed', count: 1 },
        { ts, seq: 3, k: 'file.read', pg: '{a}', path: 'C:\\b.txt', vol: 'fixed', count: 1 },
        { ts, seq: 4, k: 'net.dns', pg: '{a}', qname: 'example.com' },
      ],
    });
    await client.drained();
    const tmid = client.welcome!.tmid;
    await client.close();
    await service.drained();
    expect(storedEvents(tmid)).toHaveLength(4);
    expect(service.store.shardState.kindCounts(tmid)).toEqual({ 'proc.start': 1 });
    const after = (await http('GET', '/api/v1/tenants/TU01/tuning/savings')).json;
    expect(after.total.shardEvents).toBe(3);
    expect(after.total.shardBytes).toBeGreaterThan(30);
    expect(after.total.events).toBe(summary.fleet.tunedEvents + 3);
  }, 300_000);

  it('raises an alert for a USB device off the allow-list, none for an allowed one', async () => {
    const put = await http('PUT', '/api/v1/tenants/US01/fleet-policy', { mode: 'block', usb: { control: true, allow: [{ vendorId: '046d' }, { vendorId: '0951', productId: '1666', serial: 'OK-*' }] } });
    expect(put.status).toBe(200);
    const sim = simulate('US01', {
      agents: 2,
      eps: 2,
      seed: 11,
      usbInsertions: [
        { agent: 0, vendorId: '0781', productId: '5581', serial: 'BLOCKED-0001', vendor: 'SanDisk', model: 'Ultra' },
        { agent: 1, vendorId: '0951', productId: '1666', serial: 'OK-0002', vendor: 'Kingston', model: 'DataTraveler 3.0' },
      ],
    });
    await connected('US01', 2);
    const alert = await eventually(async () => {
      const items = (await http('GET', '/api/v1/tenants/US01/fleet-alerts')).json.items as { kind: string; details: { serial?: string } }[];
      return items.find((a) => a.details.serial === 'BLOCKED-0001');
    }, 300);
    expect(alert).toMatchObject({ kind: 'usb.blocked', details: { vendorId: '0781', productId: '5581', serial: 'BLOCKED-0001', vendor: 'SanDisk' } });
    // The allowed device was inserted too (the agent's inventory lists it once it is attached).
    await eventually(async () => ((await http('GET', '/api/v1/tenants/US01/ledger.csv?kind=usb')).text.includes('OK-0002') ? true : undefined), 300);
    const summary = await sim.stop();
    await service.drained();
    const items = (await http('GET', '/api/v1/tenants/US01/fleet-alerts')).json.items as { details: { serial?: string } }[];
    expect(items.filter((a) => a.details.serial === 'BLOCKED-0001')).toHaveLength(1);
    expect(items.some((a) => a.details.serial === 'OK-0002')).toBe(false);
    expect(summary.fleet.usbBlocked).toBeGreaterThanOrEqual(1);
    // The ledger lists the device, marked as not allowed.
    const csv = (await http('GET', '/api/v1/tenants/US01/ledger.csv?kind=usb')).text;
    expect(csv).toMatch(/0781,5581,BLOCKED-0001,SanDisk,Ultra,storage,no,/);
    expect(csv).toMatch(/0951,1666,OK-0002,Kingston,DataTraveler 3\.0,storage,yes,/);
  }, 300_000);
});
