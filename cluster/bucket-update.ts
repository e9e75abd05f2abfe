/**
 * Read-modify-write of one key of a shared bucket (tenants, fleet policies,
 * per-tenant settings, device state): bounded calls, revision checks, and a
 * few rounds on a conflict with another node. Shared by tenant-sync.ts,
 * settings-sync.ts and device-state.ts.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { isKisekiError, KisekiError } from '../core/errors.js';
import { boundedNatsCall } from './nats.js';

/** Bound of one bucket call on the API's request path, ms (as a shared command's put). */
export const TENANT_PUT_TIMEOUT_MS = 5000;
/** Read-modify-write rounds before a change that keeps meeting a concurrent one gives up (ERR_CONFLICT). */
const MAX_UPDATE_ROUNDS = 5;

/** True for the answer to a create or an update whose expected revision is no longer the key's. */
export function isRevisionConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

/** A bucket call bounded in time; any failure but a revision conflict becomes ERR_CLUSTER_UNAVAILABLE. */
export async function bucketCall<T>(p: Promise<T>, what: string, timeoutMs: number): Promise<T> {
  try {
    return await boundedNatsCall(p, timeoutMs, what);
  } catch (err) {
    if (isKisekiError(err) || isRevisionConflict(err)) throw err;
    throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: `${what}: ${err instanceof Error ? err.message : String(err)}` }, { cause: err });
  }
}

/**
 * One read-modify-write of a key: reads the bucket's record (`fallback` when the key holds none), asks `change`
 * for the next one (undefined: nothing to write), writes it with the revision read (create when there was
 * none) and starts again on a revision conflict. Resolves with what it wrote, or undefined.
 */
export async function updateKey<T>(
  kv: KV,
  key: string,
  parse: (json: string) => T | undefined,
  fallback: () => T | undefined,
  change: (current: T | undefined) => T | undefined,
  timeoutMs: number,
): Promise<T | undefined> {
  for (let round = 0; ; round++) {
    const entry: KvEntry | null = await bucketCall(kv.get(key), 'directory read', timeoutMs);
    const held = entry !== null && entry.operation === 'PUT' ? parse(entry.string()) : undefined;
    const next = change(held ?? fallback());
    if (next === undefined) return undefined;
    try {
      const json = JSON.stringify(next);
      // A deleted key has a revision too: kv.update over it is what kv.create does in that case.
      if (entry === null) await bucketCall(kv.create(key, json), 'directory create', timeoutMs);
      else await bucketCall(kv.update(key, json, entry.revision), 'directory update', timeoutMs);
      return next;
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
      if (round + 1 >= MAX_UPDATE_ROUNDS) throw new KisekiError('ERR_CONFLICT', { key, reason: 'changed concurrently on another node' }, { cause: err });
    }
  }
}
