/**
 * The shard's part of fleet prevalence (issue 13, storage/prevalence.ts):
 * every event processed in full that carries a file hash (a process start,
 * an image load, a program, script or macro document created or written)
 * says "this device had this file at this time". Sightings are gathered per (tenant, hash) and written in the
 * shard's flush transaction: one read and one put per file per flush, not
 * one per event. A cache of (device, hash) → the endpoint day last recorded
 * makes a file a device already reported that day cost no write and no
 * allocation; it is bounded and forgetting only costs a redundant merge.
 * So a record's last sighting is exact to the day, not to the millisecond.
 *
 * The verdict model reads the stored record with this shard's not yet
 * written sightings laid over it (`lookup`), so a detection sees the batch
 * it arrived in. Other shards' sightings show once they flushed (100 ms by
 * default): prevalence is a matter of days, not milliseconds.
 */
import type { TrailEvent } from '../core/contracts.js';
import { internString } from '../core/intern.js';
import { mergePrevalence, type HotStore, type PrevalenceRecord, type PrevalenceSighting } from '../storage/index.js';

const DAY_MS = 24 * 3600 * 1000;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/**
 * Written files count only when they can run (programs, libraries, scripts,
 * installers, macro documents): AV detects those, and hashes of everything
 * else written (documents, caches, temp files) are mostly unique, so they
 * would cost a record each and say nothing about prevalence.
 */
const RUNNABLE = /\.(exe|dll|sys|scr|com|cpl|ocx|drv|efi|msi|msp|msix|appx|ps1|psm1|vbs|vbe|js|jse|wsf|wsc|hta|bat|cmd|jar|lnk|docm|dotm|xlsm|xlam|pptm)$/i;

/** Thresholds of the prevalence factors (docs/CORRELATION.md). */
export interface PrevalencePolicy {
  /** Devices of the tenant that must have had the file before the detection. Default 5. */
  minDevices: number;
  /** Days between the fleet's first sighting and the detection. Default 14. */
  minDays: number;
}

export const DEFAULT_PREVALENCE_POLICY: PrevalencePolicy = { minDevices: 5, minDays: 14 };

export interface PrevalenceStageOptions {
  store: HotStore;
  policy?: Partial<PrevalencePolicy>;
  /** (device, hash) pairs remembered as recorded for their day; default 200,000 (about 30 MB). */
  maxCacheEntries?: number;
}

/** One file's sightings since the last flush, one per device. */
interface Pending {
  supportId: string;
  sha256: string;
  sightings: PrevalenceSighting[];
}

/** What a flush takes: written inside its transaction, dropped from the overlay once committed. */
export interface PrevalenceFlushUnit {
  pending: Map<string, Pending>;
}

/** Running totals of a shard's prevalence stage. */
export interface PrevalenceStats {
  /** Events with a file hash that were not yet recorded for their device and day. */
  sightings: number;
  /** Files written (one per file per flush). */
  writes: number;
}

export class PrevalenceStage {
  readonly policy: PrevalencePolicy;
  readonly stats: PrevalenceStats = { sightings: 0, writes: 0 };
  private readonly store: HotStore;
  private readonly maxCache: number;
  /**
   * TMID → hash (as the event spelt it) → endpoint day (ms / 86,400,000) last
   * recorded × 2, + 1 when that sighting had the signature (a later event of
   * the day with it is still worth recording); Map order is the LRU order.
   */
  private readonly seen = new Map<string, Map<string, number>>();
  private cacheEntries = 0;
  /** `supportId \0 sha256` → sightings not yet captured by a flush. */
  private pending = new Map<string, Pending>();
  /** Captured by a flush and not yet committed: still part of the overlay. */
  private inFlight: Map<string, Pending> | undefined;

  constructor(options: PrevalenceStageOptions) {
    this.store = options.store;
    this.policy = { ...DEFAULT_PREVALENCE_POLICY, ...options.policy };
    this.maxCache = options.maxCacheEntries ?? 200_000;
  }

