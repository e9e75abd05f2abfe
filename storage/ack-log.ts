/**
 * The ack log: an append-only file of the batch groups ingest has acked and
 * not yet seen committed to log.lmdb. An ack waits for one sequential
 * append and its fdatasync here, not for LMDB's commit.
 *
 * Why: an LMDB commit of the batch log writes B-tree pages scattered over
 * four databases (batches, device-batches, batch-ids, trails) and flushes
 * twice. During a fanin-19k hold its fdatasyncs took p50 3.5–4 / p99 10–12 ms
 * (strace) and the commit stage of the ack p99 41–47 ms, while a 2 KiB
 * append's fdatasync on the same disk took p50 0.6–1.0 / p99 1.3–2.3 ms, with
 * or without LMDB committing beside it (docs/BENCHMARKS.md, "The ack log").
 *
 * Layout: `<dataDir>/log.ack/<12-digit sequence>.ack` segments. Each append
 * is one frame: payload length (u32 LE), CRC-32 of the payload (u32 LE),
 * then the payload, a MessagePack array of BatchToCommit. A new segment
 * starts past SEGMENT_BYTES and after a failed append (whose frame may be
 * torn); a segment goes once every lsn in it is committed to LMDB. Readers
 * stop at the first frame of a segment that is short or fails its CRC: only
 * an append that never completed (so was never acked) can leave one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';
import { KisekiError } from '../core/errors.js';
import type { BatchToCommit } from './records.js';

/** A segment is closed for appends past this size (its records leave with their LMDB commit). */
const SEGMENT_BYTES = 16 * 1024 * 1024;
const HEADER_BYTES = 8;
const SEGMENT_NAME = /^(\d{12})\.ack$/;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export interface AckLog {
  /**
   * Appends one group and resolves once it is on disk. Appends run one at a
   * time in call order. `onWriting` is called when this group's write starts
   * (the ones before it are on disk).
   */
  append(batches: readonly BatchToCommit[], onWriting?: () => void): Promise<void>;
  /** Every lsn up to `lsn` is committed to LMDB: segments holding nothing newer are removed. */
  release(lsn: number): void;
  /** Waits for appends in flight and closes the open segment; removes every segment when all is released. */
  close(): Promise<void>;
}

interface Segment {
  seq: number;
  path: string;
  /** Highest lsn appended to it, 0 when none. */
  maxLsn: number;
}

/** The ack log's folder under a data directory. */
export function ackLogDir(dataDir: string): string {
  return join(dataDir, 'log.ack');
}

function segmentsIn(dir: string): { seq: number; path: string }[] {
  if (!existsSync(dir)) return [];
  const out: { seq: number; path: string }[] = [];
  for (const name of readdirSync(dir)) {
    const m = SEGMENT_NAME.exec(name);
    if (m !== null) out.push({ seq: Number(m[1]), path: join(dir, name) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** Makes a created or removed directory entry durable. */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** One frame's bytes: header and payload. */
export function encodeAckFrame(batches: readonly BatchToCommit[]): Buffer {
  const payload = packr.pack(batches);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  payload.copy(frame, HEADER_BYTES);
  return frame;
}

/** What a previous run left: the intact records of every segment in order, and the frames cut short or damaged. */
export function readAckLog(dataDir: string): { records: BatchToCommit[]; tornFrames: number } {
  const records: BatchToCommit[] = [];
  let tornFrames = 0;
  for (const seg of segmentsIn(ackLogDir(dataDir))) {
    const bytes = readFileSync(seg.path);
    let at = 0;
    while (at < bytes.length) {
      if (bytes.length - at < HEADER_BYTES) {
        tornFrames++;
        break;
      }
      const length = bytes.readUInt32LE(at);
      const end = at + HEADER_BYTES + length;
      if (end > bytes.length || crc32(bytes.subarray(at + HEADER_BYTES, end)) !== bytes.readUInt32LE(at + 4)) {
        tornFrames++;
        break;
      }
      for (const r of unpackr.unpack(bytes.subarray(at + HEADER_BYTES, end)) as BatchToCommit[]) records.push(r);
      at = end;
    }
  }
  return { records, tornFrames };
}

/** Removes every segment (after their records were committed to LMDB). */
export function clearAckLog(dataDir: string): void {
  const dir = ackLogDir(dataDir);
  const segments = segmentsIn(dir);
  if (segments.length === 0) return;
  for (const seg of segments) rmSync(seg.path, { force: true });
  syncDir(dir);
}

/**
 * Opens the ack log for appends; segments of a previous run must have been read and cleared first.
 * @param segmentBytes size past which a new segment starts (tests make it small)
 */
export function openAckLog(dataDir: string, segmentBytes = SEGMENT_BYTES): AckLog {
  const dir = ackLogDir(dataDir);
  const closed: Segment[] = [];
  let current: (Segment & { handle: FileHandle; bytes: number }) | undefined;
  let nextSeq = (segmentsIn(dir).at(-1)?.seq ?? 0) + 1;
  let released = 0;
  let tail: Promise<void> = Promise.resolve();

  async function startSegment(): Promise<void> {
    if (current !== undefined) await closeCurrent();
    mkdirSync(dir, { recursive: true });
    const seq = nextSeq++;
    const path = join(dir, `${String(seq).padStart(12, '0')}.ack`);
    const handle = await open(path, 'a');
    // The file's own fdatasync does not cover its name in the folder.
    syncDir(dir);
    current = { seq, path, maxLsn: 0, handle, bytes: 0 };
  }

  async function closeCurrent(): Promise<void> {
    const seg = current;
    if (seg === undefined) return;
    current = undefined;
    await seg.handle.close().catch(() => undefined);
    closed.push({ seq: seg.seq, path: seg.path, maxLsn: seg.maxLsn });
    removeReleased();
  }

  /** Not synced: a removed segment that comes back after a crash holds only records LMDB has, and recovery skips them. */
  function removeReleased(): void {
    while (closed.length > 0 && closed[0]!.maxLsn <= released) rmSync(closed.shift()!.path, { force: true });
  }

  async function write(frame: Buffer, maxLsn: number, onWriting: (() => void) | undefined): Promise<void> {
    if (current === undefined || current.bytes >= segmentBytes) await startSegment();
    const seg = current!;
    onWriting?.();
    try {
      const { bytesWritten } = await seg.handle.write(frame);
      // A short write (the disk filled up mid-frame) leaves a torn frame: as good as a failed one.
      if (bytesWritten !== frame.length) throw new KisekiError('ERR_STORAGE_UNAVAILABLE', { op: 'append', file: seg.path, reason: `short write: ${bytesWritten} of ${frame.length} bytes` });
      await seg.handle.datasync();
    } catch (err) {
      // Its frame may be torn: later frames go to a new segment, where readers can reach them.
      seg.maxLsn = Math.max(seg.maxLsn, maxLsn);
      await closeCurrent();
      throw err;
    }
    seg.bytes += frame.length;
    seg.maxLsn = Math.max(seg.maxLsn, maxLsn);
  }

  return {
    append(batches, onWriting) {
      let maxLsn = 0;
      for (const b of batches) if (b.lsn > maxLsn) maxLsn = b.lsn;
      const frame = encodeAckFrame(batches);
      const done = tail.then(() => write(frame, maxLsn, onWriting));
      // The next append waits for this one, whatever its outcome.
      tail = done.catch(() => undefined);
      return done;
    },
    release(lsn) {
      if (lsn <= released) return;
      released = lsn;
      removeReleased();
    },
    async close() {
      await tail;
      await closeCurrent();
      if (closed.length === 0 && existsSync(dir)) syncDir(dir);
    },
  };
}
