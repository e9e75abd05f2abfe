/**
 * The exception list's cluster copies (and the other per-tenant settings a
 * cluster node copies): a copy keeps the newest of an entry's add and its
 * removal, so a late add never brings back an entry removed after it, and
 * settings copies only move forward in `updatedAt`.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { ExceptionEntry } from '../core/contracts.js';
import type { HotStore } from './hot-store.js';
import { useTempStore } from '../test/support/temp-store.js';

const entry = (id: string, createdAt: number): ExceptionEntry => ({ id, supportId: 'T1', sha256: 'a'.repeat(64), reason: 'known tool', createdAt, createdBy: 'op' });

describe('exception list copies', () => {
  let store: HotStore;
  useTempStore('kiseki-exceptions-', (s) => (store = s));
  beforeEach(async () => {
    await store.tenants.create({ supportId: 'T1', name: 'Tenant one', now: 1 });
  });

  it('keeps the newest of an add and a removal, whichever arrives first', async () => {
    expect(await store.exceptions.mirror(entry('ex_1', 100))).toBe(true);
    expect(await store.exceptions.mirror(entry('ex_1', 100))).toBe(false);
    expect(store.exceptions.list('T1').map((e) => e.id)).toEqual(['ex_1']);

    // Removed at 200: gone, and the add at 100 copied again (a late copy) stays out.
    expect(await store.exceptions.mirrorRemoval('T1', 'ex_1', 200)).toBe(true);
    expect(store.exceptions.list('T1')).toEqual([]);
    expect(await store.exceptions.mirror(entry('ex_1', 100))).toBe(false);
    expect(store.exceptions.get('T1', 'ex_1')).toBeUndefined();
    expect(store.exceptions.removedAt('T1', 'ex_1')).toBe(200);

    // The same id added again after the removal (the engine's automatic id for a hash) is stored.
    expect(await store.exceptions.mirror(entry('ex_1', 300))).toBe(true);
    expect(store.exceptions.get('T1', 'ex_1')?.createdAt).toBe(300);
    // An older removal arriving late leaves the newer add alone.
    expect(await store.exceptions.mirrorRemoval('T1', 'ex_1', 250)).toBe(false);
    expect(store.exceptions.get('T1', 'ex_1')).toBeDefined();

    // A removal copied before its add: the add stays out.
    expect(await store.exceptions.mirrorRemoval('T1', 'ex_2', 500)).toBe(false);
    expect(await store.exceptions.mirror(entry('ex_2', 400))).toBe(false);
    expect(store.exceptions.list('T1').map((e) => e.id)).toEqual(['ex_1']);
  });

  it('moves Sigma settings, threshold rules and liveness settings only forward', async () => {
    expect(await store.detections.mirrorSettings('T1', { enabled: false, disabledRules: ['r2', 'r1', 'r2'], updatedAt: 10 })).toBe(true);
    expect(store.detections.settings('T1')).toEqual({ enabled: false, disabledRules: ['r1', 'r2'], updatedAt: 10 });
    expect(await store.detections.mirrorSettings('T1', { enabled: true, disabledRules: [], updatedAt: 10 })).toBe(false);
    expect(await store.detections.mirrorSettings('T1', { enabled: true, disabledRules: [], updatedAt: 11 })).toBe(true);
    expect(store.detections.settings('T1').enabled).toBe(true);

    const rules = { supportId: 'T1', rules: [], updatedAt: 20, updatedBy: 'op.a' };
    expect(await store.analytics.mirrorRules(rules)).toBe(true);
    expect(await store.analytics.mirrorRules({ ...rules, updatedAt: 19, updatedBy: 'op.b' })).toBe(false);
    expect(store.analytics.rules('T1')?.updatedBy).toBe('op.a');

    const liveness = { supportId: 'T1', windows: [], offlineAfterMs: 60_000, updatedAt: 30, updatedBy: 'op.a' };
    expect(await store.liveness.mirrorSettings(liveness)).toBe(true);
    expect(await store.liveness.mirrorSettings({ ...liveness, offlineAfterMs: 1, updatedAt: 30 })).toBe(false);
    expect(await store.liveness.mirrorSettings({ ...liveness, offlineAfterMs: 2, updatedAt: 31 })).toBe(true);
    expect(store.liveness.settings('T1')?.offlineAfterMs).toBe(2);
  });
});
