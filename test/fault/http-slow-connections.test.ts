/**
 * Issue 11, "also seen": slow and idle HTTP connections. The HTTP server has
 * its own connection budget (http.maxConnections) and cuts clients that send
 * their headers too slowly, so thousands of idle connections cannot take the
 * descriptors the agent port needs. The last test runs `kiseki start` under
 * a small descriptor limit (ulimit -n 256) and floods its HTTP port with 400
 * idle connections while an agent connects and gets its batch acked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../api/index.js';
import { connectAgent, helloFacts, makeBatch } from '../support/agent-client.js';
import { CLI, runCli } from '../support/cli.js';
import { openHttpWorld, type HttpWorld } from './http-support.js';

/** Opens a TCP connection and resolves once connected; `closed` resolves with what the server sent before closing. */
function open(port: number): Promise<{ socket: Socket; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const closed = new Promise<string>((res) => socket.on('close', () => res(received)));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

/** Polls `probe` until it is true; bounded by the test timeout, not a timing assertion. */
async function eventually(probe: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await probe())) await new Promise((r) => setTimeout(r, 50));
}

describe('also seen: slow HTTP connections (in-process server)', () => {
  let w: HttpWorld;
  beforeAll(async () => {
    w = await openHttpWorld();
  });
  afterAll(async () => {
    await w.close();
  });

  it('also seen: a client sending its headers too slowly is answered 408 and closed', async () => {
    const server = await startHttpServer(w.app, { host: '127.0.0.1', port: 0, headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const { socket, closed } = await open(server.port);
      socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      // Never finishes its headers: the server must give up on it.
      expect(await closed).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await server.close();
    }
  });

  it('also seen: connections beyond http.maxConnections are closed at once, and served again once the budget frees', async () => {
    const server = await startHttpServer(w.app, { host: '127.0.0.1', port: 0, maxConnections: 4 });
    try {
      const idle = await Promise.all(Array.from({ length: 4 }, () => open(server.port)));
      const extra = await open(server.port);
      extra.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      expect(await extra.closed).toBe('');
      for (const c of idle) c.socket.destroy();
      await Promise.all(idle.map((c) => c.closed));
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${server.port}/healthz`).catch(() => undefined);
        return res?.status === 200;
      });
    } finally {
      await server.close();
    }
  });
});

describe('also seen: HTTP floods cannot starve the agent port', () => {
  let dir: string;
  let child: ChildProcess;
  let ports: { ingestPort: number; httpPort: number };
  let enrollKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-fault-fds-'));
    const t = await runCli(['tenant', 'create', '--name', 'Fd Co', '--support-id', 'FD01', '--json', '--data', dir]);
    enrollKey = (JSON.parse(t.stdout) as { enrollKey: string }).enrollKey;
    // 256 descriptors in all: the service needs about 32, the HTTP budget 32 more.
    child = spawn('bash', ['-c', 'ulimit -n 256 && exec "$@"', 'bash', process.execPath, CLI, 'start', '--data', dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--http-max-connections', '32', '--shards', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KISEKI_LOG_LEVEL: 'warn' },
    });
    ports = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"listening"'));
        if (line !== undefined) resolve(JSON.parse(line) as { ingestPort: number; httpPort: number });
      });
      child.once('exit', (code) => reject(new Error(`kiseki start exited with ${code}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('also seen: 400 idle HTTP connections under a 256-descriptor limit leave the agent port working (welcome and ack)', async () => {
    const flood = await Promise.all(Array.from({ length: 400 }, () => open(ports.httpPort)));
    // The server closes what exceeds its budget: at least 400 - 32 of them.
    let closedByServer = 0;
    for (const c of flood) void c.closed.then(() => closedByServer++);
    await eventually(() => closedByServer >= 400 - 32);
    const agent = await connectAgent(`ws://127.0.0.1:${ports.ingestPort}/agent/v1`);
    agent.send({ t: 'hello', enrollKey, ...helloFacts });
    const welcome = await agent.next();
    expect(welcome.t).toBe('welcome');
    const batch = makeBatch(1, 5);
    agent.send(batch);
    const ack = await agent.next();
    expect(ack).toMatchObject({ t: 'ack', id: batch.id });
    agent.close();
    for (const c of flood) c.socket.destroy();
    await eventually(async () => (await fetch(`http://127.0.0.1:${ports.httpPort}/healthz`).catch(() => undefined))?.status !== undefined);
    expect(child.exitCode).toBeNull();
  });
});
