/**
 * The durable side of agent liveness (engine/liveness.ts decides, this file
 * remembers): each tenant's settings (offline delay, maintenance windows,
 * mass-offline thresholds), what was last decided about each device's
 * silence, and each tenant's open mass-offline event. A check's decisions
 * commit in one transaction with the alerts they raise or resolve and the
 * notification feed entries notify/ mails, so a crash between them can
 * neither lose a notice nor send one twice.
 *
 * Key layouts (kiseki.lmdb):
 *   liveness-settings  supportId -> LivenessSettings
 *   liveness-state     tmid      -> DeviceLiveness (absent: never reported)
 *   liveness-tenants   supportId -> id of the tenant's open mass-offline alert
 */
import { appendFeedSync } from './feed.js';
import { putOpsAlertSync } from './ops-alerts.js';
import type { DeviceLiveness, LivenessSettings, NotifyFeedEvent, OpsAlert } from './records.js';
import type { Tables } from './tables.js';

/** What one liveness check decided, committed together. */
export interface LivenessDecisions {
  states: DeviceLiveness[];
  /** New or changed (resolved) alerts. */
  alerts: OpsAlert[];
  feed: Omit<NotifyFeedEvent, 'seq'>[];
  /** Tenants whose open mass-offline event changed: the new id, or null once it is resolved. */
  massOpen: [string, string | null][];
}

export interface LivenessRepository {
  settings(supportId: string): LivenessSettings | undefined;
  putSettings(settings: LivenessSettings): Promise<boolean>;
  /** A cluster node's copy of a tenant's settings: stored when newer (`updatedAt`) than the local ones. True when stored. */
  mirrorSettings(settings: LivenessSettings): Promise<boolean>;
  state(tmid: string): DeviceLiveness | undefined;
  /** The id of the tenant's open mass-offline alert, if any. */
  openMass(supportId: string): string | undefined;
  /** Commits a check's decisions in one transaction (states, alerts, feed, mass-offline pointers). */
  commit(decisions: LivenessDecisions): Promise<void>;
}

/** The liveness repository over the hot store's tables (called by openHotStore). */
export function createLivenessRepository(t: Tables): LivenessRepository {
  const { livenessSettings, livenessState, livenessTenants, root } = t;
  return {
    settings: (supportId) => livenessSettings.get(supportId),
    putSettings: (s) => livenessSettings.put(s.supportId, s),
    mirrorSettings: (s) =>
      livenessSettings.transaction(() => {
        const local = livenessSettings.get(s.supportId);
        if (local !== undefined && local.updatedAt >= s.updatedAt) return false;
        livenessSettings.putSync(s.supportId, s);
        return true;
      }),
    state: (tmid) => livenessState.get(tmid),
    openMass: (supportId) => livenessTenants.get(supportId),
    async commit(d) {
      if (d.states.length === 0 && d.alerts.length === 0 && d.feed.length === 0 && d.massOpen.length === 0) return;
      await root.transaction(() => {
        for (const s of d.states) livenessState.putSync(s.tmid, s);
        for (const a of d.alerts) putOpsAlertSync(t, a);
        for (const [supportId, id] of d.massOpen) {
          if (id === null) livenessTenants.removeSync(supportId);
          else livenessTenants.putSync(supportId, id);
        }
        for (const e of d.feed) appendFeedSync(t, e);
      });
    },
  };
}
