/**
 * The cold Parquet file of a tenant's collection day (SPEC §5): one row per
 * trail event with typed columns (timestamps as UTC timestamps, ports and
 * counts as integers, every kind's fields as nullable columns, unknown or
 * mistyped fields kept as JSON in `extra`), written one row group at a time.
 *
 * Events are shredded straight into column buffers (typed arrays, UTF-8 byte
 * buffers with int32 offsets, validity bitmaps) as each batch arrives; every
 * `chunkRows` rows (8,192) become an Apache Arrow record batch by wrapping those
 * buffers (no per-value Arrow builders, which measured 56-61k rows/s), cross
 * into parquet-wasm as Arrow IPC, and go through its streaming writer, which
 * encodes them into the open row group and cuts row groups of `rowGroupRows`.
 * Handing over small chunks rather than whole row groups measured 1.3× faster
 * (docs/BENCHMARKS.md): the column buffers, the IPC copy and the wasm heap stay
 * a few MB and warm, instead of ~33 MB freshly allocated per row group.
 * bench/micro/export-writers.bench.ts compares this with hyparquet-writer and
 * with Arrow's own builders.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  Bool,
  Field,
  Int32,
  Int64,
  List,
  RecordBatch,
  Schema,
  Struct,
  TimestampMillisecond,
  Utf8,
  makeData,
  type Data,
  type DataType,
} from 'apache-arrow';
// Arrow's own IPC metadata encoder and buffer walker, reached by path (the package exports every module):
// tableToIPC would do the same but join its chunks into a fresh buffer per call (see IpcStreamEncoder).
import { Message, RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message';
import { VectorAssembler } from 'apache-arrow/visitor/vectorassembler';
import { Compression, Table as WasmTable, WriterPropertiesBuilder, transformParquetStream, type RecordBatch as WasmRecordBatch } from 'parquet-wasm';

/** Column value types of the Parquet schema. */
export type ColumnType = 'string' | 'int64' | 'int32' | 'timestamp' | 'bool' | 'string-list';

/** Columns describing the batch an event came in (first in the file). */
export const BATCH_COLUMNS: readonly (readonly [string, ColumnType])[] = [
  ['tmid', 'string'],
  ['computer', 'string'],
  ['batch_id', 'string'],
  ['sent_at', 'timestamp'],
  ['recv_at', 'timestamp'],
];

/**
 * Event fields with their own typed column, named as in the JSON events
 * (docs/EVENTS.md). A value of the wrong type goes to `extra`, never lost.
 */
export const EVENT_COLUMNS: readonly (readonly [string, ColumnType])[] = [
  ['ts', 'timestamp'],
  ['k', 'string'],
  ['seq', 'int64'],
  ['pg', 'string'],
  ['pid', 'int64'],
  ['user', 'string'],
  // proc.start / proc.end
  ['image', 'string'],
  ['cmd', 'string'],
  ['sha256', 'string'],
  ['signer', 'string'],
  ['sig', 'string'],
  ['ppg', 'string'],
  ['ppid', 'int64'],
  ['pimage', 'string'],
  ['pcmd', 'string'],
  ['cwd', 'string'],
  ['integrity', 'string'],
  ['exit', 'int64'],
  // file.*
  ['path', 'string'],
  ['newPath', 'string'],
  ['size', 'int64'],
  ['vol', 'string'],
  ['originUrl', 'string'],
  ['referrerUrl', 'string'],
  ['zone', 'int32'],
  ['count', 'int64'],
  ['tsLast', 'timestamp'],
  // reg.*
  ['key', 'string'],
  ['value', 'string'],
  ['dtype', 'string'],
  ['data', 'string'],
  // net.*
  ['proto', 'string'],
  ['dir', 'string'],
  ['lip', 'string'],
  ['lport', 'int32'],
  ['rip', 'string'],
  ['rport', 'int32'],
  ['rhost', 'string'],
  ['qname', 'string'],
  ['qtype', 'string'],
  ['answers', 'string-list'],
  // usb.*
  ['instanceId', 'string'],
  ['vendorId', 'string'],
  ['productId', 'string'],
  ['serial', 'string'],
  ['vendor', 'string'],
  ['model', 'string'],
  ['type', 'string'],
  ['drive', 'string'],
  // logon / logoff
  ['userName', 'string'],
  ['domain', 'string'],
  ['logonType', 'int32'],
  ['logonId', 'string'],
  ['srcIp', 'string'],
  ['ok', 'bool'],
  // av.detect
  ['engine', 'string'],
  ['threat', 'string'],
  ['action', 'string'],
];

