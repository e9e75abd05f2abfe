/**
 * Sigma detections (engine/sigma-stage.ts stores them) and the tenants'
 * Sigma settings. A detection is written by a shard in the same transaction
 * as its checkpoint, so a replay after a crash neither loses nor duplicates
 * one; the 72 h dedup per device + rule + process is an index of its own.
 *
 * Key layouts (kiseki.lmdb):
 *   detections         detectionId                 -> SigmaDetection
 *   tenant-detections  [supportId, at, id]         -> id (a tenant's detections, event time order)
 *   device-detections  [tmid, at, id]              -> [id, lower-case pg] (a device's detections, event time order;
 *                                                    entries written before the pg was added hold the id alone)
 *   detections-by-time [at, id]                 -> id (every detection: operators' view)
 *   detection-dedup    [tmid, ruleId, folded pg]   -> SigmaDedupEntry (first detection)
 *   sigma-tenants      supportId                   -> SigmaTenantSettings
 *
 * `indexSync` appends a `detection.new` event to the notification feed (feed.ts).
 */
import type { SigmaDetection, SigmaTenantSettings } from '../core/contracts.js';
import { appendFeedSync } from './feed.js';
import type { Tables } from './tables.js';

/** The first detection of a device, rule and process, and its event time. */
export interface SigmaDedupEntry {
  detectionId: string;
  at: number;
}

/** A page cursor over detections listed newest first: the last one shown. */
export interface DetectionCursor {
  at: number;
  id: string;
}

/** Settings of a tenant that never set any: the pack on, no rule off. */
export const DEFAULT_SIGMA_SETTINGS: SigmaTenantSettings = Object.freeze({ enabled: true, disabledRules: [] }) as SigmaTenantSettings;

export interface DetectionRepository {
  get(id: string): SigmaDetection | undefined;
  count(): number;
  /** A tenant's detections, newest event first, strictly after `after` when given. */
  scanTenant(supportId: string, after?: DetectionCursor): Iterable<SigmaDetection>;
  /** A device's detections with event time in [from, to], oldest first. */
  ofDevice(tmid: string, from: number, to?: number): SigmaDetection[];
  /**
   * A device's detections on processes `pgs` (lower-case GUIDs) with event
   * time in [from, to], oldest first: the index names the process, so the
   * device's other detections are not read (a report asks this for its tree).
   */
  ofDeviceProcesses(tmid: string, pgs: ReadonlySet<string>, from: number, to?: number): SigmaDetection[];
  /** Every tenant's detections, newest event first (operators' view). */
  scanAll(after?: DetectionCursor): Iterable<SigmaDetection>;
  dedup(tmid: string, ruleId: string, pgKey: string): SigmaDedupEntry | undefined;
  /** Inside `store.transaction()`: the record (new or with a repeat counted). */
  saveSync(d: SigmaDetection): void;
  /** Inside `store.transaction()`: tenant and device index entries of a new detection. */
  indexSync(d: SigmaDetection): void;
  /**
   * A cluster API node's copy of detections the shard nodes stored (cluster/api-node.ts): each stored and indexed
   * when new, a version with more repeats replacing the one held, in one transaction; a new one appends the
   * `detection.new` feed entry `indexSync` wrote on its shard node when stored at or after `notifyFrom` (the API
   * nodes' claims send it once). Resolves with the number of detections new here.
   */
  mirror(list: readonly SigmaDetection[], options?: { notifyFrom?: number }): Promise<number>;
  /** Inside `store.transaction()`: the first detection of a device, rule and process. */
  putDedupSync(tmid: string, ruleId: string, pgKey: string, entry: SigmaDedupEntry): void;
  /** A tenant's Sigma settings (defaults when never set). */
  settings(supportId: string): SigmaTenantSettings;
  setSettings(supportId: string, settings: SigmaTenantSettings): Promise<void>;
  /**
   * A cluster node's copy of a tenant's settings: stored when newer (`updatedAt`) than the local ones (settings
   * never changed through a cluster count as 0). True when stored.
   */
  mirrorSettings(supportId: string, settings: SigmaTenantSettings & { updatedAt: number }): Promise<boolean>;
}

/** Settings as stored: rules off deduplicated and sorted, the stamp kept when there is one. */
function normalizedSettings(s: SigmaTenantSettings): SigmaTenantSettings {
  return { enabled: s.enabled, disabledRules: [...new Set(s.disabledRules)].sort(), ...(s.updatedAt === undefined ? {} : { updatedAt: s.updatedAt }) };
}

