/**
 * The child half of the start-up check (storage/verify.ts): opens both LMDB
 * environments of a data directory read-only and walks every database, so
 * that a crash on a damaged page kills this process and not the server.
 * Prints one JSON line: `{ok: true, entries, batchesChecked}` or
 * `{ok: false, env, reason, lsn?}`.
 * Usage: node verify-child.js DATA_DIR RECENT_BATCHES full|recent
 */
import { openTables, type Tables } from './tables.js';
import { batchIntact } from './verify.js';

const [dataDir, recentArg, mode] = process.argv.slice(2);
const recent = Number(recentArg ?? 10_000);
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

/** The log's tables; every other database is in kiseki.lmdb. */
const LOG_TABLES = new Set(['batches', 'deviceBatches', 'batchIds', 'trails', 'netlogs', 'netlogDst', 'netlogFailures', 'netlogState']);

function walk(t: Tables): void {
  let entries = 0;
  let batchesChecked = 0;
  for (const [name, db] of Object.entries(t)) {
    if (name === 'root' || name === 'log' || name === 'diskGuard') continue;
    const env = LOG_TABLES.has(name) ? 'log.lmdb' : 'kiseki.lmdb';
    try {
      if (name === 'batches') {
        // Keys of the whole log (its B-tree pages); values (overflow pages) of the newest batches only, unless full.
        let last = 0;
        for (const key of t.batches.getKeys({ snapshot: false })) {
          last = key as number;
          entries++;
        }
        const from = mode === 'full' ? 0 : Math.max(0, last - recent + 1);
        for (const { key, value } of t.batches.getRange({ start: from, snapshot: false })) {
          batchesChecked++;
          if (!batchIntact(value)) return out({ ok: false, env, lsn: key, reason: `the batch record at lsn ${key} fails its checksum (its bytes changed on disk)` });
        }
        continue;
      }
      for (const { value } of (db as Tables['tenants']).getRange({ snapshot: false })) {
        entries++;
        void value;
      }
    } catch (err) {
      return out({ ok: false, env, reason: `reading database ${name} failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  out({ ok: true, entries, batchesChecked });
}

let tables: Tables;
try {
  tables = openTables({ dataDir: dataDir!, readOnly: true });
} catch (err) {
  const cause = (err as { cause?: unknown }).cause;
  out({ ok: false, env: (err as { details?: { env?: string } }).details?.env ?? 'the data directory', reason: `LMDB cannot open it: ${cause instanceof Error ? cause.message : String(cause ?? err)}` });
  process.exit(0);
}
walk(tables);
await Promise.all([tables.root.close(), tables.log.close()]);
