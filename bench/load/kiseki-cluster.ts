/**
 * The cluster under test (issue 19, docs/CLUSTER.md), started the way an
 * operator starts it: Debian's `nats-server -js` on a temporary store
 * directory and a free loopback port, then `kiseki start --role ingest` and
 * `--role shard` nodes (OS-chosen ingest ports, read back from their JSON
 * `listening` lines). Every process goes through the run's process tracker
 * (kiseki-server.ts) so that nothing outlives a run. The stream's message
 * count, the store of record of the acked batches, is read from NATS itself
 * through cluster/'s public surface.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { KisekiError } from '../../core/errors.js';
import { spawnUntilListening, waitExit, type ProcessTracker } from './kiseki-server.js';
import type { ChildProcess } from 'node:child_process';

/** What to install when nats-server is missing (Debian, Ubuntu). */
export const NATS_INSTALL_HINT = 'apt-get install nats-server';

/** Where nats-server is: Debian's /usr/sbin, then /usr/bin, /usr/local/bin and PATH; undefined when not installed. */
export function findNatsServer(pathEnv: string = process.env.PATH ?? ''): string | undefined {
  const dirs = ['/usr/sbin', '/usr/bin', '/usr/local/bin', ...pathEnv.split(delimiter).filter((d) => d !== '')];
  return dirs.map((d) => join(d, 'nats-server')).find((p) => existsSync(p));
}

/** A port the OS reports free on 127.0.0.1 (nats-server takes its client port on the command line). */
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

/** A process of the cluster, stopped with SIGTERM (SIGKILL after the timeout). */
export interface ClusterProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  logTail(): string;
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface NatsServerProcess extends ClusterProcess {
  /** `nats://127.0.0.1:PORT` */
  readonly url: string;
}

function stopper(child: ChildProcess): (timeoutMs?: number) => Promise<number | null> {
  return async (timeoutMs = 30_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return waitExit(child, timeoutMs);
  };
}

/**
 * Starts `nats-server -js -sd STORE_DIR -a 127.0.0.1 -p PORT` and resolves once it logs `Server is ready`.
 * @throws KisekiError ERR_BENCH_FAILED when it exits first or is not ready within `timeoutMs` (then killed).
 */
export async function startNatsServer(options: { binary: string; storeDir: string; tracker: ProcessTracker; timeoutMs?: number }): Promise<NatsServerProcess> {
  const port = await freePort();
  const timeoutMs = options.timeoutMs ?? 30_000;
  const child = options.tracker.track(spawn(options.binary, ['-js', '-sd', options.storeDir, '-a', '127.0.0.1', '-p', String(port), '-n', 'bench'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new KisekiError('ERR_BENCH_FAILED', { reason: 'nats-server was not ready in time', timeoutMs, logTail: log.slice(-2000) }));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      log = (log + d.toString()).slice(-16_384);
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new KisekiError('ERR_BENCH_FAILED', { reason: 'nats-server exited before it was ready', code, logTail: log.slice(-2000) }));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
  return { pid: child.pid ?? 0, child, url: `nats://127.0.0.1:${port}`, logTail: () => log.slice(-4000), stop: stopper(child) };
}

export interface ClusterNode extends ClusterProcess {
  readonly role: 'ingest' | 'shard' | 'api';
  /** The agent port of an ingest node (OS-chosen); 0 for a shard node. */
  readonly ingestPort: number;
  /** The HTTP port of an API node (OS-chosen); 0 for the others. */
  readonly httpPort: number;
}

/**
 * Starts `kiseki start --role ROLE --nats URL --nats-replicas 1 --data DIR --node-id ID` (an ingest node
 * listening for agents, an API node for HTTP, on 127.0.0.1 and an OS-chosen port) and resolves on its
 * `listening` line.
 */
export async function startClusterNode(options: {
  kisekiJs: string;
  role: 'ingest' | 'shard' | 'api';
  natsUrl: string;
  dataDir: string;
  nodeId: string;
  extraArgs?: readonly string[];
  tracker: ProcessTracker;
  logLevel?: string;
  timeoutMs?: number;
}): Promise<ClusterNode> {
  const args = [
    options.kisekiJs,
    'start',
    '--role',
    options.role,
    '--nats',
    options.natsUrl,
    '--nats-replicas',
    '1',
    '--data',
    options.dataDir,
    '--node-id',
    options.nodeId,
    '--log-level',
    options.logLevel ?? 'warn',
    ...(options.role === 'ingest' ? ['--host', '127.0.0.1', '--ingest-port', '0'] : options.role === 'api' ? ['--host', '127.0.0.1', '--http-port', '0'] : []),
    ...(options.extraArgs ?? []),
  ];
  const portOf = (line: Record<string, unknown>): number | undefined => {
    if (line.role !== options.role) return undefined;
    const port = options.role === 'ingest' ? line.ingestPort : options.role === 'api' ? line.httpPort : 0;
    return typeof port === 'number' ? port : undefined;
  };
  const { child, listening, log } = await spawnUntilListening({
    args,
    tracker: options.tracker,
    timeoutMs: options.timeoutMs ?? 120_000,
    what: `kiseki ${options.role} node ${options.nodeId}`,
    accept: portOf,
  });
  return {
    pid: child.pid ?? 0,
    child,
    role: options.role,
    ingestPort: options.role === 'ingest' ? listening : 0,
    httpPort: options.role === 'api' ? listening : 0,
    logTail: () => log().slice(-4000),
    stop: stopper(child),
  };
}

/** Messages and bytes the batch stream holds, read from NATS (bounded by `timeoutMs`). */
export async function streamUsage(natsUrl: string, timeoutMs = 30_000): Promise<{ messages: number; bytes: number }> {
  // Loaded here, not at the top: every other benchmark runs without cluster/ and its NATS client.
  const { readClusterState } = await import('../../cluster/index.js');
  const state = await readClusterState({ servers: natsUrl, parts: [], timeoutMs });
  return { messages: state.streamMessages, bytes: state.streamBytes };
}

/** Bytes a directory tree takes on disk (allocated blocks: LMDB files are sparse). */
export function diskBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    total += st.isDirectory() ? diskBytes(path) : st.blocks * 512;
  }
  return total;
}
