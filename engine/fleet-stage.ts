/**
 * The shard's part of fleet management (issue 16, docs/FLEET.md), run on
 * every batch before counting and correlation:
 *
 * - log tuning: events a tenant's tuning filters match are dropped here, so
 *   they never reach the kind counts, the device state or the alerts (agents
 *   that received the policy do not even send them; this catches what was in
 *   flight or comes from agents that have not applied it). The raw batch
 *   stays in the log as ingest committed it: exactly-once storage and the
 *   acks depend on that (docs/ARCHITECTURE.md);
 * - savings: events and MessagePack bytes dropped, per tenant and day;
 * - USB device control: a `usb.connect` of a device off the tenant's
 *   allow-list raises a fleet alert (`usb.blocked` in block mode, where the
 *   agent blocked it, `usb.unallowed` in non-block mode).
 *
 * Policies are read from storage per tenant at most every `refreshMs`, so a
 * change reaches every shard within that time without a message.
 */
import { createHash } from 'node:crypto';
import type { AgentMode, UsbAllowRule } from '../core/contracts.js';
import type { Clock } from '../core/clock.js';
import { internString } from '../core/intern.js';
import { compileTuning, tokyoDay, usbAllowedBy, type TuningMatcher } from '../core/fleet-policy.js';
import { MAX_EVENT_DEPTH, splitArray } from '../core/msgpack-bounds.js';
import type { FleetAlert, HotStore, TuningSavings } from '../storage/index.js';

/** Process images remembered for image filters on events that only carry a process GUID. */
const MAX_IMAGES = 200_000;

interface TenantFleet {
  version: number;
  readAt: number;
  mode: AgentMode;
  tuning: TuningMatcher | undefined;
  usbControl: boolean;
  usbAllow: UsbAllowRule[];
}

/** Running totals of a shard's fleet stage. */
export interface FleetStageStats {
  eventsDropped: number;
  bytesDropped: number;
  usbAlerts: number;
}

export interface FleetStageOptions {
  store: HotStore;
  clock: Clock;
  /** How old a tenant's cached policy may get before it is read again, ms. Default 1000. */
  refreshMs?: number;
}

/** The fleet-alert id of an event: a replay of the batch produces the same one. */
export function fleetAlertId(tmid: string, seq: number, kind: string): string {
  return `fa_${createHash('sha256').update(`${tmid}:${seq}:${kind}`).digest('hex').slice(0, 24)}`;
}

export class FleetStage {
  readonly stats: FleetStageStats = { eventsDropped: 0, bytesDropped: 0, usbAlerts: 0 };
  private readonly store: HotStore;
  private readonly clock: Clock;
  private readonly refreshMs: number;
  private readonly tenants = new Map<string, TenantFleet>();
  private readonly deviceTenant = new Map<string, { supportId: string; computer: string }>();
  /** `tmid|pg` → image of its proc.start, insertion-ordered so the oldest go first. */
  private readonly images = new Map<string, string>();
  private pendingSavings = new Map<string, { supportId: string; day: string; delta: TuningSavings }>();
  private pendingAlerts: FleetAlert[] = [];

  constructor(options: FleetStageOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.refreshMs = options.refreshMs ?? 1000;
  }

  private tenantOf(tmid: string): { supportId: string; computer: string } | undefined {
    let d = this.deviceTenant.get(tmid);
    if (d === undefined) {
      let device = this.store.devices.get(tmid);
      if (device === undefined) {
        // Enrolled by the ingest thread after this thread's read snapshot was taken.
        this.store.refreshReads();
        device = this.store.devices.get(tmid);
      }
      if (device === undefined) return undefined;
      // Interned: a decoded record's strings can be slices that keep the whole record's text alive.
      d = { supportId: internString(device.supportId), computer: internString(device.computer) };
      this.deviceTenant.set(tmid, d);
    }
    return d;
  }

  private policyOf(supportId: string, now: number): TenantFleet {
    const cached = this.tenants.get(supportId);
    if (cached !== undefined && now - cached.readAt < this.refreshMs) return cached;
    const p = this.store.fleet.policy(supportId);
    if (cached !== undefined && cached.version === p.version) {
      cached.readAt = now;
      return cached;
    }
    const next: TenantFleet = { version: p.version, readAt: now, mode: p.mode, tuning: compileTuning(p.tuning), usbControl: p.usb.control, usbAllow: p.usb.allow };
    this.tenants.set(supportId, next);
    return next;
  }

