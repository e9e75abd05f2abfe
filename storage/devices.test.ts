import { describe, expect, it } from 'vitest';
import type { HotStore } from './hot-store.js';
import type { DeviceRecord } from './records.js';
import { useTempStore } from '../test/support/temp-store.js';

const device = (tmid: string, supportId: string, connected = true): DeviceRecord => ({
  tmid, supportId, computer: `PC-${tmid}`, agentVersion: '1', os: 'W', ips: [], macs: [], tokenHash: '0'.repeat(64), firstSeen: 1, lastSeen: 1, connected,
});

describe('device and tenant repositories', () => {
  let store: HotStore;
  useTempStore('kiseki-devices-', (s) => (store = s));

  it('pages devices in TMID order, per tenant or all, strictly after the cursor', async () => {
    await store.devices.saveAll([device('C', 'TA'), device('A', 'TA'), device('B', 'TB'), device('D', 'TA', false)]);
    const tmids = (it: Iterable<DeviceRecord>) => [...it].map((d) => d.tmid);
    expect(tmids(store.devices.scanTenant('TA'))).toEqual(['A', 'C', 'D']);
    expect(tmids(store.devices.scanTenant('TA', 'A'))).toEqual(['C', 'D']);
    expect(tmids(store.devices.scanTenant('TB'))).toEqual(['B']);
    expect(tmids(store.devices.scanTenant('T'))).toEqual([]);
    expect(tmids(store.devices.scan())).toEqual(['A', 'B', 'C', 'D']);
    expect(tmids(store.devices.scan('B'))).toEqual(['C', 'D']);
    expect(await store.devices.markAllDisconnected()).toBe(3);
    expect([...store.devices.all()].every((d) => !d.connected)).toBe(true);
  });

  it('patches a device over its latest version, writes still queued included (a hello then the lastSeen sweep)', async () => {
    await store.devices.saveAll([device('A', 'TA')]);
    // The hello's write is queued, not committed, when the sweep decides to write lastSeen.
    const hello = store.devices.patch('A', (d) => ({ ...d, agentVersion: '3.3.0', connected: true }));
    const sweep = store.devices.patch('A', (d) => (d.lastSeen < 50 ? { ...d, lastSeen: 50 } : undefined));
    const stale = store.devices.patch('A', (d) => (d.lastSeen < 40 ? { ...d, lastSeen: 40 } : undefined));
    await Promise.all([hello, sweep, stale]);
    expect(store.devices.get('A')).toMatchObject({ agentVersion: '3.3.0', lastSeen: 50, connected: true });
    // An unknown device is left alone.
    await store.devices.patch('nope', (d) => ({ ...d, lastSeen: 1 }));
    expect(store.devices.get('nope')).toBeUndefined();
  });

  it('pages tenants by support ID and keeps the policy in the tenant record', async () => {
    for (const supportId of ['T2', 'T1', 'T3']) await store.tenants.create({ supportId, name: supportId, now: 1 });
    expect([...store.tenants.scan()].map((t) => t.supportId)).toEqual(['T1', 'T2', 'T3']);
    expect([...store.tenants.scan('T1')].map((t) => t.supportId)).toEqual(['T2', 'T3']);
    expect(store.tenants.ids()).toEqual(['T1', 'T2', 'T3']);
    expect(store.tenants.policy('T2')).toEqual({ autoExceptWhite: false, tuningUntil: null, isolateOnBlack: false });
    expect(await store.tenants.setPolicy('T2', { isolateOnBlack: true })).toMatchObject({ isolateOnBlack: true, autoExceptWhite: false });
    expect(store.tenants.policy('T2').isolateOnBlack).toBe(true);
    await expect(store.tenants.setPolicy('T9', { isolateOnBlack: true })).rejects.toMatchObject({ code: 'ERR_TENANT_NOT_FOUND' });
  });

  it("keeps the newest copy of a tenant, and the shared record's enrollment key over a local one", async () => {
    const { tenant, enrollKey } = await store.tenants.create({ supportId: 'T1', name: 'One', now: 10 });
    await store.tenants.setPolicy('T1', { isolateOnBlack: true }, 30);
    expect(store.tenants.get('T1')).toMatchObject({ updatedAt: 30 });
    // An older copy (another node's, before the change here) is skipped; a newer one replaces it.
    expect(await store.tenants.mirror({ ...tenant, updatedAt: 20, policy: { autoExceptWhite: false, tuningUntil: null, isolateOnBlack: false } })).toBe(false);
    expect(store.tenants.policy('T1').isolateOnBlack).toBe(true);
    expect(await store.tenants.mirror({ ...tenant, updatedAt: 40, policy: { autoExceptWhite: true, tuningUntil: null, isolateOnBlack: false } })).toBe(true);
    expect(store.tenants.policy('T1')).toMatchObject({ autoExceptWhite: true, isolateOnBlack: false });
    // The cluster's tenant under the same support ID with another key: it replaces the local one, whose key stops enrolling.
    const other = store.tenants.prepare({ supportId: 'T1', name: 'Shared', now: 5 });
    expect(await store.tenants.mirror(other.tenant)).toBe(true);
    expect(store.tenants.forEnrollKey(enrollKey)).toBeUndefined();
    expect(store.tenants.forEnrollKey(other.enrollKey)?.name).toBe('Shared');
  });

  it('pages the audit log newest first, strictly after the cursor', async () => {
    for (const at of [10, 30, 20, 30]) {
      await store.identity.appendAudit({ at, actor: 'a', role: 'system', supportId: null, action: `x${at}`, target: 't', from: 'test' });
    }
    const all = [...store.identity.scanAudit()];
    expect(all.map((a) => a.at)).toEqual([30, 30, 20, 10]);
    expect([...store.identity.scanAudit({ at: all[1]!.at, id: all[1]!.id })].map((a) => a.at)).toEqual([20, 10]);
  });
});
