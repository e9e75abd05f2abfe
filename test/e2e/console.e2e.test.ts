/**
 * The web console in a real browser (playwright-core driving Debian's
 * Chromium) against a real server fed by simulated agents of two tenants:
 * login with the forced password change, the language switch, a black
 * quick report with its eight sections and process graph, isolating and
 * releasing a connected device (watched live), downloading a daily export,
 * tenant isolation (tenant A's admin gets 404 on every tenant B page), and
 * keyboard-only navigation. Screenshots of the main pages are written to
 * test-output/console/ (gitignored). Skips when /usr/bin/chromium is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectionDayOf } from '../../export/index.js';
import { CLI, eventually, runCli, startServer, type RunningServer } from '../support/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn('console.e2e: skipped, /usr/bin/chromium is missing (apt-get install chromium)');

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = join(ROOT, 'test-output', 'console');
const JS_BUDGET_BYTES = 100 * 1024;
/** The download hosts of the trail generator's malicious chains (agent/trail-generator.ts BAD_HOSTS). */
const BAD_HOSTS = ['cdn-docs-share.xyz', 'invoice-portal-jp.top', 'secure-update-center.info', 'files-transfer-cloud.click', 'microsoft-verify-login.site', 'mega-dl-free.online'];

let dir: string;
let server: RunningServer;
let base: string;
let browser: Browser;
let sim: ChildProcess | undefined;
let opToken: string;
const tenants: Record<'A' | 'B', { key: string; supportId: string }> = { A: { key: '', supportId: 'CA01' }, B: { key: '', supportId: 'CB01' } };

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${opToken}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