/** Unknown fields (and known ones of an unexpected type) as one JSON object; null when none. */
export const EXTRA_COLUMN = 'extra';

/** Version of the column layout, stored in the file's key-value metadata. */
export const PARQUET_SCHEMA_VERSION = '1';

const INITIAL_ROWS = 4096;

abstract class Column {
  /** Rows written (values or padded nulls). */
  n = 0;
  nulls = 0;
  valid: Uint8Array = new Uint8Array(INITIAL_ROWS >> 3);
  abstract readonly type: DataType;
  /** Stores `v` at `row` (rows skipped since the last value are null); false when `v` has the wrong type. */
  abstract set(row: number, v: unknown): boolean;
  protected abstract grow(rows: number): void;
  abstract build(length: number): Data;
  protected ensure(row: number): void {
    if (row >= this.valid.length << 3) {
      let cap = this.valid.length << 3;
      while (cap <= row) cap *= 2;
      const v = new Uint8Array(cap >> 3);
      v.set(this.valid);
      this.valid = v;
      this.grow(cap);
    }
  }
  protected pad(row: number): void {
    // Rows between the last value and `row` are null (their validity bits are still 0).
    this.nulls += row - this.n;
  }
  protected markValid(row: number): void {
    this.valid[row >> 3]! |= 1 << (row & 7);
    this.n = row + 1;
  }
  /** Pads the column to `length` rows; returns the validity bitmap, or undefined when nothing is null. */
  protected finishNulls(length: number): Uint8Array | undefined {
    this.ensure(length);
    this.pad(length);
    this.n = length;
    return this.nulls === 0 ? undefined : this.valid.subarray(0, (length + 7) >> 3);
  }
  reset(): void {
    this.valid.fill(0);
    this.n = 0;
    this.nulls = 0;
  }
  /** Approximate bytes held (for the row-group byte limit). */
  abstract bytes(): number;
}

class StringColumn extends Column {
  readonly type: DataType = new Utf8();
  offsets = new Int32Array(INITIAL_ROWS + 1);
  data = Buffer.allocUnsafe(64 * 1024);
  pos = 0;
  protected grow(rows: number): void {
    const o = new Int32Array(rows + 1);
    o.set(this.offsets);
    this.offsets = o;
  }
  private room(bytes: number): void {
    if (this.pos + bytes > this.data.length) {
      let cap = this.data.length * 2;
      while (cap < this.pos + bytes) cap *= 2;
      const d = Buffer.allocUnsafe(cap);
      this.data.copy(d, 0, 0, this.pos);
      this.data = d;
    }
  }
  protected override pad(row: number): void {
    if (row > this.n) this.offsets.fill(this.pos, this.n + 1, row + 1);
    super.pad(row);
  }
  set(row: number, v: unknown): boolean {
    if (typeof v !== 'string') return false;
    this.ensure(row + 1);
    this.pad(row);
    this.room(v.length * 3);
    this.pos += this.data.write(v, this.pos);
    this.offsets[row + 1] = this.pos;
    this.markValid(row);
    return true;
  }
  /** The same string for rows [from, to), encoded once. */
  setRepeat(from: number, to: number, v: string): void {
    if (to <= from) return;
    this.ensure(to);
    this.pad(from);
    const bytes = Buffer.from(v, 'utf8');
    this.room(bytes.length * (to - from));
    for (let row = from; row < to; row++) {
      bytes.copy(this.data, this.pos);
      this.pos += bytes.length;
      this.offsets[row + 1] = this.pos;
      this.valid[row >> 3]! |= 1 << (row & 7);
    }
    this.n = to;
  }
  build(length: number): Data {
    const nullBitmap = this.finishNulls(length);
    return makeData({ type: this.type as Utf8, length, nullCount: this.nulls, nullBitmap, valueOffsets: this.offsets.subarray(0, length + 1), data: this.data.subarray(0, this.pos) });
  }
  override reset(): void {
    super.reset();
    this.pos = 0;
    this.offsets[0] = 0;
  }
  bytes(): number {
    return this.pos + this.offsets.byteLength;
  }
}

