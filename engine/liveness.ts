/**
 * Agent liveness (SPEC §4, issue 16), the one owner of a device's silence
 * from first notice to recovery. Ingest records `connected` and `lastSeen`;
 * every `checkIntervalMs` this module compares them with each tenant's
 * settings and decides:
 * - one `agent.offline` alert (and a `device.offline` feed event that
 *   notify/ mails) when a device has been silent for the tenant's offline
 *   delay outside its maintenance windows — silence inside a window does not
 *   count, and a check inside a window raises nothing;
 * - one `agent.mass_offline` alert when at least a share (and a minimum
 *   count) of a tenant's devices dropped within a short window: an outage is
 *   one event, and the devices it covers get no alert of their own;
 * - recovery: a device with an open alert that connects again resolves it
 *   (`device.online`), and a mass-offline event resolves once the threshold no
 *   longer holds (`tenant.recovered`).
 * A check's decisions commit in one transaction (storage/liveness.ts), so a
 * crash repeats nothing and loses nothing. Times are the injected clock's.
 */
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { DeviceLiveness, DeviceRecord, HotStore, LivenessDecisions, LivenessSettings, MaintenanceWindow, OpsAlert } from '../storage/index.js';
import { deviceStatus, type DeviceStatus } from './device-status.js';

const DAY_MS = 86_400_000;
const JST_OFFSET_MS = 9 * 3_600_000;
/** TMIDs listed in a mass-offline alert at most (the count is always exact). */
const MASS_TMIDS_MAX = 1000;
/** Devices a check reads in one turn of the event loop at most, and how long a turn's reading may last. */
const SCAN_PAGE = 500;
const SCAN_SLICE_MS = 5;

/** What a check keeps of one tenant's devices: their number, the disconnected ones and the connected ones its last check saw offline. */
interface TenantScan {
  devices: number;
  silent: [DeviceRecord, DeviceLiveness | undefined][];
  back: [DeviceRecord, DeviceLiveness][];
}

/** The server-wide defaults of a tenant's liveness settings (config `liveness`). */
export type LivenessDefaults = Pick<Config['liveness'], 'offlineAfterMs' | 'massOfflineShare' | 'massOfflineMinDevices' | 'massOfflineWindowMs'>;

/** A tenant's settings with the defaults filled in. */
export type EffectiveLivenessSettings = Required<Omit<LivenessSettings, 'updatedAt' | 'updatedBy'>>;

/** What one check did. */
export interface LivenessReport {
  at: number;
  offlineAlerts: number;
  massOfflineAlerts: number;
  recoveries: number;
  tenantsRecovered: number;
  /** Devices per state (online, offline, isolated, error) as of this check. */
  states: Record<DeviceStatus, number>;
}

export interface LivenessMonitor {
  /** Runs one check now (the timer calls it; tests call it with a manual clock). */
  check(): Promise<LivenessReport>;
  /** Starts the timer (every `checkIntervalMs`). */
  start(): void;
  /** Stops the timer and waits for a running check. */
  stop(): Promise<void>;
}

export interface LivenessMonitorOptions {
  store: HotStore;
  clock: Clock;
  logger: Logger;
  config: Readonly<Config['liveness']>;
  /** Called after each check (the service sets its gauges from it). */
  onReport?: (report: LivenessReport) => void;
}

/** `HH:MM` → minutes after midnight; undefined when malformed. */
export function parseClockTime(text: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  return m === null ? undefined : Number(m[1]) * 60 + Number(m[2]);
}

/** Start (ms) of the JST calendar day holding `t`. */
function jstDayStart(t: number): number {
  return Math.floor((t + JST_OFFSET_MS) / DAY_MS) * DAY_MS - JST_OFFSET_MS;
}

/** Every occurrence [start, end) of the windows that may contain a time in [from, to] (weekly ones enumerated per JST day). */
function* occurrences(windows: readonly MaintenanceWindow[], from: number, to: number): Iterable<[number, number]> {
  for (const w of windows) {
    if (w.kind === 'once') {
      if (w.to > from && w.from <= to) yield [w.from, w.to];
      continue;
    }
    const start = parseClockTime(w.start);
    const end = parseClockTime(w.end);
    if (start === undefined || end === undefined) continue;
    const lengthMs = (end > start ? end - start : end + 1440 - start) * 60_000;
    // A window that starts the day before can still be running at `from`.
    for (let day = jstDayStart(from) - DAY_MS; day <= to; day += DAY_MS) {
      const weekday = new Date(day + JST_OFFSET_MS).getUTCDay();
      if (!w.days.includes(weekday)) continue;
      const s = day + start * 60_000;
      if (s + lengthMs > from && s <= to) yield [s, s + lengthMs];
    }
  }
}

