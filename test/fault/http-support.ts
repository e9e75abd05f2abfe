/**
 * A small world for the HTTP fault and abuse tests (issue 11, h-http): a
 * temporary store with two tenants, a device each, users of every role, the
 * Hono app on a manual clock, and helpers that call it with a bearer token or
 * the session cookie. Everything goes through the API or the repositories.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManualClock } from '../../core/clock.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { createHttpApp, type HttpAppOptions } from '../../api/index.js';
import { createExportRunner, exportConfig } from '../../export/index.js';
import { openHotStore, type HotStore } from '../../storage/index.js';

export const T0 = Date.UTC(2026, 10, 1);
export const PW = 'right-pass-1';

export interface HttpWorld {
  dir: string;
  store: HotStore;
  clock: ReturnType<typeof createManualClock>;
  app: ReturnType<typeof createHttpApp>;
  deviceA: string;
  deviceB: string;
  /** tmids handed to deliverCommands. */
  delivered: string[];
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  json: any;
  headers: Headers;
}

/** Opens a fresh world; users op.one (operator), admin@TA, viewer@TA, admin@TB, all with password PW and no forced change. */
export async function openHttpWorld(extra: Pick<HttpAppOptions, 'maxBodyBytes'> = {}): Promise<HttpWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-fault-http-'));
  const store = openHotStore({ dataDir: join(dir, 'db') });
  const clock = createManualClock(T0);
  const delivered: string[] = [];
  const runner = createExportRunner({ store, threads: 0 });
  const app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: {
      store,
      clock,
      logger: createSilentLogger(),
      deliverCommands: (tmid) => delivered.push(tmid),
      requireClientCert: false,
      // Exports live beside the store, as in production (DATA/exports).
      exports: { dataDir: dir, runner, config: exportConfig() },
    },
    ...extra,
  });
  const { tenant: a } = await store.tenants.create({ supportId: 'TA', name: 'Tenant A', now: T0 });
  const { tenant: b } = await store.tenants.create({ supportId: 'TB', name: 'Tenant B', now: T0 });
  const facts = { computer: 'PC', agentVersion: '3', os: 'Windows 11', ips: [], macs: [] };
  const deviceA = (await store.devices.enroll(a, facts, T0)).device.tmid;
  const deviceB = (await store.devices.enroll(b, facts, T0)).device.tmid;
  for (const [id, role, supportId] of [
    ['op.one', 'operator', null],
    ['admin@TA', 'admin', 'TA'],
    ['viewer@TA', 'viewer', 'TA'],
    ['admin@TB', 'admin', 'TB'],
  ] as const) {
    await store.identity.createUser({ id, role, supportId, password: PW, now: T0, mustChangePassword: false });
  }
  return {
    dir,
    store,
    clock,
    app,
    deviceA,
    deviceB,
    delivered,
    close: async () => {
      await runner.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Calls the app; `auth` is a bearer token, or `{ cookie }` for the session cookie. Bodies are JSON unless `contentType` says otherwise. */
export async function call(
  w: HttpWorld,
  method: string,
  path: string,
  options: { auth?: string | { cookie: string }; body?: unknown; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (typeof options.auth === 'string') headers.authorization = `Bearer ${options.auth}`;
  else if (options.auth !== undefined) headers.cookie = `kiseki_session=${options.auth.cookie}`;
  if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await w.app.request(path, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** Logs in and returns the session token. */
export async function login(w: HttpWorld, id: string, password = PW): Promise<string> {
  const r = await call(w, 'POST', '/api/v1/auth/login', { body: { id, password } });
  if (r.status !== 200) throw new Error(`login of ${id} failed: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.token as string;
}