/** int64 and timestamp(ms) values, written as two int32 halves (no BigInt per value). */
class Int64Column extends Column {
  readonly type: DataType;
  words = new Int32Array(INITIAL_ROWS * 2);
  constructor(timestamp: boolean) {
    super();
    this.type = timestamp ? new TimestampMillisecond('UTC') : new Int64();
  }
  protected grow(rows: number): void {
    const w = new Int32Array(rows * 2);
    w.set(this.words);
    this.words = w;
  }
  set(row: number, v: unknown): boolean {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) return false;
    this.ensure(row + 1);
    this.pad(row);
    this.words[2 * row] = v | 0;
    this.words[2 * row + 1] = Math.floor(v / 4294967296);
    this.markValid(row);
    return true;
  }
  setRepeat(from: number, to: number, v: number): void {
    if (to <= from) return;
    this.ensure(to);
    this.pad(from);
    const lo = v | 0;
    const hi = Math.floor(v / 4294967296);
    for (let row = from; row < to; row++) {
      this.words[2 * row] = lo;
      this.words[2 * row + 1] = hi;
      this.valid[row >> 3]! |= 1 << (row & 7);
    }
    this.n = to;
  }
  build(length: number): Data {
    const nullBitmap = this.finishNulls(length);
    return makeData({ type: this.type as Int64, length, nullCount: this.nulls, nullBitmap, data: new BigInt64Array(this.words.buffer, 0, length) });
  }
  bytes(): number {
    return this.words.byteLength;
  }
}

class Int32Column extends Column {
  readonly type: DataType = new Int32();
  values = new Int32Array(INITIAL_ROWS);
  protected grow(rows: number): void {
    const v = new Int32Array(rows);
    v.set(this.values);
    this.values = v;
  }
  set(row: number, v: unknown): boolean {
    if (typeof v !== 'number' || (v | 0) !== v) return false;
    this.ensure(row + 1);
    this.pad(row);
    this.values[row] = v;
    this.markValid(row);
    return true;
  }
  build(length: number): Data {
    const nullBitmap = this.finishNulls(length);
    return makeData({ type: this.type as Int32, length, nullCount: this.nulls, nullBitmap, data: this.values.subarray(0, length) });
  }
  bytes(): number {
    return this.values.byteLength;
  }
}

class BoolColumn extends Column {
  readonly type: DataType = new Bool();
  bits = new Uint8Array(INITIAL_ROWS >> 3);
  protected grow(rows: number): void {
    const b = new Uint8Array(rows >> 3);
    b.set(this.bits);
    this.bits = b;
  }
  set(row: number, v: unknown): boolean {
    if (typeof v !== 'boolean') return false;
    this.ensure(row + 1);
    this.pad(row);
    if (v) this.bits[row >> 3]! |= 1 << (row & 7);
    this.markValid(row);
    return true;
  }
  build(length: number): Data {
    const nullBitmap = this.finishNulls(length);
    return makeData({ type: this.type as Bool, length, nullCount: this.nulls, nullBitmap, data: this.bits.subarray(0, (length + 7) >> 3) });
  }
  override reset(): void {
    super.reset();
    this.bits.fill(0);
  }
  bytes(): number {
    return this.bits.byteLength;
  }
}

/** list<string> (DNS answers). */
class StringListColumn extends Column {
  readonly type: DataType = new List(new Field('item', new Utf8(), true));
  offsets = new Int32Array(INITIAL_ROWS + 1);
  readonly child = new StringColumn();
  items = 0;
  protected grow(rows: number): void {
    const o = new Int32Array(rows + 1);
    o.set(this.offsets);
    this.offsets = o;
  }
  protected override pad(row: number): void {
    if (row > this.n) this.offsets.fill(this.items, this.n + 1, row + 1);
    super.pad(row);
  }
  set(row: number, v: unknown): boolean {
    if (!Array.isArray(v)) return false;
    for (const s of v) if (typeof s !== 'string') return false;
    this.ensure(row + 1);
    this.pad(row);
    for (const s of v as string[]) this.child.set(this.items++, s);
    this.offsets[row + 1] = this.items;
    this.markValid(row);
    return true;
  }
  build(length: number): Data {
    const nullBitmap = this.finishNulls(length);
    const child = this.child.build(this.items);
    return makeData({ type: this.type as List<Utf8>, length, nullCount: this.nulls, nullBitmap, valueOffsets: this.offsets.subarray(0, length + 1), child: child as Data<Utf8> });
  }
  override reset(): void {
    super.reset();
    this.child.reset();
    this.items = 0;
    this.offsets[0] = 0;
  }
  bytes(): number {
    return this.offsets.byteLength + this.child.bytes();
  }
}

