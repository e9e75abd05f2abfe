/**
 * The export writers kiseki uses, against their alternatives, on the same
 * seeded trail events (the load simulator's generator) in batches of 200:
 *
 * - Parquet (rows per CPU-second, i.e. per core, and per wall second):
 *   export/parquet-writer.ts (events shredded straight into column buffers →
 *   Arrow record batch every 8,192 rows → parquet-wasm's streaming writer) with
 *   each codec, other row-group sizes, dictionary off, whole row groups handed
 *   over at once (the hand-over before chunking), the shredder alone,
 *   hyparquet-writer (rows transposed into column arrays first), and
 *   apache-arrow's own builders (`vectorFromArray`) → parquet-wasm.
 *   parquetjs-lite is not installed: perf-anchors measured it at 8-11k rows/s.
 *   Alternatives run round-robin (so a change in the machine's load hits them
 *   all alike), `reps` times each after one warm-up; the figure is the median
 *   with its min–max. CPU time is the process's (all its threads), so on a
 *   loaded shared machine rows per CPU-second holds still where wall-clock
 *   rows/s does not.
 * - Outer zip (MB/s of archive written): export/zip-writer.ts vs yazl, both
 *   STOREing the same pre-built inner zips to a file.
 * - Inner zips (MB/s of `.log` text): JSON lines alone, then with deflate
 *   level 1 and 6.
 *
 * Results go to stdout and, run as a script, to
 * bench/results/export-writers-<time>.json with the machine, load average and commit.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/micro/export-writers.bench.js [events=100000] [reps=5]
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bool, Field, Int32, Int64, List, RecordBatch, Schema, Struct, Table, TimestampMillisecond, Utf8, makeData, tableToIPC, vectorFromArray, type DataType, type Vector } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import { Bench } from 'tinybench';
import yazl from 'yazl';
import { logText } from '../../export/hot-source.js';
import { EVENT_COLUMNS, EventColumns, ParquetDayWriter, type BatchMeta, type ColumnType, type ParquetWriterOptions } from '../../export/parquet-writer.js';
import { buildInnerZip, ZipFileWriter } from '../../export/zip-writer.js';
import { fixtureEvents, isMain } from './micro-fixtures.js';
import { machineNote } from '../load/runner.js';
import { roundSpread, spread, type Spread } from '../spread.js';
import { printTable, rowsOf, type MicroRow, type MicroTable } from './micro-report.js';

const BATCH = 200;
const COMPUTERS = 50;

interface Fixture {
  meta: BatchMeta;
  events: Record<string, unknown>[];
}

function fixtures(count: number): Fixture[] {
  const events = fixtureEvents(count, COMPUTERS, 7) as unknown as Record<string, unknown>[];
  const out: Fixture[] = [];
  for (let i = 0; i * BATCH < events.length; i++) {
    const at = Date.UTC(2026, 0, 5) + i * 20;
    out.push({ meta: { tmid: `TMID-${i % COMPUTERS}`, computer: `PC-${i % COMPUTERS}`, batchId: i.toString(16).padStart(32, '0'), sentAt: at - 500, recvAt: at }, events: events.slice(i * BATCH, (i + 1) * BATCH) });
  }
  return out;
}

const HYPARQUET_TYPE: Record<ColumnType, 'STRING' | 'INT64' | 'INT32' | 'BOOLEAN' | 'JSON'> = {
  string: 'STRING',
  int64: 'INT64',
  int32: 'INT32',
  timestamp: 'INT64',
  bool: 'BOOLEAN',
  'string-list': 'JSON',
};

const ARROW_TYPE: Record<ColumnType, () => DataType> = {
  string: () => new Utf8(),
  int64: () => new Int64(),
  int32: () => new Int32(),
  timestamp: () => new TimestampMillisecond('UTC'),
  bool: () => new Bool(),
  'string-list': () => new List(new Field('item', new Utf8(), true)),
};

/** A Parquet alternative: rows per CPU-second (per core) and per wall second, with the output size. */
export interface ParquetRow extends MicroRow {
  rowsPerCpuSec: Spread;
  rowsPerWallSec: Spread;
  bytes: number;
  reps: number;
}