/** The detection repository over the hot store's tables (called by openHotStore). */
export function createDetectionRepository(t: Tables): DetectionRepository {
  const { detections, tenantDetections, deviceDetections, detectionsByTime, detectionDedup, sigmaTenants } = t;
  const putIndexEntriesSync = (d: SigmaDetection): void => {
    tenantDetections.putSync([d.supportId, d.at, d.id], d.id);
    deviceDetections.putSync([d.tmid, d.at, d.id], [d.id, d.pg.toLowerCase()]);
    detectionsByTime.putSync([d.at, d.id], d.id);
  };
  const appendNewSync = (d: SigmaDetection): void => {
    appendFeedSync(t, { kind: 'detection.new', supportId: d.supportId, at: d.createdAt, tmid: d.tmid, detectionId: d.id, severity: d.severity, by: 'engine' });
  };
  function* byIds(ids: Iterable<string>): Iterable<SigmaDetection> {
    for (const id of ids) {
      const d = detections.get(id);
      if (d !== undefined) yield d;
    }
  }
  function* tenantIds(supportId: string, after: DetectionCursor | undefined): Iterable<string> {
    for (const key of tenantDetections.getKeys({ start: [supportId, after?.at ?? Infinity, after?.id ?? '\uffff'], end: [supportId], reverse: true })) {
      if (key[2] !== after?.id) yield key[2];
    }
  }
  function* allIds(after: DetectionCursor | undefined): Iterable<string> {
    for (const key of detectionsByTime.getKeys({ start: [after?.at ?? Infinity, after?.id ?? '\uffff'], end: [-Infinity], reverse: true })) {
      if (key[1] !== after?.id) yield key[1];
    }
  }
  return {
    get: (id) => detections.get(id),
    count: () => detections.getCount(),
    scanTenant: (supportId, after) => byIds(tenantIds(supportId, after)),
    scanAll: (after) => byIds(allIds(after)),
    ofDevice(tmid, from, to = Infinity) {
      const ids: string[] = [];
      for (const key of deviceDetections.getKeys({ start: [tmid, from], end: [tmid, to, '\uffff'] })) ids.push(key[2]);
      return [...byIds(ids)];
    },
    ofDeviceProcesses(tmid, pgs, from, to = Infinity) {
      const out: SigmaDetection[] = [];
      if (pgs.size === 0) return out;
      for (const { key, value } of deviceDetections.getRange({ start: [tmid, from], end: [tmid, to, '\uffff'] })) {
        if (Array.isArray(value) && !pgs.has(value[1])) continue;
        const d = detections.get(key[2]);
        if (d !== undefined && (Array.isArray(value) || pgs.has(d.pg.toLowerCase()))) out.push(d);
      }
      return out;
    },
    dedup: (tmid, ruleId, pgKey) => detectionDedup.get([tmid, ruleId, pgKey]),
    saveSync(d) {
      detections.putSync(d.id, d);
    },
    indexSync(d) {
      putIndexEntriesSync(d);
      // SIEM forwarding and notifications read new detections from the feed (issue 17, part B).
      appendNewSync(d);
    },
    async mirror(list, options) {
      let added = 0;
      await t.root.transaction(() => {
        for (const d of list) {
          const held = detections.get(d.id);
          if (held !== undefined && held.repeats >= d.repeats) continue;
          detections.putSync(d.id, d);
          if (held !== undefined) continue;
          putIndexEntriesSync(d);
          added++;
          if (options?.notifyFrom !== undefined && d.createdAt >= options.notifyFrom) appendNewSync(d);
        }
      });
      return added;
    },
    putDedupSync(tmid, ruleId, pgKey, entry) {
      detectionDedup.putSync([tmid, ruleId, pgKey], entry);
    },
    settings: (supportId) => sigmaTenants.get(supportId) ?? DEFAULT_SIGMA_SETTINGS,
    async setSettings(supportId, settings) {
      await sigmaTenants.put(supportId, normalizedSettings(settings));
    },
    mirrorSettings: (supportId, settings) =>
      sigmaTenants.transaction(() => {
        if ((sigmaTenants.get(supportId)?.updatedAt ?? 0) >= settings.updatedAt) return false;
        sigmaTenants.putSync(supportId, normalizedSettings(settings));
        return true;
      }),
  };
}
