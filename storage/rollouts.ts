/**
 * Staged agent upgrades (issue 16, docs/FLEET.md), one lifecycle in one
 * place: a rollout names a target version and its package, the version to
 * go back to, and cumulative stages (a percentage of the tenant's devices,
 * chosen by a stable hash of the TMID, or named devices). Creating it starts
 * stage 0; `advance` moves to the next stage, `pause` stops it and cancels
 * the upgrades not yet acknowledged, `resume` carries on, `rollback` cancels
 * what is pending and sends the previous version to every device that took
 * the target. Each device gets one `upgrade` command through the commands
 * repository, queued in the same transaction as its target record, so a
 * crash never leaves a command without its rollout or the reverse.
 *
 * The devices' versions come from their `hello` (`agentVersion`), so the
 * status per version shows what agents actually run, not what was ordered.
 *
 * Key layouts (kiseki.lmdb):
 *   rollouts         rollout id                   -> RolloutRecord
 *   tenant-rollouts  [supportId, createdAt, id]   -> id
 *   rollout-targets  [rollout id, tmid]           -> RolloutTarget
 */
import { randomBytes } from 'node:crypto';
import type { UpgradeArgs } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import { inPercentStage } from '../core/fleet-policy.js';
import type { CommandRepository } from './commands.js';
import type { DeviceRepository } from './devices.js';
import type { AgentPackage, CommandRecord, CommandState, DeviceRecord, RolloutRecord, RolloutStage, RolloutTarget } from './records.js';
import type { Tables } from './tables.js';

/** What a caller gives to start a rollout. */
export interface RolloutInput {
  supportId: string;
  target: AgentPackage;
  previous: AgentPackage;
  stages: RolloutStage[];
  by: string;
  now: number;
}

/** A rollout after a move, with the devices that got a new command (to hand to the agent server). */
export interface RolloutMove {
  rollout: RolloutRecord;
  queued: string[];
}

/** Where a rollout stands. */
export interface RolloutStatus {
  rollout: RolloutRecord;
  /** Devices the stages reached so far name (whatever their version). */
  devicesInStage: number;
  /** Devices that got an upgrade command. */
  targets: number;
  /** Upgrade commands by state. */
  upgrades: Partial<Record<CommandState, number>>;
  /** Rollback commands by state. */
  rollbacks: Partial<Record<CommandState, number>>;
  /** The tenant's devices per agent version (from hello). */
  versions: Record<string, number>;
}

export interface RolloutRepository {
  /**
   * Stores a rollout and starts its stage 0.
   * @throws KisekiError ERR_TENANT_NOT_FOUND, ERR_INVALID_INPUT (no stages, or the target equals the previous version)
   */
  create(input: RolloutInput): Promise<RolloutMove>;
  get(id: string): RolloutRecord | undefined;
  /** A tenant's rollouts, newest first. */
  forTenant(supportId: string): RolloutRecord[];
  /** The devices a rollout chose, in TMID order. */
  targets(id: string): RolloutTarget[];
  /** @throws KisekiError ERR_NOT_FOUND, ERR_ROLLOUT_STATE (not active, or at the last stage) */
  advance(id: string, by: string, now: number): Promise<RolloutMove>;
  /** Stops the rollout and cancels its upgrades not yet acknowledged. @throws ERR_NOT_FOUND, ERR_ROLLOUT_STATE (not active) */
  pause(id: string, by: string, now: number): Promise<RolloutMove>;
  /** Carries on at the current stage (cancelled upgrades are sent again). @throws ERR_NOT_FOUND, ERR_ROLLOUT_STATE (not paused) */
  resume(id: string, by: string, now: number): Promise<RolloutMove>;
  /** Cancels pending upgrades and sends the previous version to the devices that took the target. @throws ERR_NOT_FOUND, ERR_ROLLOUT_STATE (rolled back already) */
  rollback(id: string, by: string, now: number): Promise<RolloutMove>;
  status(id: string): RolloutStatus | undefined;
  /** A tenant's devices per agent version, from their last hello. */
  versions(supportId: string): Record<string, number>;
}

/** A new random rollout id: `ro_` and 16 hex characters. */
export function newRolloutId(): string {
  return `ro_${randomBytes(8).toString('hex')}`;
}

