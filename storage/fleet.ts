/**
 * Fleet management records (issue 16, docs/FLEET.md): each tenant's fleet
 * policy (block / non-block mode, log tuning filters, USB allow-list) with a
 * version that agents compare, the volume tuning filters kept out of
 * storage per tenant and day, and the fleet alerts device control raises.
 * Rollouts have their own module (rollouts.ts).
 *
 * Key layouts (kiseki.lmdb):
 *   fleet-policy         supportId                 -> FleetPolicyRecord
 *   tuning-savings       [supportId, YYYY-MM-DD]   -> TuningSavings (Asia/Tokyo day)
 *   fleet-alerts         alert id                  -> FleetAlert
 *   tenant-fleet-alerts  [supportId, createdAt, id] -> id
 */
import type { AgentFleetPolicy, AgentMode, TuningFilter, UsbAllowRule } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import { DEFAULT_AGENT_FLEET_POLICY } from '../core/fleet-policy.js';
import type { FleetAlert, FleetPolicyRecord, TuningSavings } from './records.js';
import type { Tables } from './tables.js';

/** A change to a tenant's fleet policy; fields left out stay as they are. */
export interface FleetPolicyChange {
  mode?: AgentMode;
  tuning?: TuningFilter[];
  usb?: { control?: boolean; allow?: UsbAllowRule[] };
}

/** One day of tuning savings. */
export interface TuningSavingsDay extends TuningSavings {
  day: string;
}

/** The policy after a change: the next version, stamped `now` by `by` (a pure function: `setPolicy` and the cluster's bucket updates share it). */
export function nextFleetPolicy(current: FleetPolicyRecord, change: FleetPolicyChange, by: string, now: number): FleetPolicyRecord {
  return {
    supportId: current.supportId,
    version: current.version + 1,
    mode: change.mode ?? current.mode,
    tuning: change.tuning ?? current.tuning,
    usb: { control: change.usb?.control ?? current.usb.control, allow: change.usb?.allow ?? current.usb.allow },
    updatedAt: now,
    updatedBy: by,
  };
}

export interface FleetRepository {
  /** The tenant's fleet policy, defaults (version 0, block mode, nothing filtered, no USB control) when never set. */
  policy(supportId: string): FleetPolicyRecord;
  /** What agents receive: the policy without bookkeeping fields. */
  agentPolicy(supportId: string): AgentFleetPolicy;
  /**
   * Changes a tenant's fleet policy and increases its version; durable when it resolves.
   * @throws KisekiError ERR_TENANT_NOT_FOUND
   */
  setPolicy(supportId: string, change: FleetPolicyChange, by: string, now: number): Promise<FleetPolicyRecord>;
  /**
   * Stores a copy of a policy another node wrote (cluster/tenant-sync.ts) when its version is above the
   * local one's (agents apply only newer versions, so versions only move forward); resolves true when it wrote.
   */
  mirrorPolicy(record: FleetPolicyRecord): Promise<boolean>;
  /** Inside `store.transaction()`: adds to one tenant's savings of one day. */
  addSavingsSync(supportId: string, day: string, delta: Partial<TuningSavings>): void;
  /** Adds savings for several tenants and days in one transaction (the agent server's periodic flush). */
  addSavings(deltas: Iterable<{ supportId: string; day: string; delta: Partial<TuningSavings> }>): Promise<void>;
  /** A tenant's savings per day, oldest first, `from` and `to` inclusive (`YYYY-MM-DD`). */
  savings(supportId: string, from?: string, to?: string): TuningSavingsDay[];
  /** Inside `store.transaction()`: stores a fleet alert once (a replay with the same id changes nothing). */
  putAlertSync(alert: FleetAlert): void;
  alert(id: string): FleetAlert | undefined;
  /** A tenant's fleet alerts, newest first, at most `limit` (default 100). */
  alerts(supportId: string, limit?: number): FleetAlert[];
}

const ZERO: TuningSavings = { agentEvents: 0, agentBytes: 0, shardEvents: 0, shardBytes: 0 };

/** The fleet repository over the hot store's tables (called by openHotStore). */
export function createFleetRepository(t: Tables): FleetRepository {
  const { fleetPolicy, tuningSavings, fleetAlerts, tenantFleetAlerts, tenants } = t;
  const policy = (supportId: string): FleetPolicyRecord =>
    fleetPolicy.get(supportId) ?? { ...DEFAULT_AGENT_FLEET_POLICY, usb: { control: false, allow: [] }, tuning: [], supportId, updatedAt: 0, updatedBy: '' };
  const addSavingsSync = (supportId: string, day: string, delta: Partial<TuningSavings>): void => {
    const current = tuningSavings.get([supportId, day]) ?? ZERO;
    tuningSavings.putSync([supportId, day], {
      agentEvents: current.agentEvents + (delta.agentEvents ?? 0),
      agentBytes: current.agentBytes + (delta.agentBytes ?? 0),
      shardEvents: current.shardEvents + (delta.shardEvents ?? 0),
      shardBytes: current.shardBytes + (delta.shardBytes ?? 0),
    });
  };
  return {
    policy,
    agentPolicy(supportId) {
      const p = policy(supportId);
      return { version: p.version, mode: p.mode, tuning: p.tuning, usb: p.usb };
    },
    async setPolicy(supportId, change, by, now) {
      const next = await fleetPolicy.transaction(() => {
        if (tenants.get(supportId) === undefined) return undefined;
        const record = nextFleetPolicy(policy(supportId), change, by, now);
        fleetPolicy.putSync(supportId, record);
        return record;
      });
      if (next === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
      await t.root.flushed;
      return next;
    },
    async mirrorPolicy(record) {
      return fleetPolicy.transaction(() => {
        if (record.version <= policy(record.supportId).version) return false;
        fleetPolicy.putSync(record.supportId, record);
        return true;
      });
    },
    addSavingsSync,
    async addSavings(deltas) {
      await tuningSavings.transaction(() => {
        for (const d of deltas) addSavingsSync(d.supportId, d.day, d.delta);
      });
    },
    savings(supportId, from, to) {
      const out: TuningSavingsDay[] = [];
      for (const { key, value } of tuningSavings.getRange({ start: [supportId, from ?? ''], end: [supportId, `${to ?? '9999-99-99'}\u0000`] })) {
        out.push({ day: key[1], ...value });
      }
      return out;
    },
    putAlertSync(alert) {
      if (fleetAlerts.get(alert.id) !== undefined) return;
      fleetAlerts.putSync(alert.id, alert);
      tenantFleetAlerts.putSync([alert.supportId, alert.createdAt, alert.id], alert.id);
    },
    alert: (id) => fleetAlerts.get(id),
    alerts(supportId, limit = 100) {
      const out: FleetAlert[] = [];
      for (const key of tenantFleetAlerts.getKeys({ start: [supportId, Infinity], end: [supportId, -Infinity], reverse: true })) {
        const a = fleetAlerts.get(key[2]);
        if (a !== undefined) out.push(a);
        if (out.length >= limit) break;
      }
      return out;
    },
  };
}
