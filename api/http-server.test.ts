import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../core/clock.js';
import { createSilentLogger } from '../core/logger.js';
import { createMetrics } from '../core/metrics.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { createHttpApp } from './http-app.js';
import { startHttpServer, type HttpServer } from './http-server.js';

let dir: string;
let store: HotStore;
let server: HttpServer;
const pem = (name: string) => readFileSync(join(dir, name));

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

function post(path: string, body: unknown, withCert: boolean): Promise<{ status: number; json: { code?: string; token?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: 'POST',
        ca: pem('ca.pem'),
        servername: 'localhost',
        headers: { 'content-type': 'application/json' },
        ...(withCert ? { cert: pem('client.pem'), key: pem('client-key.pem') } : {}),
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { code?: string; token?: string } }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-https-'));
  // A private CA signing the server's certificate and one client certificate (the second factor).
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=kiseki test CA']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost']);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client-key.pem', '-out', 'client.csr', '-subj', '/CN=op.suzuki']);
  openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'client.pem', '-days', '1']);
  store = openHotStore({ dataDir: join(dir, 'data') });
  await store.tenants.create({ supportId: 'T1', name: 'T', now: Date.now() });
  await store.identity.createUser({ id: 'op.suzuki', role: 'operator', supportId: null, password: 'pass-word', now: Date.now(), mustChangePassword: false });
  const app = createHttpApp({
    metrics: createMetrics({ defaultMetrics: false }),
    health: { problems: () => [], details: () => ({}) },
    api: { store, clock: systemClock, logger: createSilentLogger(), deliverCommands: () => undefined, requireClientCert: true },
  });
  server = await startHttpServer(app, { host: '127.0.0.1', port: 0, tlsCertFile: join(dir, 'server.pem'), tlsKeyFile: join(dir, 'server-key.pem'), clientCaFile: join(dir, 'ca.pem') });
}, 60_000);

afterAll(async () => {
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS with a client certificate as the second factor', () => {
  it('refuses a login without a client certificate', async () => {
    const r = await post('/api/v1/auth/login', { id: 'op.suzuki', password: 'pass-word' }, false);
    expect(r.status).toBe(401);
    expect(r.json.code).toBe('ERR_CLIENT_CERT_REQUIRED');
  });

  it('accepts ID, password and a certificate signed by the configured CA', async () => {
    const r = await post('/api/v1/auth/login', { id: 'op.suzuki', password: 'pass-word' }, true);
    expect(r.status).toBe(200);
    expect(r.json.token).toMatch(/^kss_/);
  });
});