/** True when stage `index` (cumulative: it includes every earlier stage) names the device. */
export function rolloutSelects(stages: readonly RolloutStage[], index: number, tmid: string): boolean {
  for (let i = 0; i <= index && i < stages.length; i++) {
    const s = stages[i]!;
    if ('percent' in s ? inPercentStage(tmid, s.percent) : s.devices.some((d) => d.toUpperCase() === tmid.toUpperCase())) return true;
  }
  return false;
}

/** Command states after which the device will not act on the command any more. */
const DEAD: readonly CommandState[] = ['cancelled', 'expired', 'failed'];
const PENDING: readonly CommandState[] = ['queued', 'sent'];

/** The rollout repository (called by openHotStore with the command and device repositories it queues through). */
export function createRolloutRepository(t: Tables, commands: CommandRepository, devices: DeviceRepository): RolloutRepository {
  const { rollouts, tenantRollouts, rolloutTargets } = t;
  const targets = (id: string): RolloutTarget[] => [...rolloutTargets.getRange({ start: [id, ''], end: [id, '\uffff'] })].map((e) => e.value);
  const mustGet = (id: string): RolloutRecord => {
    const r = rollouts.get(id);
    if (r === undefined) throw new KisekiError('ERR_NOT_FOUND', { rolloutId: id });
    return r;
  };
  const refuse = (r: RolloutRecord, action: string): never => {
    throw new KisekiError('ERR_ROLLOUT_STATE', { rolloutId: r.id, state: r.state, stage: r.stage, stages: r.stages.length, action });
  };
  const upgradeCommand = (r: RolloutRecord, device: DeviceRecord, pkg: AgentPackage, by: string, now: number, rollback: boolean): CommandRecord => {
    const args: UpgradeArgs & { rollback?: true } = { version: pkg.version, url: pkg.url, sha256: pkg.sha256, rolloutId: r.id, ...(rollback ? { rollback: true as const } : {}) };
    return commands.create({
      tmid: device.tmid,
      supportId: device.supportId,
      kind: 'upgrade',
      args: args as unknown as Record<string, unknown>,
      requestedBy: by,
      requestedAt: now,
      reason: `${rollback ? 'rollback of' : 'stage ' + (r.stage + 1) + ' of'} rollout ${r.id}`,
    });
  };
  /** Inside a transaction: upgrade commands for every device the current stage names that has none alive. */
  const dispatchSync = (r: RolloutRecord, by: string, now: number): string[] => {
    const queued: string[] = [];
    for (const device of devices.scanTenant(r.supportId)) {
      if (!rolloutSelects(r.stages, r.stage, device.tmid)) continue;
      const existing = rolloutTargets.get([r.id, device.tmid]);
      if (existing !== undefined) {
        const state = commands.get(existing.commandId)?.state;
        if (state !== undefined && !DEAD.includes(state)) continue;
      }
      if (device.agentVersion === r.target.version) continue;
      const command = upgradeCommand(r, device, r.target, by, now, false);
      commands.queueSync(command);
      rolloutTargets.putSync([r.id, device.tmid], { rolloutId: r.id, tmid: device.tmid, stage: r.stage, fromVersion: existing?.fromVersion ?? device.agentVersion, commandId: command.id, at: now });
      queued.push(device.tmid);
    }
    return queued;
  };
  const moved = (r: RolloutRecord, action: string, by: string, now: number, change: Partial<RolloutRecord>): RolloutRecord => {
    const next = { ...r, ...change, updatedAt: now };
    return { ...next, history: [...r.history, { action, at: now, by, stage: next.stage }] };
  };
  /** Cancels the rollout's upgrade commands the agents have not acknowledged yet. */
  const cancelPending = async (r: RolloutRecord, by: string, now: number): Promise<void> => {
    for (const target of targets(r.id)) {
      const c = commands.get(target.commandId);
      if (c !== undefined && PENDING.includes(c.state)) await commands.cancel(c.id, by, now);
    }
  };
  const versions = (supportId: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const d of devices.scanTenant(supportId)) out[d.agentVersion] = (out[d.agentVersion] ?? 0) + 1;
    return out;
  };
  const write = async <T>(fn: () => T): Promise<T> => {
    const result = await t.root.transaction(fn);
    await t.root.flushed;
    return result;
  };
  return {
    async create(input) {
      if (t.tenants.get(input.supportId) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId: input.supportId });
      if (input.stages.length === 0) throw new KisekiError('ERR_INVALID_INPUT', { field: 'stages', rule: 'at least one stage' });
      if (input.target.version === input.previous.version) throw new KisekiError('ERR_INVALID_INPUT', { field: 'previous.version', rule: 'differs from target.version' });
      const base: RolloutRecord = {
        id: newRolloutId(),
        supportId: input.supportId,
        target: input.target,
        previous: input.previous,
        stages: input.stages,
        stage: 0,
        state: 'active',
        createdAt: input.now,
        createdBy: input.by,
        updatedAt: input.now,
        history: [{ action: 'create', at: input.now, by: input.by, stage: 0 }],
      };
      const queued = await write(() => {
        rollouts.putSync(base.id, base);
        tenantRollouts.putSync([base.supportId, base.createdAt, base.id], base.id);
        return dispatchSync(base, input.by, input.now);
      });
      return { rollout: base, queued };
    },
    get: (id) => rollouts.get(id),
    forTenant(supportId) {
      const out: RolloutRecord[] = [];
      for (const key of tenantRollouts.getKeys({ start: [supportId, Infinity], end: [supportId, -Infinity], reverse: true })) {
        const r = rollouts.get(key[2]);
        if (r !== undefined) out.push(r);
      }
      return out;
    },
    targets,
    async advance(id, by, now) {
      const current = mustGet(id);
      if (current.state !== 'active' || current.stage >= current.stages.length - 1) refuse(current, 'advance');
      const next = moved(current, 'advance', by, now, { stage: current.stage + 1 });
      const queued = await write(() => {
        rollouts.putSync(id, next);
        return dispatchSync(next, by, now);
      });
      return { rollout: next, queued };
    },
    async pause(id, by, now) {
      const current = mustGet(id);
      if (current.state !== 'active') refuse(current, 'pause');
      const next = moved(current, 'pause', by, now, { state: 'paused' });
      await write(() => rollouts.putSync(id, next));
      await cancelPending(next, by, now);
      return { rollout: next, queued: [] };
    },
    async resume(id, by, now) {
      const current = mustGet(id);
      if (current.state !== 'paused') refuse(current, 'resume');
      const next = moved(current, 'resume', by, now, { state: 'active' });
      const queued = await write(() => {
        rollouts.putSync(id, next);
        return dispatchSync(next, by, now);
      });
      return { rollout: next, queued };
    },
    async rollback(id, by, now) {
      const current = mustGet(id);
      if (current.state === 'rolled-back') refuse(current, 'rollback');
      const next = moved(current, 'rollback', by, now, { state: 'rolled-back' });
      await write(() => rollouts.putSync(id, next));
      await cancelPending(next, by, now);
      const queued = await write(() => {
        const out: string[] = [];
        for (const target of targets(id)) {
          const device = devices.get(target.tmid);
          if (device === undefined || target.rollbackCommandId !== undefined) continue;
          const state = commands.get(target.commandId)?.state;
          // Only devices that took (or are taking) the target go back; a cancelled upgrade left them where they were.
          if (device.agentVersion !== next.target.version && state !== 'done' && state !== 'acknowledged') continue;
          const command = upgradeCommand(next, device, next.previous, by, now, true);
          commands.queueSync(command);
          rolloutTargets.putSync([id, target.tmid], { ...target, rollbackCommandId: command.id });
          out.push(target.tmid);
        }
        return out;
      });
      return { rollout: next, queued };
    },
    status(id) {
      const rollout = rollouts.get(id);
      if (rollout === undefined) return undefined;
      const list = targets(id);
      const upgrades: Partial<Record<CommandState, number>> = {};
      const rollbacks: Partial<Record<CommandState, number>> = {};
      for (const target of list) {
        const u = commands.get(target.commandId)?.state;
        if (u !== undefined) upgrades[u] = (upgrades[u] ?? 0) + 1;
        const b = target.rollbackCommandId === undefined ? undefined : commands.get(target.rollbackCommandId)?.state;
        if (b !== undefined) rollbacks[b] = (rollbacks[b] ?? 0) + 1;
      }
      let devicesInStage = 0;
      for (const d of devices.scanTenant(rollout.supportId)) if (rolloutSelects(rollout.stages, rollout.stage, d.tmid)) devicesInStage++;
      return { rollout, devicesInStage, targets: list.length, upgrades, rollbacks, versions: versions(rollout.supportId) };
    },
    versions,
  };
}
