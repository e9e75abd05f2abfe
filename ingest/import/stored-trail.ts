/**
 * Reads back the events a device already has in the hot store (its raw
 * batches, in receive order). The import uses it to leave out records it has
 * already imported (events carry the `rid` of their record), and `detect` to
 * find the process and hash of the detected file. The store is the source of
 * truth, so an import interrupted after some acks and run again sends only
 * what is missing.
 */
import { Unpackr } from 'msgpackr';
import { decompress } from 'zstd-napi';
import type { TrailEvent } from '../../core/contracts.js';
import type { HotStore } from '../../storage/index.js';

const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });

/** Every stored event of a device, batch by batch in receive order. */
export function* storedEvents(store: HotStore, tmid: string): Generator<TrailEvent> {
  for (const lsn of store.log.deviceLsns(tmid, 0, Number.MAX_SAFE_INTEGER)) {
    const record = store.log.batch(lsn);
    if (record === undefined || record.tmid !== tmid) continue;
    let events: unknown;
    try {
      events = unpackr.unpack(decompress(record.z));
    } catch {
      continue; // A batch the server could not have accepted: nothing of ours.
    }
    if (!Array.isArray(events)) continue;
    for (const e of events) if (typeof e === 'object' && e !== null) yield e as TrailEvent;
  }
}

/** The record fingerprints (`rid`) of a device's stored imported events. */
export function storedRids(store: HotStore, tmid: string): Set<string> {
  const rids = new Set<string>();
  for (const e of storedEvents(store, tmid)) if (typeof e.rid === 'string') rids.add(e.rid);
  return rids;
}
