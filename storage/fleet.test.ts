import { beforeEach, describe, expect, it } from 'vitest';
import { inPercentStage } from '../core/fleet-policy.js';
import type { HotStore } from './hot-store.js';
import type { DeviceRecord } from './records.js';
import { useTempStore } from '../test/support/temp-store.js';

const TARGET = { version: '3.3.0', url: 'https://updates.example/kiseki-agent-3.3.0.msi', sha256: 'a'.repeat(64) };
const PREVIOUS = { version: '3.2.1', url: 'https://updates.example/kiseki-agent-3.2.1.msi', sha256: 'b'.repeat(64) };

describe('fleet records and rollouts', () => {
  let store: HotStore;
  useTempStore('kiseki-fleet-', (s) => (store = s));
  let tmids: string[];
  beforeEach(async () => {
    await store.tenants.create({ supportId: 'T1', name: 'Tenant one', now: 1 });
    tmids = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(8, '0')}-1111-2222-3333-444455556666`);
    const device = (tmid: string): DeviceRecord => ({ tmid, supportId: 'T1', computer: `PC-${tmid.slice(0, 8)}`, agentVersion: '3.2.1', os: 'Windows 11', ips: [], macs: [], tokenHash: 'x', firstSeen: 1, lastSeen: 1, connected: false });
    await store.devices.saveAll(tmids.map(device));
  });

  it('versions the fleet policy and keeps defaults until set', async () => {
    expect(store.fleet.agentPolicy('T1')).toEqual({ version: 0, mode: 'block', tuning: [], usb: { control: false, allow: [] } });
    const p1 = await store.fleet.setPolicy('T1', { mode: 'non-block', tuning: [{ id: 'f1', kind: 'file.read' }] }, 'op', 10);
    const p2 = await store.fleet.setPolicy('T1', { usb: { control: true } }, 'op', 20);
    expect(p1.version).toBe(1);
    expect(p2).toMatchObject({ version: 2, mode: 'non-block', tuning: [{ id: 'f1' }], usb: { control: true, allow: [] }, updatedBy: 'op' });
    await expect(store.fleet.setPolicy('NOPE', { mode: 'block' }, 'op', 1)).rejects.toMatchObject({ code: 'ERR_TENANT_NOT_FOUND' });
    // Copies from other nodes only move the version forward.
    expect(await store.fleet.mirrorPolicy({ ...p1, mode: 'block' })).toBe(false);
    expect(await store.fleet.mirrorPolicy({ ...p2, version: 3, mode: 'block', updatedBy: 'op.b' })).toBe(true);
    expect(store.fleet.policy('T1')).toMatchObject({ version: 3, mode: 'block', updatedBy: 'op.b' });
  });

  it('adds up savings per tenant and day and stores a fleet alert once', async () => {
    await store.transaction(() => store.fleet.addSavingsSync('T1', '2026-01-05', { shardEvents: 3, shardBytes: 300 }));
    await store.fleet.addSavings([
      { supportId: 'T1', day: '2026-01-05', delta: { agentEvents: 10, agentBytes: 1000 } },
      { supportId: 'T1', day: '2026-01-06', delta: { agentEvents: 1, agentBytes: 90 } },
      { supportId: 'T2', day: '2026-01-05', delta: { agentEvents: 7, agentBytes: 7 } },
    ]);
    expect(store.fleet.savings('T1')).toEqual([
      { day: '2026-01-05', agentEvents: 10, agentBytes: 1000, shardEvents: 3, shardBytes: 300 },
      { day: '2026-01-06', agentEvents: 1, agentBytes: 90, shardEvents: 0, shardBytes: 0 },
    ]);
    expect(store.fleet.savings('T1', '2026-01-06', '2026-01-06').map((d) => d.day)).toEqual(['2026-01-06']);
    const alert = { id: 'fa_1', supportId: 'T1', tmid: tmids[0]!, computer: 'PC', kind: 'usb.blocked' as const, at: 5, createdAt: 6, details: { vendorId: '0951' }, seq: 9 };
    await store.transaction(() => {
      store.fleet.putAlertSync(alert);
      store.fleet.putAlertSync({ ...alert, createdAt: 99 });
    });
    expect(store.fleet.alerts('T1')).toEqual([alert]);
    expect(store.fleet.alerts('T2')).toEqual([]);
  });

  it('upgrades exactly the stage share, pauses, resumes, advances and rolls back', async () => {
    const ten = tmids.filter((t) => inPercentStage(t, 10)).sort();
    const first = await store.rollouts.create({ supportId: 'T1', target: TARGET, previous: PREVIOUS, stages: [{ percent: 10 }, { devices: [tmids[0]!] }, { percent: 100 }], by: 'op', now: 100 });
    expect(first.queued.sort()).toEqual(ten);
    const upgrades = store.rollouts.targets(first.rollout.id).map((t) => store.commands.get(t.commandId)!);
    expect(upgrades.every((c) => c.kind === 'upgrade' && c.args.version === '3.3.0' && c.args.rolloutId === first.rollout.id)).toBe(true);

    // Two devices take the upgrade; the rest is paused before delivery.
    const [a, b] = ten;
    for (const tmid of [a!, b!]) {
      const t = store.rollouts.targets(first.rollout.id).find((x) => x.tmid === tmid)!;
      await store.commands.recordOutcome(t.commandId, { status: 'done', at: 200 });
      await store.devices.update({ ...store.devices.get(tmid)!, agentVersion: '3.3.0' });
    }
    const paused = await store.rollouts.pause(first.rollout.id, 'op', 300);
    expect(paused.rollout.state).toBe('paused');
    expect(store.rollouts.status(first.rollout.id)).toMatchObject({ targets: ten.length, upgrades: { done: 2, cancelled: ten.length - 2 }, versions: { '3.3.0': 2, '3.2.1': 198 } });
    await expect(store.rollouts.advance(first.rollout.id, 'op', 301)).rejects.toMatchObject({ code: 'ERR_ROLLOUT_STATE' });

    // Resume re-sends the cancelled ones (not the two already upgraded); advance adds the named device.
    const resumed = await store.rollouts.resume(first.rollout.id, 'op', 400);
    expect(resumed.queued.sort()).toEqual(ten.filter((t) => t !== a && t !== b));
    const advanced = await store.rollouts.advance(first.rollout.id, 'op', 500);
    expect(advanced.queued).toEqual(ten.includes(tmids[0]!) ? [] : [tmids[0]]);
    expect(advanced.rollout.stage).toBe(1);

    // Roll back: pending upgrades are cancelled; the two that took 3.3.0 get 3.2.1.
    const back = await store.rollouts.rollback(first.rollout.id, 'op', 600);
    expect(back.queued.sort()).toEqual([a, b].sort());
    const rolled = store.rollouts.targets(first.rollout.id).filter((t) => t.rollbackCommandId !== undefined);
    expect(rolled.map((t) => store.commands.get(t.rollbackCommandId!)!.args)).toEqual(rolled.map(() => expect.objectContaining({ version: '3.2.1', rollback: true })));
    expect(store.rollouts.status(first.rollout.id)!.upgrades.queued ?? 0).toBe(0);
    await expect(store.rollouts.rollback(first.rollout.id, 'op', 700)).rejects.toMatchObject({ code: 'ERR_ROLLOUT_STATE' });
    expect(store.rollouts.forTenant('T1').map((r) => r.id)).toEqual([first.rollout.id]);
    expect(store.rollouts.get(first.rollout.id)!.history.map((h) => h.action)).toEqual(['create', 'pause', 'resume', 'advance', 'rollback']);
  });
});
