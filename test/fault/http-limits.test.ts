/**
 * Issue 11, "also seen" on the HTTP side: request body size limit, security
 * headers, the Origin check on cookie-authenticated state changes (and JSON
 * only bodies), POST /users not revealing other tenants' IDs, and every
 * download of an export file audited, `Range: bytes=0-` included.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../api/index.js';
import { offerDailyDownload } from '../../export/index.js';
import { call, login, openHttpWorld, PW, T0, type HttpWorld } from './http-support.js';

let w: HttpWorld;
let server: HttpServer;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  w = await openHttpWorld();
  for (const id of ['op.one', 'admin@TA', 'viewer@TA']) tokens[id] = await login(w, id);
  server = await startHttpServer(w.app, { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await server.close();
  await w.close();
});

/**
 * Posts to the real server: announces `announcedBytes` (or chunked when
 * undefined), writes `sendBytes` of a JSON string, and does NOT end the
 * request: the server must answer without the rest of the body.
 */
function postWithoutEnd(path: string, token: string, sendBytes: number, announcedBytes?: number): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          ...(announcedBytes === undefined ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(announcedBytes) }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    req.write('{"label":"');
    for (let sent = 0; sent < sendBytes; sent += chunk.length) req.write(chunk);
  });
}

describe('also seen: HTTP body size limit', () => {
  it('also seen: a 2 MiB body answers 413 ERR_BODY_TOO_LARGE as problem+json', async () => {
    const r = await call(w, 'POST', '/api/v1/auth/tokens', { auth: tokens['admin@TA'], body: { label: 'x'.repeat(2 * 1024 * 1024) } });
    expect(r.status).toBe(413);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json).toMatchObject({ status: 413, code: 'ERR_BODY_TOO_LARGE', details: { maxBytes: 1024 * 1024 } });
  });

  it('also seen: eight parallel 50 MB bodies are refused after the limit, without the server waiting for (or holding) the rest', async () => {
    const announced = Array.from({ length: 4 }, () => postWithoutEnd('/api/v1/auth/tokens', tokens['admin@TA']!, 64 * 1024, 50 * 1024 * 1024));
    // Chunked: no length to judge by; the server reads up to the limit, answers, and never sees the other ~48 MB.
    const chunked = Array.from({ length: 4 }, () => postWithoutEnd('/api/v1/auth/tokens', tokens['admin@TA']!, 2 * 1024 * 1024));
    for (const r of await Promise.all([...announced, ...chunked])) {
      expect(r.status).toBe(413);
      expect(r.json.code).toBe('ERR_BODY_TOO_LARGE');
    }
  });

  it('also seen: a body within the limit is served as before', async () => {
    const r = await call(w, 'POST', '/api/v1/auth/tokens', { auth: tokens['admin@TA'], body: { label: 'x'.repeat(100) } });
    expect(r.status).toBe(201);
  });
});

describe('also seen: security headers', () => {
  const expectSecure = (h: Headers, what: string) => {
    expect(h.get('x-content-type-options'), what).toBe('nosniff');
    expect(h.get('x-frame-options'), what).toBe('DENY');
    expect(h.get('content-security-policy'), what).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
    expect(h.get('referrer-policy'), what).toBe('no-referrer');
  };

  it('also seen: every response carries nosniff, frame DENY, a strict CSP and Referrer-Policy; API answers are not cached', async () => {
    const answers: [string, Headers][] = [
      ['API 200', (await call(w, 'GET', '/api/v1/auth/me', { auth: tokens['viewer@TA'] })).headers],
      ['API 401', (await call(w, 'GET', '/api/v1/devices')).headers],
      ['API 400', (await call(w, 'GET', '/api/v1/devices?limit=0', { auth: tokens['viewer@TA'] })).headers],
      ['not found', (await call(w, 'GET', '/nothing-here')).headers],
      ['healthz', (await call(w, 'GET', '/healthz')).headers],
    ];
    for (const [what, h] of answers) {
      expectSecure(h, what);
      if (what !== 'not found') expect(h.get('cache-control'), what).toBe('no-store');
      expect(h.get('strict-transport-security'), `${what}: no HSTS over plain HTTP`).toBeNull();
    }
  });

  it('also seen: the real server sends them too, and keeps the login cookie', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'viewer@TA', password: PW }),
    });
    expect(res.status).toBe(200);
    expectSecure(res.headers, 'real server');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('set-cookie')).toMatch(/^kiseki_session=kss_.*HttpOnly.*SameSite=Strict/i);
  });

  it('also seen: HSTS is sent over HTTPS', async () => {
    const res = await w.app.request('https://kiseki.example/healthz');
    expect(res.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
    expectSecure(res.headers, 'https');
  });
});

