/**
 * The server side of a scenario's `fleet` section (issue 16): what the
 * benchmark sets up before kiseki starts, the rollout it starts through the
 * API while the load runs, and what it reads back afterwards. The agents'
 * side (dropouts, failed logons, USB insertions, answering `upgrade`) is in
 * load-generator-client.ts.
 *
 * Set-up goes straight to the data directory, before the server opens it:
 * USB device control in block mode with an allow-list naming every vendor the
 * trail generator inserts (so only the benchmark's unlisted stick is blocked),
 * and an operator with a bearer token for the rollout call. The outcome is read
 * the same way after the server stopped, so counting costs the measured run
 * nothing.
 */
import { randomBytes } from 'node:crypto';
import { TRAIL_USB_VENDOR_IDS } from '../../agent/index.js';
import { KisekiError } from '../../core/errors.js';
import { openHotStore } from '../../storage/index.js';
import type { ClientCounters, ClientFleetActivity } from './load-generator-messages.js';
import type { Scenario } from './scenario.js';

type FleetSection = NonNullable<Scenario['fleet']>;

/** The benchmark's operator (created only for a rollout). */
const BENCH_OPERATOR = 'bench.fleet';

/** What the fleet activity did and what the server made of it. */
export interface FleetOutcome {
  /** The agents' side, over the whole run. */
  agents: { dropouts: number; logonBursts: number; usbInsertions: number; upgrades: number; commandsDone: number; policies: number };
  /** Operational alerts by kind (agent.offline, agent.mass_offline, analytics.threshold, …) and how many were resolved (recoveries). */
  opsAlerts: Record<string, number>;
  opsAlertsResolved: number;
  /** Fleet alerts by kind (usb.blocked, usb.unallowed). */
  fleetAlerts: Record<string, number>;
  /** The rollout: its share, the devices it targeted, upgrade commands by state, devices per version at the end. */
  rollout: { id: string; percent: number; version: string; devices: number; targets: number; upgrades: Record<string, number>; versions: Record<string, number> } | null;
}

/** The part of the scenario's fleet section the client processes act on. */
export function clientFleetActivity(fleet: FleetSection | undefined): ClientFleetActivity | undefined {
  if (fleet === undefined) return undefined;
  return {
    ...(fleet.dropouts === undefined ? {} : { dropouts: fleet.dropouts }),
    ...(fleet.logonBursts === undefined ? {} : { logonBursts: fleet.logonBursts }),
    ...(fleet.usbInsertions === undefined ? {} : { usbInsertions: fleet.usbInsertions }),
  };
}

/** Server settings the fleet section needs (the liveness delay, checked every second). */
export function fleetServerEnv(fleet: FleetSection | undefined): Record<string, string> {
  if (fleet?.offlineAfterSec === undefined) return {};
  return { KISEKI_OFFLINE_AFTER_MS: String(fleet.offlineAfterSec * 1000), KISEKI_LIVENESS_CHECK_INTERVAL_MS: '1000' };
}

/**
 * Prepares the tenant before kiseki starts: USB control when the scenario
 * inserts USB devices, an operator's token when it runs a rollout.
 * @returns the bearer token, when a rollout needs one.
 */
export async function prepareFleetTenant(dataDir: string, supportId: string, fleet: FleetSection): Promise<string | undefined> {
  const store = openHotStore({ dataDir });
  try {
    const now = Date.now();
    if (fleet.usbInsertions !== undefined) {
      const allow = TRAIL_USB_VENDOR_IDS.map((vendorId, i) => ({ id: `ua_bench_${i}`, vendorId, note: 'trail generator devices' }));
      await store.fleet.setPolicy(supportId, { mode: 'block', usb: { control: true, allow } }, BENCH_OPERATOR, now);
    }
    if (fleet.rollout === undefined) return undefined;
    await store.identity.createUser({ id: BENCH_OPERATOR, role: 'operator', supportId: null, password: randomBytes(12).toString('hex'), now, mustChangePassword: false });
    return await store.identity.createSession(BENCH_OPERATOR, 'token', now, 24 * 3600_000, 'load benchmark');
  } finally {
    await store.close();
  }
}

/**
 * Starts the scenario's rollout through the API, as an operator would.
 * @returns the rollout id.
 * @throws KisekiError ERR_BENCH_FAILED when the API refuses it.
 */
export async function startBenchRollout(httpPort: number, token: string, supportId: string, rollout: NonNullable<FleetSection['rollout']>): Promise<string> {
  const pkg = (version: string, fill: string): { version: string; url: string; sha256: string } => ({ version, url: `https://updates.example/kiseki-agent-${version}.msi`, sha256: fill.repeat(64) });
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/tenants/${encodeURIComponent(supportId)}/rollouts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: pkg(rollout.version, 'a'), previous: pkg('3.2.1', 'b'), stages: [{ percent: rollout.percent }] }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await res.json().catch(() => ({}))) as { rollout?: { id?: unknown } };
  const id = body.rollout?.id;
  if (res.status !== 201 || typeof id !== 'string') throw new KisekiError('ERR_BENCH_FAILED', { reason: `the rollout was refused: HTTP ${res.status}`, body });
  return id;
}

/**
 * Waits, bounded, until every device the rollout targeted has answered its
 * upgrade and come back with the new version (an agent that was offline when
 * the rollout started gets its command when it returns).
 * @returns true when they all did within `timeoutMs`.
 */
export async function settleBenchRollout(httpPort: number, token: string, supportId: string, id: string, version: string, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/tenants/${encodeURIComponent(supportId)}/rollouts/${encodeURIComponent(id)}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const status = (await res.json().catch(() => ({}))) as { targets?: number; upgrades?: Record<string, number>; versions?: Record<string, number> };
    const answered = (status.upgrades?.done ?? 0) + (status.upgrades?.failed ?? 0);
    if (res.ok && typeof status.targets === 'number' && answered >= status.targets && (status.versions?.[version] ?? 0) >= (status.upgrades?.done ?? 0)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Reads what the fleet activity left in the data directory (kiseki stopped). */
export async function readFleetOutcome(dataDir: string, supportId: string, counters: ClientCounters, rollout: { id: string; percent: number; version: string } | undefined): Promise<FleetOutcome> {
  const store = openHotStore({ dataDir });
  try {
    const opsAlerts: Record<string, number> = {};
    let opsAlertsResolved = 0;
    for (const a of store.opsAlerts.scan(supportId)) {
      opsAlerts[a.kind] = (opsAlerts[a.kind] ?? 0) + 1;
      if (a.state === 'resolved') opsAlertsResolved++;
    }
    const fleetAlerts: Record<string, number> = {};
    for (const a of store.fleet.alerts(supportId, 1_000_000)) fleetAlerts[a.kind] = (fleetAlerts[a.kind] ?? 0) + 1;
    const status = rollout === undefined ? undefined : store.rollouts.status(rollout.id);
    return {
      agents: {
        dropouts: counters.dropouts,
        logonBursts: counters.logonBursts,
        usbInsertions: counters.usbInsertions,
        upgrades: counters.upgrades,
        commandsDone: counters.commandsDone,
        policies: counters.policies,
      },
      opsAlerts,
      opsAlertsResolved,
      fleetAlerts,
      rollout:
        rollout === undefined || status === undefined
          ? null
          : { ...rollout, devices: status.devicesInStage, targets: status.targets, upgrades: { ...status.upgrades } as Record<string, number>, versions: status.versions },
    };
  } finally {
    await store.close();
  }
}
