/**
 * Builds small .evtx files byte by byte for the reader's unit tests: a file
 * header, one or more chunks, records whose BinXML uses inline names,
 * templates defined inline on first use and referenced afterwards, and
 * substitution values of any type (embedded BinXML included). Checksums are
 * computed like Windows does, so a test corrupts exactly what it means to.
 * Test support only.
 */
import { crc32 } from 'node:zlib';
import { VT } from './evtx-types.js';

/** A substitution value: its type and a writer for its bytes. */
export interface SubValue {
  type: number;
  write: (w: ChunkWriter) => void;
}

export const sub = {
  null: (): SubValue => ({ type: VT.NULL, write: () => {} }),
  wstring: (s: string): SubValue => ({ type: VT.WSTRING, write: (w) => w.bytes(Buffer.from(s, 'utf16le')) }),
  ansi: (s: string): SubValue => ({ type: VT.ANSI, write: (w) => w.bytes(Buffer.from(s, 'latin1')) }),
  int8: (n: number): SubValue => ({ type: VT.INT8, write: (w) => w.bytes(Buffer.from([n & 0xff])) }),
  uint8: (n: number): SubValue => ({ type: VT.UINT8, write: (w) => w.bytes(Buffer.from([n])) }),
  int16: (n: number): SubValue => ({ type: VT.INT16, write: (w) => w.i16(n) }),
  uint16: (n: number): SubValue => ({ type: VT.UINT16, write: (w) => w.u16(n) }),
  int32: (n: number): SubValue => ({ type: VT.INT32, write: (w) => w.i32(n) }),
  uint32: (n: number): SubValue => ({ type: VT.UINT32, write: (w) => w.u32(n) }),
  int64: (n: bigint): SubValue => ({ type: VT.INT64, write: (w) => w.i64(n) }),
  uint64: (n: bigint): SubValue => ({ type: VT.UINT64, write: (w) => w.u64(n) }),
  float: (n: number): SubValue => ({ type: VT.FLOAT, write: (w) => w.f32(n) }),
  double: (n: number): SubValue => ({ type: VT.DOUBLE, write: (w) => w.f64(n) }),
  bool: (b: boolean): SubValue => ({ type: VT.BOOL, write: (w) => w.u32(b ? 1 : 0) }),
  binary: (b: Uint8Array): SubValue => ({ type: VT.BINARY, write: (w) => w.bytes(b) }),
  /** `guid` as `aabbccdd-eeff-...`: written in Windows' mixed-endian layout. */
  guid: (guid: string): SubValue => ({
    type: VT.GUID,
    write: (w) => {
      const h = Buffer.from(guid.replace(/-/g, ''), 'hex');
      w.bytes(Buffer.from([h[3]!, h[2]!, h[1]!, h[0]!, h[5]!, h[4]!, h[7]!, h[6]!, ...h.subarray(8)]));
    },
  }),
  sizeT: (n: bigint): SubValue => ({ type: VT.SIZE_T, write: (w) => w.u64(n) }),
  filetime: (ticks: bigint): SubValue => ({ type: VT.FILETIME, write: (w) => w.u64(ticks) }),
  systemtime: (parts: [number, number, number, number, number, number, number, number]): SubValue => ({
    type: VT.SYSTEMTIME,
    write: (w) => {
      for (const p of parts) w.u16(p);
    },
  }),
  /** `S-1-5-21-…`: revision 1, 48-bit authority, 32-bit sub-authorities. */
  sid: (sid: string): SubValue => ({
    type: VT.SID,
    write: (w) => {
      const [, rev, auth, ...subs] = sid.split('-');
      w.bytes(Buffer.from([Number(rev), subs.length]));
      const a = Buffer.alloc(6);
      a.writeUIntBE(Number(auth), 0, 6);
      w.bytes(a);
      for (const s of subs) w.u32(Number(s));
    },
  }),
  hex32: (n: number): SubValue => ({ type: VT.HEX32, write: (w) => w.u32(n) }),
  hex64: (n: bigint): SubValue => ({ type: VT.HEX64, write: (w) => w.u64(n) }),
  wstringArray: (items: string[]): SubValue => ({ type: 0x81, write: (w) => w.bytes(Buffer.from(items.map((s) => `${s}\0`).join(''), 'utf16le')) }),
  uint16Array: (items: number[]): SubValue => ({
    type: 0x86,
    write: (w) => {
      for (const n of items) w.u16(n);
    },
  }),
  /** An embedded BinXML document (a template instance of its own). */
  binxml: (templateKey: string, body: (w: ChunkWriter) => void, values: SubValue[]): SubValue => ({
    type: VT.BINXML,
    write: (w) => {
      w.fragmentHeader();
      w.templateInstance(templateKey, body, values);
    },
  }),
};

