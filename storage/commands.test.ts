import { describe, expect, it } from 'vitest';
import { COMMAND_EXPIRY_MS } from '../core/contracts.js';
import type { HotStore } from './hot-store.js';
import { useTempStore } from '../test/support/temp-store.js';

describe('command lifecycle', () => {
  let store: HotStore;
  useTempStore('kiseki-commands-', (s) => (store = s));

  const base = { supportId: 'T', args: {}, requestedBy: 'op' };

  it('queues, delivers oldest first, expires the stale and records isolation when an isolate is done', async () => {
    const old = await store.commands.queue({ ...base, tmid: 'D1', kind: 'release', requestedAt: 100, expiresAt: 500 });
    const isolate = await store.commands.queue({ ...base, tmid: 'D1', kind: 'isolate', args: { allow: [{ cidr: '10.0.0.1' }] }, requestedAt: 300 });
    // The engine queues inside its flush transaction.
    const engine = store.commands.create({ ...base, id: 'cmd_engine', tmid: 'D1', kind: 'collect-file', args: { path: 'C:\\x' }, requestedBy: 'engine', requestedAt: 200 });
    await store.transaction(() => store.commands.queueSync(engine));
    await store.commands.queue({ ...base, tmid: 'D2', kind: 'release', requestedAt: 50 });
    expect(isolate).toMatchObject({ state: 'queued', expiresAt: 300 + COMMAND_EXPIRY_MS });
    expect(store.commands.forDevice('D1').map((c) => c.id)).toEqual([old.id, 'cmd_engine', isolate.id]);

    const sent: string[] = [];
    store.commands.deliver('D1', 1000, (c) => sent.push(c.id));
    await store.flushed();
    expect(sent).toEqual(['cmd_engine', isolate.id]);
    expect(store.commands.get(old.id)?.state).toBe('expired');
    expect(store.commands.get(isolate.id)).toMatchObject({ state: 'sent', updatedAt: 1000 });
    // Sent but unacknowledged: delivered again at the next connection.
    expect(store.commands.pendingFor('D1').map((c) => c.id)).toEqual(['cmd_engine', isolate.id]);

    await store.commands.recordOutcome(isolate.id, { status: 'acknowledged', at: 1100 });
    expect(store.commands.isolation('D1')).toBeUndefined();
    await store.commands.recordOutcome(isolate.id, { status: 'done', at: 1200, result: { ok: true } });
    expect(store.commands.get(isolate.id)).toMatchObject({ state: 'done', result: { ok: true } });
    expect(store.commands.isolation('D1')).toEqual({ state: 'isolated', since: 1200, allow: [{ cidr: '10.0.0.1' }], commandId: isolate.id });
    await store.commands.recordOutcome('cmd_engine', { status: 'failed', at: 1300, error: 'no such file' });
    expect(store.commands.pendingFor('D1')).toEqual([]);
    expect(store.commands.isolation('D1')?.state).toBe('isolated');
    expect(await store.commands.recordOutcome('cmd_none', { status: 'done', at: 1 })).toBeUndefined();
  });

  it('cancels queued and sent commands only, and a delivery racing the cancel never moves it back to sent', async () => {
    const queued = await store.commands.queue({ ...base, tmid: 'D1', kind: 'release', requestedAt: 100 });
    // The cancel's transaction is in flight while a connection delivers from the committed state.
    const cancelling = store.commands.cancel(queued.id, 'admin', 200);
    const sentFirst: string[] = [];
    store.commands.deliver('D1', 150, (c) => sentFirst.push(c.id));
    expect(await cancelling).toMatchObject({ cancelled: true, command: { state: 'cancelled', cancelledBy: 'admin', updatedAt: 200 } });
    await store.flushed();
    expect(store.commands.get(queued.id)?.state).toBe('cancelled');
    const sentAfter: string[] = [];
    store.commands.deliver('D1', 300, (c) => sentAfter.push(c.id));
    expect(sentAfter).toEqual([]);

    const done = await store.commands.queue({ ...base, tmid: 'D1', kind: 'release', requestedAt: 400 });
    await store.commands.recordOutcome(done.id, { status: 'done', at: 500 });
    expect(await store.commands.cancel(done.id, 'admin', 600)).toMatchObject({ cancelled: false, command: { state: 'done' } });
    expect(await store.commands.cancel('cmd_none', 'admin', 600)).toBeUndefined();
  });
});
