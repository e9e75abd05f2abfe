/**
 * Configuration of the cold tier and the exports: one defaults object with
 * units in the names, one strict schema (unknown keys are errors), frozen.
 * The composition root may pass a partial override; everything else takes the
 * defaults below. (Kept here until core/config.ts grows an `export` slice.)
 */
import { z } from 'zod';
import { KisekiError } from '../core/errors.js';

const schema = z
  .object({
    /** Wait after a collection day's window ends (D+1 05:00 JST) before closing it, for in-flight commits. */
    closeGraceMs: z.number().int().min(0).max(24 * 3600_000),
    /** How often the scheduler looks for finished days and applies retention. */
    checkIntervalMs: z.number().int().min(1000),
    /** Raw batches of an archived day stay in LMDB this many days after the day ends (≥ 8: shards look back 7 days). */
    hotRetentionDays: z.number().int().min(1).max(3650),
    /** Cold archives (daily zip, Parquet, manifest) are deleted when their collection day is older than this. */
    coldRetentionDays: z.number().int().min(1).max(36500),
    /** Exports (daily downloads and log spots) are removed this many days after they were made. */
    exportRetentionDays: z.number().int().min(1).max(3650),
    /** Deflate level of the `.log` inside each inner zip (1 fastest … 9 smallest). */
    deflateLevel: z.number().int().min(1).max(9),
    /** Rows per Parquet row group. */
    parquetRowGroupRows: z.number().int().min(1024).max(16 * 1024 * 1024),
    parquetCompression: z.enum(['zstd', 'snappy', 'lz4', 'none']),
    /** Export worker threads (piscina); 0 runs the builds on the calling thread. */
    workerThreads: z.number().int().min(0).max(64),
  })
  .strict();

export type ExportConfig = z.infer<typeof schema>;

export const EXPORT_DEFAULTS: ExportConfig = {
  closeGraceMs: 15 * 60_000,
  checkIntervalMs: 5 * 60_000,
  hotRetentionDays: 8,
  coldRetentionDays: 365,
  exportRetentionDays: 30,
  deflateLevel: 6,
  // 65,536 rows: as fast as 131,072 (bench/micro/export-day.bench.ts) with ~200 MB less peak memory.
  parquetRowGroupRows: 65_536,
  parquetCompression: 'zstd',
  // One thread: on the 2-core reference machine the other core serves ingest and the shards.
  workerThreads: 1,
};

/**
 * Defaults overridden by `override`, validated and frozen.
 * @throws KisekiError ERR_CONFIG_INVALID with the schema issues in details.
 */
export function exportConfig(override: Partial<ExportConfig> = {}): Readonly<ExportConfig> {
  const merged = { ...EXPORT_DEFAULTS, ...Object.fromEntries(Object.entries(override).filter(([, v]) => v !== undefined)) };
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    throw new KisekiError('ERR_CONFIG_INVALID', { issues: parsed.error.issues.map((i) => `export.${i.path.join('.')}: ${i.message}`) });
  }
  return Object.freeze(parsed.data);
}