/** Writes one chunk; offsets are chunk-relative, as the format wants. */
export class ChunkWriter {
  readonly buf = Buffer.alloc(65536);
  pos = 512;
  private readonly names = new Map<string, number>();
  private readonly templates = new Map<string, number>();
  private firstRecord = -1;
  private lastRecord = -1;
  private lastRecordOffset = 0;

  bytes(b: Uint8Array): void {
    Buffer.from(b.buffer, b.byteOffset, b.byteLength).copy(this.buf, this.pos);
    this.pos += b.byteLength;
  }
  u8(n: number): void {
    this.buf[this.pos++] = n;
  }
  u16(n: number): void {
    this.pos = this.buf.writeUInt16LE(n, this.pos);
  }
  i16(n: number): void {
    this.pos = this.buf.writeInt16LE(n, this.pos);
  }
  u32(n: number): void {
    this.pos = this.buf.writeUInt32LE(n, this.pos);
  }
  i32(n: number): void {
    this.pos = this.buf.writeInt32LE(n, this.pos);
  }
  u64(n: bigint): void {
    this.pos = this.buf.writeBigUInt64LE(n, this.pos);
  }
  i64(n: bigint): void {
    this.pos = this.buf.writeBigInt64LE(n, this.pos);
  }
  f32(n: number): void {
    this.pos = this.buf.writeFloatLE(n, this.pos);
  }
  f64(n: number): void {
    this.pos = this.buf.writeDoubleLE(n, this.pos);
  }

  /** A name reference: inline (right here) the first time, by offset afterwards. */
  private nameRef(name: string): void {
    const known = this.names.get(name);
    if (known !== undefined) {
      this.u32(known);
      return;
    }
    const off = this.pos + 4;
    this.u32(off);
    this.names.set(name, off);
    this.u32(0); // next string in the hash bucket
    this.u16(0); // hash (not checked by readers)
    this.u16(name.length);
    this.bytes(Buffer.from(name, 'utf16le'));
    this.u16(0);
  }

  fragmentHeader(): void {
    this.bytes(Buffer.from([0x0f, 0x01, 0x01, 0x00]));
  }
  open(name: string, hasAttributes = false): void {
    this.u8(hasAttributes ? 0x41 : 0x01);
    this.u16(0xffff); // dependency id
    this.u32(0); // data size (not needed to read)
    this.nameRef(name);
    if (hasAttributes) this.u32(0); // attribute list size
  }
  attribute(name: string): void {
    this.u8(0x06);
    this.nameRef(name);
  }
  closeStart(): void {
    this.u8(0x02);
  }
  closeEmpty(): void {
    this.u8(0x03);
  }
  end(): void {
    this.u8(0x04);
  }
  eof(): void {
    this.u8(0x00);
  }
  text(s: string): void {
    this.u8(0x05);
    this.u8(VT.WSTRING);
    this.u16(s.length);
    this.bytes(Buffer.from(s, 'utf16le'));
  }
  cdata(s: string): void {
    this.u8(0x07);
    this.u16(s.length);
    this.bytes(Buffer.from(s, 'utf16le'));
  }
  charRef(code: number): void {
    this.u8(0x08);
    this.u16(code);
  }
  entityRef(name: string): void {
    this.u8(0x09);
    this.nameRef(name);
  }
  sub(index: number, type: number, optional = false): void {
    this.u8(optional ? 0x0e : 0x0d);
    this.u16(index);
    this.u8(type);
  }
  /** Any byte, e.g. an invalid token. */
  raw(...bytes: number[]): void {
    this.bytes(Buffer.from(bytes));
  }

