/**
 * The system under test, driven the way an operator drives it: `kiseki
 * tenant create` for an enrollment key, `kiseki start` on a temporary data
 * directory with both ports chosen by the OS (read back from the JSON
 * `listening` line), Prometheus metrics scraped over HTTP, SIGTERM for a
 * graceful stop, and `kiseki inspect --json` for the final count check.
 * Also the small process-tracking helper every benchmark part uses, so that
 * nothing spawned outlives a run, even a failed one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { get } from 'node:http';
import { isKisekiError, KisekiError } from '../../core/errors.js';

/** Keeps every spawned process so they can all be stopped at the end, whatever happened. */
export interface ProcessTracker {
  track<T extends ChildProcess>(child: T): T;
  /** SIGTERM to every live process, SIGKILL after `graceMs`; resolves when all have exited (bounded). */
  stopAll(graceMs?: number): Promise<void>;
}

function alive(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

/** Resolves when `child` exits; after `timeoutMs` sends SIGKILL and resolves on that exit (or 2 s later). */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (!alive(child)) return resolve(child.exitCode);
    const done = (): void => {
      clearTimeout(t1);
      clearTimeout(t2);
      resolve(child.exitCode);
    };
    child.once('exit', done);
    const t1 = setTimeout(() => {
      if (alive(child)) child.kill('SIGKILL');
    }, timeoutMs);
    const t2 = setTimeout(done, timeoutMs + 2000);
  });
}

export function createProcessTracker(): ProcessTracker {
  const children = new Set<ChildProcess>();
  const onExit = (): void => {
    for (const c of children) if (alive(c)) c.kill('SIGKILL');
  };
  process.once('exit', onExit);
  return {
    track(child) {
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async stopAll(graceMs = 5000) {
      const live = [...children].filter(alive);
      for (const c of live) c.kill('SIGTERM');
      await Promise.all(live.map((c) => waitExit(c, graceMs)));
      process.removeListener('exit', onExit);
    },
  };
}

/** Runs the kiseki CLI to completion (bounded) and returns its stdout. */
export function runKisekiCli(kisekiJs: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [kisekiJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KISEKI_LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new KisekiError('ERR_BENCH_FAILED', { reason: `kiseki ${args[0]} failed`, code, stderr: err.trim().slice(-1000) }));
    });
  });
}

/** The support ID of the benchmark's tenant. */
export const BENCH_SUPPORT_ID = 'BENCH-1';

/** Creates the tenant {@link BENCH_SUPPORT_ID} and returns its enrollment key. */
export async function createBenchTenant(kisekiJs: string, dataDir: string): Promise<string> {
  const out = await runKisekiCli(kisekiJs, ['tenant', 'create', '--name', 'Bench', '--support-id', BENCH_SUPPORT_ID, '--json', '--data', dataDir]);
  const parsed = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { enrollKey?: string };
  if (typeof parsed.enrollKey !== 'string') throw new KisekiError('ERR_BENCH_FAILED', { reason: 'kiseki tenant create printed no enrollKey' });
  return parsed.enrollKey;
}

/** The fields of `kiseki inspect --json` the count check reads. */
export interface InspectCounts {
  devices: number;
  batches: number;
  batchIds: number;
  events: number;
  eventsProcessed: number;
  seqGaps: number;
}

export async function inspectCounts(kisekiJs: string, dataDir: string): Promise<InspectCounts> {
  const out = await runKisekiCli(kisekiJs, ['inspect', '--json', '--data', dataDir]);
  const r = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Partial<InspectCounts>;
  const num = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);
  return { devices: num(r.devices), batches: num(r.batches), batchIds: num(r.batchIds), events: num(r.events), eventsProcessed: num(r.eventsProcessed), seqGaps: num(r.seqGaps) };
}

