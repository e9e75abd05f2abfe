/**
 * Where the benchmark finds its parts, whether it runs from the TypeScript
 * sources (vitest) or from the build (dist/): the kiseki CLI, the scripts it
 * forks as separate processes (always the built .js files, since Node runs no
 * TypeScript), the scenario files and the results folder of the repository.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KisekiError } from '../../core/errors.js';

/** Absolute paths the benchmark uses. */
export interface BenchPaths {
  /** Repository root. */
  root: string;
  /** dist/bin/kiseki.js */
  kisekiJs: string;
  /** The load-generator client process script. */
  clientJs: string;
  /** The bare uWebSockets.js baseline server script. */
  uwsBaselineJs: string;
  /** The syslog line sender of the rsyslog baseline. */
  syslogSenderJs: string;
  /** bench/load/scenarios */
  scenariosDir: string;
  /** bench/results */
  resultsDir: string;
  /** bench/micro in dist (compiled micro benchmarks). */
  microDistDir: string;
  /** storage in dist: its LMDB key-layout benchmark lives beside the tables, the only place lmdb is imported. */
  storageDistDir: string;
}

/** Resolves the benchmark's paths from the location of this module. */
export function benchPaths(): BenchPaths {
  const here = dirname(fileURLToPath(import.meta.url));
  const inDist = here.includes(`${sep}dist${sep}bench${sep}`);
  const root = inDist ? resolve(here, '../../..') : resolve(here, '../..');
  const dist = resolve(root, 'dist');
  return {
    root,
    kisekiJs: resolve(dist, 'bin/kiseki.js'),
    clientJs: resolve(dist, 'bench/load/load-generator-client.js'),
    uwsBaselineJs: resolve(dist, 'bench/load/baselines/uws-baseline-server.js'),
    syslogSenderJs: resolve(dist, 'bench/load/baselines/syslog-sender.js'),
    scenariosDir: resolve(root, 'bench/load/scenarios'),
    resultsDir: resolve(root, 'bench/results'),
    microDistDir: resolve(dist, 'bench/micro'),
    storageDistDir: resolve(dist, 'storage'),
  };
}

/** Throws a clear error when the build is missing (run `npx tsc -p tsconfig.json` or `npm run build`). */
export function assertBuilt(paths: BenchPaths): void {
  for (const p of [paths.kisekiJs, paths.clientJs]) {
    if (!existsSync(p)) throw new KisekiError('ERR_BENCH_FAILED', { reason: 'not built: run npm run build first', missing: p });
  }
}
