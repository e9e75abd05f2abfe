/**
 * How the saturate scenario looks for its sustained maximum, kept apart from
 * the timing so the order of steps can be tested without running a server.
 *
 * Ramp: the rate rises by `factor` per step until two steps in a row miss the
 * ack limit (one may be noise) or one falls behind the offered rate.
 * Confirm: the highest rate that held is run again, because one lucky step on
 * a shared machine is not a maximum; when the second run does not hold, the
 * next lower rate that held is tried. Refine: the ramp's factor (1.4) leaves
 * the maximum uncertain by 40 %, so the geometric middle between the
 * confirmed rate and the lowest rate above it that did not hold is run (and
 * confirmed), `refineSteps` times. The throughput ceiling (ack p99 not
 * considered) is the runner's last ramp, after every latency figure: a
 * server pushed past its ceiling needs long to recover, and a step measured
 * meanwhile says nothing about the maximum.
 */

/** Why a step runs. */
/** `ceiling`: the runner's last ramp, towards the throughput ceiling (not part of the search). */
export type StepPurpose = 'ramp' | 'confirm' | 'refine' | 'ceiling';

export interface StepSearchConfig {
  /** The first rate (events per agent per second). */
  start: number;
  /** Rate multiplier between ramp steps (> 1). */
  factor: number;
  /** Most ramp steps. */
  maxSteps: number;
  /** Midpoints run between the confirmed maximum and the next rate up (0: none). */
  refineSteps: number;
  /** Run the candidate maximum (and each midpoint that held) a second time before accepting it. */
  confirm: boolean;
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
  private phase: StepPurpose | 'done' = 'ramp';
  private rampSteps = 0;
  private notHeldInARow = 0;
  private fellBehind = false;
  private current: { rate: number; purpose: StepPurpose } | undefined;
  /** Rates that held in the ramp and were not yet refuted, highest last. */
  private readonly candidates: number[] = [];
  /** Rates that did not hold at least once. */
  private readonly refuted: number[] = [];
  private confirmed: number | undefined;
  private refineLeft: number;
  /** The midpoint under test and whether its first run held. */
  private midpoint: { rate: number; heldOnce: boolean } | undefined;

  constructor(cfg: StepSearchConfig) {
    if (!(cfg.factor > 1) || !(cfg.start > 0) || cfg.maxSteps < 1) throw new RangeError('step search: start > 0, factor > 1 and maxSteps ≥ 1');
    this.cfg = cfg;
    this.refineLeft = cfg.refineSteps;
  }

  /** The step to run next, or undefined when the search is over. */
  next(): { rate: number; purpose: StepPurpose } | undefined {
    if (this.current !== undefined) return this.current;
    if (this.phase === 'done') return undefined;
    if (this.phase === 'ramp') this.current = { rate: this.cfg.start * this.cfg.factor ** this.rampSteps, purpose: 'ramp' };
    else if (this.phase === 'confirm') this.current = { rate: this.candidates.at(-1)!, purpose: 'confirm' };
    else {
      const m = this.midpoint!;
      this.current = { rate: m.rate, purpose: m.heldOnce ? 'confirm' : 'refine' };
    }
    return this.current;
  }

  /** Records what the step `next()` named showed. */
  record(outcome: StepOutcome): void {
    const step = this.current;
    if (step === undefined) throw new Error('step search: record() without next()');
    this.current = undefined;
    if (this.phase === 'ramp') {
      this.rampSteps++;
      if (outcome.held) this.candidates.push(step.rate);
      else this.refuted.push(step.rate);
      this.notHeldInARow = outcome.held ? 0 : this.notHeldInARow + 1;
      this.fellBehind = !outcome.keptUp;
      if (this.fellBehind || this.notHeldInARow >= 2 || this.rampSteps >= this.cfg.maxSteps) this.afterRamp();
      return;
    }
    if (this.phase === 'confirm') {
      this.candidates.pop();
      if (outcome.held) this.accept(step.rate);
      else {
        this.refuted.push(step.rate);
        this.chooseCandidate();
      }
      return;
    }
    // Refine: a midpoint holds when its run (and, with confirm, its second run) held.
    const m = this.midpoint!;
    if (outcome.held && this.cfg.confirm && !m.heldOnce) {
      m.heldOnce = true;
      return;
    }
    this.midpoint = undefined;
    if (outcome.held) this.confirmed = m.rate;
    else this.refuted.push(m.rate);
    this.refineOrFinish();
  }

  /** The highest rate that held (twice, with confirm); undefined while searching or when none did. */
  get maximum(): number | undefined {
    return this.phase === 'done' ? this.confirmed : undefined;
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /** Where a ramp towards the throughput ceiling goes on (the ramp's next rate and the steps left), or undefined when the ramp already fell behind or used every step. */
  get ceilingRamp(): { from: number; steps: number } | undefined {
    if (this.phase !== 'done' || this.fellBehind || this.rampSteps >= this.cfg.maxSteps) return undefined;
    return { from: this.cfg.start * this.cfg.factor ** this.rampSteps, steps: this.cfg.maxSteps - this.rampSteps };
  }

  private afterRamp(): void {
    this.candidates.sort((a, b) => a - b);
    this.chooseCandidate();
  }

  private chooseCandidate(): void {
    if (this.candidates.length === 0) {
      this.phase = 'done';
      return;
    }
    if (!this.cfg.confirm) {
      this.accept(this.candidates.pop()!);
      return;
    }
    this.phase = 'confirm';
  }

  private accept(rate: number): void {
    this.confirmed = rate;
    this.phase = 'refine';
    this.refineOrFinish();
  }

  private refineOrFinish(): void {
    const lo = this.confirmed!;
    let hi = Infinity;
    for (const r of this.refuted) if (r > lo && r < hi) hi = r;
    if (this.refineLeft <= 0 || hi === Infinity) {
      this.phase = 'done';
      return;
    }
    this.refineLeft--;
    this.midpoint = { rate: Math.sqrt(lo * hi), heldOnce: false };
  }
}