  /**
   * A template instance: the definition (written by `body`, which must open
   * and close its elements; the fragment header and end of stream are added)
   * inline on the first use of `key` in this chunk, then the values.
   */
  templateInstance(key: string, body: (w: ChunkWriter) => void, values: SubValue[]): void {
    this.u8(0x0c);
    this.u8(0x01);
    this.u32(0x1234); // template id
    const known = this.templates.get(key);
    if (known !== undefined) {
      this.u32(known);
    } else {
      const defOff = this.pos + 4;
      this.u32(defOff);
      this.templates.set(key, defOff);
      this.u32(0); // next template
      this.bytes(Buffer.alloc(16, 0xab)); // template GUID
      const sizeAt = this.pos;
      this.u32(0);
      const start = this.pos;
      this.fragmentHeader();
      body(this);
      this.eof();
      this.buf.writeUInt32LE(this.pos - start, sizeAt);
    }
    this.u32(values.length);
    const descAt = this.pos;
    this.pos += values.length * 4;
    values.forEach((v, i) => {
      const start = this.pos;
      v.write(this);
      this.buf.writeUInt16LE(this.pos - start, descAt + i * 4);
      this.buf[descAt + i * 4 + 2] = v.type;
      this.buf[descAt + i * 4 + 3] = 0;
    });
  }

  /** A record; `content` writes its BinXML (after which an end of stream is added). */
  record(recordId: number, filetime: bigint, content: (w: ChunkWriter) => void): void {
    const start = this.pos;
    this.u32(0x2a2a);
    this.u32(0); // size, patched below
    this.u64(BigInt(recordId));
    this.u64(filetime);
    content(this);
    this.eof();
    // Records are 8-byte aligned in Windows logs.
    while ((this.pos + 4 - start) % 8 !== 0) this.u8(0);
    const size = this.pos + 4 - start;
    this.u32(size);
    this.buf.writeUInt32LE(size, start + 4);
    if (this.firstRecord < 0) this.firstRecord = recordId;
    this.lastRecord = recordId;
    this.lastRecordOffset = start;
  }

  /** Writes the chunk header with correct checksums and returns the 64 KiB chunk. */
  finish(): Buffer {
    const b = this.buf;
    b.write('ElfChnk\0', 0, 'latin1');
    b.writeBigUInt64LE(BigInt(this.firstRecord), 8);
    b.writeBigUInt64LE(BigInt(this.lastRecord), 16);
    b.writeBigUInt64LE(BigInt(this.firstRecord), 24);
    b.writeBigUInt64LE(BigInt(this.lastRecord), 32);
    b.writeUInt32LE(128, 40);
    b.writeUInt32LE(this.lastRecordOffset, 44);
    b.writeUInt32LE(this.pos, 48);
    b.writeUInt32LE(crc32(b.subarray(512, this.pos)), 52);
    b.writeUInt32LE(crc32(b.subarray(128, 512), crc32(b.subarray(0, 120))), 124);
    return b;
  }
}

/** A file header for `chunks` chunks (flags: 1 = dirty) followed by the chunks. */
export function evtxFile(chunks: Buffer[], flags = 0): Buffer {
  const head = Buffer.alloc(4096);
  head.write('ElfFile\0', 0, 'latin1');
  head.writeBigUInt64LE(0n, 8);
  head.writeBigUInt64LE(BigInt(Math.max(0, chunks.length - 1)), 16);
  head.writeBigUInt64LE(1000n, 24);
  head.writeUInt32LE(128, 32);
  head.writeUInt16LE(1, 36);
  head.writeUInt16LE(3, 38);
  head.writeUInt16LE(4096, 40);
  head.writeUInt16LE(chunks.length, 42);
  head.writeUInt32LE(flags, 120);
  head.writeUInt32LE(crc32(head.subarray(0, 120)), 124);
  return Buffer.concat([head, ...chunks]);
}
