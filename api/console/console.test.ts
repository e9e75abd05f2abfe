/**
 * The console through app.request(): the login flow with the forced change,
 * CSRF (Origin and token) on state-changing forms, security headers and
 * cache headers, tenant scoping (404 for another tenant's pages), the
 * language choice, the allow-list parser and the JavaScript budget.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import type { AlertRecord } from '../../core/contracts.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { openHotStore, type HotStore } from '../../storage/index.js';
import { createHttpApp } from '../http-app.js';
import { filteredDevices, type ScanBudget } from '../services.js';
import { createConsoleAssets, csrfToken, parseAllowList, pickLang } from './index.js';

const T0 = Date.UTC(2026, 10, 1);
const HOST = 'http://console.test';
let dir: string;
let store: HotStore;
let app: ReturnType<typeof createHttpApp>;
const delivered: string[] = [];

async function req(path: string, init: { method?: string; cookie?: string; form?: Record<string, string>; origin?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { host: 'console.test', ...(init.headers ?? {}) };
  if (init.cookie !== undefined) headers.cookie = init.cookie;
  if (init.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  if (init.origin !== null && init.method === 'POST') headers.origin = init.origin ?? HOST;
  const res = await app.request(`${HOST}${path}`, { method: init.method ?? 'GET', headers, ...(init.form === undefined ? {} : { body: new URLSearchParams(init.form).toString() }) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function loginAs(id: string, password: string): Promise<{ cookie: string; token: string }> {
  const r = await req('/login', { method: 'POST', form: { id, password, next: '/' } });
  const token = /kiseki_session=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')?.[1];
  if (token === undefined) throw new Error(`login failed: ${r.status}`);
  return { cookie: `kiseki_session=${token}`, token };
}

function alertOf(id: string, tmid: string, supportId: string): AlertRecord {
  return { id, tmid, supportId, computer: 'PC', sha256: 'a'.repeat(64), path: 'C:\\x.exe', threat: 'T', engine: 'E', action: 'blocked', detectedAt: T0, createdAt: T0, state: 'reported', verdict: 'black', score: 80, revision: 1, repeats: 0, openUntil: T0, isolationRequested: false };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-console-'));
  store = openHotStore({ dataDir: dir });
  const a = await store.tenants.create({ supportId: 'TA', name: 'A', now: T0 });
  const b = await store.tenants.create({ supportId: 'TB', name: 'B', now: T0 });
  const facts = { computer: 'PC-1', agentVersion: '3.2.0', os: 'Windows 11', ips: ['10.0.0.1'], macs: [] };
  const da = await store.devices.enroll(a.tenant, facts, T0);
  const db = await store.devices.enroll(b.tenant, { ...facts, computer: 'PC-B' }, T0);
  await store.transaction(() => {
    for (const al of [alertOf('al_a', da.device.tmid, 'TA'), alertOf('al_b', db.device.tmid, 'TB')]) {
      store.alerts.saveSync(al);
      store.alerts.indexSync(al);
    }
  });
  await store.identity.createUser({ id: 'admin.a', role: 'admin', supportId: 'TA', password: 'first-pass', now: T0 });
  await store.identity.createUser({ id: 'viewer.a', role: 'viewer', supportId: 'TA', password: 'view-pass', now: T0, mustChangePassword: false });
  await store.identity.createUser({ id: 'op.x', role: 'operator', supportId: null, password: 'op-pass-1', now: T0, mustChangePassword: false });
  app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: createManualClock(T0 + 1000), logger: createSilentLogger(), deliverCommands: (t) => delivered.push(t), requireClientCert: false },
  });
  (globalThis as { tmids?: string[] }).tmids = [da.device.tmid, db.device.tmid];
}, 60_000);

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const tmids = () => (globalThis as { tmids?: string[] }).tmids!;

describe('console', () => {
  it('sends unauthenticated visitors to the login page, with security headers', async () => {
    const r = await req('/devices');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/login?next=%2Fdevices');
    const login = await req('/login');
    expect(login.status).toBe(200);
    expect(login.text.startsWith('<!DOCTYPE html><html lang="ja">')).toBe(true);
    expect(login.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(login.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(login.headers.get('x-frame-options')).toBe('DENY');
    expect(login.headers.get('x-content-type-options')).toBe('nosniff');
    expect(login.text).not.toMatch(/<script>|<style>|style="/);
  });

  it('forces a password change at first login before any other page', async () => {
    const r = await req('/login', { method: 'POST', form: { id: 'admin.a', password: 'first-pass', next: '/alerts' } });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/password');
    expect(r.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect(r.headers.get('set-cookie')).not.toMatch(/Secure/);
    const token = /kiseki_session=([^;]+)/.exec(r.headers.get('set-cookie')!)![1]!;
    const cookie = `kiseki_session=${token}`;
    expect((await req('/alerts', { cookie })).headers.get('location')).toBe('/password');
    const bad = await req('/password', { method: 'POST', cookie, form: { _csrf: csrfToken(token), currentPassword: 'first-pass', newPassword: 'second-pass', confirmPassword: 'other-pass' } });
    expect(bad.status).toBe(400);
    const ok = await req('/password', { method: 'POST', cookie, form: { _csrf: csrfToken(token), currentPassword: 'first-pass', newPassword: 'second-pass', confirmPassword: 'second-pass' } });
    expect(ok.status).toBe(303);
    expect((await req('/alerts', { cookie })).status).toBe(200);
  });

  it('marks the session cookie Secure under HTTPS', async () => {
    const res = await app.request('https://console.test/login', { method: 'POST', headers: { host: 'console.test', origin: 'https://console.test', 'content-type': 'application/x-www-form-urlencoded' }, body: 'id=op.x&password=op-pass-1' });
    expect(res.headers.get('set-cookie')).toMatch(/; Secure/);
    expect(res.headers.get('strict-transport-security')).toContain('max-age=');
  });

  it('refuses a login form from another origin, and shows wrong-password and lockout messages', async () => {
    expect((await req('/login', { method: 'POST', form: { id: 'op.x', password: 'op-pass-1' }, origin: 'https://evil.example' })).status).toBe(403);
    const wrong = await req('/login', { method: 'POST', form: { id: 'viewer.a', password: 'nope-nope' }, headers: { 'accept-language': 'en' } });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('The ID or password is wrong.');
  });

  it('requires the CSRF token and a same-origin request on every state-changing form', async () => {
    const { cookie, token } = await loginAs('op.x', 'op-pass-1');
    const [ta] = tmids();
    expect((await req(`/devices/${ta}/release`, { method: 'POST', cookie, form: {} })).status).toBe(403);
    expect((await req(`/devices/${ta}/release`, { method: 'POST', cookie, form: { _csrf: 'forged' } })).status).toBe(403);
    expect((await req(`/devices/${ta}/release`, { method: 'POST', cookie, form: { _csrf: csrfToken(token) }, origin: 'https://evil.example' })).status).toBe(403);
    expect(store.commands.forDevice(ta!)).toHaveLength(0);
    const ok = await req(`/devices/${ta}/isolate`, { method: 'POST', cookie, form: { _csrf: csrfToken(token), allow: '10.0.0.0/8\n192.0.2.1:443' } });
    expect(ok.status).toBe(303);
    const cmds = store.commands.forDevice(ta!);
    expect(cmds.map((c) => [c.kind, c.args])).toEqual([['isolate', { allow: [{ cidr: '10.0.0.0/8' }, { cidr: '192.0.2.1', port: 443 }] }]]);
    expect(delivered).toContain(ta);
    const audit = [...store.identity.scanAudit()].find((x) => x.action === 'command.requested');
    expect(audit).toMatchObject({ actor: 'op.x', target: cmds[0]!.id });
  });

  it("answers 404 for another tenant's pages and forms, and hides them in lists", async () => {
    const { cookie, token } = await loginAs('viewer.a', 'view-pass');
    const [ta, tb] = tmids();
    for (const path of [`/devices/${tb}`, `/devices/${tb}/isolation`, '/alerts/al_b', '/alerts/nope']) expect((await req(path, { cookie })).status, path).toBe(404);
    expect((await req(`/devices/${ta}`, { cookie })).status).toBe(200);
    expect((await req('/alerts/al_a', { cookie })).status).toBe(200);
    const list = await req('/alerts', { cookie });
    expect(list.text).toContain('/alerts/al_a');
    expect(list.text).not.toContain('/alerts/al_b');
    // A viewer may not act, even on its own tenant's device.
    expect((await req(`/devices/${ta}/release`, { method: 'POST', cookie, form: { _csrf: csrfToken(token) } })).status).toBe(403);
    expect((await req('/users', { cookie })).status).toBe(403);
  });

  it('picks the language from the choice, else Accept-Language, else Japanese', async () => {
    expect(pickLang(undefined, undefined)).toBe('ja');
    expect(pickLang(undefined, 'en-US,en;q=0.9,ja;q=0.8')).toBe('en');
    expect(pickLang(undefined, 'fr-FR, ja;q=0.5, en;q=0.4')).toBe('ja');
    expect(pickLang('en', 'ja')).toBe('en');
    expect(pickLang('xx', 'en')).toBe('en');
    const set = await req('/lang?to=en&back=%2Falerts');
    expect(set.headers.get('location')).toBe('/alerts');
    expect(set.headers.get('set-cookie')).toMatch(/kiseki_lang=en/);
    // Never redirects off-site.
    expect((await req('/lang?to=en&back=%2F%2Fevil.example')).headers.get('location')).toBe('/');
    const en = await req('/login', { headers: { cookie: 'kiseki_lang=en' } });
    expect(en.text).toContain('<html lang="en">');
    expect(en.text).toContain('Log in');
  });

  it('bounds a device search by a scan budget and resumes where it stopped', () => {
    const op = store.identity.user('op.x')!;
    const api = { store, clock: createManualClock(T0), logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: false };
    const sorted = [...tmids()].sort();
    const budget: ScanBudget = { max: 1, scanned: 0, exhausted: false };
    expect([...filteredDevices(api, op, { computer: 'no-such-pc' }, undefined, budget)]).toEqual([]);
    expect(budget).toMatchObject({ scanned: 1, exhausted: true, last: sorted[0] });
    const rest: ScanBudget = { max: 1, scanned: 0, exhausted: false };
    expect([...filteredDevices(api, op, {}, budget.last, rest)].map((d) => d.tmid)).toEqual([sorted[1]]);
  });

  it('parses the allow-list editor', () => {
    expect(parseAllowList('10.0.0.0/8\n\n 192.0.2.1:443 \n[2001:db8::1]:53\n2001:db8::/32')).toEqual([
      { cidr: '10.0.0.0/8' },
      { cidr: '192.0.2.1', port: 443 },
      { cidr: '2001:db8::1', port: 53 },
      { cidr: '2001:db8::/32' },
    ]);
    expect(parseAllowList('example.com')).toBeUndefined();
    expect(parseAllowList('10.0.0.1:70000')).toBeUndefined();
  });

  it('serves assets with long-lived cache headers, and keeps every page under 100 KB of JavaScript', async () => {
    const assets = createConsoleAssets();
    const url = assets.url('htmx.min.js');
    const r = await app.request(`${HOST}${url}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const again = await app.request(`${HOST}${url}`, { headers: { 'if-none-match': r.headers.get('etag')! } });
    expect(again.status).toBe(304);
    // The heaviest page loads uPlot and the console script (the dashboard); device pages load htmx and the console script.
    expect(assets.bytes('uplot.min.js') + assets.bytes('console.js')).toBeLessThan(100 * 1024);
    expect(assets.bytes('htmx.min.js') + assets.bytes('console.js')).toBeLessThan(100 * 1024);
  });
});
