/**
 * Notifiers sharing deliveries through the `claims` port (the API nodes of a
 * cluster: cluster/notify-claims.ts over NATS KV): two stores holding the same
 * alerts, two notifiers, one receiver. Each notification is sent once in
 * total; a claim whose holder stopped before settling is taken over once its
 * time ends; a digest goes with the events nobody else sent; while claims
 * cannot be asked nothing is sent and no attempt is counted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock, type Clock } from '../core/clock.js';
import type { AlertRecord } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, type HotStore, type NotifySettings } from '../storage/index.js';
import { createNotifier, deliveryClaimKey, type ClaimAnswer, type DeliveryClaims, type Notifier } from './notifier.js';
import { startTestReceiver, testAlert } from './test-support.js';

const T0 = Date.UTC(2026, 9, 5, 1, 0, 0);
const HOLD_MS = 60_000;

interface ClaimRecord {
  state: 'claimed' | 'sent' | 'dead';
  node: string;
  until: number;
}

/** The claims port over a shared map: the semantics cluster/notify-claims.ts gives over a KV bucket. */
function memoryClaims(records: Map<string, ClaimRecord>, node: string, clock: Clock, down: { now: boolean } = { now: false }): DeliveryClaims {
  return {
    async claim(key): Promise<ClaimAnswer> {
      if (down.now) throw new Error('no responders');
      const held = records.get(key);
      if (held !== undefined && held.state !== 'claimed') return { kind: 'settled', state: held.state, by: held.node };
      if (held !== undefined && held.node !== node && held.until > clock.now()) return { kind: 'held', until: held.until };
      records.set(key, { state: 'claimed', node, until: clock.now() + HOLD_MS });
      return { kind: 'mine' };
    },
    async settle(key, outcome) {
      if (down.now) throw new Error('no responders');
      records.set(key, outcome.state === 'retry' ? { state: 'claimed', node, until: outcome.retryAt + HOLD_MS } : { state: outcome.state, node, until: 0 });
    },
  };
}

