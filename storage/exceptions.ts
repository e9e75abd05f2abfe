/**
 * The exception list (SPEC §4): per tenant, entries that suppress matching
 * detections (hash, path pattern and/or signer, optional expiry). Read by the
 * shards on each detection, written by operators (API, CLI) and by the engine
 * (automatic exceptions for confident whites).
 *
 * Key layout (kiseki.lmdb):
 *   exceptions  [supportId, id] -> ExceptionEntry
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

export interface ExceptionRepository {
  /**
   * Adds an entry; at least one of sha256, pathPattern, signer.
   * @throws KisekiError ERR_INVALID_INPUT, ERR_TENANT_NOT_FOUND
   */
  add(input: Omit<ExceptionEntry, 'id' | 'createdAt'> & { id?: string; createdAt: number }): Promise<ExceptionEntry>;
  /** Inside `store.transaction()`: an entry the engine made. */
  saveSync(entry: ExceptionEntry): void;
  /** A tenant's entries in id order. */
  list(supportId: string): ExceptionEntry[];
  get(supportId: string, id: string): ExceptionEntry | undefined;
  /** Removes an entry; false when there was none. */
  remove(supportId: string, id: string): Promise<boolean>;
}

/** The exception-list repository over the hot store's tables (called by openHotStore). */
export function createExceptionRepository(t: Tables): ExceptionRepository {
  const { exceptions, tenants } = t;
  return {
    async add(input) {
      if (tenants.get(input.supportId) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId: input.supportId });
      if (input.sha256 === undefined && input.pathPattern === undefined && input.signer === undefined) {
        throw new KisekiError('ERR_INVALID_INPUT', { reason: 'an exception needs sha256, pathPattern or signer' });
      }
      if (input.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(input.sha256)) {
        throw new KisekiError('ERR_INVALID_INPUT', { field: 'sha256', rule: '64 hexadecimal characters' });
      }
      const entry: ExceptionEntry = { ...input, id: input.id ?? newExceptionId(), ...(input.sha256 === undefined ? {} : { sha256: input.sha256.toLowerCase() }) };
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