  /**
   * Looks at a decoded batch (`values` in seq order, poison elements
   * undefined) and returns the indexes of the events to drop, or undefined
   * when none. With `full` (not a state-only replay) it also counts savings
   * and raises USB alerts.
   */
  inspect(tmid: string, values: readonly unknown[], bytes: Uint8Array, full: boolean, recvAt: number | undefined): Set<number> | undefined {
    const device = this.tenantOf(tmid);
    if (device === undefined) return undefined;
    const now = this.clock.now();
    const fleet = this.policyOf(device.supportId, now);
    if (fleet.tuning === undefined && !fleet.usbControl) return undefined;
    let drop: Set<number> | undefined;
    const imageOf = (pg: string): string | undefined => this.images.get(`${tmid}|${pg}`);
    for (let i = 0; i < values.length; i++) {
      const e = values[i] as Record<string, unknown> | undefined | null;
      if (typeof e !== 'object' || e === null) continue;
      if (fleet.tuning !== undefined) {
        if (e.k === 'proc.start' && typeof e.pg === 'string' && typeof e.image === 'string') this.rememberImage(`${tmid}|${e.pg}`, e.image);
        if (fleet.tuning.match(e, imageOf) !== undefined) {
          (drop ??= new Set()).add(i);
          continue;
        }
      }
      if (full && fleet.usbControl && e.k === 'usb.connect' && usbAllowedBy(fleet.usbAllow, e) === undefined) this.usbAlert(tmid, device, fleet.mode, e, now);
    }
    if (drop !== undefined && full) this.countSavings(device.supportId, drop, bytes, recvAt ?? now);
    return drop;
  }

  private rememberImage(key: string, image: string): void {
    if (this.images.size >= MAX_IMAGES && !this.images.has(key)) {
      const oldest = this.images.keys().next().value;
      if (oldest !== undefined) this.images.delete(oldest);
    }
    this.images.set(key, image);
  }

  private countSavings(supportId: string, drop: Set<number>, bytes: Uint8Array, at: number): void {
    // Sizes as they travelled: each event's own MessagePack bytes (a walk without decoding, only for batches that lose events).
    const spans = splitArray(bytes, MAX_EVENT_DEPTH);
    let size = 0;
    if (spans !== undefined) for (const i of drop) size += spans[i] === undefined ? 0 : spans[i]!.end - spans[i]!.start;
    const day = tokyoDay(at);
    const key = `${supportId}\u0000${day}`;
    let entry = this.pendingSavings.get(key);
    if (entry === undefined) {
      entry = { supportId, day, delta: { agentEvents: 0, agentBytes: 0, shardEvents: 0, shardBytes: 0 } };
      this.pendingSavings.set(key, entry);
    }
    entry.delta.shardEvents += drop.size;
    entry.delta.shardBytes += size;
    this.stats.eventsDropped += drop.size;
    this.stats.bytesDropped += size;
  }

  private usbAlert(tmid: string, device: { supportId: string; computer: string }, mode: AgentMode, e: Record<string, unknown>, now: number): void {
    const kind: FleetAlert['kind'] = mode === 'block' ? 'usb.blocked' : 'usb.unallowed';
    const seq = typeof e.seq === 'number' ? e.seq : 0;
    const details: Record<string, unknown> = {};
    for (const f of ['vendorId', 'productId', 'serial', 'vendor', 'model', 'type', 'instanceId', 'drive']) if (typeof e[f] === 'string') details[f] = e[f];
    this.pendingAlerts.push({
      id: fleetAlertId(tmid, seq, kind),
      supportId: device.supportId,
      tmid,
      computer: device.computer,
      kind,
      at: typeof e.ts === 'number' ? e.ts : now,
      createdAt: now,
      details,
      seq,
    });
    this.stats.usbAlerts++;
  }

  /** True when savings or alerts wait to be stored. */
  hasPendingWrites(): boolean {
    return this.pendingSavings.size > 0 || this.pendingAlerts.length > 0;
  }

  /** True when alerts wait: the shard flushes at once rather than on its timer. */
  hasUrgentWrites(): boolean {
    return this.pendingAlerts.length > 0;
  }

  /** Inside the shard's flush transaction: stores what was counted and raised since the last flush. */
  writeSync(): void {
    const savings = this.pendingSavings;
    const alerts = this.pendingAlerts;
    this.pendingSavings = new Map();
    this.pendingAlerts = [];
    for (const s of savings.values()) this.store.fleet.addSavingsSync(s.supportId, s.day, s.delta);
    for (const a of alerts) this.store.fleet.putAlertSync(a);
  }
}
