/**
 * A fresh hot store in a temporary directory for each test of the calling
 * file or describe block: opened before each test, closed and removed after
 * it. The tests of the repositories and of the stages over them all need one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { openHotStore, type HotStore } from '../../storage/index.js';

export interface TempStore {
  /**
   * Closes the store, runs `between` on its closed directory (to write what
   * an older version left there), and opens it again: what a restart sees.
   * The new store is handed to `onOpen` as well.
   */
  reopen(between?: (dir: string) => Promise<void> | void): Promise<HotStore>;
}

const MAP_SIZE_BYTES = 64 * 1024 * 1024;

/**
 * Registers the store's lifecycle with vitest.
 * @param prefix the temporary directory's name prefix (which test left it, if one is ever left)
 * @param onOpen receives each store opened (before each test, and on reopen)
 */
export function useTempStore(prefix: string, onOpen: (store: HotStore) => void): TempStore {
  let dir = '';
  let store: HotStore | undefined;
  const open = (): HotStore => {
    const s = openHotStore({ dataDir: dir, mapSizeBytes: MAP_SIZE_BYTES });
    store = s;
    onOpen(s);
    return s;
  };
  const close = async (): Promise<void> => {
    const s = store;
    store = undefined;
    await s?.close();
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    open();
  });
  afterEach(async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    async reopen(between) {
      await close();
      await between?.(dir);
      return open();
    },
  };
}

/**
 * Creates tenant EX0001 ("Example Corp") in the store of `dataDir`, as `kiseki tenant create --data DIR` leaves it
 * before a node starts there; resolves with its enrollment key.
 */
export async function createTenantIn(dataDir: string): Promise<string> {
  const store = openHotStore({ dataDir, mapSizeBytes: MAP_SIZE_BYTES });
  try {
    return (await store.tenants.create({ supportId: 'EX0001', name: 'Example Corp', now: Date.now() })).enrollKey;
  } finally {
    await store.close();
  }
}
