/**
 * Prevalence across a tenant's fleet (issue 13, docs/CORRELATION.md "The
 * verdict model"): per tenant and SHA-256, which devices had the file (from
 * the process starts, image loads and file writes that carry a hash), since
 * when, until when, and its signer. The shards write it in their flush
 * transaction; the verdict model reads it ("a Microsoft-signed file seen on
 * many devices for weeks with benign behaviour is white").
 *
 * Device ids are kept up to PREVALENCE_DEVICE_CAP per file; past it only a
 * flag says more devices had it, so counts are exact up to the cap. Merging
 * is idempotent (set of devices, earliest first, latest last), so a replay
 * of the log after a crash records nothing twice.
 *
 * Key layout (kiseki.lmdb):
 *   prevalence  [supportId, sha256 (lower-case hex)]  -> PrevalenceRecord
 */
import type { PrevalenceRecord, PrevalenceSighting } from './records.js';
import type { Tables } from './tables.js';

/** Devices whose ids a prevalence record keeps; beyond them only `saturated` is set. */
export const PREVALENCE_DEVICE_CAP = 64;

export interface PrevalenceRepository {
  /** The record of a file (lower-case SHA-256) in a tenant, undefined when no device had it. */
  get(supportId: string, sha256: string): PrevalenceRecord | undefined;
  /**
   * Inside `store.transaction()` (a shard's flush): folds one file's
   * sightings into its record; one read and one put however many devices.
   */
  recordSync(supportId: string, sha256: string, sightings: readonly PrevalenceSighting[]): void;
}

/**
 * Folds sightings into a record (a new one when `record` is undefined),
 * returning a new record; `record` is not changed. Exported so a shard can
 * show its not yet written sightings over the stored record.
 */
export function mergePrevalence(record: PrevalenceRecord | undefined, sightings: readonly PrevalenceSighting[]): PrevalenceRecord | undefined {
  if (sightings.length === 0) return record;
  const devices: [string, number][] = record === undefined ? [] : record.devices.map(([t, at]) => [t, at]);
  let saturated = record?.saturated ?? false;
  let firstSeen = record?.firstSeen ?? Number.POSITIVE_INFINITY;
  let lastSeen = record?.lastSeen ?? Number.NEGATIVE_INFINITY;
  let signer = record?.signer;
  let sig = record?.sig;
  let signedAt = Number.NEGATIVE_INFINITY;
  for (const s of sightings) {
    const known = devices.find((d) => d[0] === s.tmid);
    if (known !== undefined) {
      if (s.first < known[1]) known[1] = s.first;
    } else if (devices.length < PREVALENCE_DEVICE_CAP) devices.push([s.tmid, s.first]);
    else saturated = true;
    if (s.first < firstSeen) firstSeen = s.first;
    if (s.last > lastSeen) lastSeen = s.last;
    // The newest signature information wins (a re-signed file keeps its hash only if unchanged, so they rarely differ).
    if ((s.signer !== undefined || s.sig !== undefined) && s.last >= signedAt) {
      signedAt = s.last;
      if (s.signer !== undefined) signer = s.signer;
      if (s.sig !== undefined) sig = s.sig;
    }
  }
  return { devices, saturated, firstSeen, lastSeen, ...(signer === undefined ? {} : { signer }), ...(sig === undefined ? {} : { sig }) };
}

/** The prevalence repository over the hot store's tables (called by openHotStore). */
export function createPrevalenceRepository(t: Tables): PrevalenceRepository {
  const { prevalence } = t;
  return {
    get: (supportId, sha256) => prevalence.get([supportId, sha256]),
    recordSync(supportId, sha256, sightings) {
      const next = mergePrevalence(prevalence.get([supportId, sha256]), sightings);
      if (next !== undefined) prevalence.putSync([supportId, sha256], next);
    },
  };
}
