/**
 * The API nodes' delivery claims (notify/'s `DeliveryClaims` port) over the
 * `kiseki-notified` bucket: every API node runs the notifier over its copy of
 * the alerts, so each (event, recipient) is queued on every node, and the
 * claim decides which node sends it.
 *
 * One key per (event, recipient): `claim.<SHA-256 hex of deliveryClaimKey>`,
 * value `{ state, node, until, at }`:
 * - the first claimer creates it (`kv.create` succeeds for one node only),
 *   `claimed` until `now + holdMs`; its node sends;
 * - the others wait until `until`, then take the claim over with a revision
 *   check (`kv.update`): a claimer that died after claiming and before sending
 *   costs a delay, not the notification;
 * - a failed attempt keeps the claim until its retry time plus `holdMs`; the
 *   outcome `sent` or `dead` is final, and the other nodes' copies of the
 *   notification end without being sent.
 * `until` is the claimer's clock: node clocks must agree to well within
 * `holdMs` (2 min by default). Records expire from the bucket after 7 days
 * (`NOTIFY_CLAIM_TTL_MS`).
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { KisekiError } from '../core/errors.js';
import type { ClaimAnswer, DeliveryClaims } from '../notify/index.js';
import { boundedNatsCall } from './nats.js';

/** The value of a key of `kiseki-notified` (JSON). */
export interface NotifyClaimRecord {
  state: 'claimed' | 'sent' | 'dead';
  /** The node that claimed, sent or dead-lettered it. */
  node: string;
  /** While `claimed`: when another node may take it over, ms (the claimer's clock). */
  until: number;
  /** When this version was written, ms. */
  at: number;
}

/** The bucket key of a delivery claim key (any characters: hashed into a NATS-safe token). */
export function notifyClaimBucketKey(claimKey: string): string {
  return `claim.${createHash('sha256').update(claimKey).digest('hex')}`;
}

/** Parses a value of `kiseki-notified`; undefined for anything else. */
export function decodeNotifyClaim(bytes: Uint8Array): NotifyClaimRecord | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<NotifyClaimRecord> | null;
    if (v === null || typeof v !== 'object' || typeof v.node !== 'string' || typeof v.until !== 'number' || typeof v.at !== 'number') return undefined;
    if (v.state !== 'claimed' && v.state !== 'sent' && v.state !== 'dead') return undefined;
    return v as NotifyClaimRecord;
  } catch {
    return undefined;
  }
}

export interface NotifyClaimsOptions {
  kv: KV;
  nodeId: string;
  /** How long a claim holds before another node may take it over, ms (default 120,000: longer than one attempt's PDF wait and send timeouts). */
  holdMs?: number;
  /** Bound of one KV call, ms (default 5000). */
  timeoutMs?: number;
  /** Clock of `until` and `at` (default Date.now). */
  now?: () => number;
}

/** Races between nodes on one key are settled by revision checks; this many rounds at most before the claim answers `held` briefly. */
const CLAIM_ROUNDS = 3;

/** Claims over `kiseki-notified` for one API node. */
export function createNotifyClaims(options: NotifyClaimsOptions): DeliveryClaims {
  const { kv, nodeId } = options;
  const holdMs = options.holdMs ?? 120_000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const now = options.now ?? Date.now;
  const encode = (r: NotifyClaimRecord): string => JSON.stringify(r);
  const claimedRecord = (until: number): NotifyClaimRecord => ({ state: 'claimed', node: nodeId, until, at: now() });

  const read = async (key: string): Promise<{ record: NotifyClaimRecord | undefined; revision: number } | undefined> => {
    const e = await boundedNatsCall(kv.get(key), timeoutMs, 'notify claim read');
    if (e === null || e.operation !== 'PUT') return undefined;
    return { record: decodeNotifyClaim(e.value), revision: e.revision };
  };
  /** Writes `record` if the key is still as read (absent, or at `revision`); false when another node wrote first. */
  const write = async (key: string, record: NotifyClaimRecord, revision: number | undefined): Promise<boolean> => {
    try {
      await boundedNatsCall(revision === undefined ? kv.create(key, encode(record)) : kv.update(key, encode(record), revision), timeoutMs, 'notify claim write');
      return true;
    } catch (err) {
      // A lost race and an unreachable NATS look alike here: the next read tells them apart (it throws when NATS is down).
      if (err instanceof KisekiError) throw err;
      return false;
    }
  };

  return {
    async claim(claimKey): Promise<ClaimAnswer> {
      const key = notifyClaimBucketKey(claimKey);
      for (let round = 0; round < CLAIM_ROUNDS; round++) {
        const held = await read(key);
        const r = held?.record;
        if (r !== undefined && r.state !== 'claimed') return { kind: 'settled', state: r.state, by: r.node };
        if (r !== undefined && r.node !== nodeId && r.until > now()) return { kind: 'held', until: r.until };
        // Free, ours, expired, or not a claim record: take it, unless another node writes first.
        if (await write(key, claimedRecord(now() + holdMs), held?.revision)) return { kind: 'mine' };
      }
      // Several nodes raced for it: one of them holds it now; ask again shortly.
      return { kind: 'held', until: now() + 1000 };
    },
    async settle(claimKey, outcome) {
      const key = notifyClaimBucketKey(claimKey);
      const record: NotifyClaimRecord = outcome.state === 'retry' ? claimedRecord(outcome.retryAt + holdMs) : { state: outcome.state, node: nodeId, until: 0, at: now() };
      const held = await read(key);
      // Another node took the claim over meanwhile (this attempt outlived `holdMs`): its record stands.
      if (held?.record !== undefined && (held.record.node !== nodeId || held.record.state !== 'claimed')) return;
      if (!(await write(key, record, held?.revision))) {
        throw new KisekiError('ERR_CLUSTER_UNAVAILABLE', { reason: 'notify claim settle: another node wrote the claim first' });
      }
    },
  };
}
