/**
 * Runs the built CLI (dist/bin/kiseki.js, produced by `npm test`'s type check
 * and build) as a user would, for end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/bin/kiseki.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion (bounded by `timeoutMs`, after which it is killed). */
export function runCli(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KISEKI_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningServer {
  child: ChildProcess;
  ingestPort: number;
  httpPort: number;
  exited: Promise<number | null>;
  stderr(): string;
}

/** Starts `kiseki start` and resolves once it prints its listening line. */
export function startServer(args: string[], timeoutMs = 60_000): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KISEKI_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${stderr}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split('\n').find((l) => l.includes('"listening"'));
      if (line !== undefined) {
        clearTimeout(timer);
        const info = JSON.parse(line) as { ingestPort: number; httpPort: number };
        resolve({ child, ingestPort: info.ingestPort, httpPort: info.httpPort, exited, stderr: () => stderr });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
}

/** Polls `check` until it returns a value or `attempts` run out (bounded, no timing assertion). */
export async function eventually<T>(check: () => Promise<T | undefined>, attempts = 200, delayMs = 100): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  throw new Error('condition not reached within the bound');
}

/**
 * Per-test fixture of the end-to-end suites: a fresh data directory before
 * each test, and after it the server (if one was started) killed and the
 * directory removed. Register it inside a `describe` block.
 */
export function useServerFixture(prefix: string, hooks: { beforeEach: (fn: () => void) => void; afterEach: (fn: () => Promise<void>) => void }): {
  dir: string;
  server: RunningServer | undefined;
} {
  const fixture: { dir: string; server: RunningServer | undefined } = { dir: '', server: undefined };
  hooks.beforeEach(() => {
    fixture.dir = mkdtempSync(join(tmpdir(), prefix));
  });
  hooks.afterEach(async () => {
    const server = fixture.server;
    if (server !== undefined && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    fixture.server = undefined;
    rmSync(fixture.dir, { recursive: true, force: true });
  });
  return fixture;
}
