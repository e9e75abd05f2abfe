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

/** Default longest wait of a mail for its quick-report PDF, ms (config `notify.pdfWaitMs`). */
export const DEFAULT_PDF_WAIT_MS = 10_000;

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
  /**
   * Renders an alert's quick report as PDF for the mail attachment; absent: no
   * attachment. `signal` aborts when nobody waits for it any more (a renderer
   * drops a render still queued then).
   */
  renderAlertPdf?: (alertId: string, signal?: AbortSignal) => Promise<Buffer | undefined>;
  retry?: Partial<RetryPolicy>;
  /** Webhook request timeout, ms (default 10 000). */
  webhookTimeoutMs?: number;
  /** Feed events read per pump (default 500). */
  batchSize?: number;
  /**
   * Longest wait for the quick-report PDF, ms (default 10 000, config
   * `notify.pdfWaitMs`), counted from when the alert was queued (the render
   * starts then) and from the alert's creation, whichever ends first: past it
   * (or when rendering fails) the mail goes without the attachment, with the
   * console link, so a slow Chromium never holds up the notification, and an
   * alert stored late is not held up twice.
   */
  pdfTimeoutMs?: number;
  /** Deliveries in flight at once (default 64: most of their time is waiting on a PDF, none queues behind another's wait). */
  concurrency?: number;
  /**
   * SIEM forwarding (notify/siem/): destinations every tenant's events go to
   * (the operator's, from config), the HOSTNAME of syslog headers, and the
   * sender (tests replace it). Tenants' own SIEM destinations are recipients
   * with channel `siem` in their settings.
   */
  siem?: { globalRecipients?: readonly NotifyRecipient[]; hostname?: string; send?: typeof sendSiemLines };
  /** Deliveries shared with other notifiers over the same events (cluster API nodes); absent: this notifier sends all it queues. */
  claims?: DeliveryClaims;
}

/** What `DeliveryClaims.claim` answers. */
export type ClaimAnswer =
  /** This notifier holds the claim: it sends. */
  | { kind: 'mine' }
  /** Another notifier holds it until `until` (ms): ask again then (it is taken over if still unsettled). */
  | { kind: 'held'; until: number }
  /** Another notifier sent or dead-lettered it (`by`: its name). */
  | { kind: 'settled'; state: 'sent' | 'dead'; by: string };

/**
 * Deliveries shared by several notifiers that read the same events (the API
 * nodes of a cluster, cluster/notify-claims.ts): before each attempt the
 * notifier claims every event of the entry for its recipient, and sends only
 * the events it holds. notify/ knows only this port, never the shared store.
 */
export interface DeliveryClaims {
  /**
   * Claims `key` (deliveryClaimKey) for one attempt; 'mine' again for a claim this notifier holds.
   * @throws when the shared record cannot be read or written (the entry then waits, no attempt counted)
   */
  claim(key: string): Promise<ClaimAnswer>;
  /** The outcome of this notifier's attempt: final (sent, dead), or a retry at `retryAt` (ms) the claim is held until. */
  settle(key: string, outcome: { state: 'sent' | 'dead' } | { state: 'retry'; retryAt: number }): Promise<void>;
}

/**
 * The claim key of one event for one recipient: the same on every node
 * that stored the event, so it carries neither the feed seq nor a node's own
 * time. A new alert is notified once per recipient; a verdict change once
 * per verdict it changed to (a gray → white timeout run on two nodes is one
 * change); other events by what they are about and when.
 */
export function deliveryClaimKey(e: NotifyFeedEvent, recipientId: string): string {
  if (e.kind === 'alert.new') return `${e.kind}|${e.alertId ?? ''}|${recipientId}`;
  if (e.kind === 'alert.verdict') return `${e.kind}|${e.alertId ?? ''}|${e.verdict ?? ''}|${recipientId}`;
  return [e.kind, e.alertId, e.tmid, e.reportId, e.detectionId, e.opsAlertId, e.verdict, e.at, recipientId].map((v) => v ?? '').join('|');
}

/**
 * Wait before an entry is claimed again, ms: when the claims could not be asked (the shared store unreachable),
 * and at most this long while another notifier holds a claim (it usually settles within seconds, long before the
 * claim's time ends).
 */
