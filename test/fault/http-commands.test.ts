/**
 * Issue 11, item 6 (second half): a queued command can be cancelled. A
 * cancelled command is never delivered again (the agent server delivers
 * through store.commands.deliver, called here the same way); cancelling is
 * audited and scoped like the other command routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandRecord } from '../../storage/index.js';
import { call, login, openHttpWorld, type HttpWorld } from './http-support.js';

let w: HttpWorld;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  w = await openHttpWorld();
  for (const id of ['op.one', 'admin@TA', 'viewer@TA', 'admin@TB']) tokens[id] = await login(w, id);
});
afterAll(async () => {
  await w.close();
});

/** What a connected device would be sent now. */
function delivery(tmid: string): string[] {
  const sent: string[] = [];
  w.store.commands.deliver(tmid, w.clock.now(), (c: CommandRecord) => sent.push(c.id));
  return sent;
}

async function request(kind: string, args: Record<string, unknown> = {}): Promise<string> {
  const r = await call(w, 'POST', `/api/v1/devices/${w.deviceA}/commands`, { auth: tokens['admin@TA'], body: { kind, args } });
  expect(r.status).toBe(202);
  return r.json.id as string;
}

async function stateBecomes(id: string, state: string): Promise<void> {
  // The delivery marks a command sent with a write it does not wait for; wait for the write, not for a time.
  for (let i = 0; i < 100 && w.store.commands.get(id)?.state !== state; i++) {
    await w.store.flushed();
    await new Promise((r) => setImmediate(r));
  }
  expect(w.store.commands.get(id)?.state).toBe(state);
}

describe('item 6: cancelling a command', () => {
  it('item 6: a queued set-policy command cancelled through the API becomes cancelled and is never delivered', async () => {
    const id = await request('set-policy', { level: 3 });
    const r = await call(w, 'POST', `/api/v1/commands/${id}/cancel`, { auth: tokens['admin@TA'] });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id, state: 'cancelled', cancelledBy: 'admin@TA' });
    expect(delivery(w.deviceA)).not.toContain(id);
    expect((await call(w, 'GET', `/api/v1/commands/${id}`, { auth: tokens['viewer@TA'] })).json.state).toBe('cancelled');
    const audit = await call(w, 'GET', '/api/v1/audit?action=command.cancelled', { auth: tokens['admin@TA'] });
    expect(audit.json.items[0]).toMatchObject({ actor: 'admin@TA', target: id, supportId: 'TA', details: { kind: 'set-policy', tmid: w.deviceA } });
  });

  it('item 6: a sent but unacknowledged command can be cancelled and is not sent again on reconnect', async () => {
    const id = await request('isolate');
    expect(delivery(w.deviceA)).toContain(id);
    await stateBecomes(id, 'sent');
    const r = await call(w, 'POST', `/api/v1/commands/${id}/cancel`, { auth: tokens['op.one'] });
    expect(r.status).toBe(200);
    expect(r.json.state).toBe('cancelled');
    expect(delivery(w.deviceA)).not.toContain(id);
    expect(w.store.commands.pendingFor(w.deviceA).map((c) => c.id)).not.toContain(id);
  });

  it('item 6: an acknowledged or cancelled command answers 409 ERR_COMMAND_NOT_CANCELLABLE with its state', async () => {
    const id = await request('release');
    await w.store.commands.recordOutcome(id, { status: 'acknowledged', at: w.clock.now() });
    const r = await call(w, 'POST', `/api/v1/commands/${id}/cancel`, { auth: tokens['admin@TA'] });
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ code: 'ERR_COMMAND_NOT_CANCELLABLE', details: { state: 'acknowledged' } });
    const other = await request('release');
    expect((await call(w, 'POST', `/api/v1/commands/${other}/cancel`, { auth: tokens['admin@TA'] })).status).toBe(200);
    expect((await call(w, 'POST', `/api/v1/commands/${other}/cancel`, { auth: tokens['admin@TA'] })).json.details.state).toBe('cancelled');
  });

  it('item 6: cancelling is scoped like the other command routes: another tenant 404, viewers 403, unknown 404', async () => {
    const id = await request('release');
    const b = await call(w, 'POST', `/api/v1/commands/${id}/cancel`, { auth: tokens['admin@TB'] });
    expect([b.status, b.json.code]).toEqual([404, 'ERR_NOT_FOUND']);
    expect((await call(w, 'POST', `/api/v1/commands/${id}/cancel`, { auth: tokens['viewer@TA'] })).status).toBe(403);
    expect((await call(w, 'POST', '/api/v1/commands/cmd_000000000000000000000000/cancel', { auth: tokens['op.one'] })).status).toBe(404);
    expect(w.store.commands.get(id)?.state).toBe('queued');
  });

  it('item 6: the cancel route is in the OpenAPI document with its roles', async () => {
    const doc = (await call(w, 'GET', '/api/v1/openapi.json')).json;
    const op = doc.paths['/api/v1/commands/{id}/cancel'].post;
    expect(op['x-roles']).toEqual(['operator', 'admin']);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '404', '409']));
  });
});
