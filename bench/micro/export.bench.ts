/**
 * Export writing: zip and Parquet, alternatives side by side on the same
 * 20,000 trail events (the export folder will build on the winners).
 * - zip: the deflate step of a zip entry with Node's native zlib (levels 1
 *   and 6), the same with fflate (pure JS, zip container included), and
 *   STORE of already-compressed parts (CRC-32 only). Items: MB of NDJSON in.
 * - Parquet (hyparquet-writer): columns accumulated beforehand (as a writer
 *   fed at ingest would hold them) vs rows transposed at export time
 *   (parquetWriteRows), SNAPPY vs UNCOMPRESSED. Items: rows.
 */
import { crc32, deflateRawSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { ByteWriter, parquetWriteBuffer, parquetWriteRows } from 'hyparquet-writer';
import { Bench } from 'tinybench';
import { fixtureEvents, isMain } from './micro-fixtures.js';
import { printTable, rowsOf, type MicroTable } from './micro-report.js';

const ROWS = 20_000;
const COLUMNS = ['ts', 'k', 'seq', 'pg', 'pid', 'user', 'image', 'cmd', 'path', 'sha256', 'key', 'value', 'rip', 'rport', 'rhost', 'qname'];

/** Runs the zip and Parquet comparisons and prints their tables. */
export async function runBench(): Promise<MicroTable[]> {
  const events = fixtureEvents(ROWS, 8, 11);
  const ndjson = Buffer.from(events.map((e) => JSON.stringify(e)).join('\n'));
  const mb = ndjson.length / 1e6;
  const zipped = deflateRawSync(ndjson, { level: 6 });
  let sink = 0;
  const zip = new Bench({ time: 2000, warmupTime: 300 });
  zip
    .add('node:zlib deflateRaw level 1', () => {
      sink += deflateRawSync(ndjson, { level: 1 }).length;
    })
    .add('node:zlib deflateRaw level 6', () => {
      sink += deflateRawSync(ndjson, { level: 6 }).length;
    })
    .add('fflate zipSync level 1 (container included)', () => {
      sink += zipSync({ 'events.ndjson': [ndjson, { level: 1 }] }).length;
    })
    .add('fflate zipSync level 6 (container included)', () => {
      sink += zipSync({ 'events.ndjson': [ndjson, { level: 6 }] }).length;
    })
    .add('STORE, no compression (crc32 of the entry only)', () => {
      sink += crc32(ndjson);
    });
  await zip.run();

  const rows = events.map((e) => {
    const r: Record<string, unknown> = {};
    for (const c of COLUMNS) r[c] = (e as Record<string, unknown>)[c] ?? null;
    return r;
  });
  const stringOf = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  const numOf = (v: unknown): bigint | null => (typeof v === 'number' ? BigInt(v) : null);
  const columnar = () =>
    COLUMNS.map((c) =>
      c === 'ts' || c === 'seq' || c === 'pid' || c === 'rport'
        ? { name: c, data: rows.map((r) => numOf(r[c])), type: 'INT64' as const, nullable: true }
        : { name: c, data: rows.map((r) => stringOf(r[c])), type: 'STRING' as const, nullable: true },
    );
  const prebuilt = columnar();
  const columnSpec = prebuilt.map(({ name, type, nullable }) => ({ name, ...(type ? { type } : {}), ...(nullable === undefined ? {} : { nullable }) }));
  const rowsTyped = rows.map((r) => {
    const o: Record<string, unknown> = {};
    for (const c of COLUMNS) o[c] = c === 'ts' || c === 'seq' || c === 'pid' || c === 'rport' ? numOf(r[c]) : stringOf(r[c]);
    return o;
  });
  const parquet = new Bench({ time: 3000, warmupTime: 300, iterations: 3 });
  parquet
    .add('columns accumulated beforehand, SNAPPY', () => {
      sink += parquetWriteBuffer({ columnData: prebuilt, codec: 'SNAPPY', rowGroupSize: 10_000 }).byteLength;
    })
    .add('columns accumulated beforehand, UNCOMPRESSED', () => {
      sink += parquetWriteBuffer({ columnData: prebuilt, codec: 'UNCOMPRESSED', rowGroupSize: 10_000 }).byteLength;
    })
    .add('rows transposed at export (parquetWriteRows), SNAPPY', () => {
      const writer = new ByteWriter();
      void parquetWriteRows({ writer, rows: rowsTyped, columns: columnSpec, codec: 'SNAPPY', rowGroupSize: 10_000 });
      sink += writer.offset;
    });
  await parquet.run();
  if (sink < 0) throw new Error('unreachable');

  const zipTable: MicroTable = {
    bench: `zip entry of ${ROWS} events as NDJSON (${mb.toFixed(1)} MB in; level 6 output ${(zipped.length / 1e6).toFixed(2)} MB)`,
    item: 'MB',
    itemsPerOp: mb,
    rows: rowsOf(zip, mb),
    verdict: 'native zlib deflate (on the libuv pool for parallel entries) over pure-JS fflate; STORE for parts that are already compressed',
  };
  const parquetTable: MicroTable = {
    bench: `Parquet of ${ROWS} events, ${COLUMNS.length} columns (hyparquet-writer)`,
    item: 'row',
    itemsPerOp: ROWS,
    rows: rowsOf(parquet, ROWS),
    verdict: 'hyparquet-writer from columns accumulated per day part; SNAPPY costs little over UNCOMPRESSED (perf-anchors: row-wise parquetjs-lite 8-11k rows/s)',
  };
  printTable(zipTable);
  printTable(parquetTable);
  return [zipTable, parquetTable];
}

if (isMain(import.meta.url)) await runBench();
