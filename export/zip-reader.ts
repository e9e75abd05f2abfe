/**
 * Just enough of a zip reader to copy entries out of the cold archives without
 * decompressing them: the end records (Zip64 included), the central directory,
 * and where each entry's bytes start. Synchronous, for the export workers.
 * Independent readers (`unzip`, Python `zipfile`, yauzl) check these archives
 * in the tests.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** DOS date and time fields as stored. */
  dosDate: number;
  dosTime: number;
}

export interface ZipReader {
  readonly fd: number;
  readonly entries: readonly ZipEntry[];
  /** File offset of an entry's (compressed) data. */
  dataOffset(entry: ZipEntry): number;
  /** An entry's raw (compressed) bytes. */
  readRaw(entry: ZipEntry): Buffer;
  close(): void;
}

function read(fd: number, position: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, b, got, length - got, position + got);
    if (n === 0) throw new Error('unexpected end of zip file');
    got += n;
  }
  return b;
}

function u64(b: Buffer, at: number): number {
  return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 0x1_0000_0000;
}

/**
 * Opens a zip archive and reads its central directory.
 * @throws Error when the file is not a zip archive this reader understands.
 */
export function openZipReader(path: string): ZipReader {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = read(fd, size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error('not a zip file: no end of central directory record');
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    const eocdPos = size - tailLen + eocd;
    if (eocdPos >= 20) {
      const locator = read(fd, eocdPos - 20, 20);
      if (locator.readUInt32LE(0) === 0x07064b50) {
        const rec = read(fd, u64(locator, 8), 56);
        if (rec.readUInt32LE(0) !== 0x06064b50) throw new Error('broken zip64 end of central directory');
        count = u64(rec, 32);
        cdSize = u64(rec, 40);
        cdOffset = u64(rec, 48);
      }
    }
    const cd = read(fd, cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error('broken central directory');
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let compressedSize = cd.readUInt32LE(p + 20);
      let uncompressedSize = cd.readUInt32LE(p + 24);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // Zip64 extra: the overflowing fields, in order uncompressed, compressed, offset.
      let e = p + 46 + nameLen;
      const end = e + extraLen;
      while (e + 4 <= end) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (uncompressedSize === 0xffffffff) (uncompressedSize = u64(cd, q), (q += 8));
          if (compressedSize === 0xffffffff) (compressedSize = u64(cd, q), (q += 8));
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = u64(cd, q);
        }
        e += 4 + len;
      }
      entries.push({
        name,
        method: cd.readUInt16LE(p + 10),
        crc32: cd.readUInt32LE(p + 16),
        compressedSize,
        uncompressedSize,
        localHeaderOffset,
        dosTime: cd.readUInt16LE(p + 12),
        dosDate: cd.readUInt16LE(p + 14),
      });
      p = end + commentLen;
    }
    const dataOffset = (entry: ZipEntry): number => {
      const h = read(fd, entry.localHeaderOffset, 30);
      if (h.readUInt32LE(0) !== 0x04034b50) throw new Error('broken local header');
      return entry.localHeaderOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    };
    return {
      fd,
      entries,
      dataOffset,
      readRaw: (entry) => read(fd, dataOffset(entry), entry.compressedSize),
      close: () => closeSync(fd),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Milliseconds since epoch of a DOS date/time written in JST (as the writer does). */
export function dosToMs(dosDate: number, dosTime: number): number {
  const utc = Date.UTC(1980 + (dosDate >> 9), ((dosDate >> 5) & 15) - 1, dosDate & 31, dosTime >> 11, (dosTime >> 5) & 63, (dosTime & 31) * 2);
  return utc - 9 * 3600_000;
}
