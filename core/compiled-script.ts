/**
 * Where the compiled script of a worker thread or child process is: next to
 * the calling module when that runs from dist/, else (the TypeScript sources
 * under vitest) at the same place under dist/. Every module that starts one
 * sits one folder below the repository root.
 */
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @param name the compiled file's name, e.g. `shard-worker.js`
 * @param from the caller's `import.meta.url`
 * @returns its URL, or undefined when neither place has it (not built)
 */
export function compiledScript(name: string, from: string): URL | undefined {
  const here = new URL(`./${name}`, from);
  if (existsSync(fileURLToPath(here))) return here;
  const folder = basename(dirname(fileURLToPath(from)));
  const built = new URL(`../dist/${folder}/${name}`, from);
  return existsSync(fileURLToPath(built)) ? built : undefined;
}
