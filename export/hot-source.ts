/**
 * Reading a tenant's raw batches for a collection day out of the hot store,
 * and turning one batch into its customer-facing form: the `<send15>.log`
 * text (one JSON event per line, in seq order, CRLF) inside its inner zip
 * `<TMID>_<send15>-<id32>.zip` (SPEC §6).
 *
 * Reads never pin an LMDB snapshot for long: ranges use `snapshot: false` and
 * callers reset the read transaction between chunks, so a day close running
 * for hours does not stop LMDB from reusing freed pages.
 */
import { Unpackr } from 'msgpackr';
import { decodeArrayBounded, MAX_EVENT_DEPTH, QUARANTINED_KIND } from '../core/msgpack-bounds.js';
import { decompress } from 'zstd-napi';
import { KisekiError } from '../core/errors.js';
import { batchIntact, type BatchRecord, type HotStore } from '../storage/index.js';
import { send15 } from './collection-day.js';
import { safeFolderName } from './layout.js';
import { buildInnerZip } from './zip-writer.js';

/** Plain MessagePack maps decode to objects, as in the shards (perf-anchors: msgpackr maps ~2x @msgpack/msgpack). */
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });

/** Receive-time slack around a day's lsn window, against small clock steps between batches (ms). */
export const LSN_WINDOW_SLACK_MS = 3600_000;

/** Line ending of the `.log` files: CRLF, for the Windows tools customers open them with. */
export const LOG_LINE_ENDING = '\r\n';

export interface TenantDevice {
  tmid: string;
  computer: string;
  /** Folder name of the device's inner zips. */
  folder: string;
}

function byComputer(a: TenantDevice, b: TenantDevice): number {
  return a.computer < b.computer ? -1 : a.computer > b.computer ? 1 : a.tmid < b.tmid ? -1 : a.tmid > b.tmid ? 1 : 0;
}

/**
 * Every tenant's devices, each list ordered by computer name, then TMID (the
 * order of the archives), from one scan of `devices`: what the main thread
 * uses for all tenants at once.
 */
export function devicesByTenant(store: HotStore): Map<string, TenantDevice[]> {
  const out = new Map<string, TenantDevice[]>();
  for (const value of store.devices.all()) {
    let list = out.get(value.supportId);
    if (list === undefined) out.set(value.supportId, (list = []));
    list.push({ tmid: value.tmid, computer: value.computer, folder: safeFolderName(value.computer, value.tmid) });
  }
  for (const list of out.values()) list.sort(byComputer);
  return out;
}

/** One tenant's devices, ordered by computer name, then TMID. */
export function tenantDevices(store: HotStore, supportId: string): TenantDevice[] {
  return devicesByTenant(store).get(supportId) ?? [];
}

export interface HotBatch extends BatchRecord {
  lsn: number;
}

/** lsn bounds [from, to) that contain every batch received in [fromMs, toMs), widened by the slack. */
export function lsnWindow(store: HotStore, fromMs: number, toMs: number): { from: number; to: number } {
  return { from: store.log.lsnReceivedAtOrAfter(fromMs - LSN_WINDOW_SLACK_MS), to: store.log.lsnReceivedAtOrAfter(toMs + LSN_WINDOW_SLACK_MS) };
}

/** lsns of `tmid`'s batches inside an lsn window, ascending. */
export function deviceLsns(store: HotStore, tmid: string, window: { from: number; to: number }): number[] {
  return store.log.deviceLsns(tmid, window.from, window.to);
}

/** The batch at `lsn` when it was received in [fromMs, toMs). */
export function batchInWindow(store: HotStore, lsn: number, fromMs: number, toMs: number): HotBatch | undefined {
  const rec = store.log.batch(lsn);
  if (rec === undefined || rec.recvAt < fromMs || rec.recvAt >= toMs) return undefined;
  // A damaged record stops the export with its lsn rather than putting changed bytes in an archive.
  if (!batchIntact(rec)) {
    throw new KisekiError('ERR_STORAGE_DAMAGED', { env: 'log.lmdb', lsn, reason: `log.lmdb is damaged: the batch record at lsn ${lsn} fails its checksum; restore log.lmdb from a backup (docs/SECURITY.md)` });
  }
  return { ...rec, lsn };
}

const unpackOne = (b: Uint8Array): unknown => unpackr.unpack(b);

/**
 * A batch's events, decoded, in seq order. An event nested deeper than
 * MAX_EVENT_DEPTH (or undecodable on its own) is a poison event: it becomes
 * the placeholder `{seq, k: "_quarantined", reason}` (its seq is `first` +
 * its index), so the day's archive is still built, its seq stays accounted
 * for, and no recursive decoder or JSON.stringify meets it (issue 11, item 5).
 */
export function decodeEvents(z: Uint8Array, first = 1): unknown[] {
  const raw = decompress(z);
  const bounded = decodeArrayBounded(raw, unpackOne, MAX_EVENT_DEPTH, true);
  let events: unknown[];
  if (bounded === undefined) {
    // Not an array: stored as one value, exported as one line (as before bounds existed).
    const decoded = unpackr.unpack(raw) as unknown;
    events = Array.isArray(decoded) ? decoded : [decoded];
  } else {
    events = bounded.values;
    for (const p of bounded.poison) events[p.index] = { seq: first + p.index, k: QUARANTINED_KIND, reason: p.reason };
  }
  let ordered = true;
  for (let i = 1; i < events.length && ordered; i++) ordered = seqOf(events[i - 1]) <= seqOf(events[i]);
  // Agents send events in seq order; a stable sort repairs the rare batch that is not.
  return ordered ? events : events.slice().sort((a, b) => seqOf(a) - seqOf(b));
}

function seqOf(e: unknown): number {
  const s = typeof e === 'object' && e !== null ? (e as { seq?: unknown }).seq : undefined;
  return typeof s === 'number' ? s : 0;
}

/** The `.log` text of a batch: one JSON object per line, each line ending in CRLF, UTF-8 without BOM. */
export function logText(events: readonly unknown[]): string {
  let s = '';
  for (const e of events) s += JSON.stringify(e) + LOG_LINE_ENDING;
  return s;
}

/** File names of a batch in the archives. */
export function batchNames(tmid: string, sentAt: number, id: string): { send15: string; log: string; innerZip: string } {
  const s15 = send15(sentAt);
  return { send15: s15, log: `${s15}.log`, innerZip: `${tmid}_${s15}-${id}.zip` };
}

/** A batch as an inner zip, ready to store in an outer archive. */
export function innerZipOf(batch: { tmid: string; id: string; sentAt: number }, events: readonly unknown[], deflateLevel: number): { name: string; data: Buffer } {
  const names = batchNames(batch.tmid, batch.sentAt, batch.id);
  return { name: names.innerZip, data: buildInnerZip(names.log, Buffer.from(logText(events), 'utf8'), batch.sentAt, deflateLevel) };
}
