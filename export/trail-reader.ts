/**
 * Reads a tenant's stored trails back as events, from the cold archives
 * (daily zips: inner zips copied out and their `.log` lines parsed) and from
 * the hot store (raw batches still in LMDB), each batch once: a batch both
 * archived and still hot is read from the archive only (same TMID and batch
 * id). For whole-history readers such as `kiseki sigma hunt`.
 *
 * Synchronous and one batch at a time: memory stays at one inner zip.
 */
import { inflateRawSync } from 'node:zlib';
import type { HotStore } from '../storage/index.js';
import { collectionDayOf } from './collection-day.js';
import { batchInWindow, decodeEvents, deviceLsns, lsnWindow, tenantDevices } from './hot-source.js';
import { archivedDays, coldDayPaths, readManifest } from './layout.js';
import { openZipReader } from './zip-reader.js';

/** One batch of a device's trail, wherever it was read from. */
export interface TrailBatch {
  tmid: string;
  computer: string;
  /** The agent's batch id (32 hex). */
  id: string;
  source: 'hot' | 'cold';
  /** The collection day of a cold batch. */
  day?: string;
  events: unknown[];
}

/** Where a read is up to: batches read of the known total (cold days count their manifest's batches). */
export interface TrailProgress {
  done: number;
  total: number;
}

const INNER_RE = /([^/]+)_(\d{15})-([0-9a-fA-F]{32})\.zip$/;

/** The one `.log` entry of an inner zip held in memory, inflated. */
function innerLog(zip: Buffer): string {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('inner zip without an end record');
  const cd = zip.readUInt32LE(eocd + 16);
  const method = zip.readUInt16LE(cd + 10);
  const size = zip.readUInt32LE(cd + 20);
  const local = zip.readUInt32LE(cd + 42);
  const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
  const raw = zip.subarray(start, start + size);
  return (method === 8 ? inflateRawSync(raw) : raw).toString('utf8');
}

function parseLog(text: string): unknown[] {
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (l.length > 0) out.push(JSON.parse(l) as unknown);
  }
  return out;
}

/**
 * Calls `onBatch` for every batch of `supportId`'s devices received at or after
 * `sinceMs`: the archived days from the one holding `sinceMs`, oldest first,
 * then the hot store's batches not already read from an archive.
 */
export function readTenantTrails(
  store: HotStore,
  dataDir: string,
  supportId: string,
  sinceMs: number,
  onBatch: (batch: TrailBatch) => void,
  onProgress?: (p: TrailProgress) => void,
): TrailProgress {
  const it = tenantTrailBatches(store, dataDir, supportId, sinceMs);
  for (;;) {
    const step = it.next();
    if (step.done === true) return step.value;
    if (step.value.batch !== undefined) onBatch(step.value.batch);
    onProgress?.(step.value.progress);
  }
}

/**
 * The same reading as {@link readTenantTrails}, one step per batch (a batch,
 * or undefined for a hot batch already read from an archive), so a caller on
 * the event loop (the API's hunt jobs) can yield between batches.
 */
export function* tenantTrailBatches(store: HotStore, dataDir: string, supportId: string, sinceMs: number): Generator<{ batch: TrailBatch | undefined; progress: TrailProgress }, TrailProgress> {
  const sinceDay = collectionDayOf(sinceMs);
  const days = archivedDays(dataDir, supportId).filter((d) => d >= sinceDay);
  const manifests = days.map((d) => ({ day: d, manifest: readManifest(dataDir, supportId, d) }));
  const devices = tenantDevices(store, supportId);
  const window = lsnWindow(store, sinceMs, Number.MAX_SAFE_INTEGER - 2 * 3600_000);
  const hotLsns = devices.map((d) => ({ device: d, lsns: deviceLsns(store, d.tmid, window) }));
  const progress: TrailProgress = { done: 0, total: manifests.reduce((n, m) => n + (m.manifest?.batches ?? 0), 0) + hotLsns.reduce((n, d) => n + d.lsns.length, 0) };
  const seen = new Set<string>();
  for (const { day, manifest } of manifests) {
    if (manifest === undefined) continue;
    const computers = new Map(manifest.devices.map((d) => [d.tmid, d.computer]));
    const reader = openZipReader(coldDayPaths(dataDir, supportId, day).zip);
    try {
      for (const entry of reader.entries) {
        const m = INNER_RE.exec(entry.name);
        if (m === null) continue;
        const tmid = m[1]!;
        const id = m[3]!.toLowerCase();
        const raw = reader.readRaw(entry);
        const inner = entry.method === 8 ? inflateRawSync(raw) : raw;
        seen.add(`${tmid}\u0000${id}`);
        const batch: TrailBatch = { tmid, computer: computers.get(tmid) ?? '', id, source: 'cold', day, events: parseLog(innerLog(inner)) };
        progress.done++;
        yield { batch, progress };
      }
    } finally {
      reader.close();
    }
  }
  for (const { device, lsns } of hotLsns) {
    for (const lsn of lsns) {
      const batch = batchInWindow(store, lsn, sinceMs, Number.MAX_SAFE_INTEGER);
      progress.done++;
      const fresh = batch !== undefined && !seen.has(`${batch.tmid}\u0000${batch.id.toLowerCase()}`);
      yield { batch: fresh ? { tmid: batch.tmid, computer: device.computer, id: batch.id, source: 'hot', events: decodeEvents(batch.z) } : undefined, progress };
    }
  }
  return progress;
}
