/**
 * How busy this process keeps the machine: the share of all its cores the
 * process (every thread; not its child processes) used between two reads.
 * Background work asks it before doing something heavy (the report
 * scheduler before rendering PDFs), so it can wait for a quieter moment.
 */
import { availableParallelism } from 'node:os';

export interface CpuShareMeterOptions {
  /** Cores of the machine (default: os.availableParallelism()). */
  cores?: number;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
  /** CPU µs used so far (default process.cpuUsage, user + system). */
  cpuMicros?: () => number;
}

/** CPU µs this process (every thread) has used, user and system. */
export function processCpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * @returns a function answering the share (0–1, more when measured loosely) of the machine's
 * cores used since its previous call (the first call: since the meter was made); 0 when no time passed.
 */
export function createCpuShareMeter(options: CpuShareMeterOptions = {}): () => number {
  const cores = Math.max(1, options.cores ?? availableParallelism());
  const now = options.now ?? ((): number => performance.now());
  const cpuMicros = options.cpuMicros ?? processCpuMicros;
  let lastAt = now();
  let lastCpu = cpuMicros();
  return () => {
    const at = now();
    const cpu = cpuMicros();
    const wallMs = at - lastAt;
    const share = wallMs <= 0 ? 0 : (cpu - lastCpu) / 1000 / wallMs / cores;
    lastAt = at;
    lastCpu = cpu;
    return share;
  };
}