/** True when `t` falls inside one of the windows. */
export function inMaintenance(windows: readonly MaintenanceWindow[], t: number): boolean {
  for (const [s, e] of occurrences(windows, t, t)) if (s <= t && t < e) return true;
  return false;
}

/**
 * When a silence that began at `lastSeen` started counting, as of `now`:
 * time inside maintenance windows does not count, so the clock restarts at
 * the end of the last window that overlapped the silence (weekly windows are
 * looked for in the last 8 days: an older one cannot be the last).
 */
export function silenceStart(windows: readonly MaintenanceWindow[], lastSeen: number, now: number): number {
  let start = lastSeen;
  for (const [, e] of occurrences(windows, Math.max(lastSeen, now - 8 * DAY_MS), now)) if (e <= now && e > start) start = e;
  return start;
}

/** A tenant's settings with the server's defaults filled in. */
export function effectiveLivenessSettings(s: LivenessSettings | undefined, supportId: string, d: LivenessDefaults): EffectiveLivenessSettings {
  return {
    supportId,
    offlineAfterMs: s?.offlineAfterMs ?? d.offlineAfterMs,
    windows: s?.windows ?? [],
    massOfflineShare: s?.massOfflineShare ?? d.massOfflineShare,
    massOfflineMinDevices: s?.massOfflineMinDevices ?? d.massOfflineMinDevices,
    massOfflineWindowMs: s?.massOfflineWindowMs ?? d.massOfflineWindowMs,
  };
}

