/**
 * Zip archives of the exports (SPEC §6), written to match PKWARE APPNOTE 6.3
 * closely enough for every common reader (Info-ZIP `unzip`, Python `zipfile`,
 * Windows Explorer, 7-Zip):
 *
 * - `buildInnerZip` makes the small per-batch zip (one deflated `<send15>.log`)
 *   in memory.
 * - `ZipFileWriter` streams an outer archive to disk: entries whose CRC-32 and
 *   sizes are known before their data is written (inner zips built here or
 *   copied raw from another archive), so local headers carry the real values and
 *   no data descriptors are needed; inner zips are STOREd, never recompressed.
 *   Zip64 records appear only when needed: more than 65,534 entries, or an
 *   offset or size at or over 4 GiB. The central directory spills to a
 *   temporary file past 16 MiB, so memory stays flat however many entries.
 *
 * yazl computes CRC-32 in JavaScript and buffers every added entry until its
 * turn; bench/micro/export-writers.bench.ts compares it with this writer.
 * Writes are synchronous (`fs.writeSync` of 1 MiB chunks): archives are built
 * on piscina worker threads, where blocking is the point.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { crc32 as zlibCrc32, deflateRawSync } from 'node:zlib';
import { dosDateTime } from './collection-day.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
/** "Made by" MS-DOS (host 0), spec 2.0 / 4.5: the neutral choice for Windows customers. */
const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
const FLAG_UTF8 = 0x0800;
const ATTR_DIRECTORY = 0x10;
const ATTR_ARCHIVE = 0x20;
const METHOD_STORE = 0;
const METHOD_DEFLATE = 8;

/** CRC-32 (zlib's, native, ~2 GB/s) of `data`. */
export function crc32(data: Uint8Array): number {
  return zlibCrc32(data) >>> 0;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

/** Extended-timestamp extra field (0x5455) with the modification time: readers that know it restore exact UTC times. */
function writeUtExtra(buf: Buffer, at: number, mtimeMs: number): number {
  buf.writeUInt16LE(0x5455, at);
  buf.writeUInt16LE(5, at + 2);
  buf.writeUInt8(1, at + 4);
  buf.writeUInt32LE(Math.max(0, Math.min(U32_MAX, Math.floor(mtimeMs / 1000))), at + 5);
  return at + 9;
}
const UT_EXTRA_BYTES = 9;

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % 0x1_0000_0000, at);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
}

/**
 * A zip holding one file, in memory: `name` deflated at `level` (1-9; stored
 * when deflate would not shrink it). Used for the per-batch inner zips.
 */
export function buildInnerZip(name: string, content: Uint8Array, mtimeMs: number, level = 6): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const crc = crc32(content);
  const deflated = deflateRawSync(content, { level });
  const stored = deflated.length >= content.length;
  const data = stored ? content : deflated;
  const method = stored ? METHOD_STORE : METHOD_DEFLATE;
  const { date, time } = dosDateTime(mtimeMs);
  const flags = isAscii(name) ? 0 : FLAG_UTF8;
  const localLen = 30 + nameBytes.length + UT_EXTRA_BYTES;
  const centralLen = 46 + nameBytes.length + UT_EXTRA_BYTES;
  const out = Buffer.allocUnsafe(localLen + data.length + centralLen + 22);
  let p = 0;
  out.writeUInt32LE(SIG_LOCAL, p);
  out.writeUInt16LE(VERSION_DEFAULT, p + 4);
  out.writeUInt16LE(flags, p + 6);
  out.writeUInt16LE(method, p + 8);
  out.writeUInt16LE(time, p + 10);
  out.writeUInt16LE(date, p + 12);
  out.writeUInt32LE(crc, p + 14);
  out.writeUInt32LE(data.length, p + 18);
  out.writeUInt32LE(content.length, p + 22);
  out.writeUInt16LE(nameBytes.length, p + 26);
  out.writeUInt16LE(UT_EXTRA_BYTES, p + 28);
  p += 30;
  p += nameBytes.copy(out, p);
  p = writeUtExtra(out, p, mtimeMs);
  out.set(data, p);
  p += data.length;
  const cdStart = p;
  out.writeUInt32LE(SIG_CENTRAL, p);
  out.writeUInt16LE(VERSION_DEFAULT, p + 4);
  out.writeUInt16LE(VERSION_DEFAULT, p + 6);
  out.writeUInt16LE(flags, p + 8);
  out.writeUInt16LE(method, p + 10);
  out.writeUInt16LE(time, p + 12);
  out.writeUInt16LE(date, p + 14);
  out.writeUInt32LE(crc, p + 16);
  out.writeUInt32LE(data.length, p + 20);
  out.writeUInt32LE(content.length, p + 24);
  out.writeUInt16LE(nameBytes.length, p + 28);
  out.writeUInt16LE(UT_EXTRA_BYTES, p + 30);
  out.writeUInt16LE(0, p + 32); // comment
  out.writeUInt16LE(0, p + 34); // disk
  out.writeUInt16LE(0, p + 36); // internal attributes
  out.writeUInt32LE(ATTR_ARCHIVE, p + 38);
  out.writeUInt32LE(0, p + 42); // local header offset
  p += 46;
  p += nameBytes.copy(out, p);
  p = writeUtExtra(out, p, mtimeMs);
  const cdSize = p - cdStart;
  out.writeUInt32LE(SIG_EOCD, p);
  out.writeUInt16LE(0, p + 4);
  out.writeUInt16LE(0, p + 6);
  out.writeUInt16LE(1, p + 8);
  out.writeUInt16LE(1, p + 10);
  out.writeUInt32LE(cdSize, p + 12);
  out.writeUInt32LE(cdStart, p + 16);
  out.writeUInt16LE(0, p + 20);
  return out;
}

