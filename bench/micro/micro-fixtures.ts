/**
 * Seeded fixtures shared by the micro benchmarks: realistic trail events from
 * the load simulator's generator (bench/load/trail-generator.ts), the same
 * on every run and machine, so alternatives are compared on identical input.
 */
import { encode } from '@msgpack/msgpack';
import { compress } from 'zstd-napi';
import type { TrailEvent } from '../../core/contracts.js';
import { createTrailGenerator } from '../../agent/index.js';
import type { HotStore } from '../../storage/index.js';

/** `count` events from `computers` seeded PCs, in generation order per PC. */
export function fixtureEvents(count: number, computers = 8, seed = 42, detectRate = 0): TrailEvent[] {
  const out: TrailEvent[] = [];
  const per = Math.ceil(count / computers);
  for (let c = 0; c < computers && out.length < count; c++) {
    const gen = createTrailGenerator({ seed: seed * 31 + c, computer: `BENCH-PC-${c}`, detectRate });
    let seq = 1;
    while (seq <= per && out.length < count) {
      const n = Math.min(500, per - seq + 1, count - out.length);
      out.push(...gen.next(n, seq, Date.UTC(2024, 2, 12, 9, 0, 0) + seq * 50));
      seq += n;
    }
  }
  return out;
}

/** True when this module is the script Node was started with (guarded mains). */
export function isMain(metaUrl: string): boolean {
  const argv1 = process.argv[1];
  return argv1 !== undefined && metaUrl === new URL(`file://${argv1}`).href;
}

/**
 * The shard benchmarks' input: `events` split evenly over the devices `tmids`,
 * in batches of `batchSize` (default 500) committed to the store's log (received at `recvAt`), then
 * interleaved as ingest would hand them over, with lsns 1, 2, 3… in that order.
 */
export async function commitShardBatches(store: HotStore, tmids: readonly string[], events: readonly TrailEvent[], recvAt = 0, batchSize = 500): Promise<{ lsn: number; tmid: string; bytes: Uint8Array }[]> {
  const per = Math.ceil(events.length / tmids.length);
  const batches: { lsn: number; tmid: string; bytes: Uint8Array }[] = [];
  let lsn = 0;
  for (let c = 0; c < tmids.length; c++) {
    const mine = events.slice(c * per, (c + 1) * per);
    for (let i = 0; i < mine.length; i += batchSize) {
      const chunk = mine.slice(i, i + batchSize);
      const bytes = encode(chunk);
      lsn++;
      await store.log.commitBatches([{ lsn, record: { tmid: tmids[c]!, id: lsn.toString(16).padStart(32, '0'), sentAt: 0, recvAt, first: chunk[0]!.seq, last: chunk.at(-1)!.seq, n: chunk.length, z: compress(bytes) } }]);
      batches.push({ lsn, tmid: tmids[c]!, bytes });
    }
  }
  batches.sort((a, b) => (a.lsn % 13) - (b.lsn % 13) || a.lsn - b.lsn);
  return batches.map((b, i) => ({ ...b, lsn: i + 1 }));
}

