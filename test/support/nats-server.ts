/**
 * Starts Debian's nats-server with JetStream for the cluster tests (single
 * server or one member of a loopback cluster) on OS-chosen free ports.
 * `NATS_SERVER` is undefined where it is not installed: tests skip then.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((p) => existsSync(p));

/** The one-line message of a skipped NATS test. */
export const NATS_SKIP_MESSAGE = 'skipped: install nats-server (apt-get install nats-server)';

export interface NatsServer {
  child: ChildProcess;
  clientPort: number;
  exited: Promise<void>;
}

/** A port the OS reports free on 127.0.0.1 (nats-server needs its route ports before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts nats-server with JetStream in `dir/name` and resolves once it accepts clients. */
export function startNats(dir: string, name: string, clientPort: number, cluster?: { port: number; routes: number[] }): Promise<NatsServer> {
  const args = ['-js', '-sd', join(dir, name), '-a', '127.0.0.1', '-p', String(clientPort), '-n', name];
  if (cluster !== undefined) {
    args.push('--cluster_name', 'kiseki', '--cluster', `nats://127.0.0.1:${cluster.port}`, '--routes', cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
  }
  const child = spawn(NATS_SERVER!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('Server is ready')) resolve({ child, clientPort, exited });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`nats-server exited: ${out}`)));
  });
}
