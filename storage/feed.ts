/**
 * The notification feed's one writer: repositories call `appendFeedSync`
 * inside the write transaction of the change it describes (a new alert, a
 * verdict change, an isolation), so notify/ reads exactly what committed and
 * never misses a change that did. A helper over the tables, not a
 * repository: alerts.ts and commands.ts import it without importing each
 * other.
 *
 * Key layout (kiseki.lmdb):
 *   notify-feed   seq -> NotifyFeedEvent (1, 2, 3… in commit order)
 */
import type { NotifyFeedEvent } from './records.js';
import type { Tables } from './tables.js';

/**
 * Inside a write transaction of kiseki.lmdb: appends one event with the next
 * sequence number. Reads inside a transaction callback see its own writes and
 * LMDB has one writer at a time, so the numbers are dense and ordered even
 * with several shard threads writing.
 */
export function appendFeedSync(t: Tables, event: Omit<NotifyFeedEvent, 'seq'>): number {
  let last = 0;
  for (const key of t.notifyFeed.getKeys({ reverse: true, limit: 1 })) last = key;
  const seq = last + 1;
  t.notifyFeed.putSync(seq, { seq, ...event });
  return seq;
}
