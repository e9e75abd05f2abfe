/**
 * Shared plumbing of the micro benchmarks (bench/micro/*.bench.ts): turns a
 * tinybench run into plain rows (ops/s, mean and p99 per op, and a derived
 * per-event rate), prints them as a table, and writes all of one run's
 * tables to `bench/results/micro-<date>.json` with the machine note.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bench } from 'tinybench';
import { count } from '../../core/plural.js';
import { machineNote } from '../load/runner.js';

/** One alternative of a comparison. */
export interface MicroRow {
  name: string;
  /** Operations per second (one op = one task call): 1000 / mean ms. */
  opsPerSec: number;
  /** Mean time per op, µs. */
  meanUs: number;
  /** 99th percentile per op, µs. */
  p99Us: number;
  /** Items (events, rows, bytes…) per second: opsPerSec × itemsPerOp. */
  itemsPerSec: number;
  samples: number;
}

/** One comparison (a bench file may hold several). */
export interface MicroTable {
  bench: string;
  /** What one item is (event, row, MB…). */
  item: string;
  itemsPerOp: number;
  rows: MicroRow[];
  /** The alternative the product uses, and why, in one sentence. */
  verdict: string;
}

/** Rows of a finished tinybench run. */
export function rowsOf(bench: Bench, itemsPerOp: number): MicroRow[] {
  return bench.tasks.map((t) => {
    const r = t.result as { latency?: { mean?: number; p99?: number; samplesCount?: number } } | undefined;
    const meanMs = r?.latency?.mean ?? Number.NaN;
    // 1000 / mean latency, not tinybench's mean of per-sample throughputs (which is biased up by fast samples).
    const ops = meanMs > 0 ? 1000 / meanMs : 0;
    return {
      name: t.name,
      opsPerSec: Math.round(ops * 10) / 10,
      meanUs: Math.round(meanMs * 1000 * 10) / 10,
      p99Us: Math.round((r?.latency?.p99 ?? Number.NaN) * 1000 * 10) / 10,
      itemsPerSec: Math.round(ops * itemsPerOp),
      samples: r?.latency?.samplesCount ?? 0,
    };
  });
}

/** Prints a table to stdout. */
export function printTable(t: MicroTable): void {
  const lines = [`${t.bench} (${count(t.itemsPerOp, t.item)} per op)`];
  const best = Math.max(...t.rows.map((r) => r.itemsPerSec));
  for (const r of t.rows) {
    lines.push(
      `  ${r.name.padEnd(46)} ${Math.round(r.itemsPerSec).toLocaleString('en-US').padStart(14)} ${t.item}/s  mean ${String(r.meanUs).padStart(9)} µs  p99 ${String(r.p99Us).padStart(9)} µs  ${(r.itemsPerSec / best).toFixed(2)}×`,
    );
  }
  lines.push(`  → ${t.verdict}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Writes the tables of one micro run; returns the file path. */
export function writeMicroResults(tables: MicroTable[][] | MicroTable[], outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const startedAt = new Date();
  const file = join(outDir, `micro-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ startedAt: startedAt.toISOString(), machine: machineNote(), tables: tables.flat() }, null, 2)}\n`);
  return file;
}
