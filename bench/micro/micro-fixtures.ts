/**
 * Seeded fixtures shared by the micro benchmarks: realistic trail events from
 * the load simulator's generator (bench/load/trail-generator.ts), the same
 * on every run and machine, so alternatives are compared on identical input.
 */
import type { TrailEvent } from '../../core/contracts.js';
import { createTrailGenerator } from '../../agent/index.js';

/** `count` events from `computers` seeded PCs, in generation order per PC. */
export function fixtureEvents(count: number, computers = 8, seed = 42, detectRate = 0): TrailEvent[] {
  const out: TrailEvent[] = [];
  const per = Math.ceil(count / computers);
  for (let c = 0; c < computers && out.length < count; c++) {
    const gen = createTrailGenerator({ seed: seed * 31 + c, computer: `BENCH-PC-${c}`, detectRate });
    let seq = 1;
    while (seq <= per && out.length < count) {
      const n = Math.min(500, per - seq + 1, count - out.length);
      out.push(...gen.next(n, seq, Date.UTC(2024, 2, 12, 9, 0, 0) + seq * 50));
      seq += n;
    }
  }
  return out;
}

/** True when this module is the script Node was started with (guarded mains). */
export function isMain(metaUrl: string): boolean {
  const argv1 = process.argv[1];
  return argv1 !== undefined && metaUrl === new URL(`file://${argv1}`).href;
}
