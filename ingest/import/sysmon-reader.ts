/**
 * Reads exported event records: JSON lines (one object per line), plain,
 * gzip-compressed, or zipped (every file of the archive, each plain or
 * gzipped), and Windows .evtx files (evtx/, records in the evtx-dump JSON
 * layout). The format is recognised by its first bytes, not by the file
 * name. Lines are streamed, so an input's text is never held whole; a line
 * that is not a JSON object is reported with its file and line number and the
 * reading goes on. Blank lines are ignored.
 *
 * Bounds (issue 11, "also seen": a gzip bomb killed the import with a stack
 * trace, and its memory grew without bound): lines are split from the byte
 * stream by hand, never holding more than one line of `MAX_LINE_CHARS`
 * bytes (a longer line is skipped as `line_too_long` without being
 * buffered); a line nested deeper than `MAX_JSON_DEPTH` is `too_deep`; a
 * compressed input may expand to at most `maxExpandedBytes(compressed)`
 * (ERR_INPUT_TOO_LARGE).
 */
import { createReadStream, statSync } from 'node:fs';
import { open as openFile, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import yauzl from 'yauzl';
import { evtxReadItems, type EvtxBadItemReason } from './evtx/evtx-source.js';
import { KisekiError } from '../../core/errors.js';

export interface RecordLine {
  /** The input file, or `archive.zip!entry` for a zip member. */
  file: string;
  /** 1-based line number inside `file`; for .evtx, the record number (0: a file or chunk issue). */
  line: number;
}

export type ReadItem = (RecordLine & { ok: true; record: Record<string, unknown> }) | (RecordLine & { ok: false; reason: BadLineReason; detail?: string });

export type BadLineReason = 'invalid_json' | 'not_an_object' | 'line_too_long' | 'too_deep' | EvtxBadItemReason;

/** Longest line accepted (bytes of UTF-16 text); one record is a few KiB at most. */
export const MAX_LINE_CHARS = 1024 * 1024;

/** Total uncompressed bytes read from one gzip or zip input: a guard against bombs (4 GiB). */
const MAX_EXPANDED_BYTES = 4 * 1024 * 1024 * 1024;

/** Deepest nesting of objects and arrays accepted in a line (Sysmon records are 2-3 deep). */
export const MAX_JSON_DEPTH = 32;

/**
 * How far a compressed input of `compressedBytes` may expand: 256 MiB, or
 * 200 times its size when that is more (exported JSON compresses 10-30x;
 * a bomb of zeros 1,000x), and never beyond 4 GiB.
 */
export function maxExpandedBytes(compressedBytes: number): number {
  return Math.min(MAX_EXPANDED_BYTES, Math.max(256 * 1024 * 1024, compressedBytes * 200));
}

function tooLarge(file: string, limitBytes: number): KisekiError {
  return new KisekiError('ERR_INPUT_TOO_LARGE', {
    file,
    limitBytes,
    reason: `${file}: expands beyond ${limitBytes} bytes (a compression bomb, or an export too big for one import): split it into smaller files`,
  });
}

/**
 * Depth of the deepest object or array in a JSON text, stopping early past
 * `limit`: a scan of the characters outside strings, cheaper than a parse.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** The error for an input that cannot be read at all (missing, unreadable, a broken archive). */
export function inputError(file: string, reason: string): KisekiError {
  return new KisekiError('ERR_INPUT_UNREADABLE', { file, reason: `${file}: ${reason}` });
}

type Kind = 'gzip' | 'zip' | 'evtx' | 'text';

async function sniff(path: string): Promise<Kind> {
  let handle;
  try {
    handle = await openFile(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw inputError(path, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : `cannot open (${code ?? 'error'})`);
  }
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await handle.read(head, 0, 8, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (bytesRead === 8 && head.toString('latin1') === 'ElfFile\0') return 'evtx';
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    return 'text';
  } finally {
    await handle.close();
  }
}

function gunzipIfNeeded(stream: Readable, name: string): Readable {
  // Zip members are sniffed by name: their first bytes are not at hand before reading.
  return /\.gz$/i.test(name) ? stream.pipe(createGunzip()) : stream;
}

/**
 * Splits a byte stream into lines (LF, with a CR before it dropped) without
 * ever buffering more than `MAX_LINE_CHARS` bytes of one line: the bytes of a
 * longer line are dropped as they come and the line is reported once.
 * `expandLimit` bounds the total bytes read (compressed inputs).
 */
async function* linesOf(stream: Readable, file: string, expandLimit?: number): AsyncGenerator<ReadItem> {
  const errors: Error[] = [];
  stream.on('error', (err: Error) => errors.push(err));
  let line = 0;
  let total = 0;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let overlong = false;
  const finish = (): ReadItem | undefined => {
    line++;
    const wasOverlong = overlong;
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    overlong = false;
    if (wasOverlong) return { ok: false, file, line, reason: 'line_too_long' };
    let s = buf.toString('utf8');
    if (s.endsWith('\r')) s = s.slice(0, -1);
    if (line === 1) s = s.replace(/^\uFEFF/, '');
    return parseLine(s, file, line);
  };
  const append = (chunk: Buffer): void => {
    if (overlong) return;
    if (partBytes + chunk.length > MAX_LINE_CHARS) {
      overlong = true;
      parts = [];
      partBytes = 0;
      return;
    }
    parts.push(chunk);
    partBytes += chunk.length;
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (expandLimit !== undefined && total > expandLimit) {
        stream.destroy();
        throw tooLarge(file, expandLimit);
      }
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl === -1) break;
        append(chunk.subarray(start, nl));
        const item = finish();
        if (item !== undefined) yield item;
        start = nl + 1;
      }
      if (start < chunk.length) append(Buffer.from(chunk.subarray(start)));
    }
    if (partBytes > 0 || overlong) {
      const item = finish();
      if (item !== undefined) yield item;
    }
  } catch (err) {
    if (err instanceof KisekiError) throw err;
    errors.push(err as Error);
  }
  if (errors.length > 0) throw inputError(file, `cannot be read: ${errors[0]!.message}`);
}

