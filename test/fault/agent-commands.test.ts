/**
 * Fault and abuse tests of response commands on the agent path (issue 11,
 * item 6, h-agent's half): args that could not be encoded for the device are
 * refused when the command is queued (API and store), and a stored command
 * that still cannot be encoded is failed as `undeliverable` instead of
 * cutting its device off at every reconnect. (Cancelling a queued command is
 * h-http's API.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/clock.js';
import { isKisekiError } from '../../core/errors.js';
import { createSilentLogger } from '../../core/logger.js';
import { createMetrics } from '../../core/metrics.js';
import { createHttpApp } from '../../api/http-app.js';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../support/agent-harness.js';
import { enroll, expectAcked, expectStoredOnce, reconnect } from './agent-support.js';

function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { mode: 'block' };
  for (let i = 1; i < depth; i++) v = { inner: v };
  return v;
}

describe('response commands that could cut a device off (issue 11, item 6)', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startAgentHarness();
  });
  afterEach(async () => {
    await stopAgentHarness(h);
  });

  it('item 6: a set-policy command with args nested 150 deep is refused at queue time (store and API) with ERR_COMMAND_ARGS_TOO_LARGE', async () => {
    const device = await enroll(h);
    const base = { tmid: device.tmid, supportId: 'T001', kind: 'set-policy' as const, requestedBy: 'admin', requestedAt: Date.now() };
    const refused = await h.store.commands.queue({ ...base, args: nested(150) }).catch((err: unknown) => err);
    expect(isKisekiError(refused, 'ERR_COMMAND_ARGS_TOO_LARGE')).toBe(true);
    const big = await h.store.commands.queue({ ...base, args: { blob: 'x'.repeat(20_000) } }).catch((err: unknown) => err);
    expect(isKisekiError(big, 'ERR_COMMAND_ARGS_TOO_LARGE')).toBe(true);
    expect(h.store.commands.forDevice(device.tmid)).toEqual([]);
    // 16 levels is the bound, and is accepted.
    expect((await h.store.commands.queue({ ...base, args: nested(16) })).state).toBe('queued');

    // Through the API, as a tenant admin would send it.
    const app = createHttpApp({
      metrics: createMetrics({ defaultMetrics: false }),
      health: { problems: () => [], details: () => ({}) },
      api: { store: h.store, clock: systemClock, logger: createSilentLogger(), deliverCommands: (tmid) => h.server.deliverCommands(tmid), requireClientCert: false },
    });
    await h.store.identity.createUser({ id: 'admin.t', role: 'admin', supportId: 'T001', password: 'initial-pass-1', now: Date.now() });
    const call = async (path: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> => {
      const res = await app.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    };
    let login = await call('/api/v1/auth/login', { id: 'admin.t', password: 'initial-pass-1' });
    let token = login.json.token as string;
    if (login.json.mustChangePassword === true) {
      await call('/api/v1/auth/password', { currentPassword: 'initial-pass-1', newPassword: 'Changed pass 2!' }, token);
      login = await call('/api/v1/auth/login', { id: 'admin.t', password: 'Changed pass 2!' });
      token = login.json.token as string;
    }
    const r = await call(`/api/v1/devices/${device.tmid}/commands`, { kind: 'set-policy', args: nested(150) }, token);
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('ERR_COMMAND_ARGS_TOO_LARGE');
    expect(h.store.commands.forDevice(device.tmid)).toHaveLength(1);

    // The device is still served: the accepted command arrives, batches are acked.
    h.server.deliverCommands(device.tmid);
    expect(await device.agent.next()).toMatchObject({ t: 'cmd', kind: 'set-policy' });
    await expectAcked(device.agent, 1);
    device.agent.close();
  });

  it('item 6: a stored command that cannot be encoded is failed as undeliverable; the device gets welcome, its other commands and acks, never internal_error', async () => {
    const device = await enroll(h);
    device.agent.close();
    await device.agent.closed;
    // A command stored before the bound existed: written past queue()'s check, as an old release would have.
    const poison = { ...h.store.commands.create({ tmid: device.tmid, supportId: 'T001', kind: 'set-policy', args: {}, requestedBy: 'admin', requestedAt: Date.now() - 10 }), args: nested(150) };
    await h.store.transaction(() => h.store.commands.queueSync(poison));
    const good = await h.store.commands.queue({ tmid: device.tmid, supportId: 'T001', kind: 'release', args: {}, requestedBy: 'op', requestedAt: Date.now() });

    for (let i = 0; i < 2; i++) {
      const again = await reconnect(h, device.tmid, device.token);
      expect(await again.agent.next()).toMatchObject({ t: 'cmd', id: good.id });
      await expectAcked(again.agent, 1 + i * 3);
      again.agent.close();
      expect((await again.agent.closed).code).not.toBe(1011);
      expect(again.agent.frames.some((f) => f.t === 'error')).toBe(false);
    }
    await h.store.flushed();
    expect(h.store.commands.get(poison.id)).toMatchObject({ state: 'failed', error: 'undeliverable' });
    await expectStoredOnce(h, 2, 6);
  });
});
