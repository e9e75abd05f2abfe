/**
 * Reads exported event records: JSON lines (one object per line), plain,
 * gzip-compressed, or zipped (every file of the archive, each plain or
 * gzipped), and Windows .evtx files (evtx/, records in the evtx-dump JSON
 * layout). The format is recognised by its first bytes, not by the file
 * name. Lines are streamed, so an input's text is never held whole; a line
 * that is not a JSON object is reported with its file and line number and the
 * reading goes on. Blank lines are ignored.
 */
import { createReadStream } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
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

export type BadLineReason = 'invalid_json' | 'not_an_object' | 'line_too_long' | EvtxBadItemReason;

/** Longest line accepted (bytes of UTF-16 text); one record is a few KiB at most. */
export const MAX_LINE_CHARS = 1024 * 1024;

/** Total uncompressed bytes read from one zip archive: a guard against zip bombs (4 GiB). */
const MAX_ZIP_BYTES = 4 * 1024 * 1024 * 1024;

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

async function* linesOf(stream: Readable, file: string): AsyncGenerator<ReadItem> {
  const errors: Error[] = [];
  stream.on('error', (err: Error) => errors.push(err));
  const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      const s = line === 1 ? text.replace(/^\uFEFF/, '') : text;
      if (s.trim() === '') continue;
      if (s.length > MAX_LINE_CHARS) {
        yield { ok: false, file, line, reason: 'line_too_long' };
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(s);
      } catch {
        yield { ok: false, file, line, reason: 'invalid_json' };
        continue;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        yield { ok: false, file, line, reason: 'not_an_object' };
        continue;
      }
      yield { ok: true, file, line, record: parsed as Record<string, unknown> };
    }
  } catch (err) {
    errors.push(err as Error);
  }
  if (errors.length > 0) throw inputError(file, `cannot be read: ${errors[0]!.message}`);
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true }, (err, zip) => {
      if (err !== null || zip === undefined) reject(inputError(path, `is not a readable zip archive: ${err?.message ?? 'unknown error'}`));
      else resolve(zip);
    });
  });
}

async function* zipRecords(path: string): AsyncGenerator<ReadItem> {
  const zip = await openZip(path);
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
      if (total > MAX_ZIP_BYTES) throw inputError(path, 'expands to more than 4 GiB');
      const stream = await new Promise<Readable>((resolve, reject) => {
        zip.openReadStream(entry, (err, s) => {
          if (err !== null || s === undefined) reject(inputError(`${path}!${entry.fileName}`, `cannot be read: ${err?.message ?? 'unknown error'}`));
          else resolve(s);
        });
      });
      yield* linesOf(gunzipIfNeeded(stream, entry.fileName), `${path}!${entry.fileName}`);
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
  yield* linesOf(stream, path);
}
