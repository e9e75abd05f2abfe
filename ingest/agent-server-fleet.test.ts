/**
 * The agent server's part of fleet management (docs/FLEET.md): the tenant's
 * fleet policy in every welcome, pushed live as a `policy` frame to the
 * tenant's connected agents only, and heartbeat `tuned` counts added up per
 * tenant and day.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tokyoDay } from '../core/fleet-policy.js';
import { connectAgent, helloFacts } from '../test/support/agent-client.js';
import { eventually } from '../test/support/cli.js';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../test/support/agent-harness.js';

describe('agent server: fleet policy and tuning counts', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startAgentHarness();
  });
  afterEach(async () => {
    await stopAgentHarness(h);
  });

  it('sends the fleet policy in welcome, pushes changes to the tenant\'s agents, and adds up hb.tuned', async () => {
    const supportId = h.tenant.supportId;
    await h.store.fleet.setPolicy(supportId, { mode: 'non-block', tuning: [{ id: 'tf_1', kind: 'file.read' }] }, 'op', 1);
    const agent = await connectAgent(h.url);
    agent.send({ t: 'hello', enrollKey: h.enrollKey, ...helloFacts });
    const welcome = await agent.next();
    expect(welcome.policy).toMatchObject({ maxUnackedBatches: expect.any(Number), fleet: { version: 1, mode: 'non-block', tuning: [{ id: 'tf_1', kind: 'file.read' }], usb: { control: false, allow: [] } } });

    // Another tenant's agent hears nothing of this tenant's change.
    const other = await h.store.tenants.create({ supportId: 'OTHER', name: 'Other', now: 1 });
    const stranger = await connectAgent(h.url);
    stranger.send({ t: 'hello', enrollKey: other.enrollKey, ...helloFacts, computer: 'PC-OTHER' });
    expect((await stranger.next()).policy).toMatchObject({ fleet: { version: 0, mode: 'block' } });

    await h.store.fleet.setPolicy(supportId, { usb: { control: true, allow: [{ id: 'ua_1', vendorId: '046d' }] } }, 'op', 2);
    expect(h.server.pushFleetPolicy(supportId)).toBe(1);
    expect(await agent.next()).toEqual({ t: 'policy', fleet: { version: 2, mode: 'non-block', tuning: [{ id: 'tf_1', kind: 'file.read' }], usb: { control: true, allow: [{ id: 'ua_1', vendorId: '046d' }] } } });

    agent.send({ t: 'hb', ts: Date.now(), tuned: { events: 12, bytes: 1500 } });
    expect((await agent.next()).t).toBe('hb');
    agent.send({ t: 'hb', ts: Date.now(), tuned: { events: 3, bytes: 200 } });
    expect((await agent.next()).t).toBe('hb');
    // Nonsense counts are ignored, not added.
    agent.send({ t: 'hb', ts: Date.now(), tuned: { events: -5, bytes: 'x' } });
    expect((await agent.next()).t).toBe('hb');
    stranger.send({ t: 'hb', ts: Date.now() });
    expect((await stranger.next()).t).toBe('hb');
    agent.close();
    stranger.close();
    await agent.closed;
    // Reported counts are written every few seconds (one transaction for all agents).
    const want = [{ day: tokyoDay(Date.now()), agentEvents: 15, agentBytes: 1700, shardEvents: 0, shardBytes: 0 }];
    await eventually(async () => (JSON.stringify(h.store.fleet.savings(supportId)) === JSON.stringify(want) ? true : undefined));
    expect(h.store.fleet.savings('OTHER')).toEqual([]);
  });
});
