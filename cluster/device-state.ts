/**
 * A device's live state across nodes: `state.<TMID>` in `kiseki-directory`
 * (directory-layout.ts) holds whether it is connected, since when, through
 * which ingest node, and the facts of its last hello (computer, agent
 * version, OS, addresses). The ingest node holding the agent's socket puts
 * it once per connect and once per disconnect (never per batch), and API
 * nodes copy it into their device records, so `GET /devices` there shows
 * `connected` and the facts as the embedded mode does.
 *
 * An agent that moves from node B to node A may be seen connected on A
 * before B notices its socket closed: B's disconnect is written only while
 * the key still names B (`kv.update` with the revision read, read again on a
 * conflict), so a late disconnect never hides the connection on A. A put
 * that fails is retried in the background with the device's latest change
 * (one pending entry per device). An ingest node that died with agents
 * connected marks them disconnected at its next start (those still naming it).
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from '../core/logger.js';
import type { DeviceConnectionChange } from '../ingest/index.js';
import type { DeviceFacts, HotStore } from '../storage/index.js';
import { parseDirectoryKey, stateKey } from './directory-layout.js';
import { boundedNatsCall } from './nats.js';
import { isRevisionConflict } from './bucket-update.js';

/** The value of `state.<TMID>`. */
export interface DeviceState {
  tmid: string;
  supportId: string;
  connected: boolean;
  /** Time of the connect or disconnect, ms (the ingest node's clock). */
  at: number;
  /** The ingest node that put it. */
  node: string;
  /** At a connect: the facts of the hello. */
  facts?: DeviceFacts;
}

/** Bound of one bucket call, ms. */
const CALL_TIMEOUT_MS = 5000;
/** Reads and conditional writes of one disconnect before it gives up to a concurrent writer. */
const MAX_DISCONNECT_ROUNDS = 5;

/** Parses a `state.<TMID>` value; undefined for any other shape. */
export function parseDeviceState(json: string, tmid: string): DeviceState | undefined {
  try {
    const v = JSON.parse(json) as Partial<DeviceState> | null;
    if (v === null || typeof v !== 'object' || v.tmid !== tmid || typeof v.supportId !== 'string' || typeof v.connected !== 'boolean') return undefined;
    if (typeof v.at !== 'number' || typeof v.node !== 'string') return undefined;
    if (v.facts !== undefined && (typeof v.facts !== 'object' || v.facts === null || typeof v.facts.computer !== 'string' || !Array.isArray(v.facts.ips) || !Array.isArray(v.facts.macs))) return undefined;
    return v as DeviceState;
  } catch {
    return undefined;
  }
}

export interface DeviceStatePublisherOptions {
  kv: KV;
  nodeId: string;
  logger: Logger;
  /** Wait before failed puts are tried again, ms (default 1000). */
  retryMs?: number;
}

export interface DeviceStatePublisher {
  /** Publishes a connect or disconnect of this node's agent (in the background; never throws). */
  publish(change: DeviceConnectionChange): void;
  /**
   * At start: the devices this node's store held connected (a node that stopped without closing its
   * sockets) are published disconnected where the bucket still names this node.
   */
  disconnectLeftovers(tmids: { tmid: string; supportId: string }[], at: number): Promise<void>;
  /** Puts done, waiting for a retry, failed and retried. */
  stats(): { published: number; pending: number; retried: number };
  /** Waits (bounded) for the puts in flight, then stops retrying. */
  stop(): Promise<void>;
}