  /**
   * Records the hashes a batch of one device carries (events processed in
   * full only: a state replay's sightings were committed with its checkpoint).
   */
  observeBatch(supportId: string, tmid: string, events: readonly TrailEvent[]): void {
    // A device's map is made at its first hash: most batches of an idle fleet carry none, and an empty map per
    // device cost about 200 bytes each (fanin-19k).
    let known = this.seen.get(tmid);
    if (known !== undefined) {
      // Re-insert: the device used least recently is forgotten first.
      this.seen.delete(tmid);
      this.seen.set(tmid, known);
    }
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const sha = e.sha256;
      // Most events carry no hash: one property read and one typeof, nothing allocated.
      if (typeof sha !== 'string') continue;
      const k = e.k;
      if (k === 'file.create' || k === 'file.write') {
        // A regular-expression test allocates nothing; only events with a hash get here.
        if (typeof e.path !== 'string' || !RUNNABLE.test(e.path)) continue;
      } else if (k !== 'proc.start' && k !== 'image.load') continue;
      const ts = e.ts;
      if (typeof ts !== 'number') continue;
      const day2 = Math.floor(ts / DAY_MS) * 2;
      const cached = known?.get(sha);
      if (cached === day2 + 1 || (cached === day2 && typeof e.sig !== 'string')) continue;
      if (known === undefined) this.seen.set(tmid, (known = new Map()));
      this.sight(supportId, tmid, known, sha, e, ts, day2);
    }
    if (this.cacheEntries > this.maxCache) this.trimCache(tmid);
  }

  private sight(supportId: string, tmid: string, known: Map<string, number>, raw: string, e: TrailEvent, ts: number, day2: number): void {
    const signer = typeof e.signer === 'string' && e.signer !== '' ? e.signer : undefined;
    const sig = typeof e.sig === 'string' && e.sig !== '' ? e.sig : undefined;
    if (!known.has(raw)) this.cacheEntries++;
    const sha256 = raw.toLowerCase();
    const valid = SHA256_HEX.test(sha256);
    // A malformed hash is remembered as done for the day too, so it is not looked at again. The key is interned:
    // the decoder's string may be a slice that keeps its whole batch's text alive (core/intern.ts).
    known.set(internString(raw), valid && sig === undefined ? day2 : day2 + 1);
    if (!valid) return;
    this.stats.sightings++;
    const key = `${supportId}\u0000${sha256}`;
    let p = this.pending.get(key);
    if (p === undefined) {
      p = { supportId, sha256, sightings: [] };
      this.pending.set(key, p);
    }
    let s = p.sightings.find((x) => x.tmid === tmid);
    if (s === undefined) {
      s = { tmid, first: ts, last: ts };
      p.sightings.push(s);
    } else {
      if (ts < s.first) s.first = ts;
      if (ts > s.last) s.last = ts;
    }
    if (signer !== undefined) s.signer = signer;
    if (sig !== undefined) s.sig = sig;
  }

  /** Forgets the least recently used devices until the cache fits again (never `keep`, the device at work). */
  private trimCache(keep: string): void {
    for (const [tmid, known] of this.seen) {
      if (this.cacheEntries <= this.maxCache * 0.9) break;
      if (tmid === keep) continue;
      this.seen.delete(tmid);
      this.cacheEntries -= known.size;
    }
  }

  /**
   * A file's record in a tenant (lower-case SHA-256) as the verdict model
   * should see it: stored, with this shard's unwritten sightings over it.
   */
  lookup(supportId: string, sha256: string): PrevalenceRecord | undefined {
    const stored = this.store.prevalence.get(supportId, sha256);
    const key = `${supportId}\u0000${sha256}`;
    const flying = this.inFlight?.get(key)?.sightings ?? [];
    const waiting = this.pending.get(key)?.sightings ?? [];
    if (flying.length === 0 && waiting.length === 0) return stored;
    return mergePrevalence(stored, flying.length === 0 ? waiting : waiting.length === 0 ? flying : [...flying, ...waiting]);
  }

  /** Devices with an entry in the (device, hash) cache. */
  cachedDevices(): number {
    return this.seen.size;
  }

  /** True when sightings wait for a flush (they never make one urgent). */
  hasPendingWrites(): boolean {
    return this.pending.size > 0;
  }

  /** Takes what the next flush writes (undefined: nothing); called synchronously with the checkpoint it commits with. */
  capture(): PrevalenceFlushUnit | undefined {
    if (this.pending.size === 0) return undefined;
    const unit = { pending: this.pending };
    this.pending = new Map();
    this.inFlight = unit.pending;
    return unit;
  }

  /** Inside the shard's flush transaction: one merge per file. */
  writeSync(unit: PrevalenceFlushUnit): void {
    for (const p of unit.pending.values()) this.store.prevalence.recordSync(p.supportId, p.sha256, p.sightings);
    this.stats.writes += unit.pending.size;
  }

  /** After the transaction committed: LMDB now answers for the unit. */
  release(unit: PrevalenceFlushUnit): void {
    if (this.inFlight === unit.pending) this.inFlight = undefined;
  }
}