/** What an added entry looks like (sizes in bytes). */
export interface ZipEntryOptions {
  /** Modification time, ms since epoch (written as JST DOS time plus a UTC extended timestamp). */
  mtimeMs: number;
  /** CRC-32 of the uncompressed data, when already known (copies); computed otherwise. */
  crc32?: number;
}

export interface ZipWriteResult {
  /** Final path of the archive. */
  path: string;
  bytes: number;
  /** SHA-256 hex of the whole archive. */
  sha256: string;
  entries: number;
  zip64: boolean;
}

/** A byte sink that keeps up to `memoryLimit` bytes in memory, then spills to a temporary file. */
class SpillBuffer {
  private chunks: Buffer[] = [];
  private inMemory = 0;
  private fd: number | undefined;
  size = 0;
  constructor(
    private readonly spillPath: string,
    private readonly memoryLimit: number,
  ) {}
  push(b: Buffer): void {
    this.size += b.length;
    if (this.fd !== undefined) {
      writeSync(this.fd, b);
      return;
    }
    this.chunks.push(b);
    this.inMemory += b.length;
    if (this.inMemory > this.memoryLimit) {
      this.fd = openSync(this.spillPath, 'w+');
      for (const c of this.chunks) writeSync(this.fd, c);
      this.chunks = [];
      this.inMemory = 0;
    }
  }
  /** Hands every byte, in order, to `sink`. */
  drain(sink: (b: Buffer) => void): void {
    if (this.fd === undefined) {
      for (const c of this.chunks) sink(c);
      return;
    }
    const chunk = Buffer.allocUnsafe(1 << 20);
    let at = 0;
    for (;;) {
      const n = readSync(this.fd, chunk, 0, chunk.length, at);
      if (n === 0) break;
      sink(chunk.subarray(0, n));
      at += n;
    }
  }
  dispose(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
      rmSync(this.spillPath, { force: true });
    }
    this.chunks = [];
  }
}

/**
 * Streams a zip archive to `path`. The file is written as `path.<random>.tmp`
 * and renamed into place by `finish()`, so a reader never sees half an
 * archive; `abort()` removes it.
 */
export class ZipFileWriter {
  readonly path: string;
  private readonly tmpPath: string;
  private fd: number | undefined;
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private bufUsed = 0;
  /** Bytes of the archive so far, buffered ones included. */
  private offset = 0;
  private readonly hash: Hash = createHash('sha256');
  private readonly central: SpillBuffer;
  private count = 0;
  private anyZip64 = false;
  private done = false;

  constructor(path: string) {
    this.path = path;
    this.tmpPath = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    this.fd = openSync(this.tmpPath, 'w');
    this.central = new SpillBuffer(`${this.tmpPath}.cd`, 16 << 20);
  }

  /** Entries added so far. */
  get entries(): number {
    return this.count;
  }

  /** Archive bytes written so far. */
  get bytesWritten(): number {
    return this.offset;
  }

  private flush(): void {
    if (this.bufUsed === 0) return;
    const chunk = this.buf.subarray(0, this.bufUsed);
    this.hash.update(chunk);
    writeSync(this.fd!, chunk);
    this.bufUsed = 0;
  }

