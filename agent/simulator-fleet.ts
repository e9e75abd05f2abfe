/**
 * What a simulated agent does with its tenant's fleet policy (issue 16,
 * docs/FLEET.md), kept apart from the simulator's connection and batch
 * logic: it applies log tuning filters at the source (dropped events are
 * never recorded, so they take no seq, and their count and MessagePack size
 * are reported in the next heartbeat's `tuned`), blocks USB devices off the
 * allow-list in block mode (the `usb.connect` is still reported, with
 * `blocked: true`), keeps the list of attached USB devices for the
 * inventory, and checks `upgrade` arguments like an installer would.
 */
import { encode } from '@msgpack/msgpack';
import type { AgentFleetPolicy, TrailEvent } from '../core/contracts.js';
import { compileTuning, usbAllowedBy, type TuningMatcher } from '../core/fleet-policy.js';

/** Process images remembered per agent for image filters (pg → image of its proc.start). */
const MAX_IMAGES = 4096;

export interface SimFleet {
  /** Applies a fleet policy from `welcome` or a `policy` frame when it is newer than the one held; returns whether it did. */
  applyPolicy(fleet: unknown): boolean;
  /** The policy in force (version 0 until the server sent one). */
  readonly version: number;
  /** Drops tuned events, marks blocked USB insertions and tracks attached devices; returns the events to record. */
  filter(events: TrailEvent[]): TrailEvent[];
  /** Counts dropped since the last call, or undefined when none. */
  takeTuned(): { events: number; bytes: number } | undefined;
  /** Puts counts back after a heartbeat could not be sent. */
  restoreTuned(t: { events: number; bytes: number }): void;
  /** True once after the attached USB devices changed (time to send an inventory). */
  takeUsbChanged(): boolean;
  /** USB devices attached now, as the inventory lists them. */
  attachedUsb(): Record<string, unknown>[];
  /** Running totals. */
  readonly stats: { tunedEvents: number; tunedBytes: number; usbBlocked: number };
}

/** Checks an `upgrade` command's args; the error is what the agent reports as `failed`. */
export function checkUpgradeArgs(args: Record<string, unknown>): { version: string } | { error: string } {
  const { version, url, sha256 } = args;
  if (typeof version !== 'string' || !/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/.test(version)) return { error: 'invalid version' };
  if (typeof url !== 'string' || !url.startsWith('https://')) return { error: 'the package URL must be https' };
  if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) return { error: 'invalid package sha256' };
  return { version };
}

function isFleetPolicy(v: unknown): v is AgentFleetPolicy {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  const usb = p.usb as Record<string, unknown> | undefined;
  return typeof p.version === 'number' && (p.mode === 'block' || p.mode === 'non-block') && Array.isArray(p.tuning) && typeof usb === 'object' && usb !== null && Array.isArray(usb.allow);
}

/** The fleet-policy state of one simulated agent. */
export function createSimFleet(): SimFleet {
  let policy: AgentFleetPolicy | undefined;
  let tuning: TuningMatcher | undefined;
  const images = new Map<string, string>();
  const attached = new Map<string, Record<string, unknown>>();
  let usbChanged = false;
  let pendingEvents = 0;
  let pendingBytes = 0;
  const stats = { tunedEvents: 0, tunedBytes: 0, usbBlocked: 0 };
  const imageOf = (pg: string): string | undefined => images.get(pg);
  return {
    applyPolicy(fleet) {
      if (!isFleetPolicy(fleet) || (policy !== undefined && fleet.version <= policy.version)) return false;
      policy = fleet;
      tuning = compileTuning(fleet.tuning);
      return true;
    },
    get version() {
      return policy?.version ?? 0;
    },
    filter(events) {
      const kept: TrailEvent[] = [];
      for (const e of events) {
        if (e.k === 'proc.start' && typeof e.pg === 'string' && typeof e.image === 'string') {
          if (images.size >= MAX_IMAGES) images.delete(images.keys().next().value as string);
          images.set(e.pg, e.image);
        }
        if (tuning !== undefined && tuning.match(e, imageOf) !== undefined) {
          const size = encode(e).byteLength;
          pendingEvents++;
          pendingBytes += size;
          stats.tunedEvents++;
          stats.tunedBytes += size;
          continue;
        }
        if (e.k === 'usb.connect' || e.k === 'usb.disconnect') {
          const key = String(e.instanceId ?? `${String(e.vendorId)}:${String(e.productId)}:${String(e.serial)}`);
          if (e.k === 'usb.connect') {
            const blocked = policy !== undefined && policy.mode === 'block' && policy.usb.control && usbAllowedBy(policy.usb.allow, e) === undefined;
            if (blocked) {
              e.blocked = true;
              e.reason = 'device-control';
              stats.usbBlocked++;
            }
            attached.set(key, { vendorId: e.vendorId, productId: e.productId, serial: e.serial, vendor: e.vendor, model: e.model, type: e.type, ...(blocked ? { blocked: true } : {}) });
          } else attached.delete(key);
          usbChanged = true;
        }
        kept.push(e);
      }
      return kept;
    },
    takeTuned() {
      if (pendingEvents === 0) return undefined;
      const out = { events: pendingEvents, bytes: pendingBytes };
      pendingEvents = 0;
      pendingBytes = 0;
      return out;
    },
    restoreTuned(t) {
      pendingEvents += t.events;
      pendingBytes += t.bytes;
    },
    takeUsbChanged() {
      const changed = usbChanged;
      usbChanged = false;
      return changed;
    },
    attachedUsb: () => [...attached.values()],
    stats,
  };
}
