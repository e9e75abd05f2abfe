/**
 * Gives a thread's young generation back to the system once the thread is quiet.
 *
 * Why: shard workers run with a large young generation (192 MB: fewer
 * promotions, less CPU per event under load, docs/BENCHMARKS.md "Shard young
 * generation"). V8 grows it whenever many objects survive (a connect storm
 * builds thousands of device states at once) and does not shrink it while
 * anything allocates: a server with no agents kept 134 MB of it committed from
 * its start (375 MB of anonymous memory; 175 MB once trimmed). Only a garbage
 * collection that reduces memory shrinks it; V8 runs one on a low-memory
 * notification, which Node exposes through the inspector protocol
 * (`HeapProfiler.collectGarbage`).
 * It stops the thread for a full collection or two (about 0.2 s for a 40 MB
 * heap), so it runs only when the thread was quiet for a whole check period.
 */
import { getHeapSpaceStatistics } from 'node:v8';

export interface QuietHeapTrimOptions {
  /** Events (or any unit of work) the thread may have done in one check period and still count as quiet. */
  quietWorkPerPeriod: number;
  /** Young generation committed, bytes, below which nothing is done. */
  minNewSpaceBytes: number;
  /** Least time between two trims, ms. */
  minIntervalMs: number;
}

/**
 * Quiet: at most 2,000 events a second over 10 s, a twentieth or less of what one shard processes (sigma-shard bench: 50–98k per CPU second).
 * At most every 20 s: an idle fleet's shard regrows its young generation to the maximum in well under a minute (each new
 * device state outlives a scavenge), and its full collections took up to 290 ms at 19,000 devices, 1–2 % of a quiet thread.
 * fanin-19k, 3 runs each: 12,399 B per agent (11,088–15,352) every 20 s, 15,177 (13,163–16,054) once a minute.
 */
export const DEFAULT_QUIET_HEAP_TRIM: QuietHeapTrimOptions = { quietWorkPerPeriod: 20_000, minNewSpaceBytes: 32 * 1024 * 1024, minIntervalMs: 20_000 };

/** What a trim reads and does; the defaults are V8's and the inspector's, tests pass their own. */
export interface QuietHeapTrimHooks {
  now: () => number;
  newSpaceBytes: () => number;
  /** A memory-reducing full collection; resolves when it is done. */
  collect: () => Promise<void>;
}

/** Committed bytes of this thread's young generation (V8's new space). */
export function newSpaceBytes(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_size;
  return 0;
}

/**
 * A low-memory notification to this thread's heap (a full collection that
 * shrinks the young generation), or undefined where Node was built without
 * the inspector.
 */
export async function lowMemoryCollector(): Promise<(() => Promise<void>) | undefined> {
  let inspector: typeof import('node:inspector');
  try {
    inspector = await import('node:inspector');
  } catch {
    return undefined;
  }
  const session = new inspector.Session();
  try {
    session.connect();
  } catch {
    return undefined;
  }
  return () =>
    new Promise<void>((resolve, reject) => {
      session.post('HeapProfiler.collectGarbage', (err) => (err === null ? resolve() : reject(err)));
    });
}

/** Decides, once per check period, whether the thread was quiet and its young generation worth trimming. */
export class QuietHeapTrimmer {
  private readonly options: QuietHeapTrimOptions;
  private readonly hooks: QuietHeapTrimHooks;
  private lastWork: number | undefined;
  private lastTrimAt = Number.NEGATIVE_INFINITY;
  private running = false;
  /** Trims done so far. */
  trims = 0;

  constructor(hooks: QuietHeapTrimHooks, options: QuietHeapTrimOptions = DEFAULT_QUIET_HEAP_TRIM) {
    this.hooks = hooks;
    this.options = options;
  }

  /**
   * Called at the end of each check period with the running total of work
   * done; trims when the period's work was at most `quietWorkPerPeriod`.
   * Resolves true when it trimmed.
   */
  async check(workTotal: number): Promise<boolean> {
    const previous = this.lastWork;
    this.lastWork = workTotal;
    // The first call only sets the baseline: nothing says the period before it was quiet.
    if (previous === undefined || this.running) return false;
    if (workTotal - previous > this.options.quietWorkPerPeriod) return false;
    const now = this.hooks.now();
    if (now - this.lastTrimAt < this.options.minIntervalMs) return false;
    if (this.hooks.newSpaceBytes() < this.options.minNewSpaceBytes) return false;
    this.running = true;
    this.lastTrimAt = now;
    try {
      await this.hooks.collect();
      this.trims++;
      return true;
    } finally {
      this.running = false;
    }
  }
}