/** A running `kiseki start`. */
export interface KisekiServer {
  readonly pid: number;
  readonly ingestPort: number;
  readonly httpPort: number;
  readonly child: ChildProcess;
  /** The last lines of its log (stderr). */
  logTail(): string;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** A kiseki process (`kiseki start`, any role) that printed its `listening` line. */
export interface ListeningProcess<T> {
  readonly child: ChildProcess;
  /** What the `listening` line said (the fields `accept` picked). */
  readonly listening: T;
  /** The last 16 KiB of its stderr. */
  log(): string;
}

/**
 * Spawns `node args…` (tracked) and resolves once it prints a JSON line with `event: "listening"` that
 * `accept` takes (returns non-undefined for); rejects when it exits first or after `timeoutMs` (then killed).
 * @param what the process in error messages, e.g. `kiseki` or `kiseki ingest node`.
 */
export function spawnUntilListening<T>(options: {
  args: string[];
  env?: Readonly<Record<string, string>>;
  tracker: ProcessTracker;
  timeoutMs: number;
  what: string;
  accept: (line: Record<string, unknown>) => T | undefined;
}): Promise<ListeningProcess<T>> {
  const child = options.tracker.track(spawn(process.execPath, options.args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }) }));
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-16_384);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new KisekiError('ERR_BENCH_FAILED', { reason: `${options.what} did not print its listening line in time`, timeoutMs: options.timeoutMs, logTail: log.slice(-2000) }));
    }, options.timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new KisekiError('ERR_BENCH_FAILED', { reason: `${options.what} exited before listening`, code, logTail: log.slice(-2000) }));
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"listening"')) continue;
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (parsed.event !== 'listening') continue;
        const listening = options.accept(parsed);
        if (listening === undefined) continue;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, listening, log: () => log });
        return;
      }
    });
  });
}

/** Starts kiseki on 127.0.0.1 with OS-chosen ports; resolves once it prints its `listening` line. */
export async function startKiseki(options: {
  kisekiJs: string;
  dataDir: string;
  extraArgs?: string[];
  /** Flags for node itself, e.g. ['--cpu-prof', '--cpu-prof-dir', DIR] to profile the server. */
  nodeArgs?: string[];
  logLevel?: string;
  /** Variables added to this process's environment for the server (e.g. KISEKI_SIGMA_ENABLED). */
  env?: Readonly<Record<string, string>>;
  tracker: ProcessTracker;
  timeoutMs?: number;
}): Promise<KisekiServer> {
  const args = [
    ...(options.nodeArgs ?? []),
    options.kisekiJs,
    'start',
    '--data',
    options.dataDir,
    '--host',
    '127.0.0.1',
    '--ingest-port',
    '0',
    '--http-port',
    '0',
    '--log-level',
    options.logLevel ?? 'warn',
    ...(options.extraArgs ?? []),
  ];
  const { child, listening, log } = await spawnUntilListening({
    args,
    ...(options.env === undefined ? {} : { env: options.env }),
    tracker: options.tracker,
    timeoutMs: options.timeoutMs ?? 60_000,
    what: 'kiseki',
    accept: (line) => (typeof line.ingestPort === 'number' && typeof line.httpPort === 'number' ? { ingestPort: line.ingestPort, httpPort: line.httpPort } : undefined),
  });
  return {
    pid: child.pid ?? 0,
    ingestPort: listening.ingestPort,
    httpPort: listening.httpPort,
    child,
    logTail: () => log().slice(-4000),
    async stop(timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return waitExit(child, timeoutMs);
    },
  };
}

/** One Prometheus sample. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it for kiseki's own metrics). */
export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    out.push({ name: m[1] as string, labels, value: Number(m[4]) });
  }
  return out;
}

/** Fetches /metrics from 127.0.0.1:`port` (bounded). */
export function scrapeMetrics(port: number, timeoutMs = 5000): Promise<PromSample[]> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/metrics', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(parsePrometheus(body)));
    });
    req.on('timeout', () => req.destroy(new KisekiError('ERR_BENCH_FAILED', { reason: 'metrics scrape timed out' })));
    req.on('error', reject);
  });
}

