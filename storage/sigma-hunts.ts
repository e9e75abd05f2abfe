/**
 * Sigma hunt jobs (`POST /api/v1/sigma/hunts`, engine/sigma-hunt-job.ts):
 * the job record with its progress, and its hits in the order found, so a
 * client pages through them while the hunt runs and after. A server that
 * stops while a hunt runs leaves it `running`; the next start marks it
 * `interrupted` (`interruptRunning`), since the hunt itself lived in memory.
 *
 * Key layouts (kiseki.lmdb):
 *   sigma-hunts        hunt id                     -> SigmaHuntRecord
 *   sigma-hunt-hits    [hunt id, index]            -> SigmaHuntHit
 */
import type { SigmaHuntHit, SigmaHuntRecord } from './records.js';
import type { Tables } from './tables.js';

export type { SigmaHuntHit, SigmaHuntRecord, SigmaHuntStatus } from './records.js';

export interface SigmaHuntRepository {
  get(id: string): SigmaHuntRecord | undefined;
  put(job: SigmaHuntRecord): Promise<void>;
  /** Appends hits at `from`, `from + 1`, … (the job's count before them). */
  addHits(id: string, from: number, hits: readonly SigmaHuntHit[]): Promise<void>;
  /** Hits `offset` … `offset + limit - 1`, in the order found. */
  hits(id: string, offset: number, limit: number): SigmaHuntHit[];
  /** At start: every job still `running` was cut by a stop; marks them `interrupted`. Returns their ids. */
  interruptRunning(now: number): Promise<string[]>;
}

/** The hunt repository over the hot store's tables (called by openHotStore). */
export function createSigmaHuntRepository(t: Tables): SigmaHuntRepository {
  const { sigmaHunts, sigmaHuntHits } = t;
  return {
    get: (id) => sigmaHunts.get(id),
    async put(job) {
      await sigmaHunts.put(job.id, job);
    },
    async addHits(id, from, hits) {
      if (hits.length === 0) return;
      await sigmaHunts.transaction(() => {
        for (let i = 0; i < hits.length; i++) sigmaHuntHits.putSync([id, from + i], hits[i]!);
      });
    },
    hits(id, offset, limit) {
      const out: SigmaHuntHit[] = [];
      for (const { value } of sigmaHuntHits.getRange({ start: [id, offset], end: [id, offset + limit] })) out.push(value);
      return out;
    },
    async interruptRunning(now) {
      const ids: string[] = [];
      for (const { key, value } of sigmaHunts.getRange({})) {
        if (value.status !== 'running') continue;
        ids.push(key);
        await sigmaHunts.put(key, { ...value, status: 'interrupted', finishedAt: now, error: 'the server stopped while the hunt ran' });
      }
      return ids;
    },
  };
}