describe('also seen: cross-site requests with the session cookie', () => {
  const foreign = { origin: 'https://evil.example' };

  it('also seen: a cookie-authenticated state change from a foreign Origin answers 403 ERR_ORIGIN_MISMATCH and changes nothing', async () => {
    const cookie = await login(w, 'admin@TA');
    const r = await call(w, 'POST', `/api/v1/devices/${w.deviceA}/commands`, { auth: { cookie }, body: { kind: 'release' }, headers: foreign });
    expect(r.status).toBe(403);
    expect(r.json.code).toBe('ERR_ORIGIN_MISMATCH');
    expect(w.store.commands.forDevice(w.deviceA)).toEqual([]);
    const site = await call(w, 'POST', '/api/v1/auth/logout', { auth: { cookie }, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(site.status).toBe(403);
    expect((await call(w, 'GET', '/api/v1/auth/me', { auth: { cookie } })).status).toBe(200);
  });

  it('also seen: a text/plain body (what a cross-site form sends without a preflight) answers 415, with a cookie or a token', async () => {
    const cookie = await login(w, 'admin@TA');
    const body = JSON.stringify({ kind: 'release' });
    for (const auth of [{ cookie }, tokens['admin@TA']!]) {
      const r = await call(w, 'POST', `/api/v1/devices/${w.deviceA}/commands`, { auth, body, contentType: 'text/plain', headers: foreign });
      expect([403, 415]).toContain(r.status);
      const same = await call(w, 'POST', `/api/v1/devices/${w.deviceA}/commands`, { auth, body, contentType: 'text/plain;charset=UTF-8' });
      expect(same.status).toBe(415);
      expect(same.json.code).toBe('ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    expect(w.store.commands.forDevice(w.deviceA)).toEqual([]);
  });

  it('also seen: the same request from the own origin, and bearer-token requests from anywhere, are served', async () => {
    const cookie = await login(w, 'admin@TA');
    const own = await call(w, 'POST', '/api/v1/auth/tokens', { auth: { cookie }, body: { label: 'own origin' }, headers: { origin: 'http://localhost', 'sec-fetch-site': 'same-origin' } });
    expect(own.status).toBe(201);
    const bearer = await call(w, 'POST', '/api/v1/auth/tokens', { auth: tokens['admin@TA'], body: { label: 'script' }, headers: foreign });
    expect(bearer.status).toBe(201);
    // Reads are not state changes.
    expect((await call(w, 'GET', '/api/v1/auth/me', { auth: { cookie }, headers: foreign })).status).toBe(200);
  });
});

describe('also seen: POST /users does not reveal other tenants’ user IDs', () => {
  it('also seen: an admin gets the same answer for an ID taken in another tenant, an operator’s ID and a free ID', async () => {
    const create = (id: string) => call(w, 'POST', '/api/v1/users', { auth: tokens['admin@TA'], body: { id, role: 'viewer', supportId: 'TA', password: PW } });
    const taken = await create('admin@TB');
    const operator = await create('op.one');
    const free = await create('free.user');
    expect(taken.status).toBe(400);
    expect(taken.json).toEqual(free.json);
    expect(operator.json).toEqual(free.json);
    expect((await create('nobody@TB')).json).toEqual({ ...free.json });
  });

  it('also seen: IDs in the own namespace are created, and a clash there (visible in GET /users anyway) is 409', async () => {
    const body = { id: 'new.viewer@TA', role: 'viewer', supportId: 'TA', password: PW };
    expect((await call(w, 'POST', '/api/v1/users', { auth: tokens['admin@TA'], body })).status).toBe(201);
    const again = await call(w, 'POST', '/api/v1/users', { auth: tokens['admin@TA'], body });
    expect([again.status, again.json.code]).toEqual([409, 'ERR_USER_EXISTS']);
    const listed = await call(w, 'GET', '/api/v1/users', { auth: tokens['admin@TA'] });
    expect(listed.json.items.map((u: { id: string }) => u.id)).toContain('new.viewer@TA');
  });

  it('also seen: not even an operator can give an ID of a tenant’s namespace to another tenant', async () => {
    const r = await call(w, 'POST', '/api/v1/users', { auth: tokens['op.one'], body: { id: 'intruder@TA', role: 'viewer', supportId: 'TB', password: PW } });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('ERR_VALIDATION');
  });
});

describe('also seen: every download is audited, ranges included', () => {
  it('also seen: `Range: bytes=0-`, a partial range and a plain GET each leave an export.downloaded audit record', async () => {
    const content = randomBytes(10_000);
    const zipDir = join(w.dir, 'cold', 'TA');
    mkdirSync(zipDir, { recursive: true });
    const zipPath = join(zipDir, '2026-10-31.zip');
    writeFileSync(zipPath, content);
    const job = offerDailyDownload(w.dir, { supportId: 'TA', day: '2026-10-31', zipPath, bytes: content.length, sha256: createHash('sha256').update(content).digest('hex'), entries: 1, now: T0, retentionDays: 30 });
    const url = `/api/v1/exports/${job.id}/files/2026-10-31.zip`;
    const whole = await w.app.request(url, { headers: { authorization: `Bearer ${tokens['viewer@TA']}`, range: 'bytes=0-' } });
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(content)).toBe(true);
    const part = await w.app.request(url, { headers: { authorization: `Bearer ${tokens['viewer@TA']}`, range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    await part.arrayBuffer();
    const plain = await w.app.request(url, { headers: { authorization: `Bearer ${tokens['viewer@TA']}` } });
    await plain.arrayBuffer();
    const audit = await call(w, 'GET', '/api/v1/audit?action=export.downloaded', { auth: tokens['op.one'] });
    const details = audit.json.items.filter((a: { target: string }) => a.target === `${job.id}/2026-10-31.zip`).map((a: { actor: string; details: unknown }) => [a.actor, a.details]);
    expect(details).toEqual([
      ['viewer@TA', { bytes: 10_000, size: 10_000, range: null, whole: true }],
      ['viewer@TA', { bytes: 100, size: 10_000, range: 'bytes=100-199', whole: false }],
      ['viewer@TA', { bytes: 10_000, size: 10_000, range: 'bytes=0-9999', whole: true }],
    ]);
  });
});