/**
 * {@link scrapeMetrics}, or undefined when the server did not answer within
 * `timeoutMs` (a server past its knee can stall for seconds; the caller
 * counts the figure as missing). Any other failure, such as a refused
 * connection, is thrown.
 */
export async function scrapeMetricsOrUndefined(port: number, timeoutMs: number): Promise<PromSample[] | undefined> {
  try {
    return await scrapeMetrics(port, timeoutMs);
  } catch (err) {
    if (isKisekiError(err, 'ERR_BENCH_FAILED')) return undefined;
    throw err;
  }
}

/** Sums samples named `name`, grouped by the value of `label`. */
export function sumByLabel(samples: PromSample[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.name === name) out[s.labels[label] ?? ''] = (out[s.labels[label] ?? ''] ?? 0) + s.value;
  return out;
}

/** True when the sample's labels include every one of `labels`. */
function hasLabels(s: PromSample, labels: Record<string, string>): boolean {
  return Object.entries(labels).every(([k, v]) => s.labels[k] === v);
}

/** The value of the first sample named `name` whose labels include `labels`, or undefined. */
export function sampleValue(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  for (const s of samples) if (s.name === name && hasLabels(s, labels)) return s.value;
  return undefined;
}

/** How much a counter (or a histogram's `_count` / `_sum`) grew between two scrapes, as PromQL's `increase`; a series missing from a scrape counts as 0. */
export function increaseBetween(before: PromSample[], after: PromSample[], name: string, labels: Record<string, string> = {}): number {
  return (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
}

/**
 * A quantile of a Prometheus histogram over the interval between two
 * scrapes (bucket counts of `after` minus `before`), interpolated linearly
 * within its bucket as PromQL's histogram_quantile does; the highest finite
 * bound when it falls in the +Inf bucket. Undefined when nothing was
 * observed in the interval or the histogram is missing.
 * @param labels labels the series must have besides `le` (e.g. { stage: 'commit' })
 */
export function histogramQuantileBetween(before: PromSample[], after: PromSample[], name: string, labels: Record<string, string>, q: number): number | undefined {
  const buckets = (samples: PromSample[]): Map<number, number> => {
    const out = new Map<number, number>();
    for (const s of samples) {
      if (s.name !== `${name}_bucket` || s.labels.le === undefined || !hasLabels(s, labels)) continue;
      out.set(s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le), s.value);
    }
    return out;
  };
  const b0 = buckets(before);
  const deltas = [...buckets(after)].map(([le, n]) => [le, n - (b0.get(le) ?? 0)] as const).sort((x, y) => x[0] - y[0]);
  const total = deltas.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of deltas) {
    if (cumulative >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lower;
      const inBucket = cumulative - below;
      return inBucket <= 0 ? le : lower + ((le - lower) * (rank - below)) / inBucket;
    }
    lower = le;
    below = cumulative;
  }
  return lower;
}

/** The error a benchmark run stops with when its abort signal fires (Ctrl-C). */
export function abortedError(): KisekiError {
  return new KisekiError('ERR_ABORTED', { reason: 'benchmark aborted' });
}

/**
 * A run's abort signal as a promise to race its steps against: it rejects with ERR_ABORTED when the signal fires.
 * @throws KisekiError ERR_ABORTED at once when the signal has already fired
 */
export function abortRace(signal: AbortSignal | undefined): { aborted: Promise<never>; dispose(): void } {
  if (signal?.aborted) throw abortedError();
  let reject: (e: Error) => void = () => undefined;
  const aborted = new Promise<never>((_, r) => {
    reject = r;
  });
  aborted.catch(() => undefined);
  const onAbort = (): void => reject(abortedError());
  signal?.addEventListener('abort', onAbort, { once: true });
  return { aborted, dispose: () => signal?.removeEventListener('abort', onAbort) };
}