/**
 * A full collection before each timed call, so the garbage one alternative
 * leaves (the Arrow builders leave much) is not collected on the next one's
 * time: without it the first alternative of each round measured 0.65× itself.
 */
const collect: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Runs each alternative once to warm up, then `reps` rounds over all of them
 * in turn; each call returns the bytes it produced.
 */
async function measureRoundRobin(alternatives: readonly (readonly [string, () => Promise<number> | number])[], rows: number, reps: number): Promise<ParquetRow[]> {
  const cpu = alternatives.map(() => [] as number[]);
  const wall = alternatives.map(() => [] as number[]);
  const bytes = alternatives.map(() => 0);
  for (let round = 0; round <= reps; round++) {
    for (let i = 0; i < alternatives.length; i++) {
      collect();
      const c0 = cpuSeconds();
      const t0 = performance.now();
      bytes[i] = await alternatives[i]![1]();
      const wallSec = (performance.now() - t0) / 1000;
      const cpuSec = cpuSeconds() - c0;
      if (round === 0) continue;
      cpu[i]!.push(rows / cpuSec);
      wall[i]!.push(rows / wallSec);
    }
  }
  return alternatives.map(([name], i) => {
    const c = roundSpread(spread(cpu[i]!));
    const w = roundSpread(spread(wall[i]!));
    return {
      name,
      opsPerSec: Math.round((w.median / rows) * 10) / 10,
      meanUs: Math.round((rows / w.median) * 1e6),
      p99Us: Math.round((rows / w.min) * 1e6),
      itemsPerSec: c.median,
      samples: reps,
      rowsPerCpuSec: c,
      rowsPerWallSec: w,
      bytes: bytes[i]!,
      reps,
    };
  });
}