const CLAIM_RECHECK_MS = 5000;

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
  /**
   * Reads the feed every `intervalMs` until stop(), and delivers in the
   * background: a delivery that waits (PDF, slow receiver) never holds up
   * queueing or the deliveries behind it.
   */
  start(intervalMs: number): void;
  /**
   * After start(): reads the feed now instead of at the next interval (a
   * shard just stored an alert). Resolves once a read that began after this
   * call has queued what it found and kicked delivery; calls during a read
   * fold into one more read after it. Before start() or after stop(): resolves
   * at once and reads nothing.
   */
  wake(): Promise<void>;
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
  const concurrency = options.concurrency ?? 64;
  const pdfTimeoutMs = options.pdfTimeoutMs ?? DEFAULT_PDF_WAIT_MS;

  /**
   * Quick-report PDFs by alert: rendered once per alert, started when its
   * mail is queued (so the render overlaps the wait for a delivery slot) and
   * shared by every recipient of that alert. A render that failed or was
   * abandoned stays in the map as "no PDF": rendering again at send time
   * would make the mail wait a second pdfTimeoutMs, and under a backlog
   * every mail would (the measured cause of minutes-long delays). Bounded:
   * the oldest go first (only a restart or a very late retry renders anew).
   */
  const pdfs = new Map<string, { startedAt: number; pdf: Promise<Buffer | undefined> }>();
  const PDF_CACHE_SIZE = 256;
  /**
   * Quick-report PDFs in a row that failed or came later than pdfTimeoutMs.
   * From PDF_MISSES_BEFORE_SKIP on, Chromium is behind (measured on a loaded
   * 2-core machine: not one PDF in time for 163 mails) and mails stop waiting:
   * they take a PDF only if it is ready. Renders go on, and the first one in
   * time makes mails wait again.
   */
  let pdfMisses = 0;
  const PDF_MISSES_BEFORE_SKIP = 5;
  const pdfMissed = (): void => {
    pdfMisses++;
    if (pdfMisses === PDF_MISSES_BEFORE_SKIP) log.warn({ misses: pdfMisses }, 'Quick-report PDFs are not ready in time: mails no longer wait for them until one is.');
  };
  const pdfOf = (alertId: string): { startedAt: number; pdf: Promise<Buffer | undefined> } | undefined => {
    const render = options.renderAlertPdf;
    if (render === undefined) return undefined;
    let cached = pdfs.get(alertId);
    if (cached === undefined) {
      const startedAt = performance.now();
      const pdf = render(alertId, AbortSignal.timeout(pdfTimeoutMs)).then(
        (bytes) => {
          if (performance.now() - startedAt <= pdfTimeoutMs) pdfMisses = 0;
          else pdfMissed();
          return bytes;
        },
        (err: unknown): undefined => {
          pdfMissed();
          log.debug({ err, alertId }, 'The quick-report PDF failed or was abandoned; the mail goes without it.');
          return undefined;
        },
      );
      cached = { startedAt, pdf };
      pdfs.set(alertId, cached);
      if (pdfs.size > PDF_CACHE_SIZE) pdfs.delete(pdfs.keys().next().value!);
    }
    return cached;
  };

  /**
   * The PDF, or undefined when it fails or is not ready pdfTimeoutMs after its render started or after the alert was
   * created, whichever comes first (at once while Chromium is behind).
   */
  const attachment = async (alertId: string, alertAt: number): Promise<Buffer | undefined> => {
    // The wait also counts from the alert itself: one a shard stored late (measured: 94 s under load) is already
    // past its budget, and its mail goes at once, without starting a render nobody will wait for.
    const budget = pdfTimeoutMs - (clock.now() - alertAt);
    const cached = budget > 0 ? pdfOf(alertId) : pdfs.get(alertId);
    if (cached === undefined) return undefined;
    const wait = pdfMisses >= PDF_MISSES_BEFORE_SKIP ? 0 : Math.max(0, Math.min(budget, pdfTimeoutMs - (performance.now() - cached.startedAt)));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), wait);
    });
    try {
      return await Promise.race([cached.pdf, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const webhookTimeoutMs = options.webhookTimeoutMs ?? 10_000;
  const globalSiem: readonly NotifyRecipient[] = options.siem?.globalRecipients ?? [];
  const siemHostname = options.siem?.hostname ?? 'kiseki';
  const sendSiem = options.siem?.send ?? sendSiemLines;
  /** Set between start() and stop(). */
  let started = false;
  let intervalMs = 1000;
  /** The next timed feed read (none while a read runs). */
  let timer: NodeJS.Timeout | undefined;
  /** The feed read running now, and the one wake() queued behind it. */
  let round: Promise<void> | undefined;
  let nextRound: Promise<void> | undefined;
  /** Entries being delivered now (by any deliverDue call): never sent twice at once. */
  const inFlight = new Set<string>();
  /** The background delivery of start(), and whether more became due while it ran. */
  let delivering: Promise<unknown> | undefined;
  let deliverAgain = false;
  /** Set by stop(): workers finish what they hold and take nothing new (the rest resumes from the outbox). */
  let stopping = false;

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
      const mailedAlerts: string[] = [];
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
              if (r.channel === 'email' && e.kind === 'alert.new' && e.alertId !== undefined && now - e.at < pdfTimeoutMs) mailedAlerts.push(e.alertId);
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
      // Committed: the quick-report PDFs start now, while the mails wait for a delivery slot.
      for (const alertId of mailedAlerts) pdfOf(alertId);
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
      const first = entry.digest ? undefined : entry.events[0];
      const alertId = first?.kind === 'alert.new' ? first.alertId : undefined;
      let pdf: { filename: string; content: Buffer } | undefined;
      if (alertId !== undefined) {
        const content = await attachment(alertId, first!.at);
        if (content !== undefined) pdf = { filename: `quick-report-${alertId}.pdf`, content };
      } else if (first?.kind === 'report.incident' && first.reportId !== undefined) {
        // The stored report, as it is now (a later version replaces the first one's bytes).
        const content = store.periodicReports.file(first.reportId, 'pdf');
        if (content === undefined) throw new KisekiError('ERR_NOTIFY_DELIVERY', { reason: `report ${first.reportId} is missing` });
        pdf = { filename: `incident-report-${first.alertId ?? first.reportId}.pdf`, content };
      }
      await options.mail.transport.sendMail({
        from: options.mail.from,
        to: entry.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        messageId: `<${entry.id}@kiseki>`,
        // The event's server time: receivers (and bench/load/notify-latency.ts) measure the delay from it.
        headers: {
          'X-Kiseki-Idempotency-Key': entry.id,
          'X-Kiseki-Event-At': String(entry.events[0]?.at ?? entry.createdAt),
          // When it was queued and handed to SMTP: where a delay came from (feed, PDF wait, or the mail server).
          'X-Kiseki-Queued-At': String(entry.createdAt),
          'X-Kiseki-Sent-At': String(clock.now()),
          // What the mail is about: receivers (and bench/load/notify-latency.ts) match it to the alert by these.
          'X-Kiseki-Event': entry.digest ? 'digest' : (entry.events[0]?.kind ?? 'unknown'),
          ...(entry.digest || entry.events[0]?.alertId === undefined ? {} : { 'X-Kiseki-Alert-Id': entry.events[0].alertId }),
        },
        ...(pdf === undefined ? {} : { attachments: [{ ...pdf, contentType: 'application/pdf' }] }),
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

  /** Set while claims cannot be asked: logged once per outage. */
  let claimsDownSince: number | undefined;

  /**
   * With claims: the events of `entry` this notifier holds, or undefined when
   * it sends nothing now (every event settled by another notifier: the entry
   * ends so here; one held by another: the entry waits until that claim ends,
   * keeping this notifier's claims on the others until then).
   */
  async function claimEvents(claims: DeliveryClaims, entry: OutboxEntry): Promise<{ entry: OutboxEntry; keys: string[] } | undefined> {
    const answers: { event: NotifyFeedEvent; key: string; answer: ClaimAnswer }[] = [];
    try {
      for (const event of entry.events) {
        const key = deliveryClaimKey(event, entry.recipientId);
        answers.push({ event, key, answer: await claims.claim(key) });
      }
      if (claimsDownSince !== undefined) {
        log.warn({ downMs: clock.now() - claimsDownSince }, 'Delivery claims answer again.');
        claimsDownSince = undefined;
      }
    } catch (err) {
      // No claim, no send (another node may be sending it): the entry waits, and no attempt is counted.
      if (claimsDownSince === undefined) {
        claimsDownSince = clock.now();
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'Delivery claims cannot be asked; notifications wait until they can.');
      }
      await store.notify.defer(entry.id, clock.now() + CLAIM_RECHECK_MS);
      return undefined;
    }
    const mine = answers.filter((a) => a.answer.kind === 'mine');
    const heldUntil = answers.reduce((min, a) => (a.answer.kind === 'held' ? Math.min(min, a.answer.until) : min), Infinity);
    if (heldUntil !== Infinity) {
      const retryAt = Math.max(Math.min(heldUntil, clock.now() + CLAIM_RECHECK_MS), clock.now() + 1);
      await settleClaims(mine.map((a) => a.key), { state: 'retry', retryAt });
      await store.notify.defer(entry.id, retryAt);
      return undefined;
    }
    if (mine.length === 0) {
      const settled = answers.map((a) => a.answer).filter((a): a is Extract<ClaimAnswer, { kind: 'settled' }> => a.kind === 'settled');
      const sent = settled.find((a) => a.state === 'sent');
      await store.notify.settleElsewhere(entry.id, { state: sent === undefined ? 'dead' : 'sent', by: (sent ?? settled[0]!).by, at: clock.now() });
      return undefined;
    }
    const keys = mine.map((a) => a.key);
    return { entry: mine.length === entry.events.length ? entry : { ...entry, events: mine.map((a) => a.event) }, keys };
  }

  /** Records this notifier's outcome on its claims; a failure there is logged (the claim then ends by its time). */
  async function settleClaims(keys: readonly string[], outcome: Parameters<DeliveryClaims['settle']>[1]): Promise<void> {
    if (options.claims === undefined) return;
    for (const key of keys) {
      await options.claims.settle(key, outcome).catch((err: unknown) => {
        log.warn({ state: outcome.state, err: err instanceof Error ? err.message : String(err) }, 'A delivery claim could not be settled; it ends when its time runs out.');
      });
    }
  }

  async function deliverOne(queued: OutboxEntry, counts: DeliveryCounts): Promise<void> {
    let entry = queued;
    let keys: readonly string[] = [];
    if (options.claims !== undefined) {
      const held = await claimEvents(options.claims, queued);
      if (held === undefined) return;
      ({ entry, keys } = held);
    }
    try {
      await send(entry);
      // The shared record first: a crash before markSent then finds its own claim settled at restart, not a resend.
      await settleClaims(keys, { state: 'sent' });
      await store.notify.markSent(entry.id, clock.now());
      await audit(entry, 'notify.delivered', { attempt: entry.attempts + 1 });
      counts.sent++;
    } catch (err) {
      // The reason only: messages from SMTP servers and fetch carry no secrets, payloads stay out.
      const reason = (isKisekiError(err) ? describeError(err) : err instanceof Error ? err.message : 'unknown error').slice(0, 300);
      const attempt = entry.attempts + 1;
      if (attempt >= retry.maxAttempts) {
        await store.notify.markDead(entry.id, reason, clock.now());
        await settleClaims(keys, { state: 'dead' });
        await audit(entry, 'notify.dead_lettered', { attempt, error: reason });
        log.warn({ id: entry.id, channel: entry.channel, attempt }, 'A notification failed its last attempt and was dead-lettered.');
        counts.dead++;
      } else {
        const delay = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
        await store.notify.markRetry(entry.id, reason, clock.now() + delay);
        await settleClaims(keys, { state: 'retry', retryAt: clock.now() + delay });
        await audit(entry, 'notify.failed', { attempt, error: reason, retryInMs: delay });
        counts.retried++;
      }
    }
  }

  /** The oldest due entry nobody is delivering, or undefined. */
  const nextDue = (): OutboxEntry | undefined => (stopping ? undefined : store.notify.due(clock.now(), inFlight.size + 1).find((e) => !inFlight.has(e.id)));

  async function deliverDue(): Promise<DeliveryCounts> {
    const counts: DeliveryCounts = { sent: 0, retried: 0, dead: 0 };
    // `concurrency` workers, each taking the next due entry when its last one is done: one slow receiver or
    // PDF holds up only its own slot, and entries queued meanwhile (pump runs beside this) are picked up at once.
    const worker = async (): Promise<void> => {
      for (let entry = nextDue(); entry !== undefined; entry = nextDue()) {
        inFlight.add(entry.id);
        try {
          await deliverOne(entry, counts);
        } finally {
          inFlight.delete(entry.id);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return counts;
  }

  const tick = async (): Promise<DeliveryCounts> => {
    await pump();
    return deliverDue();
  };

  /** Starts the background delivery unless it runs; then it runs once more when it ends. */
  const kick = (): void => {
    if (delivering !== undefined) {
      deliverAgain = true;
      return;
    }
    deliverAgain = false;
    delivering = deliverDue()
      .catch((err: unknown) => log.error({ err }, 'A delivery round failed; the next one retries.'))
      .finally(() => {
        delivering = undefined;
        if (deliverAgain && started) kick();
      });
  };

  /** One feed read, then delivery kicked; the next timed read is scheduled when it ends. */
  const runRound = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const current: Promise<void> = pump()
      .then(kick)
      .catch((err: unknown) => log.error({ err }, 'A notification round failed; the next one retries.'))
      .finally(() => {
        round = undefined;
        if (started) timer = setTimeout(runRound, intervalMs);
      });
    round = current;
    return current;
  };

  return {
    pump,
    deliverDue,
    tick,
    start(every) {
      stopping = false;
      started = true;
      intervalMs = every;
      timer = setTimeout(runRound, 0);
    },
    wake() {
      if (!started) return Promise.resolve();
      if (round === undefined) return runRound();
      // A read is running: it may have passed the new feed entries already, so one more follows it (shared by every wake meanwhile).
      nextRound ??= round.then(() => {
        nextRound = undefined;
        return started ? runRound() : undefined;
      });
      return nextRound;
    },
    async stop() {
      started = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      stopping = true;
      await nextRound;
      await round;
      await delivering;
      stopping = false;
    },
  };
}
