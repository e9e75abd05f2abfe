import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { createExportRunner, exportConfig, offerDailyDownload } from '../../export/index.js';
import { openHotStore, type HotStore } from '../../storage/index.js';
import { parseRange } from './exports.js';
import { createHttpApp } from '../http-app.js';

const NOW = Date.UTC(2026, 10, 20, 3);
let dir: string;
let store: HotStore;
let app: ReturnType<typeof createHttpApp>;
const content = randomBytes(4096);
const tokens: Record<string, string> = {};
let jobA: string;
let jobB: string;

async function get(path: string, token: string, headers: Record<string, string> = {}) {
  return app.request(path, { headers: { authorization: `Bearer ${token}`, ...headers } });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-export-api-'));
  store = openHotStore({ dataDir: join(dir, 'db') });
  const clock = createManualClock(NOW);
  await store.tenants.create({ supportId: 'TA', name: 'A', now: NOW });
  await store.tenants.create({ supportId: 'TB', name: 'B', now: NOW });
  for (const [id, role, supportId] of [
    ['op.x', 'operator', null],
    ['admin.a', 'admin', 'TA'],
  ] as const) {
    await store.identity.createUser({ id, role, supportId, password: 'pass-word', now: NOW, mustChangePassword: false });
    tokens[id] = await store.identity.createSession(id, 'token', NOW, 3_600_000);
  }
  const offer = (supportId: string, day: string) => {
    const zipDir = join(dir, 'cold', supportId);
    mkdirSync(zipDir, { recursive: true });
    const zipPath = join(zipDir, `${day}.zip`);
    writeFileSync(zipPath, content);
    return offerDailyDownload(dir, { supportId, day, zipPath, bytes: content.length, sha256: createHash('sha256').update(content).digest('hex'), entries: 3, now: NOW, retentionDays: 30 }).id;
  };
  jobA = offer('TA', '2026-11-19');
  jobB = offer('TB', '2026-11-19');
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: {
      store,
      clock,
      logger: createSilentLogger(),
      deliverCommands: () => undefined,
      requireClientCert: false,
      exports: { dataDir: dir, runner: createExportRunner({ store, threads: 0 }), config: exportConfig() },
    },
  });
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('export downloads', () => {
  it('lists only the tenant’s own downloads and hides other tenants’ jobs and files', async () => {
    const list = (await (await get('/api/v1/exports', tokens['admin.a']!)).json()) as { items: { id: string; supportId: string; files: { url: string }[] }[] };
    expect(list.items.map((j) => j.id)).toEqual([jobA]);
    expect(list.items[0]!.files[0]!.url).toBe(`/api/v1/exports/${jobA}/files/2026-11-19.zip`);
    expect((await get(`/api/v1/exports/${jobB}`, tokens['admin.a']!)).status).toBe(404);
    expect((await get(`/api/v1/exports/${jobB}/files/2026-11-19.zip`, tokens['admin.a']!)).status).toBe(404);
    expect((await get('/api/v1/exports/../../etc', tokens['admin.a']!)).status).toBe(404);
    const all = (await (await get('/api/v1/exports', tokens['op.x']!)).json()) as { items: unknown[] };
    expect(all.items).toHaveLength(2);
  });

  it('serves the whole file, and byte ranges with 206 and Content-Range', async () => {
    const whole = await get(`/api/v1/exports/${jobA}/files/2026-11-19.zip`, tokens['admin.a']!);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer())).toEqual(content);

    const part = await get(`/api/v1/exports/${jobA}/files/2026-11-19.zip`, tokens['admin.a']!, { range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${content.length}`);
    expect(part.headers.get('content-length')).toBe('100');
    expect(Buffer.from(await part.arrayBuffer())).toEqual(content.subarray(100, 200));

    const tail = await get(`/api/v1/exports/${jobA}/files/2026-11-19.zip`, tokens['admin.a']!, { range: 'bytes=-16' });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(content.subarray(content.length - 16));

    const resume = await get(`/api/v1/exports/${jobA}/files/2026-11-19.zip`, tokens['admin.a']!, { range: 'bytes=4000-' });
    expect(Buffer.from(await resume.arrayBuffer())).toEqual(content.subarray(4000));

    const beyond = await get(`/api/v1/exports/${jobA}/files/2026-11-19.zip`, tokens['admin.a']!, { range: 'bytes=5000-6000' });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${content.length}`);

    const stale = await get(`/api/v1/exports/${jobA}/files/2026-11-19.zip`, tokens['admin.a']!, { range: 'bytes=0-9', 'if-range': '"other"' });
    expect(stale.status).toBe(200);
  });

  it.each([
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=90-', 100, { start: 90, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=50-500', 100, { start: 50, end: 99 }],
  ])('parses %s of %i bytes', (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });

  it.each(['bytes=100-', 'bytes=9-3', 'bytes=-0', 'items=0-1', 'bytes=0-1,5-6'])('refuses %s', (header) => {
    expect(() => parseRange(header, 100)).toThrow();
  });
});

describe('log-spot jobs through the API', () => {
  it('starts a 30-day spot job, reports its progress to the end, and refuses bad requests', async () => {
    const post = (body: unknown, token = tokens['admin.a']!) =>
      app.request('/api/v1/exports', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const started = await post({ kind: 'spot30', from: '2026-11-10', to: '2026-11-12' });
    expect(started.status).toBe(202);
    const job = (await started.json()) as { id: string; status: string; supportId: string };
    expect(job.supportId).toBe('TA');
    let status = job.status;
    for (let i = 0; i < 100 && status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = ((await (await get(`/api/v1/exports/${job.id}`, tokens['admin.a']!)).json()) as { status: string }).status;
    }
    expect(status).toBe('done');
    expect((await post({ kind: 'spot30', from: '2026-10-01', to: '2026-11-12' })).status).toBe(400);
    expect((await post({ kind: 'spot30', supportId: 'TB', from: '2026-11-10', to: '2026-11-12' })).status).toBe(404);
    expect((await post({ kind: 'spot1y', tmid: 'NO-SUCH-DEVICE' })).status).toBe(404);
    expect((await post({ kind: 'spot30', from: '2026-11-10', to: '2026-11-12' }, tokens['op.x'])).status).toBe(400);
  });
});
