/**
 * Starts Debian's nats-server with JetStream for the cluster tests (single
 * server or one member of a loopback cluster) on OS-chosen free ports.
 * `NATS_SERVER` is undefined where it is not installed: tests skip then.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { findNatsServer } from '../../bench/load/kiseki-cluster.js';

// One lookup of nats-server and one free-port probe for the tests and the cluster benchmark.
export { freePort } from '../../bench/load/kiseki-cluster.js';
export const NATS_SERVER = findNatsServer();

/** The one-line message of a skipped NATS test. */
export const NATS_SKIP_MESSAGE = 'skipped: install nats-server (apt-get install nats-server)';

export interface NatsServer {
  child: ChildProcess;
  clientPort: number;
  exited: Promise<void>;
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
