/**
 * The gray → white rule (seed 000 §4-2): a gray alert the customer has not
 * answered within three Japanese business days (weekends and national
 * holidays do not count, core/business-days.ts) turns white. The change is
 * an ordinary verdict change by `system:gray-timeout`, so it lands in the
 * verdict history with `from`, in the feed (and so in notifications), and in
 * the audit log; the CLI and the API show it through `alerts.effective`.
 */
import { businessDaysLater } from '../core/business-days.js';
import type { Clock } from '../core/clock.js';
import type { AlertRecord } from '../core/contracts.js';
import type { HotStore } from '../storage/index.js';

/** Who the automatic change is recorded as. */
export const GRAY_TIMEOUT_ACTOR = 'system:gray-timeout';

export interface GrayTimeoutOptions {
  store: HotStore;
  clock: Clock;
  /** Business days a gray alert waits for an answer (default 3). */
  businessDays?: number;
  /** Alerts older than this are not looked at any more, ms (default 30 days: longer than any holiday run). */
  lookBackMs?: number;
}

/**
 * Turns every unanswered gray alert past its deadline white; returns the ids
 * changed. Idempotent: a second run finds them white and does nothing.
 */
export async function applyGrayTimeouts(options: GrayTimeoutOptions): Promise<string[]> {
  const { store, clock } = options;
  const days = options.businessDays ?? 3;
  const now = clock.now();
  const oldest = now - (options.lookBackMs ?? 30 * 86_400_000);
  const changed: string[] = [];
  // Listed first: a scan held open across the writes below would keep LMDB from reusing the pages they free.
  const due: AlertRecord[] = [];
  for (const a of store.alerts.scanAll()) {
    if (a.createdAt < oldest) break;
    if (a.verdict !== 'gray' || a.state !== 'reported') continue;
    if (now < businessDaysLater(a.createdAt, days) || store.answers.has(a.id)) continue;
    due.push(a);
  }
  for (const a of due) {
    const result = await store.alerts.setVerdict({
      alertId: a.id,
      at: now,
      by: GRAY_TIMEOUT_ACTOR,
      verdict: 'white',
      comment: `No answer from the customer within ${days} business days.`,
    });
    if (result === undefined) continue;
    await store.identity.appendAudit({
      at: now,
      actor: GRAY_TIMEOUT_ACTOR,
      role: 'system',
      supportId: a.supportId,
      action: 'alert.verdict_changed',
      target: a.id,
      from: 'kiseki',
      details: { from: result.before, to: 'white', reason: 'gray_timeout' },
    });
    changed.push(a.id);
  }
  return changed;
}
