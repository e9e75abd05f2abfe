import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { addDays, dayWindow } from '../../export/collection-day.js';
import { buildDayArchive } from '../../export/index.js';
import { addBatch, addDevice, addTenant, openTestStore, type TestStore } from '../../export/test-support.js';
import { createHttpApp } from '../http-app.js';

const TMID = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const DAY = '2026-01-05';
const RULE_ID = '5b7b1c3e-0000-4000-8000-00000000f00d';
const RULE = `title: Encoded PowerShell from Word
id: ${RULE_ID}
status: test
level: critical
logsource:
  category: process_creation
  product: windows
detection:
  selection:
    Image|endswith: '\\powershell.exe'
    CommandLine|contains: ' -enc '
    ParentImage|endswith: '\\WINWORD.EXE'
  condition: selection
`;
const PW = 'initial-pass-1';
const NEW_PW = 'Changed pass 2!';

function events(seq: number, ts: number, pg: string): Record<string, unknown>[] {
  const word = `{w-${pg}}`;
  return [
    { ts, k: 'proc.start', seq, pg: word, pid: 1, image: 'C:\\Office\\WINWORD.EXE', cmd: 'WINWORD.EXE' },
    { ts: ts + 1, k: 'proc.start', seq: seq + 1, pg, pid: 2, ppg: word, image: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', cmd: 'powershell -enc AAAA' },
    { ts: ts + 2, k: 'file.write', seq: seq + 2, pg, path: 'C:\\x.txt', size: 1, vol: 'fixed' },
  ];
}

let t: TestStore;
let app: ReturnType<typeof createHttpApp>;
const tokens: Record<string, string> = {};
const d0 = dayWindow(DAY);
const d2 = dayWindow(addDays(DAY, 2));

async function call(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await app.request(path, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

async function login(id: string): Promise<string> {
  let token = (await call('POST', '/api/v1/auth/login', undefined, { id, password: PW })).json.token as string;
  await call('POST', '/api/v1/auth/password', token, { currentPassword: PW, newPassword: NEW_PW });
  token = (await call('POST', '/api/v1/auth/login', undefined, { id, password: NEW_PW })).json.token;
  return token;
}

/** Polls the hunt until it is no longer running (bounded: the job yields to the event loop between slices). */
async function finished(id: string, token: string): Promise<any> {
  for (let i = 0; i < 2000; i++) {
    const r = await call('GET', `/api/v1/sigma/hunts/${id}`, token);
    expect(r.status).toBe(200);
    if (r.json.status !== 'running') return r.json;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error('hunt did not finish');
}

beforeAll(async () => {
  t = openTestStore('kiseki-api-hunt-');
  await addTenant(t, 'EX0001');
  await addTenant(t, 'EX0002');
  await addDevice(t, 'EX0001', TMID, 'PC-01');
  // Day 0 archived (cold), day 2 hot only.
  await addBatch(t, TMID, events(1, d0.fromMs + 1000, '{p0}'), { recvAt: d0.fromMs + 2000 });
  const built = await buildDayArchive(t.store, { dataDir: t.dir, supportId: 'EX0001', day: DAY, deflateLevel: 6, parquetRowGroupRows: 1000, parquetCompression: 'zstd', now: d2.toMs });
  expect(built.status).toBe('archived');
  await addBatch(t, TMID, events(20, d2.fromMs + 1000, '{p2}'), { recvAt: d2.fromMs + 2000 });
  await addBatch(t, TMID, events(40, d2.fromMs + 5000, '{p3}'), { recvAt: d2.fromMs + 6000 });
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store: t.store, clock: createManualClock(d2.toMs + 3_600_000), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false },
  });
  const now = d2.toMs;
  await t.store.identity.createUser({ id: 'op.sato', role: 'operator', supportId: null, password: PW, now });
  await t.store.identity.createUser({ id: 'admin.a', role: 'admin', supportId: 'EX0001', password: PW, now });
  await t.store.identity.createUser({ id: 'viewer.a', role: 'viewer', supportId: 'EX0001', password: PW, now });
  await t.store.identity.createUser({ id: 'admin.b', role: 'admin', supportId: 'EX0002', password: PW, now });
  for (const id of ['op.sato', 'admin.a', 'viewer.a', 'admin.b']) tokens[id] = await login(id);
}, 60_000);

afterAll(async () => {
  await t.close();
});

describe('POST /sigma/hunts, GET /sigma/hunts/:id', () => {
  it('hunts rules sent as YAML over cold archives and the hot store, and pages through the hits in the order found', async () => {
    const started = await call('POST', '/api/v1/sigma/hunts', tokens['admin.a'], { since: d0.fromMs, rules: RULE });
    expect(started.status).toBe(202);
    expect(started.json).toMatchObject({ supportId: 'EX0001', status: 'running', requestedBy: 'admin.a', ruleSet: { kind: 'rules', rules: 1 } });
    const done = await finished(started.json.id, tokens['viewer.a']!);
    expect(done).toMatchObject({ status: 'done', hits: 3, truncated: false, batches: 3, events: 9, byRule: { [RULE_ID]: 3 }, error: null });
    expect(done.progress.done).toBe(done.progress.total);
    expect(done.items.map((h: { pg: string; source: string }) => `${h.pg}:${h.source}`)).toEqual(['{p0}:cold', '{p2}:hot', '{p3}:hot']);
    expect(done.items[0]).toMatchObject({ ruleId: RULE_ID, severity: 'Critical', tmid: TMID, computer: 'PC-01', k: 'proc.start', seq: 2 });
    // Pages of one.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; json: any } = await call('GET', `/api/v1/sigma/hunts/${started.json.id}?limit=1${cursor === null ? '' : `&cursor=${cursor}`}`, tokens['admin.a']);
      seen.push(...r.json.items.map((h: { pg: string }) => h.pg));
      cursor = r.json.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(['{p0}', '{p2}', '{p3}']);
  });

  it('bounds the hunt by since and until, and runs the server set or one rule of it', async () => {
    const window = await call('POST', '/api/v1/sigma/hunts', tokens['admin.a'], { since: d2.fromMs, until: d2.fromMs + 3000, rules: RULE });
    expect((await finished(window.json.id, tokens['admin.a']!)).items.map((h: { pg: string }) => h.pg)).toEqual(['{p2}']);
    // The shipped pack, all rules: runs to the end (whatever it finds in these few events).
    const all = await call('POST', '/api/v1/sigma/hunts', tokens['op.sato'], { supportId: 'EX0001', since: d0.fromMs });
    expect(all.status).toBe(202);
    expect(all.json.ruleSet.kind).toBe('all');
    expect(all.json.ruleSet.rules).toBeGreaterThan(100);
    expect((await finished(all.json.id, tokens['op.sato']!)).status).toBe('done');
    expect((await call('POST', '/api/v1/sigma/hunts', tokens['admin.a'], { rule: 'no-such-rule' })).status).toBe(400);
  }, 60_000);

  it('refuses unusable rules with their reasons, and rule with rules', async () => {
    const bad = await call('POST', '/api/v1/sigma/hunts', tokens['admin.a'], { rules: 'title: x\nlogsource: { product: linux, category: process_creation }\ndetection: { s: { a: 1 }, condition: s }\n' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('unsupported_logsource');
    expect((await call('POST', '/api/v1/sigma/hunts', tokens['admin.a'], { rules: RULE, rule: RULE_ID })).status).toBe(400);
  });

  it("is tenant-scoped: another tenant's hunt is not found, viewers cannot start one, operators name the tenant", async () => {
    const started = await call('POST', '/api/v1/sigma/hunts', tokens['admin.a'], { since: d0.fromMs, rules: RULE });
    await finished(started.json.id, tokens['admin.a']!);
    expect((await call('GET', `/api/v1/sigma/hunts/${started.json.id}`, tokens['admin.b'])).status).toBe(404);
    expect((await call('GET', '/api/v1/sigma/hunts/hunt_nope', tokens['admin.a'])).status).toBe(404);
    expect((await call('POST', '/api/v1/sigma/hunts', tokens['viewer.a'], { rules: RULE })).status).toBe(403);
    expect((await call('POST', '/api/v1/sigma/hunts', tokens['admin.b'], { supportId: 'EX0001', rules: RULE })).status).toBe(404);
    expect((await call('POST', '/api/v1/sigma/hunts', tokens['op.sato'], { rules: RULE })).status).toBe(400);
    expect((await call('POST', '/api/v1/sigma/hunts', tokens['op.sato'], { supportId: 'NOPE', rules: RULE })).status).toBe(404);
  });

  it('a hunt left running by a stopped server reads as interrupted after the next start', async () => {
    const job = { id: 'hunt_cut', supportId: 'EX0001', status: 'running' as const, requestedBy: 'admin.a', createdAt: 1, sinceMs: 0, ruleSet: { kind: 'all' as const, rules: 1, refused: [] }, progress: { done: 1, total: 5 }, batches: 1, events: 3, hits: 0, truncated: false, byRule: {} };
    await t.store.sigmaHunts.put(job);
    expect(await t.store.sigmaHunts.interruptRunning(99)).toEqual(['hunt_cut']);
    const r = await call('GET', '/api/v1/sigma/hunts/hunt_cut', tokens['admin.a']);
    expect(r.json).toMatchObject({ status: 'interrupted', finishedAt: 99, progress: { done: 1, total: 5 } });
    expect(r.json.error).toContain('stopped');
  });
});