function simulate(tenant: 'A' | 'B', agents: number, durationSec: number, extra: string[] = []): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [CLI, 'simulate', '--url', `ws://127.0.0.1:${server.ingestPort}/agent/v1`, '--enroll-key', tenants[tenant].key, '--agents', String(agents), '--eps', '40', '--duration', String(durationSec), '--batch-ms', '250', '--state', join(dir, `sim-${tenant}.json`), '--seed', tenant === 'A' ? '11' : '12', ...extra],
    { stdio: 'ignore' },
  );
  return { child, done: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

async function login(context: BrowserContext, id: string, password: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.fill('input[name=id]', id);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
  return page;
}

/** Bytes of JavaScript a page load fetched (every script response). */
async function jsBytesOf(page: Page, url: string): Promise<number> {
  let bytes = 0;
  const onResponse = async (r: import('playwright-core').Response) => {
    if (r.request().resourceType() === 'script') bytes += (await r.body()).length;
  };
  page.on('response', onResponse);
  await page.goto(url, { waitUntil: 'networkidle' });
  page.off('response', onResponse);
  return bytes;
}

describe.skipIf(!haveChromium)('web console in a browser', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-console-e2e-'));
    mkdirSync(SHOTS, { recursive: true });
    for (const t of ['A', 'B'] as const) {
      const r = await runCli(['tenant', 'create', '--name', `Tenant ${t}`, '--support-id', tenants[t].supportId, '--json', '--data', dir]);
      expect(r.code, r.stderr).toBe(0);
      tenants[t].key = JSON.parse(r.stdout).enrollKey;
    }
    for (const [id, role, tenant] of [['op.sato', 'operator', undefined], ['admin.a', 'admin', 'CA01'], ['admin.b', 'admin', 'CB01']] as const) {
      const r = await runCli(['user', 'create', '--id', id, '--role', role, ...(tenant === undefined ? [] : ['--support-id', tenant]), '--password', 'first-pass', '--data', dir]);
      expect(r.code, r.stderr).toBe(0);
    }
    // Threat intelligence naming the simulator's malicious hosts: executed detections that call home turn black.
    mkdirSync(join(dir, 'intel'), { recursive: true });
    writeFileSync(join(dir, 'intel', 'domains.txt'), `${BAD_HOSTS.join('\n')}\n`);
    server = await startServer(['--data', dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0']);
    base = `http://127.0.0.1:${server.httpPort}`;
    const login = await (await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'op.sato', password: 'first-pass' }) })).json();
    opToken = (login as { token: string }).token;
    expect((await api('/api/v1/auth/password', { method: 'POST', body: JSON.stringify({ currentPassword: 'first-pass', newPassword: 'second-pass' }) })).status).toBe(204);
    // Tenant B: a short burst with detections; tenant A: agents that stay connected through the test, with detections.
    const b = simulate('B', 2, 3, ['--detect-rate', '0.01']);
    sim = simulate('A', 3, 900, ['--detect-rate', '0.01']).child;
    expect(await b.done).toBe(0);
    await eventually(async () => {
      const r = await api('/api/v1/alerts?limit=200');
      const ok = ['CA01', 'CB01'].every((s) => r.json.items.some((a: { supportId: string; verdict: string }) => a.supportId === s)) && r.json.items.some((a: { verdict: string; supportId: string }) => a.verdict === 'black' && a.supportId === 'CA01');
      return ok ? true : undefined;
    }, 600);
    // A daily download of tenant A: the open collection day's partial archive (the CLI beside the running server).
    const day = collectionDayOf(Date.now());
    const ex = await runCli(['export', 'daily', '--tenant', 'CA01', '--date', day, '--partial', '--json', '--data', dir]);
    expect(ex.code, ex.stderr).toBe(0);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (sim !== undefined && sim.exitCode === null) sim.kill('SIGTERM');
    if (server !== undefined && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('forces a password change at first login, then switches the language', async () => {
    const context = await browser.newContext({ locale: 'ja-JP' });
    const page = await login(context, 'admin.a', 'first-pass');
    expect(new URL(page.url()).pathname).toBe('/password');
    await page.screenshot({ path: join(SHOTS, 'password-change.png'), fullPage: true });
    // Nothing else is reachable before the change.
    await page.goto(`${base}/devices`);
    expect(new URL(page.url()).pathname).toBe('/password');
    await page.fill('input[name=currentPassword]', 'first-pass');
    await page.fill('input[name=newPassword]', 'second-pass');
    await page.fill('input[name=confirmPassword]', 'second-pass');
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit].primary')]);
    expect(await page.getAttribute('html', 'lang')).toBe('ja');
    expect(await page.textContent('h1')).toContain('ダッシュボード');
    await page.click('#lang-switch');
    await page.locator('html[lang=en]').waitFor();
    expect(await page.textContent('h1')).toContain('Dashboard');
    await page.screenshot({ path: join(SHOTS, 'dashboard-en.png'), fullPage: true });
    // The choice sticks across pages, and a wrong password shows the message in that language.
    await page.goto(`${base}/alerts`);
    expect(await page.textContent('h1')).toBe('Alerts');
    const fresh = await (await browser.newContext({ locale: 'en-US' })).newPage();
    await fresh.goto(`${base}/login`);
    expect(await fresh.getAttribute('html', 'lang')).toBe('en');
    await fresh.fill('input[name=id]', 'admin.a');
    await fresh.fill('input[name=password]', 'wrong-pass');
    await fresh.click('button[type=submit]');
    expect(await fresh.textContent('#login-error')).toContain('wrong');
    await context.close();
  });

  it('shows a black quick report with its eight sections and the process graph', async () => {
    const context = await browser.newContext({ locale: 'ja-JP' });
    const page = await login(context, 'op.sato', 'second-pass');
    await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
    await page.goto(`${base}/alerts?verdict=black&tenant=CA01`);
    await page.screenshot({ path: join(SHOTS, 'alerts.png'), fullPage: true });
    await Promise.all([page.waitForURL(/\/alerts\/al_/), page.click('#alerts-table tbody tr:first-child a')]);
    expect(await page.textContent('.verdict')).toBe('黒');
    const sections = await page.$$eval('section[data-section]', (els) => els.map((e) => e.getAttribute('data-section')));
    // The eight sections of SPEC §4, then process access, image loads and named pipes (issue 13).
    expect(sections).toEqual(['origin', 'chain', 'descendants', 'filesWritten', 'registry', 'filesRead', 'network', 'attributes', 'processAccess', 'imageLoads', 'pipes']);
    expect(await page.locator('svg#process-graph rect').count()).toBeGreaterThan(0);
    expect(await page.locator('svg#process-graph rect.detected').count()).toBe(1);
    expect(await page.locator('ol.timeline li').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
    // The analyst confirms the verdict with a comment (a CSRF-protected form).
    await page.fill('form[action$="/comments"] textarea[name=text]', '確認しました');
    await Promise.all([page.waitForURL(/#comments$/), page.click('form[action$="/comments"] button')]);
    expect(await page.textContent('#comment-list')).toContain('確認しました');
    await context.close();
  });

  it('isolates a connected device, watches it become isolated, and releases it', async () => {
    const context = await browser.newContext({ locale: 'ja-JP' });
    const page = await login(context, 'admin.a', 'second-pass');
    const target = await eventually(async () => {
      const r = await api('/api/v1/devices?supportId=CA01&connected=true');
      return r.json.items[0]?.tmid as string | undefined;
    });
    await page.goto(`${base}/devices?state=online`);
    await page.screenshot({ path: join(SHOTS, 'devices.png'), fullPage: true });
    await page.goto(`${base}/devices/${target}`);
    await page.fill('#isolate-form textarea[name=allow]', '10.0.0.0/8\n192.0.2.10:443');
    await Promise.all([page.waitForURL(/flash=queued/), page.click('#isolate-form button')]);
    // htmx refreshes the block until the agent confirms (no reload: the page's own script swaps it in).
    await page.locator('#isolation-state', { hasText: /^隔離中$/ }).waitFor({ timeout: 60_000 });
    expect(await page.textContent('#isolation-block')).toContain('192.0.2.10:443');
    await page.screenshot({ path: join(SHOTS, 'device-isolated.png'), fullPage: true });
    await Promise.all([page.waitForURL(/flash=queued/), page.click('#release-form button')]);
    await page.locator('#isolation-state', { hasText: /^解除済み$/ }).waitFor({ timeout: 60_000 });
    const states = await page.$$eval('#commands-table td[data-state]', (els) => els.map((e) => e.getAttribute('data-state')));
    expect(states.slice(0, 2)).toEqual(['done', 'done']);
    expect((await api(`/api/v1/devices/${target}`)).json.isolation).toBe('released');
    await context.close();
  });

  it('downloads a daily export', async () => {
    const context = await browser.newContext({ locale: 'ja-JP', acceptDownloads: true });
    const page = await login(context, 'admin.a', 'second-pass');
    await page.goto(`${base}/exports`);
    await page.screenshot({ path: join(SHOTS, 'exports.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#daily-table a[download]')]);
    const saved = join(dir, 'download.zip');
    await download.saveAs(saved);
    const bytes = readFileSync(saved);
    expect(bytes.length).toBeGreaterThan(100);
    expect(bytes.subarray(0, 2).toString('latin1')).toBe('PK');
    await context.close();
  });

  it("gives a tenant-A user 404 on every tenant-B page", async () => {
    const b = await api('/api/v1/devices?supportId=CB01');
    const bDevice = b.json.items[0].tmid as string;
    const bAlert = (await api('/api/v1/alerts?supportId=CB01')).json.items[0].id as string;
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await login(context, 'admin.a', 'second-pass');
    for (const path of [`/devices/${bDevice}`, `/devices/${bDevice}/isolation`, `/alerts/${bAlert}`]) {
      const res = await page.goto(`${base}${path}`);
      expect(res?.status(), path).toBe(404);
    }
    // Forms aimed at tenant B's device are refused the same way (with a valid CSRF token of A's session).
    const csrf = await page.getAttribute('input[name=_csrf]', 'value');
    const post = await page.request.post(`${base}/devices/${bDevice}/isolate`, { form: { _csrf: csrf ?? '', allow: '' }, headers: { origin: base } });
    expect(post.status()).toBe(404);
    // Lists ignore another tenant's filter.
    await page.goto(`${base}/devices?tenant=CB01`);
    expect(await page.locator(`a[href="/devices/${bDevice}"]`).count()).toBe(0);
    await page.goto(`${base}/alerts`);
    expect(await page.locator(`a[href="/alerts/${bAlert}"]`).count()).toBe(0);
    // A form without the CSRF token is refused.
    const forged = await page.request.post(`${base}/devices/${bDevice}/release`, { form: { allow: '' }, headers: { origin: base } });
    expect(forged.status()).toBe(403);
    await context.close();
  });

  it('can be used with the keyboard alone, and sends little JavaScript', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await login(context, 'admin.a', 'second-pass');
    await page.goto(`${base}/`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.className')).toBe('skip');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement?.id')).toBe('main');
    // From the top: Tab to the Devices menu entry and follow it, then to the first device.
    await page.goto(`${base}/`);
    const tabTo = async (match: (el: { tag: string; text: string; href: string }) => boolean): Promise<void> => {
      for (let i = 0; i < 80; i++) {
        await page.keyboard.press('Tab');
        const el = (await page.evaluate("({ tag: document.activeElement?.tagName ?? '', text: document.activeElement?.textContent ?? '', href: document.activeElement?.getAttribute('href') ?? '' })")) as { tag: string; text: string; href: string };
        if (match(el)) return;
      }
      throw new Error('focus never reached the element');
    };
    await tabTo((el) => el.href === '/devices');
    await Promise.all([page.waitForURL(`${base}/devices`), page.keyboard.press('Enter')]);
    await tabTo((el) => el.href.startsWith('/devices/'));
    await Promise.all([page.waitForURL(/\/devices\/[0-9A-F-]{36}$/), page.keyboard.press('Enter')]);
    await tabTo((el) => el.href === '/alerts');
    await Promise.all([page.waitForURL(`${base}/alerts`), page.keyboard.press('Enter')]);
    await tabTo((el) => el.href.startsWith('/alerts/al_'));
    await Promise.all([page.waitForURL(/\/alerts\/al_/), page.keyboard.press('Enter')]);
    expect(await page.locator('section[data-section]').count()).toBe(11);
    // Every form control of the main pages has a label.
    for (const path of ['/', '/devices', '/alerts', '/exports', '/users']) {
      await page.goto(`${base}${path}`);
      const unlabeled = await page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label')).map((e) => e.outerHTML)",
      );
      expect(unlabeled, path).toEqual([]);
      expect(await page.locator('main#main').count()).toBe(1);
      expect(await page.locator('nav[aria-label]').count()).toBeGreaterThan(0);
    }
    for (const path of ['/', '/devices', '/alerts', '/exports']) {
      const bytes = await jsBytesOf(page, `${base}${path}`);
      expect(bytes, path).toBeLessThan(JS_BUDGET_BYTES);
    }
    await page.goto(`${base}/users`);
    await page.screenshot({ path: join(SHOTS, 'users.png'), fullPage: true });
    await page.goto(`${base}/audit`);
    await page.screenshot({ path: join(SHOTS, 'audit.png'), fullPage: true });
    await context.close();
  });
});
