/**
 * The notifier: reads the notification feed storage writes in the same
 * transaction as each alert, verdict change or isolation, queues one outbox
 * entry per interested recipient (in LMDB, with the feed cursor, in one
 * transaction), then delivers what is due by e-mail (nodemailer over SMTP,
 * STARTTLS and auth) or webhook (JSON, HMAC-SHA256 signature), retrying with
 * exponential backoff and dead-lettering after the last attempt.
 *
 * Durability: nothing is sent before it is queued, and a restart resumes from
 * the outbox and the cursor. Each entry's id is its idempotency key
 * (`Message-ID` of the mail, `Idempotency-Key` of the webhook) so a receiver
 * can drop the one duplicate a crash between "accepted" and "marked sent"
 * could cause. Storms fold: past `maxPerHour` notifications to a recipient in
 * one clock hour, the rest of that hour goes out as one digest at its end.
 * Every delivery, retry and dead letter is in the audit log.
 */
import { createHmac } from 'node:crypto';
import type { Transporter } from 'nodemailer';
import type { Clock } from '../core/clock.js';
import { describeError, isKisekiError, KisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { HotStore, NotifyFeedEvent, NotifyRecipient, OutboxEntry } from '../storage/index.js';
import { renderMail, webhookBody } from './messages.js';
import { formatFor } from './siem/formats.js';
import { siemEventOf } from './siem/siem-event.js';
import { isSyslogAddress, sendSiemLines } from './siem/transport.js';

const HOUR_MS = 3600_000;

/** Retry schedule of failed deliveries. */
export interface RetryPolicy {
  /** Attempts before an entry is dead-lettered (default 6). */
  maxAttempts: number;
  /** Delay after the first failure, ms; doubles each time (default 30 000). */
  baseDelayMs: number;
  /** Longest delay between attempts, ms (default 1 800 000). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 30_000, maxDelayMs: 1_800_000 };

/** What the notifier needs to send a mail (a nodemailer transport, made by createSmtpTransport). */
export interface MailPort {
  transport: Transporter;
  /** The From address. */
  from: string;
}

export interface NotifierOptions {
  store: HotStore;
  clock: Clock;
  logger: Logger;
  mail?: MailPort;
  /** Webhook HTTP client; default the global fetch. */
  fetch?: typeof fetch;
  /** Base URL of the console, for links in mails (e.g. https://kiseki.example.jp). */
  consoleUrl: string;
  /** Renders an alert's quick report as PDF for the mail attachment; absent: no attachment. */
  renderAlertPdf?: (alertId: string) => Promise<Buffer | undefined>;
  retry?: Partial<RetryPolicy>;
  /** Webhook request timeout, ms (default 10 000). */
  webhookTimeoutMs?: number;
  /** Feed events read per pump (default 500). */
  batchSize?: number;
  /**
   * Longest wait for the quick-report PDF, ms (default 20 000): past it (or
   * when rendering fails) the mail goes without the attachment, with the
   * console link, so a slow Chromium never holds up the notification.
   */
  pdfTimeoutMs?: number;
  /** Deliveries in flight at once (default 4). */
  concurrency?: number;
  /**
   * SIEM forwarding (notify/siem/): destinations every tenant's events go to
   * (the operator's, from config), the HOSTNAME of syslog headers, and the
   * sender (tests replace it). Tenants' own SIEM destinations are recipients
   * with channel `siem` in their settings.
   */
  siem?: { globalRecipients?: readonly NotifyRecipient[]; hostname?: string; send?: typeof sendSiemLines };
}

export interface DeliveryCounts {
  sent: number;
  retried: number;
  dead: number;
}

export interface Notifier {
  /** Queues the feed events after the cursor; returns how many outbox entries were created or extended. */
  pump(): Promise<number>;
  /** Delivers the entries due now. */
  deliverDue(): Promise<DeliveryCounts>;
  /** pump() then deliverDue(); what the timer runs. */
  tick(): Promise<DeliveryCounts>;
  /** Runs tick() every `intervalMs` until stop(). */
  start(intervalMs: number): void;
  /** Stops the timer and waits for a running tick. */
  stop(): Promise<void>;
}

/** True when `r` wants `e`. Only reported alerts notify (suppressed and tuning ones stay quiet). */
export function recipientWants(r: NotifyRecipient, e: NotifyFeedEvent): boolean {
  if (!r.events.includes(e.kind)) return false;
  if (e.kind === 'alert.new' && e.state !== undefined && e.state !== 'reported') return false;
  if ((e.kind === 'alert.new' || e.kind === 'alert.verdict') && e.verdict !== undefined && !r.verdicts.includes(e.verdict)) return false;
  return true;
}

/** HMAC-SHA256 hex of `${timestamp}.${body}`: the `X-Kiseki-Signature` value after `sha256=`. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** Creates the notifier; nothing runs until tick() or start(). */
export function createNotifier(options: NotifierOptions): Notifier {
  const { store, clock } = options;
  const log = options.logger.child({ component: 'notify' });
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const doFetch = options.fetch ?? fetch;
  const batchSize = options.batchSize ?? 500;
  const concurrency = options.concurrency ?? 4;
  const pdfTimeoutMs = options.pdfTimeoutMs ?? 20_000;

  /** The PDF, or undefined when it fails or takes longer than pdfTimeoutMs. */
  const attachment = async (render: (alertId: string) => Promise<Buffer | undefined>, alertId: string): Promise<Buffer | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), pdfTimeoutMs);
    });
    try {
      const rendered = render(alertId).catch((err: unknown): undefined => {
        log.warn({ err, alertId }, 'The quick-report PDF failed; the mail goes without it.');
        return undefined;
      });
      return await Promise.race([rendered, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const webhookTimeoutMs = options.webhookTimeoutMs ?? 10_000;
  const globalSiem: readonly NotifyRecipient[] = options.siem?.globalRecipients ?? [];
  const siemHostname = options.siem?.hostname ?? 'kiseki';
  const sendSiem = options.siem?.send ?? sendSiemLines;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();

  const audit = (entry: OutboxEntry, action: string, details: Record<string, unknown>): Promise<boolean> =>
    store.identity.appendAudit({
      at: clock.now(),
      actor: 'system:notify',
      role: 'system',
      supportId: entry.supportId,
      action,
      target: entry.id,
      from: 'kiseki',
      details: { channel: entry.channel, recipient: entry.recipientId, events: entry.events.length, digest: entry.digest, ...details },
    });

  async function pump(): Promise<number> {
    let total = 0;
    for (;;) {
      const cursor = store.notify.cursor();
      const events = store.notify.feedAfter(cursor, batchSize);
      if (events.length === 0) return total;
      const now = clock.now();
      total += await store.transaction(() => {
        let n = 0;
        for (const e of events) {
          const settings = store.notify.settings(e.supportId);
          if (settings === undefined && globalSiem.length === 0) continue;
          for (const r of settings === undefined ? globalSiem : [...settings.recipients, ...globalSiem]) {
            if (!recipientWants(r, e)) continue;
            if (r.channel === 'siem') {
              // A SIEM wants every event as it happens: no hourly limit, no digest.
              store.notify.queueSync({ id: `nt_${e.seq}_${r.id}`, supportId: e.supportId, recipientId: r.id, channel: r.channel, to: r.to, events: [e], digest: false, state: 'pending', attempts: 0, nextAttemptAt: now, createdAt: now });
              n++;
              continue;
            }
            if (settings === undefined) continue;
            const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
            const count = store.notify.bumpRateSync(r.id, hour);
            if (count <= settings.maxPerHour) {
              store.notify.queueSync({
                id: `nt_${e.seq}_${r.id}`,
                supportId: e.supportId,
                recipientId: r.id,
                channel: r.channel,
                to: r.to,
                events: [e],
                digest: false,
                state: 'pending',
                attempts: 0,
                nextAttemptAt: now,
                createdAt: now,
              });
            } else {
              // A storm: the rest of this hour goes out as one digest when the hour ends.
              const open = store.notify.openDigest(r.id, hour);
              if (open !== undefined && open.state === 'pending' && open.attempts === 0) {
                store.notify.queueSync({ ...open, events: [...open.events, e] });
              } else {
                const id = `nd_${r.id}_${hour}_${e.seq}`;
                store.notify.queueSync({
                  id,
                  supportId: e.supportId,
                  recipientId: r.id,
                  channel: r.channel,
                  to: r.to,
                  events: [e],
                  digest: true,
                  state: 'pending',
                  attempts: 0,
                  nextAttemptAt: hour + HOUR_MS,
                  createdAt: now,
                });
                store.notify.setOpenDigestSync(r.id, hour, id);
              }
            }
            n++;
          }
        }
        store.notify.setCursorSync(events.at(-1)!.seq);
        return n;
      });
    }
  }

  async function send(entry: OutboxEntry): Promise<void> {
    const recipient = store.notify.settings(entry.supportId)?.recipients.find((r) => r.id === entry.recipientId) ?? globalSiem.find((r) => r.id === entry.recipientId);
    if (entry.channel === 'siem') {
      if (recipient?.siem === undefined) throw new KisekiError('ERR_SIEM_DELIVERY', { reason: 'the destination is no longer configured' });
      const syslog = isSyslogAddress(entry.to);
      const lines: string[] = [];
      entry.events.forEach((e, i) => {
        const ev = siemEventOf(store, e, `${entry.id}${entry.events.length > 1 ? `_${i}` : ''}`, options.consoleUrl);
        if (ev !== undefined) lines.push(formatFor(ev, recipient.siem!.format, syslog, siemHostname));
      });
      if (lines.length > 0) await sendSiem(entry.to, recipient.siem, lines, { timeoutMs: webhookTimeoutMs, fetch: doFetch });
      return;
    }
    if (entry.channel === 'email') {
      if (options.mail === undefined) throw new KisekiError('ERR_NOTIFY_DELIVERY', { reason: 'no SMTP server is configured' });
      const mail = renderMail(store, entry, options.consoleUrl);
      const alertId = !entry.digest && entry.events[0]?.kind === 'alert.new' ? entry.events[0].alertId : undefined;
      const pdf = alertId !== undefined && options.renderAlertPdf !== undefined ? await attachment(options.renderAlertPdf, alertId) : undefined;
      await options.mail.transport.sendMail({
        from: options.mail.from,
        to: entry.to,
        subject: mail.subject,
        text: mail.text,
        messageId: `<${entry.id}@kiseki>`,
        // The event's server time: receivers (and bench/load/notify-latency.ts) measure the delay from it.
        headers: { 'X-Kiseki-Idempotency-Key': entry.id, 'X-Kiseki-Event-At': String(entry.events[0]?.at ?? entry.createdAt) },
        ...(pdf === undefined ? {} : { attachments: [{ filename: `quick-report-${alertId}.pdf`, content: pdf, contentType: 'application/pdf' }] }),
      });
      return;
    }
    const body = JSON.stringify(webhookBody(store, entry, options.consoleUrl));
    const timestamp = String(clock.now());
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': entry.id, 'x-kiseki-timestamp': timestamp };
    if (recipient?.secret !== undefined) headers['x-kiseki-signature'] = `sha256=${signWebhook(recipient.secret, timestamp, body)}`;
    const res = await doFetch(entry.to, { method: 'POST', headers, body, signal: AbortSignal.timeout(webhookTimeoutMs) });
    await res.body?.cancel();
    if (res.status < 200 || res.status >= 300) throw new KisekiError('ERR_NOTIFY_DELIVERY', { reason: `webhook answered HTTP ${res.status}` });
  }

  async function deliverOne(entry: OutboxEntry, counts: DeliveryCounts): Promise<void> {
    try {
      await send(entry);
      await store.notify.markSent(entry.id, clock.now());
      await audit(entry, 'notify.delivered', { attempt: entry.attempts + 1 });
      counts.sent++;
    } catch (err) {
      // The reason only: messages from SMTP servers and fetch carry no secrets, payloads stay out.
      const reason = (isKisekiError(err) ? describeError(err) : err instanceof Error ? err.message : 'unknown error').slice(0, 300);
      const attempt = entry.attempts + 1;
      if (attempt >= retry.maxAttempts) {
        await store.notify.markDead(entry.id, reason, clock.now());
        await audit(entry, 'notify.dead_lettered', { attempt, error: reason });
        log.warn({ id: entry.id, channel: entry.channel, attempt }, 'A notification failed its last attempt and was dead-lettered.');
        counts.dead++;
      } else {
        const delay = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
        await store.notify.markRetry(entry.id, reason, clock.now() + delay);
        await audit(entry, 'notify.failed', { attempt, error: reason, retryInMs: delay });
        counts.retried++;
      }
    }
  }

  async function deliverDue(): Promise<DeliveryCounts> {
    const counts: DeliveryCounts = { sent: 0, retried: 0, dead: 0 };
    for (;;) {
      const due = store.notify.due(clock.now(), 100);
      if (due.length === 0) break;
      // A few at a time: one slow receiver or PDF does not hold up the rest, and the SMTP pool and Chromium stay bounded.
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < due.length) await deliverOne(due[next++]!, counts);
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker));
    }
    return counts;
  }

  const tick = async (): Promise<DeliveryCounts> => {
    await pump();
    return deliverDue();
  };

  return {
    pump,
    deliverDue,
    tick,
    start(intervalMs) {
      const loop = (): void => {
        running = tick()
          .catch((err: unknown) => log.error({ err }, 'A notification round failed; the next one retries.'))
          .finally(() => {
            if (timer !== undefined) timer = setTimeout(loop, intervalMs);
          });
      };
      timer = setTimeout(loop, 0);
    },
    async stop() {
      const t = timer;
      timer = undefined;
      if (t !== undefined) clearTimeout(t);
      await running;
    },
  };
}