  private write(data: Uint8Array): void {
    if (data.length > this.buf.length - this.bufUsed) {
      this.flush();
      if (data.length >= this.buf.length) {
        this.hash.update(data);
        writeSync(this.fd!, data);
        this.offset += data.length;
        return;
      }
    }
    this.buf.set(data, this.bufUsed);
    this.bufUsed += data.length;
    this.offset += data.length;
  }

  /** Adds a directory entry (`name` must end with `/`). */
  addDirectory(name: string, mtimeMs: number): void {
    if (!name.endsWith('/')) throw new RangeError('a directory entry name ends with /');
    this.addEntry(name, METHOD_STORE, 0, 0, 0, mtimeMs, true);
  }

  /**
   * Adds `data` as a STOREd entry (inner zips are already compressed).
   * Returns the CRC-32 written.
   */
  addStored(name: string, data: Uint8Array, options: ZipEntryOptions): number {
    const crc = options.crc32 ?? crc32(data);
    this.addEntry(name, METHOD_STORE, crc, data.length, data.length, options.mtimeMs, false);
    this.write(data);
    return crc;
  }

  /**
   * Adds `data` deflated at `level` (1-9), or STOREd when deflate would not
   * shrink it (network-log JSON lines of the daily archive). Returns the CRC-32.
   */
  addDeflated(name: string, data: Uint8Array, options: ZipEntryOptions & { level: number }): number {
    const crc = options.crc32 ?? crc32(data);
    const deflated = deflateRawSync(data, { level: options.level });
    if (deflated.length >= data.length) return this.addStored(name, data, { ...options, crc32: crc });
    this.addEntry(name, METHOD_DEFLATE, crc, deflated.length, data.length, options.mtimeMs, false);
    this.write(deflated);
    return crc;
  }

  /**
   * Adds an entry whose (compressed) bytes are copied from `length` bytes of an
   * open file at `position`, as they are: how inner zips move from a cold
   * archive into a log-spot archive without being read into memory whole or
   * recompressed.
   */
  addRawFromFile(
    name: string,
    source: { fd: number; position: number; length: number; method: number; crc32: number; uncompressedSize: number },
    mtimeMs: number,
  ): void {
    this.addEntry(name, source.method, source.crc32, source.length, source.uncompressedSize, mtimeMs, false);
    let left = source.length;
    let at = source.position;
    while (left > 0) {
      if (this.bufUsed === this.buf.length) this.flush();
      const want = Math.min(left, this.buf.length - this.bufUsed);
      const n = readSync(source.fd, this.buf, this.bufUsed, want, at);
      if (n === 0) throw new Error('source archive ended early');
      this.bufUsed += n;
      this.offset += n;
      at += n;
      left -= n;
    }
  }

  private addEntry(name: string, method: number, crc: number, compressedSize: number, uncompressedSize: number, mtimeMs: number, dir: boolean): void {
    if (this.done) throw new Error('archive already finished');
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length > U16_MAX) throw new RangeError('entry name too long');
    const flags = isAscii(name) ? 0 : FLAG_UTF8;
    const { date, time } = dosDateTime(mtimeMs);
    const headerOffset = this.offset;
    const bigSizes = compressedSize >= U32_MAX || uncompressedSize >= U32_MAX;
    const bigOffset = headerOffset >= U32_MAX;
    const version = bigSizes || bigOffset ? VERSION_ZIP64 : VERSION_DEFAULT;