function makeColumn(type: ColumnType): Column {
  switch (type) {
    case 'string':
      return new StringColumn();
    case 'int64':
      return new Int64Column(false);
    case 'timestamp':
      return new Int64Column(true);
    case 'int32':
      return new Int32Column();
    case 'bool':
      return new BoolColumn();
    case 'string-list':
      return new StringListColumn();
  }
}

/** The batch an event arrived in. */
export interface BatchMeta {
  tmid: string;
  computer: string;
  batchId: string;
  sentAt: number;
  recvAt: number;
}

/**
 * Shreds events into column buffers, one row group at a time. Separate from
 * the file writer so the benchmark can time shredding alone.
 */
export class EventColumns {
  rows = 0;
  private readonly tmid: StringColumn;
  private readonly computer: StringColumn;
  private readonly batchId: StringColumn;
  private readonly sentAt: Int64Column;
  private readonly recvAt: Int64Column;
  private readonly byField = new Map<string, Column>();
  private readonly extra = new StringColumn();
  private readonly ordered: Column[] = [];
  readonly schema: Schema;

  constructor() {
    this.tmid = new StringColumn();
    this.computer = new StringColumn();
    this.batchId = new StringColumn();
    this.sentAt = new Int64Column(true);
    this.recvAt = new Int64Column(true);
    this.ordered.push(this.tmid, this.computer, this.batchId, this.sentAt, this.recvAt);
    for (const [name, type] of EVENT_COLUMNS) {
      const col = makeColumn(type);
      this.byField.set(name, col);
      this.ordered.push(col);
    }
    this.ordered.push(this.extra);
    const names = [...BATCH_COLUMNS.map((c) => c[0]), ...EVENT_COLUMNS.map((c) => c[0]), EXTRA_COLUMN];
    this.schema = new Schema(names.map((name, i) => new Field(name, this.ordered[i]!.type, true)));
  }

  /** Appends one batch's events (objects as decoded from MessagePack). */
  append(meta: BatchMeta, events: readonly unknown[]): void {
    const from = this.rows;
    let row = from;
    const byField = this.byField;
    for (const ev of events) {
      let extra: Record<string, unknown> | undefined;
      if (typeof ev === 'object' && ev !== null && !Array.isArray(ev)) {
        const obj = ev as Record<string, unknown>;
        for (const key in obj) {
          const v = obj[key];
          const col = byField.get(key);
          if (col === undefined || !col.set(row, v)) {
            if (v !== undefined) (extra ??= {})[key] = v;
          }
        }
      } else {
        extra = { value: ev };
      }
      if (extra !== undefined) this.extra.set(row, JSON.stringify(extra));
      row++;
    }
    this.tmid.setRepeat(from, row, meta.tmid);
    this.computer.setRepeat(from, row, meta.computer);
    this.batchId.setRepeat(from, row, meta.batchId);
    this.sentAt.setRepeat(from, row, meta.sentAt);
    this.recvAt.setRepeat(from, row, meta.recvAt);
    this.rows = row;
  }

  /** Approximate bytes buffered. */
  bytes(): number {
    let n = 0;
    for (const c of this.ordered) n += c.bytes();
    return n;
  }

  /** The buffered rows as an Arrow record batch (views of the buffers: serialize before `reset`). */
  toRecordBatch(): RecordBatch {
    const length = this.rows;
    const children = this.ordered.map((c) => c.build(length));
    return new RecordBatch(this.schema, makeData({ type: new Struct(this.schema.fields), length, nullCount: 0, children }));
  }

  /** Empties the buffers for the next row group (keeping their capacity). */
  reset(): void {
    for (const c of this.ordered) c.reset();
    this.rows = 0;
  }
}

/**
 * Arrow IPC stream bytes (schema, one record batch, end-of-stream) of a
 * chunk, written into one buffer reused from chunk to chunk. `tableToIPC`
 * produces the same bytes but joins its pieces into a newly allocated buffer
 * each time, whose first touch (page faults, zeroing) cost more than the copy
 * itself in the profiles.
 */
