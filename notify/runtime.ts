/**
 * What `kiseki start` runs of notify/: the notifier on its interval (feed →
 * outbox → SMTP and webhooks), and once a minute the gray → white rule, all
 * from one config slice. (Agent liveness is engine/liveness.ts: it writes
 * feed events this only delivers.) `stop()` waits for a running round, so nothing is
 * half-marked at shutdown (and an unfinished one resumes from the outbox).
 */
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import { applyGrayTimeouts } from './gray-timeout.js';
import { createNotifier, type DeliveryClaims, type Notifier } from './notifier.js';
import { loadSiemDestinations } from './siem/destinations.js';
import { createSmtpTransport } from './smtp.js';

/** The gray → white rule runs this often. */
const MINUTE_CHECKS_INTERVAL_MS = 60_000;

export interface NotificationsRuntime {
  readonly notifier: Notifier;
  /** A shard stored an alert: read the feed now rather than at the next interval. */
  wake(): void;
  stop(): Promise<void>;
}

/** Starts the notifier and the gray → white timer. */
export function startNotifications(options: {
  store: HotStore;
  clock: Clock;
  logger: Logger;
  config: Readonly<Config['notify']>;
  /** SIEM forwarding: operator-wide destinations and the syslog HOSTNAME (absent: tenants' SIEM recipients only). */
  siem?: Readonly<Config['siem']>;
  renderAlertPdf?: (alertId: string, signal?: AbortSignal) => Promise<Buffer | undefined>;
  /** Deliveries shared with the other API nodes of a cluster (cluster/notify-claims.ts); absent: every entry is sent here. */
  claims?: DeliveryClaims;
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
    pdfTimeoutMs: config.pdfWaitMs,
    ...(transport === undefined ? {} : { mail: { transport, from: config.mailFrom } }),
    ...(options.renderAlertPdf === undefined ? {} : { renderAlertPdf: options.renderAlertPdf }),
    ...(options.claims === undefined ? {} : { claims: options.claims }),
    ...(options.siem === undefined
      ? {}
      : { siem: { hostname: options.siem.hostname, globalRecipients: options.siem.destinationsFile === undefined ? [] : loadSiemDestinations(options.siem.destinationsFile) } }),
  });
  notifier.start(config.intervalMs);
  let minuteTimer: NodeJS.Timeout | undefined;
  let minuteRun: Promise<unknown> = Promise.resolve();
  const minuteChecks = async (): Promise<void> => {
    if (config.grayTimeoutBusinessDays > 0) {
      const ids = await applyGrayTimeouts({ store, clock, businessDays: config.grayTimeoutBusinessDays });
      if (ids.length > 0) log.info({ alerts: ids.length }, 'Gray alerts without an answer turned white.');
    }
  };
  if (config.grayTimeoutBusinessDays > 0) {
    minuteTimer = setInterval(() => {
      minuteRun = minuteChecks().catch((err: unknown) => log.error({ err }, 'The gray → white check failed; the next one retries.'));
    }, MINUTE_CHECKS_INTERVAL_MS);
    minuteTimer.unref();
  }
  return {
    notifier,
    wake() {
      void notifier.wake();
    },
    async stop() {
      if (minuteTimer !== undefined) clearInterval(minuteTimer);
      await minuteRun;
      await notifier.stop();
      transport?.close();
    },
  };
}
