/**
 * Users, sessions and tokens across API nodes against a real nats-server
 * (skipped with an install hint where it is missing): a user created on one
 * API node logs in on the other, a session issued by one is accepted by the
 * other, a logout or a password change on one ends the sessions on both, and
 * a change made while NATS is down is shared once it is back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { operatorCall } from '../test/support/api-operator.js';
import { eventually } from '../test/support/cli.js';
import { freePort, NATS_SERVER, NATS_SKIP_MESSAGE, startNats, type NatsServer } from '../test/support/nats-server.js';
import { startApiNode, type RunningApiNode } from './api-node.js';
import { parseSession, parseUser, userKey } from './identity-sync.js';

if (NATS_SERVER === undefined) console.warn(`cluster/identity-sync.test.ts ${NATS_SKIP_MESSAGE}`);

const logger = createSilentLogger();

describe('identity bucket values', () => {
  it('parses users and sessions, and skips other shapes', () => {
    const user = { id: 'sato', role: 'operator', supportId: null, passwordHash: 'scrypt$x', mustChangePassword: true, failedLogins: 0, lockedUntil: 0, createdAt: 1, updatedAt: 2 };
    expect(parseUser(JSON.stringify(user), 'sato')).toEqual(user);
    expect(parseUser(JSON.stringify(user), 'kato')).toBeUndefined();
    expect(parseUser(JSON.stringify({ ...user, role: 'root' }), 'sato')).toBeUndefined();
    expect(parseSession(JSON.stringify({ userId: 'sato', kind: 'session', createdAt: 1, expiresAt: 2 }))).toMatchObject({ userId: 'sato' });
    expect(parseSession(JSON.stringify({ userId: 'sato', kind: 'cookie', createdAt: 1, expiresAt: 2 }))).toBeUndefined();
    expect(parseSession('nope')).toBeUndefined();
    expect(userKey('a.b@EX0001')).toBe(`user.${Buffer.from('a.b@EX0001').toString('base64url')}`);
  });
});

describe.skipIf(NATS_SERVER === undefined)('users and sessions across API nodes', () => {
  let dir = '';
  let nats: NatsServer;
  let port = 0;
  const nodes: RunningApiNode[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-identity-'));
    port = await freePort();
    nats = await startNats(dir, 'n1', port);
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
    nats.child.kill('SIGKILL');
    await nats.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  async function startNode(name: string): Promise<RunningApiNode> {
    const config = loadConfig({ dataDir: join(dir, name), http: { host: '127.0.0.1', port: 0 }, cluster: { role: 'api', nats: `nats://127.0.0.1:${port}`, replicas: 1, nodeId: name } });
    const node = await startApiNode({ config, logger, rewatchDelayMs: 100 });
    nodes.push(node);
    return node;
  }

  const request = async (node: RunningApiNode, method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }) },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await r.text();
    return { status: r.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
  };
  const login = async (node: RunningApiNode, id: string, password: string): Promise<string | undefined> => {
    const r = await request(node, 'POST', '/api/v1/auth/login', { body: { id, password } });
    return r.status === 200 ? (r.body.token as string) : undefined;
  };
  const me = async (node: RunningApiNode, token: string): Promise<number> => (await request(node, 'GET', '/api/v1/auth/me', { token })).status;

  it('lets a user made on one node log in on the other, accepts each node\'s sessions on both, and ends them on both', async () => {
    const a = await startNode('api-a');
    const b = await startNode('api-b');
    const operator = await operatorCall(a);
    expect((await operator('POST', '/api/v1/users', { id: 'sato', role: 'operator', password: 'first-pass-1' })).status).toBe(201);

    // Made on A, logged in on B; B's session works on A. (Waiting on B's copy rather than on logins: failed
    // logins for an ID count towards its lockout, known or not.)
    await eventually(async () => (b.store.identity.user('sato') !== undefined ? true : undefined), 300, 100);
    const onB = (await login(b, 'sato', 'first-pass-1'))!;
    expect(onB).toBeDefined();
    await eventually(async () => ((await me(a, onB)) === 200 ? true : undefined), 300, 100);
    // The first login's password change, on A: the new password works on B, and B's older session ends there too.
    expect((await request(a, 'POST', '/api/v1/auth/password', { token: onB, body: { currentPassword: 'first-pass-1', newPassword: 'second-pass-2' } })).status).toBe(204);
    await eventually(async () => (b.store.identity.user('sato')?.mustChangePassword === false ? true : undefined), 300, 100);
    const second = (await login(b, 'sato', 'second-pass-2'))!;
    expect(second).toBeDefined();
    expect(await login(b, 'sato', 'first-pass-1')).toBeUndefined();
    // The session that made the change stays (the embedded rule), on both nodes.
    expect(await me(b, onB)).toBe(200);

    // A logout on B ends that session on A.
    await eventually(async () => ((await me(a, second)) === 200 ? true : undefined), 300, 100);
    expect((await request(b, 'POST', '/api/v1/auth/logout', { token: second })).status).toBe(204);
    await eventually(async () => ((await me(a, second)) === 401 ? true : undefined), 300, 100);

    // An operator's reset on A revokes every session of the user, B's included.
    expect((await operator('POST', '/api/v1/users/sato/password-reset', { password: 'third-pass-3' })).status).toBe(200);
    await eventually(async () => ((await me(b, onB)) === 401 ? true : undefined), 300, 100);
    expect(a.store.identity.sessionHashesOf('sato')).toEqual([]);
    expect(b.store.identity.sessionHashesOf('sato')).toEqual([]);
  });

  it('shares a change made while NATS is down once it is back', async () => {
    const a = await startNode('api-a');
    const b = await startNode('api-b');
    const operator = await operatorCall(a);
    nats.child.kill('SIGKILL');
    await nats.exited;
    // Answered from A's store (its bucket write waits for NATS).
    expect((await operator('POST', '/api/v1/users', { id: 'kato', role: 'operator', password: 'first-pass-1' })).status).toBe(201);
    expect(await login(a, 'kato', 'first-pass-1')).toBeDefined();
    nats = await startNats(dir, 'n1', port);
    await eventually(async () => (b.store.identity.user('kato') !== undefined ? true : undefined), 600, 100);
    expect(await login(b, 'kato', 'first-pass-1')).toBeDefined();
  });
});