/** One line's item: blank lines give none. */
function parseLine(s: string, file: string, line: number): ReadItem | undefined {
  if (s.trim() === '') return undefined;
  if (jsonDepthExceeds(s, MAX_JSON_DEPTH)) return { ok: false, file, line, reason: 'too_deep' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch {
    return { ok: false, file, line, reason: 'invalid_json' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, file, line, reason: 'not_an_object' };
  return { ok: true, file, line, record: parsed as Record<string, unknown> };
}

/** Largest zip read whole into memory to drop bytes after its end record (see `trimAfterEndRecord`). */
const MAX_TRIMMED_ZIP_BYTES = 256 * 1024 * 1024;

/**
 * The archive without bytes appended after its end-of-central-directory
 * record, or undefined when it has none to drop. Real exports carry such
 * tails (an OTRF dataset zip ends with a stray newline: unzip reads it,
 * yauzl refuses it as "Invalid comment length").
 */
export function trimAfterEndRecord(buf: Buffer): Buffer | undefined {
  // The end record is 22 bytes plus a comment of at most 65,535 bytes: search backwards from the end.
  const from = Math.max(0, buf.length - 22 - 65_535 - 1024);
  for (let i = buf.length - 22; i >= from; i--) {
    if (buf.readUInt32LE(i) !== 0x06054b50) continue;
    const end = i + 22 + buf.readUInt16LE(i + 20);
    if (end < buf.length) return buf.subarray(0, end);
    return undefined;
  }
  return undefined;
}

const ZIP_OPTIONS = { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true };

async function openZip(path: string): Promise<yauzl.ZipFile> {
  const fail = (err: Error | null) => inputError(path, `is not a readable zip archive: ${err?.message ?? 'unknown error'}`);
  const opened = await new Promise<{ zip?: yauzl.ZipFile; err: Error | null }>((resolve) => {
    yauzl.open(path, ZIP_OPTIONS, (err, zip) => resolve(err === null && zip !== undefined ? { zip, err: null } : { err }));
  });
  if (opened.zip !== undefined) return opened.zip;
  // Only a tail after the end record is forgiven, and only for archives small enough to hold.
  if (!/comment length/i.test(opened.err?.message ?? '') || statSync(path).size > MAX_TRIMMED_ZIP_BYTES) throw fail(opened.err);
  const trimmed = trimAfterEndRecord(await readFile(path));
  if (trimmed === undefined) throw fail(opened.err);
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(trimmed, ZIP_OPTIONS, (err, zip) => {
      if (err !== null || zip === undefined) reject(fail(err));
      else resolve(zip);
    });
  });
}

async function* zipRecords(path: string): AsyncGenerator<ReadItem> {
  const zip = await openZip(path);
  const limit = maxExpandedBytes(statSync(path).size);
  let total = 0;
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
        const onEntry = (e: yauzl.Entry) => {
          zip.off('end', onEnd);
          zip.off('error', onError);
          resolve(e);
        };
        const onEnd = () => {
          zip.off('entry', onEntry);
          zip.off('error', onError);
          resolve(undefined);
        };
        const onError = (err: Error) => {
          zip.off('entry', onEntry);
          zip.off('end', onEnd);
          reject(inputError(path, `is a broken zip archive: ${err.message}`));
        };
        zip.once('entry', onEntry);
        zip.once('end', onEnd);
        zip.once('error', onError);
        zip.readEntry();
      });
      if (entry === undefined) return;
      if (entry.fileName.endsWith('/')) continue;
      total += entry.uncompressedSize;
      if (total > limit) throw tooLarge(path, limit);
      const stream = await new Promise<Readable>((resolve, reject) => {
        zip.openReadStream(entry, (err, s) => {
          if (err !== null || s === undefined) reject(inputError(`${path}!${entry.fileName}`, `cannot be read: ${err?.message ?? 'unknown error'}`));
          else resolve(s);
        });
      });
      // A gzipped member expands once more: it gets the archive's whole budget, not more.
      yield* linesOf(gunzipIfNeeded(stream, entry.fileName), `${path}!${entry.fileName}`, limit);
    }
  } finally {
    zip.close();
  }
}

/**
 * Streams the records of one input file.
 * @throws KisekiError ERR_INPUT_UNREADABLE when the file is missing or cannot be read as text, gzip or zip
 *   (an unreadable .evtx gives bad items instead).
 */
export async function* readRecords(path: string): AsyncGenerator<ReadItem> {
  const kind = await sniff(path);
  if (kind === 'evtx') {
    yield* evtxReadItems(path);
    return;
  }
  if (kind === 'zip') {
    yield* zipRecords(path);
    return;
  }
  const raw = createReadStream(path);
  const stream = kind === 'gzip' ? raw.pipe(createGunzip()) : raw;
  if (kind === 'gzip') raw.on('error', (err) => stream.destroy(err));
  try {
    yield* linesOf(stream, path, kind === 'gzip' ? maxExpandedBytes(statSync(path).size) : undefined);
  } finally {
    // Stopped early (a bomb, or the caller gave up): close the file now, not at garbage collection.
    raw.destroy();
  }
}
