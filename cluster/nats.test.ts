/** The start-up retry of the NATS link (no nats-server needed). */
import { describe, expect, it } from 'vitest';
import { KisekiError } from '../core/errors.js';
import { createSilentLogger } from '../core/logger.js';
import { retryWhileStarting } from './nats.js';

const logger = createSilentLogger();

describe('retryWhileStarting', () => {
  it('retries a step JetStream refuses while it starts, and returns its value once it succeeds', async () => {
    let calls = 0;
    const value = await retryWhileStarting(
      async () => {
        calls++;
        if (calls < 3) throw new Error('jetstream is not enabled');
        return 'published';
      },
      'the local tenants',
      logger,
      60_000,
      1,
    );
    expect(value).toBe('published');
    expect(calls).toBe(3);
  });

  it('gives up with ERR_CLUSTER_UNAVAILABLE naming the step and the last error once its budget is spent', async () => {
    let calls = 0;
    const failing = retryWhileStarting(
      () => {
        calls++;
        return Promise.reject(new Error('jetstream is not enabled'));
      },
      'the local tenants',
      logger,
      20,
      5,
    );
    await expect(failing).rejects.toBeInstanceOf(KisekiError);
    await expect(failing).rejects.toMatchObject({ code: 'ERR_CLUSTER_UNAVAILABLE' });
    await expect(failing).rejects.toMatchObject({ details: { reason: 'JetStream refused the local tenants: jetstream is not enabled' } });
    expect(calls).toBeGreaterThan(1);
  });
});
