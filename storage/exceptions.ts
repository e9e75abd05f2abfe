/**
 * The exception list (SPEC §4): per tenant, entries that suppress matching
 * detections (hash, path pattern and/or signer, optional expiry). Read by the
 * shards on each detection, written by operators (API, CLI) and by the engine
 * (automatic exceptions for confident whites).
 *
 * On a cluster node the list is also a copy of `kiseki-directory`'s
 * `except.<support ID>.<id>` keys (cluster/settings-sync.ts): `mirror` and
 * `mirrorRemoval` keep the newest of an entry's add (its `createdAt`) and its
 * removal (the removal's time, remembered), so a late copy of an add never
 * brings back an entry removed after it.
 *
 * Key layout (kiseki.lmdb):
 *   exceptions          [supportId, id] -> ExceptionEntry
 *   exception-removals  [supportId, id] -> removal time, ms (written by mirrorRemoval only)
 */
import { randomBytes } from 'node:crypto';
import type { ExceptionEntry } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import { globToRegExp } from '../core/glob.js';
import type { Tables } from './tables.js';

/** A new random exception-entry id: `ex_` and 16 hex characters. */
export function newExceptionId(): string {
  return `ex_${randomBytes(8).toString('hex')}`;
}

/** The id of the exception the engine adds for a confident white (`autoExceptWhite`): one per tenant and file hash. */
export function autoExceptionId(sha256: string): string {
  return `ex_auto_${sha256.slice(0, 16)}`;
}

/** A new entry: at least one of sha256, pathPattern, signer; the id is made when absent. */
export type ExceptionInput = Omit<ExceptionEntry, 'id' | 'createdAt'> & { id?: string; createdAt: number };

export interface ExceptionRepository {
  /**
   * Adds an entry; at least one of sha256, pathPattern, signer.
   * @throws KisekiError ERR_INVALID_INPUT, ERR_TENANT_NOT_FOUND
   */
  add(input: ExceptionInput): Promise<ExceptionEntry>;
  /**
   * The entry `add` would store, validated, with its id, not stored (a cluster API node shares it first).
   * @throws KisekiError ERR_INVALID_INPUT, ERR_TENANT_NOT_FOUND
   */
  prepare(input: ExceptionInput): ExceptionEntry;
  /** Inside `store.transaction()`: an entry the engine made. */
  saveSync(entry: ExceptionEntry): void;
  /** A tenant's entries in id order. */
  list(supportId: string): ExceptionEntry[];
  get(supportId: string, id: string): ExceptionEntry | undefined;
  /** Removes an entry; false when there was none. */
  remove(supportId: string, id: string): Promise<boolean>;
  /**
   * A cluster node's copy of an entry: stored unless the local entry is as new (`createdAt`) or a removal at or
   * after its `createdAt` is remembered. True when stored.
   */
  mirror(entry: ExceptionEntry): Promise<boolean>;
  /**
   * A cluster node's copy of a removal at `removedAt` (ms): removes the entry unless it is newer (`createdAt` past
   * `removedAt`), and remembers the removal. True when the list changed.
   */
  mirrorRemoval(supportId: string, id: string, removedAt: number): Promise<boolean>;
  /** When the entry was last removed through `mirrorRemoval`, ms. */
  removedAt(supportId: string, id: string): number | undefined;
}

/** The exception-list repository over the hot store's tables (called by openHotStore). */
export function createExceptionRepository(t: Tables): ExceptionRepository {
  const { exceptions, exceptionRemovals, tenants } = t;
  function prepare(input: ExceptionInput): ExceptionEntry {
    if (tenants.get(input.supportId) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId: input.supportId });
    if (input.sha256 === undefined && input.pathPattern === undefined && input.signer === undefined) {
      throw new KisekiError('ERR_INVALID_INPUT', { reason: 'an exception needs sha256, pathPattern or signer' });
    }
    if (input.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(input.sha256)) {
      throw new KisekiError('ERR_INVALID_INPUT', { field: 'sha256', rule: '64 hexadecimal characters' });
    }
    return { ...input, id: input.id ?? newExceptionId(), ...(input.sha256 === undefined ? {} : { sha256: input.sha256.toLowerCase() }) };
  }
  return {
    prepare,
    async add(input) {
      const entry = prepare(input);
      await exceptions.put([entry.supportId, entry.id], entry);
      await t.root.flushed;
      return entry;
    },
    saveSync(entry) {
      exceptions.putSync([entry.supportId, entry.id], entry);
    },
    list: (supportId) => [...exceptions.getRange({ start: [supportId], end: [supportId, '\uffff'] })].map((e) => e.value),
    get: (supportId, id) => exceptions.get([supportId, id]),
    async remove(supportId, id) {
      if (exceptions.get([supportId, id]) === undefined) return false;
      await exceptions.remove([supportId, id]);
      return true;
    },
    // Read and write in one transaction: the bucket watcher and an API request may copy the same entry at once.
    mirror: (entry) =>
      exceptions.transaction(() => {
        const key: [string, string] = [entry.supportId, entry.id];
        const local = exceptions.get(key);
        if (local !== undefined && local.createdAt >= entry.createdAt) return false;
        const removed = exceptionRemovals.get(key);
        if (removed !== undefined && removed >= entry.createdAt) return false;
        exceptions.putSync(key, entry);
        return true;
      }),
    mirrorRemoval: (supportId, id, removedAt) =>
      exceptions.transaction(() => {
        const key: [string, string] = [supportId, id];
        const removed = exceptionRemovals.get(key);
        if (removed === undefined || removed < removedAt) exceptionRemovals.putSync(key, removedAt);
        const local = exceptions.get(key);
        if (local === undefined || local.createdAt > removedAt) return false;
        exceptions.removeSync(key);
        return true;
      }),
    removedAt: (supportId, id) => exceptionRemovals.get([supportId, id]),
  };
}

/** The first live entry that matches the file, or undefined. */
export function matchException(
  entries: readonly ExceptionEntry[],
  file: { sha256: string | undefined; path: string; signer: string | undefined },
  now: number,
): ExceptionEntry | undefined {
  for (const e of entries) {
    if (e.expiresAt !== undefined && e.expiresAt <= now) continue;
    if (e.sha256 !== undefined && (file.sha256 === undefined || e.sha256 !== file.sha256.toLowerCase())) continue;
    if (e.pathPattern !== undefined && !globToRegExp(e.pathPattern).test(file.path)) continue;
    if (e.signer !== undefined && (file.signer === undefined || e.signer.toLowerCase() !== file.signer.toLowerCase())) continue;
    return e;
  }
  return undefined;
}
