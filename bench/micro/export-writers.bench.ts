/**
 * The export writers kiseki uses, against their alternatives, on the same
 * seeded trail events (the load simulator's generator) in batches of 200:
 *
 * - Parquet (rows/s): export/parquet-writer.ts (events shredded straight into
 *   column buffers → Arrow record batch → parquet-wasm, streamed) with zstd and
 *   snappy, the shredder alone, hyparquet-writer (rows transposed into column
 *   arrays first), and apache-arrow's own builders (`vectorFromArray`) →
 *   parquet-wasm. parquetjs-lite is not installed: perf-anchors measured it at
 *   8-11k rows/s.
 * - Outer zip (MB/s of archive written): export/zip-writer.ts vs yazl, both
 *   STOREing the same pre-built inner zips to a file.
 * - Inner zips (MB/s of `.log` text): JSON lines alone, then with deflate
 *   level 1 and 6.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/micro/export-writers.bench.js [events]
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bool, Field, Int32, Int64, List, RecordBatch, Schema, Struct, Table, TimestampMillisecond, Utf8, makeData, tableToIPC, vectorFromArray, type DataType, type Vector } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import { Bench } from 'tinybench';
import yazl from 'yazl';
import { logText } from '../../export/hot-source.js';
import { EVENT_COLUMNS, EventColumns, ParquetDayWriter, type BatchMeta, type ColumnType } from '../../export/parquet-writer.js';
import { buildInnerZip, ZipFileWriter } from '../../export/zip-writer.js';
import { fixtureEvents, isMain } from './micro-fixtures.js';
import { printTable, rowsOf, type MicroTable } from './micro-report.js';

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

/** Runs the comparisons and prints their tables. */
export async function runBench(count = 100_000): Promise<MicroTable[]> {
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
  const parquet = new Bench({ time: 2000, warmupTime: 300, iterations: 3 });
  const kiseki = async (compression: 'zstd' | 'snappy') => {
    const w = new ParquetDayWriter(join(dir, `k-${compression}.parquet`), { compression });
    for (const b of batches) {
      w.append(b.meta, b.events);
      await w.drain();
    }
    sink += (await w.finish()).bytes;
  };
  parquet
    .add('kiseki shredder → parquet-wasm, zstd (product)', () => kiseki('zstd'))
    .add('kiseki shredder → parquet-wasm, snappy', () => kiseki('snappy'))
    .add('kiseki shredder alone (→ Arrow IPC)', () => {
      const cols = new EventColumns();
      for (const b of batches) cols.append(b.meta, b.events);
      sink += tableToIPC(new Table([cols.toRecordBatch()]), 'stream').length;
    })
    .add('hyparquet-writer (transpose + write), snappy', () => {
      sink += parquetWriteBuffer({ columnData: hyparquetColumns() as never, codec: 'SNAPPY', rowGroupSize: 65_536 }).byteLength;
    })
    .add('hyparquet-writer, write only (columns prebuilt), snappy', () => {
      sink += parquetWriteBuffer({ columnData: prebuilt as never, codec: 'SNAPPY', rowGroupSize: 65_536 }).byteLength;
    })
    .add('apache-arrow vectorFromArray → parquet-wasm, zstd', () => {
      const fields: Field[] = [];
      const children = [...transpose()].map(([name, data]) => {
        const t = types.get(name) ?? 'string';
        const type = ARROW_TYPE[t]();
        fields.push(new Field(name, type, true));
        return (vectorFromArray((t === 'int64' || t === 'timestamp' ? bigints(data) : data) as never[], type as never) as Vector).data[0]!;
      });
      const batch = new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length: rows, nullCount: 0, children }));
      const ipc = tableToIPC(new Table([batch]), 'stream');
      sink += writeParquet(WasmTable.fromIPCStream(ipc), new WriterPropertiesBuilder().setCompression(Compression.ZSTD).build()).length;
    });
  await parquet.run();

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
      bench: `Parquet of ${rows} events in ${batches.length} batches, ${EVENT_COLUMNS.length + 6} typed columns`,
      item: 'row',
      itemsPerOp: rows,
      rows: rowsOf(parquet, rows),
      verdict: 'export/parquet-writer.ts: shred into column buffers, wrap as an Arrow record batch, stream through parquet-wasm with zstd',
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
  for (const t of tables) printTable(t);
  process.stdout.write(`peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB, node ${process.version}\n`);
  return tables;
}

if (isMain(import.meta.url)) await runBench(Number(process.argv[2] ?? 100_000));
