/**
 * Vitest global setup: brings dist/ up to date before any test runs. Some
 * tests run compiled code on purpose — the shard and export worker threads
 * (Node 20 cannot load TypeScript in a worker), the CLI end-to-end tests and
 * the bench client processes — so a plain `npx vitest run` must never test a
 * stale build. When a source file (or tsconfig.json) is newer than the last
 * build's dist/.tsbuildinfo, an incremental `tsc` rebuilds what changed
 * (about 10 s); otherwise this costs one directory walk.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILD_INFO = join(ROOT, 'dist', '.tsbuildinfo');
const SOURCE_DIRS = ['core', 'cluster', 'ingest', 'engine', 'storage', 'export', 'notify', 'reports', 'api', 'bench', 'bin', 'test', 'agent'];

function newestSourceMs(dir: string): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(path));
    else if (entry.name.endsWith('.ts') || entry.name.endsWith('.json')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Compiled files the tests start as workers or processes. */
const RUN_FROM_DIST = ['dist/engine/shard-worker.js', 'dist/export/export-worker.js', 'dist/notify/notify-worker.js', 'dist/bin/kiseki.js'];

/** True when dist/ may be older than the sources. */
export function buildIsStale(): boolean {
  if (!existsSync(BUILD_INFO)) return true;
  // An incremental build does not re-emit outputs deleted by hand: start over without its build info.
  if (RUN_FROM_DIST.some((f) => !existsSync(join(ROOT, f)))) {
    rmSync(BUILD_INFO, { force: true });
    return true;
  }
  const built = statSync(BUILD_INFO).mtimeMs;
  const newest = Math.max(statSync(join(ROOT, 'tsconfig.json')).mtimeMs, ...SOURCE_DIRS.map((d) => newestSourceMs(join(ROOT, d))));
  return newest > built;
}

export default function setup(): void {
  if (!buildIsStale()) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8' });
  // tsc emits even with type errors (noEmitOnError is off), so dist/ is current either way; the errors are shown, and `npm test` fails on them.
  if (r.status !== 0) process.stderr.write(`[global-setup] tsc reported errors (dist/ was still rebuilt):\n${r.stdout}${r.stderr}\n`);
  if (r.error !== undefined || !existsSync(BUILD_INFO)) throw new Error(`[global-setup] the build before the tests failed: ${r.error?.message ?? 'no dist/.tsbuildinfo written'}`);
}