class IpcStreamEncoder {
  private buf = new Uint8Array(1 << 20);
  private view = new DataView(this.buf.buffer);
  private readonly schemaMessage: Uint8Array;

  constructor(schema: Schema) {
    const meta = Message.encode(Message.from(schema));
    const size = (meta.length + 8 + 7) & ~7;
    this.schemaMessage = new Uint8Array(size);
    const v = new DataView(this.schemaMessage.buffer);
    v.setInt32(0, -1, true);
    v.setInt32(4, size - 8, true);
    this.schemaMessage.set(meta, 8);
  }

  /** The stream's bytes: a view of the reused buffer, valid until the next call. */
  encode(batch: RecordBatch): Uint8Array {
    const a = VectorAssembler.assemble(batch);
    const meta = Message.encode(Message.from(new RecordBatchHeader(batch.numRows, a.nodes, a.bufferRegions, null), a.byteLength));
    const metaSize = (meta.length + 8 + 7) & ~7;
    const total = this.schemaMessage.length + metaSize + a.byteLength + 8;
    if (total > this.buf.length) {
      this.buf = new Uint8Array(Math.ceil(total * 1.25));
      this.view = new DataView(this.buf.buffer);
    }
    const out = this.buf;
    out.set(this.schemaMessage, 0);
    let pos = this.schemaMessage.length;
    this.view.setInt32(pos, -1, true);
    this.view.setInt32(pos + 4, metaSize - 8, true);
    out.set(meta, pos + 8);
    out.fill(0, pos + 8 + meta.length, pos + metaSize);
    pos += metaSize;
    const buffers = a.buffers;
    const regions = a.bufferRegions;
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i]!;
      const at = pos + Number(regions[i]!.offset);
      out.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), at);
      // Padding up to the next 8-byte boundary, so the bytes never depend on the previous chunk.
      out.fill(0, at + b.byteLength, at + Number(regions[i]!.length));
    }
    pos += a.byteLength;
    this.view.setInt32(pos, -1, true);
    this.view.setInt32(pos + 4, 0, true);
    return out.subarray(0, pos + 8);
  }
}

export type ParquetCompression = 'zstd' | 'snappy' | 'lz4' | 'none';

export interface ParquetWriterOptions {
  /** Rows per row group (default 65,536; DuckDB and pyarrow scan row groups in parallel). */
  rowGroupRows?: number;
  /** A row group is also cut when its encoded pages pass this many bytes (default 256 MiB). */
  maxRowGroupBytes?: number;
  /**
   * Rows shredded before they are handed to the Parquet encoder (default 8,192,
   * at most rowGroupRows). The encoder merges them into row groups of
   * rowGroupRows; smaller hand-overs keep the column buffers, the Arrow IPC copy
   * and the wasm heap small (see docs/BENCHMARKS.md for the measurement).
   */
  chunkRows?: number;
  /** Page compression (default zstd). */
  compression?: ParquetCompression;
  /** Dictionary-encode columns (default true; off measured within the noise of on, for 1.4× larger files: docs/BENCHMARKS.md). */
  dictionary?: boolean;
  /** Extra key-value metadata written in the footer. */
  metadata?: Record<string, string>;
}

export interface ParquetWriteResult {
  path: string;
  rows: number;
  /** Rows per row group (the last one may be shorter). */
  rowGroupRows: number;
  bytes: number;
  sha256: string;
}

const CODECS: Record<ParquetCompression, Compression> = {
  zstd: Compression.ZSTD,
  snappy: Compression.SNAPPY,
  lz4: Compression.LZ4_RAW,
  none: Compression.UNCOMPRESSED,
};

/**
 * Streams a Parquet file to `path` (through `path.<random>.tmp`, renamed by
 * `finish()`). Call `append` per batch and `await drain()` now and then: it
 * resolves once the queued row group has been written, which bounds memory to
 * about one row group.
 */
