/**
 * What `kiseki start` runs of notify/: the notifier on its interval (feed →
 * outbox → SMTP and webhooks) and the gray → white rule once a minute, both
 * from one config slice. `stop()` waits for a running round, so nothing is
 * half-marked at shutdown (and an unfinished one resumes from the outbox).
 */
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import { applyGrayTimeouts } from './gray-timeout.js';
import { createNotifier, type Notifier } from './notifier.js';
import { createSmtpTransport } from './smtp.js';

const GRAY_CHECK_INTERVAL_MS = 60_000;

export interface NotificationsRuntime {
  readonly notifier: Notifier;
  stop(): Promise<void>;
}

/** Starts the notifier and the gray → white timer. */
export function startNotifications(options: {
  store: HotStore;
  clock: Clock;
  logger: Logger;
  config: Readonly<Config['notify']>;
  renderAlertPdf?: (alertId: string) => Promise<Buffer | undefined>;
}): NotificationsRuntime {
  const { config, store, clock } = options;
  const log = options.logger.child({ component: 'notify' });
  const transport =
    config.smtpHost === ''
      ? undefined
      : createSmtpTransport({
          host: config.smtpHost,
          port: config.smtpPort,
          secure: config.smtpSecure,
          requireTls: config.smtpRequireTls,
          ...(config.smtpUser === '' ? {} : { user: config.smtpUser, password: config.smtpPassword }),
        });
  const notifier = createNotifier({
    store,
    clock,
    logger: options.logger,
    consoleUrl: config.consoleUrl.replace(/\/$/, ''),
    retry: { maxAttempts: config.maxAttempts, baseDelayMs: config.retryBaseMs },
    ...(transport === undefined ? {} : { mail: { transport, from: config.mailFrom } }),
    ...(options.renderAlertPdf === undefined ? {} : { renderAlertPdf: options.renderAlertPdf }),
  });
  notifier.start(config.intervalMs);
  let grayTimer: NodeJS.Timeout | undefined;
  let grayRun: Promise<unknown> = Promise.resolve();
  if (config.grayTimeoutBusinessDays > 0) {
    grayTimer = setInterval(() => {
      grayRun = applyGrayTimeouts({ store, clock, businessDays: config.grayTimeoutBusinessDays })
        .then((ids) => {
          if (ids.length > 0) log.info({ alerts: ids.length }, 'Gray alerts without an answer turned white.');
        })
        .catch((err: unknown) => log.error({ err }, 'The gray → white check failed; the next one retries.'));
    }, GRAY_CHECK_INTERVAL_MS);
    grayTimer.unref();
  }
  return {
    notifier,
    async stop() {
      if (grayTimer !== undefined) clearInterval(grayTimer);
      await grayRun;
      await notifier.stop();
      transport?.close();
    },
  };
}
