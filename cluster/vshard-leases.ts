/**
 * Leases on virtual shards in the `kiseki-leases` bucket: a shard node owns
 * virtual shard n while the key `vshard.<n>` holds its node id. The bucket's
 * TTL is the lease TTL, so a key nobody renews disappears and another node
 * can `create` it; renewals are `update`s against the revision the owner last
 * wrote, so two nodes never both believe a renewal succeeded.
 *
 * Each node also keeps `node.<id>` alive; the live nodes share the 256 virtual
 * shards evenly: a node under its share (ceil(256 / live nodes)) takes free
 * shards, one over it releases its extras, only after `onRelease` has stopped
 * their consumers and written their checkpoints (no batch processed twice
 * across a handover). A node restarted under the same id takes its own
 * leases back at once instead of waiting for them to expire.
 */
import type { KV } from '@nats-io/kv';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { VIRTUAL_SHARDS } from '../core/vshard.js';

export interface VshardLeasesOptions {
  kv: KV;
  nodeId: string;
  ttlMs: number;
  clock: Clock;
  logger: Logger;
  /** Called once a lease is held: start consuming the virtual shard. */
  onAcquire(vshard: number): Promise<void>;
  /** Called before a lease is given up or when it was lost: stop consuming and checkpoint. */
  onRelease(vshard: number): Promise<void>;
}

export interface VshardLeases {
  /** Runs one round at once (register, renew, rebalance), then every third of the TTL. */
  start(): Promise<void>;
  owned(): number[];
  /** Stops renewing and releases every lease (after `onRelease` of each). */
  stop(): Promise<void>;
}

function leaseKey(vshard: number): string {
  return `vshard.${vshard}`;
}

/** Creates the lease keeper of one shard node. */
export function createVshardLeases(options: VshardLeasesOptions): VshardLeases {
  const { kv, nodeId, clock } = options;
  const log = options.logger.child({ component: 'vshard-leases', node: nodeId });
  /** vshard → revision of our last write and when it succeeded. */
  const held = new Map<number, { revision: number; renewedAt: number }>();
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  let stopped = false;
  const nodeKey = `node.${Buffer.from(nodeId).toString('base64url')}`;

  async function liveNodes(): Promise<number> {
    let n = 0;
    for await (const _k of await kv.keys('node.*')) n++;
    return Math.max(1, n);
  }

  async function take(v: number): Promise<boolean> {
    const key = leaseKey(v);
    const entry = await kv.get(key);
    let revision: number;
    try {
      if (entry === null || entry.operation !== 'PUT') revision = await kv.create(key, nodeId);
      else if (entry.string() === nodeId) revision = await kv.update(key, nodeId, entry.revision);
      else return false;
    } catch {
      // Another node was quicker: its lease stands.
      return false;
    }
    held.set(v, { revision, renewedAt: clock.now() });
    try {
      await options.onAcquire(v);
    } catch (err) {
      log.error({ vshard: v, err }, 'A virtual shard could not be started; its lease is given up.');
      held.delete(v);
      await kv.delete(key).catch(() => undefined);
      return false;
    }
    return true;
  }

  async function giveUp(v: number, lost: boolean): Promise<void> {
    await options.onRelease(v);
    const h = held.get(v);
    held.delete(v);
    // Delete only our own lease: a lost one may already be another node's.
    if (!lost && h !== undefined) await kv.delete(leaseKey(v), { previousSeq: h.revision }).catch(() => undefined);
  }

  async function oneRound(): Promise<void> {
    await kv.put(nodeKey, String(clock.now()));
    for (const [v, h] of [...held]) {
      try {
        const revision = await kv.update(leaseKey(v), nodeId, h.revision);
        held.set(v, { revision, renewedAt: clock.now() });
      } catch {
        // Expired and taken by another node, or NATS unreachable for longer than the lease: stop either way.
        if (clock.now() - h.renewedAt >= options.ttlMs * 0.8 || (await kv.get(leaseKey(v)).catch(() => null))?.string() !== nodeId) {
          log.warn({ vshard: v }, 'Lost the lease on a virtual shard; its consumer stops.');
          await giveUp(v, true);
        }
      }
    }
    const share = Math.ceil(VIRTUAL_SHARDS / (await liveNodes()));
    if (held.size > share) {
      const extras = [...held.keys()].sort((a, b) => b - a).slice(0, held.size - share);
      for (const v of extras) await giveUp(v, false);
      log.info({ released: extras.length, owned: held.size }, 'Released virtual shards to the other shard nodes.');
    } else if (held.size < share) {
      let taken = 0;
      // Start at a node-specific offset so that nodes starting together contend less.
      let offset = 0;
      for (let i = 0; i < nodeId.length; i++) offset = (offset * 31 + nodeId.charCodeAt(i)) % VIRTUAL_SHARDS;
      for (let i = 0; i < VIRTUAL_SHARDS && held.size < share && !stopped; i++) {
        const v = (offset + i) % VIRTUAL_SHARDS;
        if (!held.has(v) && (await take(v))) taken++;
      }
      if (taken > 0) log.info({ taken, owned: held.size, share }, 'Took leases on virtual shards.');
    }
  }

  function runRound(): Promise<void> {
    round ??= oneRound()
      .catch((err: unknown) => log.warn({ err }, 'A lease round failed; the next one retries.'))
      .finally(() => {
        round = undefined;
      });
    return round;
  }

  return {
    async start() {
      await runRound();
      timer = setInterval(() => void runRound(), Math.max(200, Math.floor(options.ttlMs / 3)));
    },
    owned() {
      return [...held.keys()].sort((a, b) => a - b);
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      while (round !== undefined) await round;
      for (const v of [...held.keys()]) await giveUp(v, false);
      await kv.delete(nodeKey).catch(() => undefined);
    },
  };
}