/** Creates the liveness monitor; nothing runs until `check()` or `start()`. */
export function createLivenessMonitor(options: LivenessMonitorOptions): LivenessMonitor {
  const { store, clock, config } = options;
  const log = options.logger.child({ component: 'liveness' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();

  async function check(): Promise<LivenessReport> {
    const now = clock.now();
    const states: Record<DeviceStatus, number> = { online: 0, offline: 0, isolated: 0, error: 0 };
    const decisions: LivenessDecisions = { states: [], alerts: [], feed: [], massOpen: [] };
    const report: LivenessReport = { at: now, offlineAlerts: 0, massOfflineAlerts: 0, recoveries: 0, tenantsRecovered: 0, states };
    // Per tenant: the mass-offline rule needs a tenant's whole picture, but only its count and its silent devices.
    const byTenant = new Map<string, TenantScan>();
    // In pages of at most 5 ms with a turn of the event loop between them: the ingest thread acks batches
    // meanwhile (one pass over 19,000 devices took 180-570 ms, a stall of every ack once a minute).
    let after: string | undefined;
    for (;;) {
      let read = 0;
      let more = false;
      const sliceEnd = performance.now() + SCAN_SLICE_MS;
      for (const d of store.devices.scan(after)) {
        // At least one device a page, however slow the read: the check always gets on.
        if (read > 0 && (read === SCAN_PAGE || performance.now() >= sliceEnd)) {
          more = true;
          break;
        }
        after = d.tmid;
        let t = byTenant.get(d.supportId);
        if (t === undefined) byTenant.set(d.supportId, (t = { devices: 0, silent: [], back: [] }));
        t.devices++;
        states[deviceStatus(store, d)]++;
        const prev = store.liveness.state(d.tmid);
        if (d.connected) {
          if (prev?.state === 'offline') t.back.push([d, prev]);
        } else t.silent.push([d, prev]);
        read++;
      }
      if (!more) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const [supportId, t] of byTenant) checkTenant(supportId, t, now, decisions, report);
    await store.liveness.commit(decisions);
    if (report.offlineAlerts + report.massOfflineAlerts + report.recoveries + report.tenantsRecovered > 0) {
      log.info({ offlineAlerts: report.offlineAlerts, massOffline: report.massOfflineAlerts, recoveries: report.recoveries, tenantsRecovered: report.tenantsRecovered }, 'Liveness changed: alerts raised or resolved.');
    }
    options.onReport?.(report);
    return report;
  }

  function checkTenant(supportId: string, t: TenantScan, now: number, out: LivenessDecisions, report: LivenessReport): void {
    const s = effectiveLivenessSettings(store.liveness.settings(supportId), supportId, config);
    const maintenance = inMaintenance(s.windows, now);
    const massId = store.liveness.openMass(supportId);
    const mass = massId === undefined ? undefined : store.opsAlerts.get(massId);
    const recentDrops: DeviceRecord[] = [];
    const due: DeviceRecord[] = [];
    for (const [d, prev] of t.back) recover(d, prev, now, out, report);
    for (const [d, prev] of t.silent) {
      // A device that came back and went quiet again between two checks: its old silence is over.
      if (prev?.state === 'offline' && prev.lastSeen !== d.lastSeen) recover(d, prev, now, out, report);
      else if (prev?.state === 'offline') continue;
      if (now - d.lastSeen <= s.massOfflineWindowMs) recentDrops.push(d);
      if (!maintenance && now - silenceStart(s.windows, d.lastSeen, now) >= s.offlineAfterMs) due.push(d);
    }
    // An outage: one event for the tenant; the devices it covers get no alert of their own.
    const covered = new Set<string>();
    if (mass === undefined && !maintenance && recentDrops.length >= s.massOfflineMinDevices && recentDrops.length >= s.massOfflineShare * t.devices) {
      const alert: OpsAlert = {
        id: `mass_${supportId}_${now}`,
        kind: 'agent.mass_offline',
        supportId,
        createdAt: now,
        state: 'open',
        title: `${recentDrops.length} of ${t.devices} devices went offline within ${Math.round(s.massOfflineWindowMs / 60_000)} min`,
        details: { devices: recentDrops.length, tenantDevices: t.devices, windowMs: s.massOfflineWindowMs, tmids: recentDrops.slice(0, MASS_TMIDS_MAX).map((d) => d.tmid) },
      };
      out.alerts.push(alert);
      out.massOpen.push([supportId, alert.id]);
      out.feed.push({ kind: 'tenant.mass_offline', supportId, at: now, opsAlertId: alert.id, devices: recentDrops.length, by: 'system:liveness' });
      report.massOfflineAlerts++;
      for (const d of recentDrops) {
        covered.add(d.tmid);
        out.states.push({ tmid: d.tmid, supportId, state: 'offline', since: now, lastSeen: d.lastSeen, massAlertId: alert.id });
      }
    }
    for (const d of due) {
      if (covered.has(d.tmid)) continue;
      const alert: OpsAlert = {
        id: `off_${d.tmid}_${d.lastSeen}`,
        kind: 'agent.offline',
        supportId,
        tmid: d.tmid,
        computer: d.computer,
        createdAt: now,
        state: 'open',
        title: `${d.computer} has been offline since ${new Date(d.lastSeen).toISOString()}`,
        details: { lastSeen: d.lastSeen, offlineAfterMs: s.offlineAfterMs },
      };
      out.alerts.push(alert);
      out.states.push({ tmid: d.tmid, supportId, state: 'offline', since: now, lastSeen: d.lastSeen, alertId: alert.id });
      out.feed.push({ kind: 'device.offline', supportId, at: now, tmid: d.tmid, opsAlertId: alert.id, by: 'system:liveness' });
      report.offlineAlerts++;
    }
    if (mass !== undefined && mass.state === 'open') {
      const tmids = new Set(Array.isArray(mass.details.tmids) ? (mass.details.tmids as string[]) : []);
      let stillOff = 0;
      for (const [d] of t.silent) if (tmids.has(d.tmid)) stillOff++;
      if (stillOff < s.massOfflineMinDevices || stillOff < s.massOfflineShare * t.devices) {
        out.alerts.push({ ...mass, state: 'resolved', resolvedAt: now, details: { ...mass.details, stillOffline: stillOff } });
        out.massOpen.push([supportId, null]);
        out.feed.push({ kind: 'tenant.recovered', supportId, at: now, opsAlertId: mass.id, devices: stillOff, by: 'system:liveness' });
        report.tenantsRecovered++;
      }
    }
  }

  function recover(d: DeviceRecord, prev: DeviceLiveness, now: number, out: LivenessDecisions, report: LivenessReport): void {
    out.states.push({ tmid: d.tmid, supportId: d.supportId, state: 'online', since: now, lastSeen: d.lastSeen });
    if (prev.alertId === undefined) return;
    const alert = store.opsAlerts.get(prev.alertId);
    if (alert !== undefined && alert.state === 'open') out.alerts.push({ ...alert, state: 'resolved', resolvedAt: now });
    // Devices covered by a mass-offline event come back quietly: the tenant's recovery is the notice.
    out.feed.push({ kind: 'device.online', supportId: d.supportId, at: now, tmid: d.tmid, opsAlertId: prev.alertId, by: 'system:liveness' });
    report.recoveries++;
  }

  return {
    check() {
      const run = running.then(check, check);
      running = run.catch(() => undefined);
      return run;
    },
    start() {
      if (timer !== undefined) return;
      timer = setInterval(() => {
        const run = running.then(check, check);
        running = run.catch((err: unknown) => log.error({ err }, 'The liveness check failed; the next one retries.'));
      }, config.checkIntervalMs);
      timer.unref();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
}
