/**
 * Customers' answers on alerts (SPEC seed 000 §4-2: a gray alert waits three
 * business days for one before it turns white). An answer stops the clock.
 *
 * Key layout (kiseki.lmdb):
 *   customer-answers  [alertId, at, id] -> CustomerAnswer
 */
import { randomBytes } from 'node:crypto';
import type { CustomerAnswer } from './records.js';
import type { Tables } from './tables.js';

export interface AnswerRepository {
  /** Records a customer's answer and returns it. */
  add(input: Omit<CustomerAnswer, 'id'>): Promise<CustomerAnswer>;
  /** An alert's answers, oldest first. */
  of(alertId: string): CustomerAnswer[];
  /** True when the alert has at least one answer. */
  has(alertId: string): boolean;
}

/** The customer answer repository over the hot store's tables (called by openHotStore). */
export function createAnswerRepository(t: Tables): AnswerRepository {
  const { customerAnswers } = t;
  return {
    async add(input) {
      const answer: CustomerAnswer = { id: `ca_${randomBytes(6).toString('hex')}`, ...input };
      await customerAnswers.put([input.alertId, input.at, answer.id], answer);
      return answer;
    },
    of: (alertId) => [...customerAnswers.getRange({ start: [alertId], end: [alertId, Infinity] })].map((e) => e.value),
    has(alertId) {
      for (const _ of customerAnswers.getKeys({ start: [alertId], end: [alertId, Infinity], limit: 1 })) return true;
      return false;
    },
  };
}
