/**
 * End to end through the API: isolate a connected simulated agent, see it
 * acknowledge and report isolation, release it; then queue a command for an
 * offline agent and see it delivered when the agent comes back.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, eventually, runCli, startServer, type RunningServer } from '../support/cli.js';

let dir: string;
let server: RunningServer;
let api: string;
let token: string;
let enrollKey: string;

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

function simulate(agents: number, durationSec: number) {
  const child = spawn(
    process.execPath,
    [CLI, 'simulate', '--url', `ws://127.0.0.1:${server.ingestPort}/agent/v1`, '--enroll-key', enrollKey, '--agents', String(agents), '--eps', '5', '--duration', String(durationSec), '--batch-ms', '500', '--state', join(dir, 'sim.json'), '--seed', '3'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise<{ commands: Record<string, number>; isolatedAgents: number; connectionsBlocked: number; batchesUnacked: number }>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`simulate exited ${code}`)))),
  );
}

async function commandState(id: string, want: string): Promise<void> {
  await eventually(async () => ((await http('GET', `/api/v1/commands/${id}`)).json.state === want ? true : undefined));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiseki-actions-'));
  const t = await runCli(['tenant', 'create', '--name', 'Actions Co', '--support-id', 'AC01', '--json', '--data', dir]);
  enrollKey = JSON.parse(t.stdout).enrollKey;
  expect((await runCli(['user', 'create', '--id', 'op.tanaka', '--role', 'operator', '--password', 'first-pass', '--data', dir])).code).toBe(0);
  server = await startServer(['--data', dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0']);
  api = `http://127.0.0.1:${server.httpPort}`;
  const login = (await (await fetch(`${api}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'op.tanaka', password: 'first-pass' }) })).json()) as { token: string };
  token = login.token;
  expect((await http('POST', '/api/v1/auth/password', { currentPassword: 'first-pass', newPassword: 'second-pass' })).status).toBe(204);
}, 60_000);

afterAll(async () => {
  if (server.child.exitCode === null) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('response actions end to end', () => {
  it('isolates and releases a connected agent, and delivers a queued command to an agent that comes back', async () => {
    const run = simulate(50, 10);
    const devices = await eventually(async () => {
      const r = await http('GET', '/api/v1/devices?limit=100&connected=true');
      return r.json.items.length === 50 ? (r.json.items as { tmid: string }[]) : undefined;
    });
    const target = devices[0]!.tmid;

    const isolate = await http('POST', `/api/v1/devices/${target}/commands`, { kind: 'isolate', args: { allow: [{ cidr: '10.0.0.0/8' }] } });
    expect(isolate.status).toBe(202);
    await commandState(isolate.json.id, 'done');
    const isolated = await http('GET', `/api/v1/devices/${target}`);
    expect(isolated.json).toMatchObject({ isolation: 'isolated', isolationAllow: [{ cidr: '10.0.0.0/8' }] });

    const release = await http('POST', `/api/v1/devices/${target}/commands`, { kind: 'release' });
    await commandState(release.json.id, 'done');
    expect((await http('GET', `/api/v1/devices/${target}`)).json.isolation).toBe('released');

    const first = await run;
    expect(first.commands).toEqual({ isolate: 1, release: 1 });
    expect(first.isolatedAgents).toBe(0);
    expect(first.batchesUnacked).toBe(0);

    // Every agent is offline now: a command waits in the queue.
    await eventually(async () => ((await http('GET', '/api/v1/devices?limit=100&connected=true')).json.items.length === 0 ? true : undefined));
    const offline = devices[1]!.tmid;
    const queued = await http('POST', `/api/v1/devices/${offline}/commands`, { kind: 'isolate', args: { allow: [] } });
    expect(queued.json.state).toBe('queued');
    expect((await http('GET', `/api/v1/commands/${queued.json.id}`)).json.state).toBe('queued');

    const second = await simulate(50, 2);
    expect(second.commands).toEqual({ isolate: 1 });
    expect(second.isolatedAgents).toBe(1);
    await commandState(queued.json.id, 'done');
    expect((await http('GET', `/api/v1/devices/${offline}`)).json.isolation).toBe('isolated');

    const audit = await http('GET', '/api/v1/audit?limit=200');
    const actions = audit.json.items.map((a: { action: string }) => a.action);
    expect(actions.filter((a: string) => a === 'command.requested')).toHaveLength(3);
    expect(actions.filter((a: string) => a === 'command.done')).toHaveLength(3);
  }, 120_000);
});