export function createDeviceStatePublisher(options: DeviceStatePublisherOptions): DeviceStatePublisher {
  const { kv, nodeId } = options;
  const log = options.logger.child({ component: 'device-state' });
  /** Puts of one device run one after the other, so a disconnect never overtakes its connect. */
  const chains = new Map<string, Promise<void>>();
  /** Latest change per device whose put failed: the timer tries it again. */
  const pending = new Map<string, DeviceConnectionChange>();
  let published = 0;
  let retried = 0;
  let failing = false;

  async function write(change: DeviceConnectionChange): Promise<void> {
    const key = stateKey(change.tmid);
    const state: DeviceState = {
      tmid: change.tmid,
      supportId: change.supportId,
      connected: change.connected,
      at: change.at,
      node: nodeId,
      ...(change.facts === undefined ? {} : { facts: change.facts }),
    };
    if (change.connected) {
      await boundedNatsCall(kv.put(key, JSON.stringify(state)), CALL_TIMEOUT_MS, 'device state put');
      published++;
      return;
    }
    for (let round = 0; round < MAX_DISCONNECT_ROUNDS; round++) {
      const entry = await boundedNatsCall(kv.get(key), CALL_TIMEOUT_MS, 'device state read');
      const held = entry !== null && entry.operation === 'PUT' ? parseDeviceState(entry.string(), change.tmid) : undefined;
      // Connected through another node since: that connection's state stands.
      if (held !== undefined && held.node !== nodeId && held.connected) return;
      // Keep the facts of the last hello with the disconnect (what the device last said).
      const next = held?.facts === undefined ? state : { ...state, facts: held.facts };
      try {
        if (entry === null) await boundedNatsCall(kv.create(key, JSON.stringify(next)), CALL_TIMEOUT_MS, 'device state create');
        else await boundedNatsCall(kv.update(key, JSON.stringify(next), entry.revision), CALL_TIMEOUT_MS, 'device state update');
        published++;
        return;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
  }

  function enqueue(change: DeviceConnectionChange): Promise<void> {
    const next = (chains.get(change.tmid) ?? Promise.resolve()).then(() => write(change));
    const settled = next.then(
      () => {
        if (pending.get(change.tmid) === change) pending.delete(change.tmid);
        if (failing && pending.size === 0) {
          failing = false;
          log.info('Device states are published again.');
        }
      },
      (err: unknown) => {
        // Only the device's latest change is worth retrying.
        if (!pending.has(change.tmid) || pending.get(change.tmid) === change) pending.set(change.tmid, change);
        if (!failing) {
          failing = true;
          log.warn({ err: err instanceof Error ? err.message : String(err) }, 'A device state could not be published; retrying.');
        }
      },
    );
    chains.set(change.tmid, settled);
    void settled.finally(() => {
      if (chains.get(change.tmid) === settled) chains.delete(change.tmid);
    });
    return settled;
  }

  const retryTimer = setInterval(() => {
    for (const [tmid, change] of pending) {
      if (chains.has(tmid)) continue;
      retried++;
      void enqueue(change);
    }
  }, options.retryMs ?? 1000);

  return {
    publish(change) {
      pending.set(change.tmid, change);
      void enqueue(change);
    },
    async disconnectLeftovers(devices, at) {
      await Promise.all(devices.map((d) => enqueue({ tmid: d.tmid, supportId: d.supportId, connected: false, at })));
    },
    stats: () => ({ published, pending: pending.size, retried }),
    async stop() {
      clearInterval(retryTimer);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all([...chains.values()]), new Promise((r) => (timer = setTimeout(r, CALL_TIMEOUT_MS)))]);
      clearTimeout(timer);
    },
  };
}

/**
 * An API node's copy of a `state.<TMID>` entry into its device record: connected or not, and the hello's
 * facts. Entries come in the bucket's order, which the ingest nodes keep right (see above), so each is
 * applied as it comes. Resolves true when it changed a record; false for another key, a value of another
 * shape, or a device this store does not hold (its `device.` entry, put before the agent's welcome, comes first).
 */
export async function applyDeviceState(store: HotStore, key: string, json: string): Promise<boolean> {
  const parsed = parseDirectoryKey(key);
  if (parsed?.kind !== 'state') return false;
  const state = parseDeviceState(json, parsed.id);
  if (state === undefined || store.devices.get(state.tmid) === undefined) return false;
  await store.devices.patch(state.tmid, (current) => ({ ...current, ...(state.facts ?? {}), connected: state.connected, lastSeen: Math.max(current.lastSeen, state.at) }));
  return true;
}