export class ParquetDayWriter {
  readonly path: string;
  private readonly tmpPath: string;
  private fd: number | undefined;
  private readonly columns = new EventColumns();
  private readonly ipc = new IpcStreamEncoder(this.columns.schema);
  private readonly rowGroupRows: number;
  private readonly chunkRows: number;
  private readonly maxChunkBytes: number;
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private rows = 0;
  private handedOver = 0;
  private readonly queue: WasmRecordBatch[] = [];
  private pullWaiter: (() => void) | undefined;
  private drainWaiters: (() => void)[] = [];
  private closed = false;
  private failed: unknown;
  private readonly pump: Promise<void>;

  constructor(path: string, options: ParquetWriterOptions = {}) {
    this.path = path;
    this.tmpPath = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    this.rowGroupRows = options.rowGroupRows ?? 65_536;
    const maxRowGroupBytes = options.maxRowGroupBytes ?? 256 * 1024 * 1024;
    this.chunkRows = Math.min(options.chunkRows ?? 8192, this.rowGroupRows);
    this.maxChunkBytes = maxRowGroupBytes;
    this.fd = openSync(this.tmpPath, 'w');
    let props = new WriterPropertiesBuilder()
      .setCompression(CODECS[options.compression ?? 'zstd'])
      // Row groups of exactly rowGroupRows rows (the last one shorter): the writer splits and merges batches.
      .setMaxRowGroupSize(this.rowGroupRows)
      .setMaxRowGroupBytes(maxRowGroupBytes)
      .setDictionaryEnabled(options.dictionary ?? true)
      .setCreatedBy('kiseki');
    const kv = new Map<string, string>([['kiseki.schema', PARQUET_SCHEMA_VERSION], ...Object.entries(options.metadata ?? {})]);
    props = props.setKeyValueMetadata(kv);
    const self = this;
    const input = new ReadableStream<WasmRecordBatch>(
      {
        async pull(controller) {
          while (self.queue.length === 0 && !self.closed) await new Promise<void>((r) => (self.pullWaiter = r));
          const next = self.queue.shift();
          if (next !== undefined) controller.enqueue(next);
          else controller.close();
          for (const w of self.drainWaiters.splice(0)) w();
        },
      },
      { highWaterMark: 0 },
    );
    this.pump = (async () => {
      const output = (await transformParquetStream(input, props.build())) as ReadableStream<Uint8Array>;
      for await (const chunk of output as unknown as AsyncIterable<Uint8Array>) {
        this.hash.update(chunk);
        writeSync(this.fd!, chunk);
        this.bytes += chunk.length;
      }
    })().catch((err: unknown) => {
      this.failed = err;
      for (const w of this.drainWaiters.splice(0)) w();
    });
  }

  /** Appends one batch's events; cuts a row group when it is full. */
  append(meta: BatchMeta, events: readonly unknown[]): void {
    this.columns.append(meta, events);
    if (this.columns.rows >= this.chunkRows || this.columns.bytes() >= this.maxChunkBytes) this.cut();
  }

  /** Rows appended so far. */
  get rowsAppended(): number {
    return this.rows + this.columns.rows;
  }

  private cut(): void {
    if (this.failed !== undefined) throw this.failed;
    const batch = this.columns.toRecordBatch();
    const ipc = this.ipc.encode(batch);
    this.columns.reset();
    const table = WasmTable.fromIPCStream(ipc);
    const rb = table.recordBatch(0);
    table.free();
    if (rb === undefined) return;
    this.rows += batch.numRows;
    this.handedOver++;
    this.queue.push(rb);
    this.pullWaiter?.();
    this.pullWaiter = undefined;
  }

  /** Resolves when no row group is waiting to be encoded. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 && this.failed === undefined) await new Promise<void>((r) => this.drainWaiters.push(r));
    if (this.failed !== undefined) throw this.failed;
  }

  /** Writes the last row group and the footer, then moves the file into place. */
  async finish(): Promise<ParquetWriteResult> {
    try {
      if (this.columns.rows > 0 || this.handedOver === 0) this.cut();
      this.closed = true;
      this.pullWaiter?.();
      await this.pump;
      if (this.failed !== undefined) throw this.failed;
      closeSync(this.fd!);
      this.fd = undefined;
      renameSync(this.tmpPath, this.path);
      return { path: this.path, rows: this.rows, rowGroupRows: this.rowGroupRows, bytes: this.bytes, sha256: this.hash.digest('hex') };
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Stops and removes the partial file. */
  abort(): void {
    this.closed = true;
    this.pullWaiter?.();
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    rmSync(this.tmpPath, { force: true });
  }
}