function printParquet(t: MicroTable): void {
  const k = (n: number) => `${Math.round(n / 1000)}k`;
  const lines = [`${t.bench}: rows per CPU-second (per core) and per wall second, median (min–max)`];
  const best = Math.max(...t.rows.map((r) => r.itemsPerSec));
  for (const r of t.rows as ParquetRow[]) {
    const c = r.rowsPerCpuSec;
    const w = r.rowsPerWallSec;
    const mb = r.bytes > 0 ? `${(r.bytes / 1e6).toFixed(2)} MB` : '';
    lines.push(`  ${r.name.padEnd(52)} ${`${k(c.median)} (${k(c.min)}–${k(c.max)})`.padStart(18)} per core  ${`${k(w.median)} (${k(w.min)}–${k(w.max)})`.padStart(18)} wall  ${(c.median / best).toFixed(2)}×  ${mb}`);
  }
  lines.push(`  → ${t.verdict}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Runs the comparisons and prints their tables. */
export async function runBench(count = 100_000, reps = 5): Promise<MicroTable[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-export-bench-'));
  const batches = fixtures(count);
  const rows = batches.reduce((n, b) => n + b.events.length, 0);
  const types = new Map<string, ColumnType>(EVENT_COLUMNS.map(([n, t]) => [n, t]));

  /** Rows → one JS array per column, what row-oriented writers need first. */
  const transpose = (): Map<string, unknown[]> => {
    const cols = new Map<string, unknown[]>();
    for (const [name] of EVENT_COLUMNS) cols.set(name, new Array<unknown>(rows).fill(null));
    const extra = new Array<unknown>(rows).fill(null);
    let r = 0;
    for (const b of batches) {
      for (const e of b.events) {
        let x: Record<string, unknown> | undefined;
        for (const k in e) {
          const c = cols.get(k);
          if (c === undefined) (x ??= {})[k] = e[k];
          else c[r] = e[k];
        }
        if (x !== undefined) extra[r] = JSON.stringify(x);
        r++;
      }
    }
    cols.set('extra', extra);
    return cols;
  };
  const bigints = (data: unknown[]): unknown[] => data.map((v) => (typeof v === 'number' ? BigInt(v) : null));

  const hyparquetColumns = () =>
    [...transpose()].map(([name, data]) => {
      const type = types.get(name) ?? 'string';
      return { name, data: type === 'int64' || type === 'timestamp' ? bigints(data) : data, type: HYPARQUET_TYPE[type] };
    });
  const prebuilt = hyparquetColumns();
  let sink = 0;
  const kiseki = async (options: ParquetWriterOptions) => {
    const w = new ParquetDayWriter(join(dir, 'k.parquet'), options);
    for (const b of batches) {
      w.append(b.meta, b.events);
      await w.drain();
    }
    return (await w.finish()).bytes;
  };
  // Two groups, each round-robin: the third-party writers left kiseki's first alternative of each round
  // 15 % slower when they shared its rounds (they run the same Arrow code with other shapes).
  const kisekiRows = await measureRoundRobin(
    [
      ['kiseki → parquet-wasm, zstd (product)', () => kiseki({ compression: 'zstd' })],
      ['kiseki, snappy', () => kiseki({ compression: 'snappy' })],
      ['kiseki, lz4 (raw)', () => kiseki({ compression: 'lz4' })],
      ['kiseki, none', () => kiseki({ compression: 'none' })],
      ['kiseki, zstd, dictionary off', () => kiseki({ compression: 'zstd', dictionary: false })],
      ['kiseki, zstd, row groups of 16,384', () => kiseki({ compression: 'zstd', rowGroupRows: 16_384 })],
      ['kiseki, zstd, row groups of 131,072', () => kiseki({ compression: 'zstd', rowGroupRows: 131_072 })],
      ['kiseki, zstd, whole row groups handed over', () => kiseki({ compression: 'zstd', chunkRows: 65_536 })],
      [
        'kiseki shredder alone (8,192-row record batches)',
        () => {
          const cols = new EventColumns();
          let n = 0;
          for (const b of batches) {
            cols.append(b.meta, b.events);
            if (cols.rows >= 8192) {
              n += cols.toRecordBatch().numRows;
              cols.reset();
            }
          }
          return n + cols.toRecordBatch().numRows - rows;
        },
      ],
    ],
    rows,
    reps,
  );
  const otherRows = await measureRoundRobin(
    [
      ['hyparquet-writer (transpose + write), snappy', () => parquetWriteBuffer({ columnData: hyparquetColumns() as never, codec: 'SNAPPY', rowGroupSize: 65_536 }).byteLength],
      ['hyparquet-writer, write only (prebuilt), snappy', () => parquetWriteBuffer({ columnData: prebuilt as never, codec: 'SNAPPY', rowGroupSize: 65_536 }).byteLength],
      [
        'apache-arrow vectorFromArray → parquet-wasm, zstd',
        () => {
          const fields: Field[] = [];
          const children = [...transpose()].map(([name, data]) => {
            const t = types.get(name) ?? 'string';
            const type = ARROW_TYPE[t]();
            fields.push(new Field(name, type, true));
            return (vectorFromArray((t === 'int64' || t === 'timestamp' ? bigints(data) : data) as never[], type as never) as Vector).data[0]!;
          });
          const batch = new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length: rows, nullCount: 0, children }));
          const ipc = tableToIPC(new Table([batch]), 'stream');
          return writeParquet(WasmTable.fromIPCStream(ipc), new WriterPropertiesBuilder().setCompression(Compression.ZSTD).build()).length;
        },
      ],
    ],
    rows,
    reps,
  );

  const logs = batches.map((b) => Buffer.from(logText(b.events), 'utf8'));
  const logMb = logs.reduce((n, b) => n + b.length, 0) / 1e6;
  const inners = batches.map((b, i) => buildInnerZip(`${i}.log`, logs[i]!, b.meta.sentAt, 6));
  const innerMb = inners.reduce((n, b) => n + b.length, 0) / 1e6;
  const entryName = (i: number) => `2026-01-05/PC-${i % COMPUTERS}/${batches[i]!.meta.tmid}_${i}.zip`;
  const zip = new Bench({ time: 2000, warmupTime: 300, iterations: 3 });
  zip
    .add('kiseki ZipFileWriter, STORE (product)', () => {
      const w = new ZipFileWriter(join(dir, 'k.zip'));
      w.addDirectory('2026-01-05/', 0);
      for (let i = 0; i < inners.length; i++) w.addStored(entryName(i), inners[i]!, { mtimeMs: batches[i]!.meta.sentAt });
      sink += w.finish().bytes;
    })
    .add('yazl addBuffer, STORE', () => {
      return new Promise<void>((resolve, reject) => {
        const z = new yazl.ZipFile();
        z.outputStream
          .pipe(createWriteStream(join(dir, 'y.zip')))
          .on('close', () => resolve())
          .on('error', reject);
        z.addEmptyDirectory('2026-01-05/', { mtime: new Date(0) });
        for (let i = 0; i < inners.length; i++) z.addBuffer(inners[i]!, entryName(i), { compress: false, mtime: new Date(batches[i]!.meta.sentAt) });
        z.end();
      });
    });
  await zip.run();

  const inner = new Bench({ time: 2000, warmupTime: 300, iterations: 3 });
  inner
    .add('JSON lines only', () => {
      for (const b of batches) sink += logText(b.events).length;
    })
    .add('JSON lines + deflate-1 inner zip', () => {
      for (const b of batches) sink += buildInnerZip('x.log', Buffer.from(logText(b.events), 'utf8'), b.meta.sentAt, 1).length;
    })
    .add('JSON lines + deflate-6 inner zip (product default)', () => {
      for (const b of batches) sink += buildInnerZip('x.log', Buffer.from(logText(b.events), 'utf8'), b.meta.sentAt, 6).length;
    });
  await inner.run();
  rmSync(dir, { recursive: true, force: true });
  if (sink < 0) throw new Error('unreachable');

  const tables: MicroTable[] = [
    {
      bench: `Parquet of ${rows} events in ${batches.length} batches, ${EVENT_COLUMNS.length + 6} typed columns, ${reps} reps`,
      item: 'row',
      itemsPerOp: rows,
      rows: [...kisekiRows, ...otherRows],
      verdict: 'export/parquet-writer.ts: shred into column buffers, every 8,192 rows wrap them as an Arrow record batch into a reused IPC buffer, stream through parquet-wasm with zstd into 65,536-row groups',
    },
    {
      bench: `outer zip of ${inners.length} inner zips (${innerMb.toFixed(1)} MB, already deflated)`,
      item: 'MB',
      itemsPerOp: innerMb,
      rows: rowsOf(zip, innerMb),
      verdict: 'export/zip-writer.ts: known CRCs and sizes up front, native crc32, 1 MiB synchronous writes on a worker thread',
    },
    {
      bench: `inner zips of ${batches.length} batches (${logMb.toFixed(1)} MB of .log text, ${rows} events)`,
      item: 'MB',
      itemsPerOp: logMb,
      rows: rowsOf(inner, logMb),
      verdict: 'deflate level 6 by default (smaller downloads); level 1 via deflateLevel when the day close must be faster',
    },
  ];
  printParquet(tables[0]!);
  for (const t of tables.slice(1)) printTable(t);
  process.stdout.write(`peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB, node ${process.version}\n`);
  return tables;
}

if (isMain(import.meta.url)) {
  const loadBefore = loadavg()[0] ?? 0;
  const tables = await runBench(Number(process.argv[2] ?? 100_000), Math.max(3, Number(process.argv[3] ?? 5)));
  const out = join(dirname(fileURLToPath(import.meta.url)), '../../../bench/results');
  mkdirSync(out, { recursive: true });
  const at = new Date().toISOString();
  const file = join(out, `export-writers-${at.replace(/[:.]/g, '-')}.json`);
  const load = { start: Math.round(loadBefore * 100) / 100, end: Math.round((loadavg()[0] ?? 0) * 100) / 100 };
  writeFileSync(file, `${JSON.stringify({ bench: 'export-writers', at, machine: machineNote(), loadAverage1m: load, tables }, null, 2)}\n`);
  process.stdout.write(`load average ${load.start} → ${load.end}; results: ${file}\n`);
}