describe('notifiers sharing deliveries through claims', () => {
  let dir = '';
  let a: HotStore;
  let b: HotStore;
  const clock = createManualClock(T0);
  beforeEach(() => {
    clock.set(T0);
    dir = mkdtempSync(join(tmpdir(), 'kiseki-notify-claims-'));
    a = openHotStore({ dataDir: join(dir, 'a'), mapSizeBytes: 64 * 1024 * 1024 });
    b = openHotStore({ dataDir: join(dir, 'b'), mapSizeBytes: 64 * 1024 * 1024 });
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What an API node's copy writes: the alerts with their feed entries. */
  const copy = (s: HotStore, ...alerts: AlertRecord[]): Promise<number> => s.alerts.mirror(alerts.map((alert) => ({ alert })), { notifyFrom: T0 - 1000 });
  const settings = (url: string, maxPerHour = 100): NotifySettings => ({
    supportId: 'TA', recipients: [{ id: 'h1', channel: 'webhook', to: url, events: ['alert.new', 'alert.verdict'], verdicts: ['black', 'gray', 'white'] }], maxPerHour, updatedAt: T0, updatedBy: 'op',
  });
  const notifier = (s: HotStore, claims: DeliveryClaims): Notifier =>
    createNotifier({ store: s, clock, logger: createSilentLogger(), consoleUrl: 'https://c', claims, retry: { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000 } });
  const alertIds = (hooks: { body: string }[]): string[] =>
    hooks.flatMap((h) => (JSON.parse(h.body) as { events: { alertId: string }[] }).events.map((e) => e.alertId)).sort();

  it('sends each notification once across two notifiers, and the other records who settled it', async () => {
    const hook = await startTestReceiver();
    try {
      const records = new Map<string, ClaimRecord>();
      for (const s of [a, b]) {
        await s.notify.putSettings(settings(hook.url));
        await copy(s, testAlert('al_1', 'TA', T0), testAlert('al_2', 'TA', T0 + 1, 'gray'));
      }
      const na = notifier(a, memoryClaims(records, 'a', clock));
      const nb = notifier(b, memoryClaims(records, 'b', clock));
      expect(await na.tick()).toEqual({ sent: 2, retried: 0, dead: 0 });
      expect(await nb.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(alertIds(hook.hooks)).toEqual(['al_1', 'al_2']);
      expect(b.notify.scanTenant('TA').map((e) => ({ state: e.state, settledBy: e.settledBy, attempts: e.attempts }))).toEqual([
        { state: 'sent', settledBy: 'a', attempts: 0 },
        { state: 'sent', settledBy: 'a', attempts: 0 },
      ]);
      // A verdict change each node sees (a gray → white timeout run on both): one notification.
      for (const s of [a, b]) await s.alerts.setVerdict({ alertId: 'al_2', at: T0 + 10, by: 'system:gray-timeout', verdict: 'white' });
      expect(await nb.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      expect(await na.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(hook.hooks).toHaveLength(3);
      expect(records.get(deliveryClaimKey({ seq: 0, kind: 'alert.verdict', supportId: 'TA', at: 0, alertId: 'al_2', verdict: 'white' }, 'h1'))).toMatchObject({ state: 'sent', node: 'b' });
    } finally {
      await hook.close();
    }
  });

  it('takes over a claim whose holder stopped before settling, once its time ends; a retry keeps the claim meanwhile', async () => {
    let answer = 200;
    const hook = await startTestReceiver(() => answer);
    try {
      const records = new Map<string, ClaimRecord>();
      for (const s of [a, b]) {
        await s.notify.putSettings(settings(hook.url));
        await copy(s, testAlert('al_1', 'TA', T0));
      }
      // Node a claimed al_1 and died before sending.
      const key = deliveryClaimKey(a.notify.feedAfter(0, 1)[0]!, 'h1');
      expect(await memoryClaims(records, 'a', clock).claim(key)).toEqual({ kind: 'mine' });
      const nb = notifier(b, memoryClaims(records, 'b', clock));
      expect(await nb.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      // b asks again every 5 s while the claim holds, then takes it over.
      expect(b.notify.scanTenant('TA')[0]).toMatchObject({ state: 'pending', attempts: 0, nextAttemptAt: T0 + 5000 });
      clock.advance(5000);
      expect(await nb.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(hook.hooks).toHaveLength(0);
      clock.advance(HOLD_MS - 5000);
      expect(await nb.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      expect(records.get(key)).toMatchObject({ state: 'sent', node: 'b' });

      // A receiver failure: the holder's retry keeps the claim past its backoff, the other waits, then sees it sent.
      await a.alerts.mirror([{ alert: testAlert('al_2', 'TA', clock.now()) }], { notifyFrom: T0 });
      await b.alerts.mirror([{ alert: testAlert('al_2', 'TA', clock.now()) }], { notifyFrom: T0 });
      const na = notifier(a, memoryClaims(records, 'a', clock));
      answer = 500;
      // a: al_1 is settled by b, al_2 fails once.
      expect(await na.tick()).toEqual({ sent: 0, retried: 1, dead: 0 });
      expect(await nb.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      answer = 200;
      clock.advance(1000);
      expect(await nb.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(await na.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      clock.advance(HOLD_MS);
      expect(await nb.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(b.notify.scanTenant('TA').map((e) => e.state)).toEqual(['sent', 'sent']);
      expect(alertIds(hook.hooks.slice(-1))).toEqual(['al_2']);
      expect(hook.hooks.filter((h) => h.body.includes('al_2'))).toHaveLength(2); // the failed attempt and the one accepted
    } finally {
      await hook.close();
    }
  });

  it('sends a digest with the events nobody else sent, and nothing while claims cannot be asked', async () => {
    const hook = await startTestReceiver();
    try {
      const records = new Map<string, ClaimRecord>();
      const down = { now: true };
      // b folds a storm (1 an hour): al_1 alone, al_2 and al_3 in the hour's digest. a has only sent al_2.
      await b.notify.putSettings(settings(hook.url, 1));
      await copy(b, testAlert('al_1', 'TA', T0), testAlert('al_2', 'TA', T0 + 1), testAlert('al_3', 'TA', T0 + 2));
      await a.notify.putSettings(settings(hook.url));
      await copy(a, testAlert('al_2', 'TA', T0 + 1));
      const nb = notifier(b, memoryClaims(records, 'b', clock, down));
      expect(await nb.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(b.notify.scanTenant('TA').map((e) => e.attempts)).toEqual([0, 0]);
      expect(await notifier(a, memoryClaims(records, 'a', clock)).tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      down.now = false;
      clock.advance(3600_000);
      expect(await nb.tick()).toEqual({ sent: 2, retried: 0, dead: 0 });
      const digest = hook.hooks.map((h) => JSON.parse(h.body) as { digest: boolean; events: { alertId: string }[] }).find((h) => h.digest);
      expect(digest?.events.map((e) => e.alertId)).toEqual(['al_3']);
      expect(alertIds(hook.hooks)).toEqual(['al_1', 'al_2', 'al_3']);
    } finally {
      await hook.close();
    }
  });
});
