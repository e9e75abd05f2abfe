/**
 * Reads Windows event log files (.evtx): the file header (CRC32 of its first
 * 120 bytes), then 64 KiB chunks ("ElfChnk", header and record-data CRC32s,
 * their own string and template tables), then the records in each chunk
 * (magic 0x2a2a, size, record number, FILETIME, BinXML, size copy).
 *
 * Records are yielded lazily, one chunk in memory at a time (a file is read
 * through one 64 KiB buffer), so memory stays bounded whatever the file size.
 * Anything wrong (not an .evtx, CRC mismatch, dirty header, truncated chunk,
 * malformed record or BinXML) is yielded as an issue with a reason and the
 * reading goes on with what can still be trusted; nothing throws past these
 * generators. Records of a chunk whose CRC does not match are still yielded
 * (after the issue): a copied live log often has a stale checksum in its last
 * chunk, and the records themselves are checked one by one.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { isKisekiError } from '../../../core/errors.js';
import { createChunkContext, parseRecordXml } from './binxml.js';
import type { EvtxIssue, EvtxItem } from './evtx-types.js';

/** File header block size (the first chunk starts here). */
export const EVTX_HEADER_BYTES = 4096;
/** Chunk size. */
export const EVTX_CHUNK_BYTES = 65536;
/** Chunk header size (records start here). */
const CHUNK_HEADER_BYTES = 512;
const RECORD_MAGIC = 0x00002a2a;
const FILE_MAGIC = 'ElfFile\0';
const CHUNK_MAGIC = 'ElfChnk\0';

/** FILETIME ticks between 1601-01-01 and 1970-01-01. */
const EPOCH_DELTA_TICKS = 116444736000000000n;

/**
 * A FILETIME (100 ns ticks since 1601) as ISO 8601 UTC with seven fractional
 * digits, the precision Windows keeps (`2019-03-19T23:34:25.6345540Z`).
 */
export function filetimeToIso(ticks: bigint): string {
  const unix = ticks - EPOCH_DELTA_TICKS;
  let secs = unix / 10_000_000n;
  let frac = unix % 10_000_000n;
  if (frac < 0n) {
    frac += 10_000_000n;
    secs -= 1n;
  }
  const base = new Date(Number(secs) * 1000).toISOString();
  return `${base.slice(0, 19)}.${frac.toString().padStart(7, '0')}Z`;
}

/** True when the buffer starts like an .evtx file ("ElfFile\0"). */
export function isEvtxHeader(head: Uint8Array): boolean {
  return head.length >= 8 && Buffer.from(head.buffer, head.byteOffset, 8).toString('latin1') === FILE_MAGIC;
}

interface HeaderCheck {
  ok: boolean;
  issues: EvtxIssue[];
}

/** Checks the file header; `ok: false` means the file cannot be read as .evtx at all. */
function checkFileHeader(head: Buffer, fileBytes: number): HeaderCheck {
  if (fileBytes < 128 || !isEvtxHeader(head)) {
    return { ok: false, issues: [{ reason: fileBytes < 8 || !isEvtxHeader(head) ? 'not_evtx' : 'truncated_file', offset: 0 }] };
  }
  const issues: EvtxIssue[] = [];
  const stored = head.readUInt32LE(124);
  const computed = crc32(head.subarray(0, 120));
  if (stored !== computed) issues.push({ reason: 'file_header_crc_mismatch', offset: 0, detail: `stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}` });
  const minor = head.readUInt16LE(36);
  const major = head.readUInt16LE(38);
  if (major !== 3 || (minor !== 1 && minor !== 2)) issues.push({ reason: 'unsupported_version', offset: 36, detail: `version ${major}.${minor}` });
  // Windows sets the dirty flag while the log is open; a copy taken then may miss header updates.
  if ((head.readUInt32LE(120) & 1) !== 0) issues.push({ reason: 'dirty_file', offset: 120 });
  if (fileBytes < EVTX_HEADER_BYTES) issues.push({ reason: 'truncated_file', offset: 0, detail: `${fileBytes} bytes, header block is ${EVTX_HEADER_BYTES}` });
  return { ok: true, issues };
}

function allZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * The records of one chunk. `chunk` may be shorter than 64 KiB (a truncated
 * file): records wholly inside it are still read.
 * @param index 0-based chunk number; `fileOffset` where the chunk starts in the file
 */