    // Local header: sizes are known, so they are written here (zip64 extra when they overflow).
    const localExtra = UT_EXTRA_BYTES + (bigSizes ? 20 : 0);
    const local = Buffer.allocUnsafe(30 + nameBytes.length + localExtra);
    local.writeUInt32LE(SIG_LOCAL, 0);
    local.writeUInt16LE(version, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(bigSizes ? U32_MAX : compressedSize, 18);
    local.writeUInt32LE(bigSizes ? U32_MAX : uncompressedSize, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(localExtra, 28);
    let p = 30 + nameBytes.copy(local, 30);
    if (bigSizes) {
      local.writeUInt16LE(0x0001, p);
      local.writeUInt16LE(16, p + 2);
      writeU64(local, uncompressedSize, p + 4);
      writeU64(local, compressedSize, p + 12);
      p += 20;
    }
    writeUtExtra(local, p, mtimeMs);
    this.write(local);

    // Central header: the zip64 extra holds exactly the fields that overflow, in APPNOTE order.
    const z64Fields = (uncompressedSize >= U32_MAX ? 1 : 0) + (compressedSize >= U32_MAX ? 1 : 0) + (bigOffset ? 1 : 0);
    const centralExtra = UT_EXTRA_BYTES + (z64Fields > 0 ? 4 + 8 * z64Fields : 0);
    const cd = Buffer.allocUnsafe(46 + nameBytes.length + centralExtra);
    cd.writeUInt32LE(SIG_CENTRAL, 0);
    cd.writeUInt16LE(version, 4);
    cd.writeUInt16LE(version, 6);
    cd.writeUInt16LE(flags, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt16LE(time, 12);
    cd.writeUInt16LE(date, 14);
    cd.writeUInt32LE(crc >>> 0, 16);
    cd.writeUInt32LE(compressedSize >= U32_MAX ? U32_MAX : compressedSize, 20);
    cd.writeUInt32LE(uncompressedSize >= U32_MAX ? U32_MAX : uncompressedSize, 24);
    cd.writeUInt16LE(nameBytes.length, 28);
    cd.writeUInt16LE(centralExtra, 30);
    cd.writeUInt16LE(0, 32);
    cd.writeUInt16LE(0, 34);
    cd.writeUInt16LE(0, 36);
    cd.writeUInt32LE(dir ? ATTR_DIRECTORY : ATTR_ARCHIVE, 38);
    cd.writeUInt32LE(bigOffset ? U32_MAX : headerOffset, 42);
    p = 46 + nameBytes.copy(cd, 46);
    if (z64Fields > 0) {
      cd.writeUInt16LE(0x0001, p);
      cd.writeUInt16LE(8 * z64Fields, p + 2);
      p += 4;
      if (uncompressedSize >= U32_MAX) (writeU64(cd, uncompressedSize, p), (p += 8));
      if (compressedSize >= U32_MAX) (writeU64(cd, compressedSize, p), (p += 8));
      if (bigOffset) (writeU64(cd, headerOffset, p), (p += 8));
      this.anyZip64 = true;
    }
    writeUtExtra(cd, p, mtimeMs);
    this.central.push(cd);
    this.count++;
  }

  /** Writes the central directory and end records, then moves the archive into place. */
  finish(): ZipWriteResult {
    if (this.done) throw new Error('archive already finished');
    this.done = true;
    try {
      const cdOffset = this.offset;
      this.central.drain((b) => this.write(b));
      const cdSize = this.central.size;
      const zip64 = this.anyZip64 || this.count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
      if (zip64) {
        const zip64EocdOffset = this.offset;
        const rec = Buffer.alloc(56 + 20);
        rec.writeUInt32LE(SIG_ZIP64_EOCD, 0);
        writeU64(rec, 44, 4);
        rec.writeUInt16LE(VERSION_ZIP64, 12);
        rec.writeUInt16LE(VERSION_ZIP64, 14);
        rec.writeUInt32LE(0, 16);
        rec.writeUInt32LE(0, 20);
        writeU64(rec, this.count, 24);
        writeU64(rec, this.count, 32);
        writeU64(rec, cdSize, 40);
        writeU64(rec, cdOffset, 48);
        rec.writeUInt32LE(SIG_ZIP64_LOCATOR, 56);
        rec.writeUInt32LE(0, 60);
        writeU64(rec, zip64EocdOffset, 64);
        rec.writeUInt32LE(1, 72);
        this.write(rec);
      }
      const eocd = Buffer.alloc(22);
      eocd.writeUInt32LE(SIG_EOCD, 0);
      const n16 = this.count >= U16_MAX ? U16_MAX : this.count;
      eocd.writeUInt16LE(n16, 8);
      eocd.writeUInt16LE(n16, 10);
      eocd.writeUInt32LE(cdSize >= U32_MAX ? U32_MAX : cdSize, 12);
      eocd.writeUInt32LE(cdOffset >= U32_MAX ? U32_MAX : cdOffset, 16);
      this.write(eocd);
      this.flush();
      closeSync(this.fd!);
      this.fd = undefined;
      renameSync(this.tmpPath, this.path);
      return { path: this.path, bytes: this.offset, sha256: this.hash.digest('hex'), entries: this.count, zip64 };
    } catch (err) {
      this.abort();
      throw err;
    } finally {
      this.central.dispose();
    }
  }

  /** Stops and removes the partial archive. Safe to call more than once. */
  abort(): void {
    this.done = true;
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    this.central.dispose();
    rmSync(this.tmpPath, { force: true });
  }
}
