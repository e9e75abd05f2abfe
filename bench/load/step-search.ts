/**
 * How the saturate scenario looks for its sustained maximum, kept apart from
 * the timing so the order of steps can be tested without running a server.
 *
 * The rate rises by `factor` per step. A step that misses its limits (ack p99
 * over the limit, or the offered rate not acked) is run again once before it
 * ends the search, because one step on a shared machine can miss by bad luck:
 * when the second run holds, the ramp goes on. The sustained maximum is the
 * highest rate that held. Rates that held are not run again at the end: past
 * the knee the server needs minutes to recover (its shards, report rendering
 * and heap catch up; measured: every rate down to 10k events/s then showed ack
 * p99 of 180–800 ms), so a second look after the knee would measure that, not
 * the rate. The throughput ceiling (ack p99 not considered) is the runner's
 * last ramp, after every latency figure, for the same reason.
 */

/** Why a step runs: the ramp, the second run of a rate that missed, or (the runner's) last ramp to the ceiling. */
export type StepPurpose = 'ramp' | 'retry' | 'ceiling';

export interface StepSearchConfig {
  /** The first rate (events per agent per second). */
  start: number;
  /** Rate multiplier between steps (> 1). */
  factor: number;
  /** Most steps, retries included. */
  maxSteps: number;
  /** Run a rate that missed once more before it ends the search. */
  retry: boolean;
}

/** What a step showed. */
export interface StepOutcome {
  /** Ack p99 within the limit and the offered rate acked. */
  held: boolean;
  /** The offered rate acked (ack p99 not considered). */
  keptUp: boolean;
}

/** The search's state; `next()` names the step to run, `record()` what it showed. */
export class StepSearch {
  private readonly cfg: StepSearchConfig;
  private steps = 0;
  private rate: number;
  private retrying = false;
  private current: { rate: number; purpose: StepPurpose } | undefined;
  private held: number | undefined;
  private fellBehind = false;
  private over = false;

  constructor(cfg: StepSearchConfig) {
    if (!(cfg.factor > 1) || !(cfg.start > 0) || cfg.maxSteps < 1) throw new RangeError('step search: start > 0, factor > 1 and maxSteps ≥ 1');
    this.cfg = cfg;
    this.rate = cfg.start;
  }

  /** The step to run next, or undefined when the search is over. */
  next(): { rate: number; purpose: StepPurpose } | undefined {
    if (this.current === undefined && !this.over) this.current = { rate: this.rate, purpose: this.retrying ? 'retry' : 'ramp' };
    return this.current;
  }

  /** Records what the step `next()` named showed. */
  record(outcome: StepOutcome): void {
    const step = this.current;
    if (step === undefined) throw new Error('step search: record() without next()');
    this.current = undefined;
    this.steps++;
    this.fellBehind = !outcome.keptUp;
    if (outcome.held) {
      this.held = step.rate;
      this.retrying = false;
      this.rate = step.rate * this.cfg.factor;
    } else if (this.cfg.retry && !this.retrying) this.retrying = true;
    else this.over = true;
    if (this.steps >= this.cfg.maxSteps) this.over = true;
  }

  /** The highest rate that held; undefined while searching or when none did. */
  get maximum(): number | undefined {
    return this.over ? this.held : undefined;
  }

  get done(): boolean {
    return this.over;
  }

  /** Where a ramp towards the throughput ceiling goes on (the rate above the last step and the steps left), or undefined when the search ended behind the offered rate or used every step. */
  get ceilingRamp(): { from: number; steps: number } | undefined {
    if (!this.over || this.fellBehind || this.steps >= this.cfg.maxSteps) return undefined;
    return { from: this.rate * this.cfg.factor, steps: this.cfg.maxSteps - this.steps };
  }
}
