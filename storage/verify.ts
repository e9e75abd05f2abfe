/**
 * The start-up check of the data directory (issue 11, item 9): damaged LMDB
 * files must stop `kiseki start` with a message that says what to do, never
 * a SIGBUS, a segfault, or silence until an export fails.
 *
 * Three layers, cheapest first:
 * 1. The two meta pages of each environment are read with plain file I/O:
 *    magic and version, and the file length against the last page the newer
 *    meta page says is in use. A truncated file (SIGBUS on first write) or
 *    zeroed meta pages (segfault) are caught here, before LMDB maps the file.
 *    `openTables` runs this layer on every open (every command, every worker).
 * 2. A child process opens both environments read-only and walks every
 *    database (keys and values; the batch log's keys, and the values of its
 *    newest `recentBatches` batches, or all with `full`), checking each batch
 *    record's checksum (`c`, a CRC-32 of `z` written with the record). If
 *    LMDB crashes on a damaged page, only the child dies, and the parent
 *    reports the signal.
 * 3. Readers of the log check the checksum of each batch they read
 *    (`batchIntact`), so damage in an old batch outside the start-up window
 *    is reported with its lsn when an export or a replay reaches it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { compiledScript } from '../core/compiled-script.js';
import { KisekiError } from '../core/errors.js';
import type { BatchRecord } from './records.js';

/** The environments under the data directory. */
export const LMDB_ENVS = ['kiseki.lmdb', 'log.lmdb'] as const;

const MDB_MAGIC = 0xbeefc0de;
/** Page header of this LMDB build: pgno (8), txnid (8), pad (2), flags (2), lower (2), upper (2). */
const META_OFFSET = 24;

/** What the operator should do about damage, in every ERR_STORAGE_DAMAGED. */
const ACTION =
  'stop here: copy the data directory aside, then restore the file from the latest backup (see docs/SECURITY.md); ' +
  'the raw batches of closed days are also in the cold archives';

export interface VerifyOptions {
  /** Newest batches whose records are read and checksummed at start-up (default 10,000). */
  recentBatches?: number;
  /** Read and checksum every batch (slow on a big log: `kiseki start` reads it all). */
  full?: boolean;
  /** Bound on the child's walk (default 10 minutes). */
  timeoutMs?: number;
}

export interface VerifyReport {
  envs: { env: string; bytes: number; lastPage: number; pageSize: number }[];
  /** Entries walked per environment, and batch records checksummed. */
  entries: number;
  batchesChecked: number;
}

function damaged(env: string, reason: string, extra: Record<string, unknown> = {}): KisekiError {
  return new KisekiError('ERR_STORAGE_DAMAGED', { env, ...extra, action: ACTION, reason: `${env} is damaged: ${reason}; ${ACTION}` });
}

/**
 * Layer 1: the meta pages and the length of one environment file.
 * @throws KisekiError ERR_STORAGE_DAMAGED
 */
export function checkLmdbFile(path: string, env: string): { bytes: number; lastPage: number; pageSize: number } {
  const bytes = statSync(path).size;
  // An empty file is one LMDB created and had not written yet: it initialises it on open.
  if (bytes === 0) return { bytes, lastPage: 0, pageSize: 0 };
  if (bytes < 2 * 4096) throw damaged(env, `it is ${bytes} bytes long, shorter than its two meta pages (truncated)`, { bytes });
  const fd = openSync(path, 'r');
  try {
    const read = (offset: number, length: number): Buffer => {
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, offset);
      return buf;
    };
    const head = read(0, 4096);
    const pageSize = head.readUInt32LE(META_OFFSET + 24);
    const metas: { lastPage: number; txnid: number }[] = [];
    for (let i = 0; i < 2; i++) {
      const page = i === 0 ? head : read(isPageSize(pageSize) ? pageSize : 4096, 4096);
      const magic = page.readUInt32LE(META_OFFSET);
      const version = page.readUInt32LE(META_OFFSET + 4);
      if (magic !== MDB_MAGIC || version < 1 || version > 2 || !isPageSize(pageSize)) {
        throw damaged(env, `meta page ${i} is not a valid LMDB meta page (zeroed or overwritten)`, { metaPage: i });
      }
      metas.push({ lastPage: Number(page.readBigUInt64LE(META_OFFSET + 120)), txnid: Number(page.readBigUInt64LE(META_OFFSET + 128)) });
    }
    const newest = metas[0]!.txnid >= metas[1]!.txnid ? metas[0]! : metas[1]!;
    const needed = (newest.lastPage + 1) * pageSize;
    // The length is taken again after the meta pages: a server running on this
    // directory may have committed between the first stat and the meta read,
    // and LMDB writes the data pages (growing the file) before the meta page.
    const length = fstatSync(fd).size;
    if (length < needed) throw damaged(env, `it is ${length} bytes long but its pages reach byte ${needed} (truncated)`, { bytes: length, neededBytes: needed });
    return { bytes: length, lastPage: newest.lastPage, pageSize };
  } finally {
    closeSync(fd);
  }
}

function isPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** The checksum stored with a batch record: CRC-32 of its compressed events. */
export function batchChecksum(z: Uint8Array): number {
  return crc32(z);
}

/** False when a batch record carries a checksum that does not match its bytes (records written before checksums pass). */
export function batchIntact(record: BatchRecord): boolean {
  return record.c === undefined || (record.z instanceof Uint8Array && crc32(record.z) === record.c);
}

/** The child script (compiled), next to this file or, from TypeScript sources under vitest, in dist/. */
function childScript(): string {
  const url = compiledScript('verify-child.js', import.meta.url);
  if (url === undefined) throw new KisekiError('ERR_STORAGE', { op: 'verify', reason: 'storage/verify-child.js not found; run npm run build' });
  return fileURLToPath(url);
}

/**
 * Checks the data directory before the server opens it: layer 1 in this
 * process, layer 2 in a child process. A directory without environments
 * (a first start) passes.
 * @throws KisekiError ERR_STORAGE_DAMAGED with `details.reason` saying what is wrong and what to do.
 */
export async function verifyDataDir(dataDir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const envs: VerifyReport['envs'] = [];
  for (const env of LMDB_ENVS) {
    const path = join(dataDir, env);
    if (!existsSync(path)) continue;
    envs.push({ env, ...checkLmdbFile(path, env) });
  }
  if (envs.length === 0) return { envs, entries: 0, batchesChecked: 0 };
  const args = [childScript(), dataDir, String(options.recentBatches ?? 10_000), options.full === true ? 'full' : 'recent'];
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new KisekiError('ERR_STORAGE', { op: 'verify', reason: `the check of ${dataDir} could not run: ${err.message}` }, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  let parsed: { ok: boolean; env?: string; reason?: string; entries?: number; batchesChecked?: number; lsn?: number } | undefined;
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (parsed?.ok === true && result.code === 0) return { envs, entries: parsed.entries ?? 0, batchesChecked: parsed.batchesChecked ?? 0 };
  if (parsed?.ok === false) throw damaged(parsed.env ?? 'the data directory', parsed.reason ?? 'unknown', parsed.lsn === undefined ? {} : { lsn: parsed.lsn });
  const how = result.signal !== null ? `LMDB crashed reading it (${result.signal})` : `the check exited with code ${result.code}`;
  throw damaged(parsed?.env ?? 'an LMDB environment', how, { signal: result.signal, stderr: result.stderr.split('\n').slice(-5).join('\n') });
}