export function* readChunk(chunk: Buffer, index: number, fileOffset: number): Generator<EvtxItem> {
  const issue = (i: EvtxIssue): EvtxItem => ({ kind: 'issue', issue: { chunk: index, ...i } });
  if (chunk.length < EVTX_CHUNK_BYTES) {
    yield issue({ reason: 'truncated_chunk', offset: fileOffset, detail: `${chunk.length} of ${EVTX_CHUNK_BYTES} bytes` });
    if (chunk.length < CHUNK_HEADER_BYTES) return;
  }
  if (chunk.toString('latin1', 0, 8) !== CHUNK_MAGIC) {
    // Pre-allocated space at the end of a log is zero-filled: nothing to report.
    if (!allZero(chunk)) yield issue({ reason: 'bad_chunk_magic', offset: fileOffset });
    return;
  }
  const storedHeaderCrc = chunk.readUInt32LE(124);
  const headerCrc = crc32(chunk.subarray(128, CHUNK_HEADER_BYTES), crc32(chunk.subarray(0, 120)));
  if (storedHeaderCrc !== headerCrc) yield issue({ reason: 'chunk_header_crc_mismatch', offset: fileOffset });
  let free = chunk.readUInt32LE(48);
  if (free < CHUNK_HEADER_BYTES || free > EVTX_CHUNK_BYTES) {
    yield issue({ reason: 'bad_record', offset: fileOffset + 48, detail: `free-space offset 0x${free.toString(16)} outside the chunk` });
    free = chunk.length;
  } else if (free > chunk.length) {
    free = chunk.length;
  } else if (chunk.readUInt32LE(52) !== crc32(chunk.subarray(CHUNK_HEADER_BYTES, free))) {
    yield issue({ reason: 'chunk_data_crc_mismatch', offset: fileOffset });
  }
  const ctx = createChunkContext(chunk);
  let off = CHUNK_HEADER_BYTES;
  while (off + 24 <= free) {
    const magic = chunk.readUInt32LE(off);
    const size = chunk.readUInt32LE(off + 4);
    if (magic !== RECORD_MAGIC || size === 0) {
      // Zeroes after the last record of a chunk whose header was not updated: the end.
      if (magic !== 0 || size !== 0) yield issue({ reason: 'bad_record', offset: fileOffset + off, detail: 'no record magic' });
      return;
    }
    if (size < 28 || off + size > free) {
      yield issue({ reason: 'bad_record', offset: fileOffset + off, detail: `record size ${size} does not fit the chunk` });
      return;
    }
    const recordId = Number(chunk.readBigUInt64LE(off + 8));
    if (chunk.readUInt32LE(off + size - 4) !== size) {
      yield issue({ reason: 'bad_record', offset: fileOffset + off, recordId, detail: 'size copy at the record end differs' });
    }
    let nodes;
    try {
      nodes = parseRecordXml(ctx, off + 24, off + size - 4);
    } catch (err) {
      // A bounds check this parser missed must still cost one record, not the file.
      const malformed = isKisekiError(err, 'ERR_EVTX_MALFORMED');
      const at = malformed && typeof err.details?.at === 'number' ? err.details.at : off;
      const detail = malformed ? String(err.details?.reason) : err instanceof Error ? err.message : String(err);
      yield issue({ reason: 'binxml_error', offset: fileOffset + at, recordId, detail });
      off += size;
      continue;
    }
    const filetime = chunk.readBigUInt64LE(off + 16);
    yield { kind: 'record', record: { recordId, filetime, timestamp: filetimeToIso(filetime), chunk: index, offset: fileOffset + off, nodes } };
    off += size;
  }
}

/**
 * Reads a whole .evtx file held in memory. Never throws: problems are issues.
 * @param buf the file's bytes
 */
export function* readEvtxBuffer(buf: Buffer): Generator<EvtxItem> {
  try {
    const check = checkFileHeader(buf.subarray(0, Math.min(buf.length, EVTX_HEADER_BYTES)), buf.length);
    for (const issue of check.issues) yield { kind: 'issue', issue };
    if (!check.ok) return;
    for (let off = EVTX_HEADER_BYTES, index = 0; off < buf.length; off += EVTX_CHUNK_BYTES, index++) {
      yield* readChunk(buf.subarray(off, Math.min(buf.length, off + EVTX_CHUNK_BYTES)), index, off);
    }
  } catch (err) {
    yield { kind: 'issue', issue: { reason: 'read_error', detail: err instanceof Error ? err.message : String(err) } };
  }
}

/**
 * Streams the records of an .evtx file, one chunk (64 KiB) in memory at a
 * time. Never throws: a file that cannot be opened or read is a `read_error`
 * issue, one that is not an .evtx a `not_evtx` issue.
 *
 * The reads are synchronous, one 64 KiB chunk per call, between yields: an
 * asynchronous read per chunk costs several times the CPU of decoding the
 * chunk's records (bench/micro/evtx.bench.ts, "records" vs "parser alone"),
 * and a 64 KiB read blocks the event loop for microseconds.
 * @param path the file to read
 */
export async function* readEvtxFile(path: string): AsyncGenerator<EvtxItem> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    yield { kind: 'issue', issue: { reason: 'read_error', detail: (err as NodeJS.ErrnoException).code ?? 'cannot open' } };
    return;
  }
  try {
    const size = fstatSync(fd).size;
    // The header block and the first chunk in one read: most copied logs are small.
    const first = Buffer.alloc(Math.min(size, EVTX_HEADER_BYTES + EVTX_CHUNK_BYTES));
    const firstBytes = readFully(fd, first, 0);
    const check = checkFileHeader(first.subarray(0, Math.min(firstBytes, EVTX_HEADER_BYTES)), size);
    for (const issue of check.issues) yield { kind: 'issue', issue };
    if (!check.ok) return;
    if (firstBytes > EVTX_HEADER_BYTES) yield* readChunk(first.subarray(EVTX_HEADER_BYTES, firstBytes), 0, EVTX_HEADER_BYTES);
    // One buffer for every further chunk: a chunk's records are decoded (strings and bytes copied) before the next read.
    const chunk = Buffer.alloc(EVTX_CHUNK_BYTES);
    for (let off = EVTX_HEADER_BYTES + EVTX_CHUNK_BYTES, index = 1; off < size; off += EVTX_CHUNK_BYTES, index++) {
      const got = readFully(fd, chunk.subarray(0, Math.min(EVTX_CHUNK_BYTES, size - off)), off);
      yield* readChunk(chunk.subarray(0, got), index, off);
    }
  } catch (err) {
    yield { kind: 'issue', issue: { reason: 'read_error', detail: err instanceof Error ? err.message : String(err) } };
  } finally {
    closeSync(fd);
  }
}

/** Fills `buf` from `position` (fewer bytes only at the end of the file); returns the bytes read. */
function readFully(fd: number, buf: Buffer, position: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
