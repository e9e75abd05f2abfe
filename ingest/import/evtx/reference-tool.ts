/**
 * Runs the reference reader, Debian's python3-evtx `evtx_dump.py`, over many
 * files in one Python process (the script itself, through `runpy`, once per
 * file, with its stdout captured), for the equality test and the speed
 * benchmark. Also finds the shared sample files: `../shared` next to the
 * repository root, or `KISEKI_SHARED_DIR` (for checkouts placed elsewhere,
 * such as git worktrees). Test and benchmark support only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is ingest/import/evtx/, also when compiled under dist/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The shared sample folder, or undefined when it is not there. */
export function sharedDir(): string | undefined {
  const dir = process.env.KISEKI_SHARED_DIR ?? resolve(repoRoot(), '../shared');
  return existsSync(dir) ? dir : undefined;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (/\.evtx$/i.test(name)) out.push(p);
  }
}

/** Every .evtx under `shared/corpus` and `shared/sigma/regression`, sorted. */
export function sampleEvtxFiles(shared: string): string[] {
  const out: string[] = [];
  for (const sub of ['corpus', 'sigma/regression']) {
    const dir = join(shared, sub);
    if (existsSync(dir)) walk(dir, out);
  }
  return out;
}

export interface EvtxDumpTool {
  /** Path of `evtx_dump.py`. */
  script: string;
  /** The interpreter of its `#!` line (the one that has the Evtx package). */
  python: string;
}

/** `evtx_dump.py` on the PATH and its interpreter, or undefined. */
export function findEvtxDump(): EvtxDumpTool | undefined {
  const which = spawnSync('sh', ['-c', 'command -v evtx_dump.py'], { encoding: 'utf8' });
  const script = which.stdout.trim();
  if (which.status !== 0 || script === '') return undefined;
  const first = readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
  let python = shebang?.[1] ?? 'python3';
  if (python.endsWith('/env') && shebang?.[2] !== undefined) python = shebang[2];
  return { script, python };
}

const BATCH = `
import contextlib, io, json, runpy, sys, time
script = sys.argv[1]
cpu = 0.0
for f in sys.stdin.read().splitlines():
    buf = io.StringIO()
    sys.argv = [script, f]
    t0 = time.process_time()
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(script, run_name='__main__')
        cpu += time.process_time() - t0
        sys.stdout.write(json.dumps({'file': f, 'xml': buf.getvalue()}) + '\\n')
    except Exception as e:
        cpu += time.process_time() - t0
        sys.stdout.write(json.dumps({'file': f, 'error': repr(e)}) + '\\n')
sys.stdout.write(json.dumps({'cpuSeconds': cpu}) + '\\n')
`;

export interface EvtxDumpRun {
  /** stdout of `evtx_dump.py FILE` per file (or the Python exception it raised). */
  outputs: Map<string, { xml: string } | { error: string }>;
  /** CPU seconds the Python process spent inside evtx_dump.py (interpreter start-up excluded). */
  cpuSeconds: number;
}

/** Runs `evtx_dump.py` on each file, in one Python process. */
export async function runEvtxDump(tool: EvtxDumpTool, files: string[]): Promise<EvtxDumpRun> {
  const child = spawn(tool.python, ['-c', BATCH, tool.script], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.stdin.end(files.join('\n'));
  const code = await new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', res);
  });
  if (code !== 0) throw new Error(`evtx_dump.py batch exited with ${code}: ${Buffer.concat(err).toString('utf8').slice(0, 500)}`);
  const outputs: EvtxDumpRun['outputs'] = new Map();
  let cpuSeconds = 0;
  for (const line of Buffer.concat(out).toString('utf8').split('\n')) {
    if (line === '') continue;
    const o = JSON.parse(line) as { file?: string; xml?: string; error?: string; cpuSeconds?: number };
    if (o.cpuSeconds !== undefined) cpuSeconds = o.cpuSeconds;
    else if (o.file !== undefined) outputs.set(o.file, o.xml !== undefined ? { xml: o.xml } : { error: o.error ?? 'unknown' });
  }
  return { outputs, cpuSeconds };
}
