import { beforeEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../core/clock.js';
import type { AlertRecord } from '../core/contracts.js';
import { createSilentLogger } from '../core/logger.js';
import type { HotStore, NotifySettings } from '../storage/index.js';
import { createNotifier, recipientWants, signWebhook, type Notifier } from './notifier.js';
import { createSmtpTransport } from './smtp.js';
import { startTestReceiver, startTestSmtp, testAlert } from './test-support.js';
import { useTempStore } from '../test/support/temp-store.js';

const T0 = Date.UTC(2026, 9, 5, 1, 0, 0);

describe('notifier', () => {
  let store: HotStore;
  const temp = useTempStore('kiseki-notify-', (s) => (store = s));
  const clock = createManualClock(T0);
  beforeEach(() => {
    clock.set(T0);
  });

  async function add(s: HotStore, ...alerts: AlertRecord[]): Promise<void> {
    await s.transaction(() => {
      for (const a of alerts) {
        s.alerts.saveSync(a);
        s.alerts.indexSync(a);
      }
    });
  }
  const settings = (recipients: NotifySettings['recipients'], maxPerHour = 100): NotifySettings => ({ supportId: 'TA', recipients, maxPerHour, updatedAt: T0, updatedBy: 'op' });

  it('mails through a real SMTP server over STARTTLS with auth, with the PDF attached, and survives a restart without duplicates or losses', async () => {
    const smtp = await startTestSmtp();
    const transport = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, requireTls: true, user: 'kiseki', password: 'secret', allowSelfSigned: true });
    const make = (s: HotStore): Notifier =>
      createNotifier({
        store: s, clock, logger: createSilentLogger(), mail: { transport, from: 'kiseki@example.jp' }, consoleUrl: 'https://console.example.jp',
        renderAlertPdf: async (id) => Buffer.from(`%PDF-1.4 fake report of ${id}`),
      });
    try {
      await store.notify.putSettings(settings([{ id: 'r1', channel: 'email', to: 'soc@customer.jp', events: ['alert.new', 'alert.verdict'], verdicts: ['black', 'gray'] }]));
      // A white alert and another tenant's alert are not for this recipient.
      await add(store, testAlert('al_1', 'TA', T0), testAlert('al_w', 'TA', T0 + 1, 'white'), testAlert('al_x', 'TB', T0 + 2));
      const first = make(store);
      expect(await first.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      expect(smtp.mails).toHaveLength(1);
      const mail = smtp.mails[0]!;
      expect(mail).toMatchObject({ messageId: '<nt_1_r1@kiseki>', to: ['soc@customer.jp'], secured: true, user: 'kiseki' });
      expect(mail.raw).toContain('quick-report-al_1.pdf');
      expect(mail.raw).toContain('application/pdf');
      expect(mail.raw).toContain('https://console.example.jp/alerts/al_1');

      // Two more alerts are queued, then the process "stops" before sending them.
      await add(store, testAlert('al_2', 'TA', T0 + 10), testAlert('al_3', 'TA', T0 + 11, 'gray'));
      expect(await first.pump()).toBe(2);
      await first.stop();
      await temp.reopen();
      const second = make(store);
      // Nothing new in the feed: the restart resumes from the outbox only. Consumed feed entries are gone but the last.
      expect(await second.pump()).toBe(0);
      expect(store.notify.feedAfter(0, 100).map((e) => e.seq)).toEqual([5]);
      expect(await second.tick()).toEqual({ sent: 2, retried: 0, dead: 0 });
      expect(await second.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      const ids = smtp.mails.map((m) => m.messageId).sort();
      expect(ids).toEqual(['<nt_1_r1@kiseki>', '<nt_4_r1@kiseki>', '<nt_5_r1@kiseki>']);
      expect([...store.identity.scanAudit()].filter((a) => a.action === 'notify.delivered').map((a) => a.target).sort()).toEqual(['nt_1_r1', 'nt_4_r1', 'nt_5_r1']);

      // An analyst's change is a verdict notification with who and from.
      await store.alerts.setVerdict({ alertId: 'al_3', at: T0 + 20, by: 'op.sato', verdict: 'black' });
      expect(await second.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      expect(smtp.mails.at(-1)).toMatchObject({ messageId: '<nt_6_r1@kiseki>' });
      expect(smtp.mails.at(-1)!.raw).toContain('al_3');
    } finally {
      transport.close();
      await smtp.close();
    }
  });

  it('signs webhooks and retries a failing receiver with doubling backoff until it answers', async () => {
    let answer = 500;
    const hook = await startTestReceiver(() => answer);
    try {
      await store.notify.putSettings(settings([{ id: 'h1', channel: 'webhook', to: hook.url, secret: 's3cret', events: ['alert.new'], verdicts: ['black'] }]));
      await add(store, testAlert('al_1', 'TA', T0), testAlert('al_2', 'TA', T0 + 1));
      const n = createNotifier({ store, clock, logger: createSilentLogger(), consoleUrl: 'https://c', retry: { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000 } });
      expect(await n.tick()).toEqual({ sent: 0, retried: 2, dead: 0 });
      // Not due yet: nothing is attempted before the backoff ends.
      clock.advance(999);
      expect(await n.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      clock.advance(1);
      expect(await n.tick()).toEqual({ sent: 0, retried: 2, dead: 0 });
      // The second delay doubles.
      clock.advance(1999);
      expect(await n.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      answer = 200;
      const delivered = store.notify.get('nt_1_h1')!;
      expect(delivered).toMatchObject({ state: 'pending', attempts: 2, lastError: 'webhook answered HTTP 500' });
      clock.advance(1);
      expect(await n.tick()).toEqual({ sent: 2, retried: 0, dead: 0 });

      expect(hook.hooks).toHaveLength(6);
      const last = hook.hooks.find((h, i) => i >= 4 && h.headers['idempotency-key'] === 'nt_1_h1')!;
      const ts = String(last.headers['x-kiseki-timestamp']);
      expect(last.headers['x-kiseki-signature']).toBe(`sha256=${signWebhook('s3cret', ts, last.body)}`);
      expect(last.headers['idempotency-key']).toBe('nt_1_h1');
      expect(JSON.parse(last.body)).toMatchObject({ id: 'nt_1_h1', supportId: 'TA', events: [{ kind: 'alert.new', alertId: 'al_1', verdict: 'black' }] });
      expect(store.notify.get('nt_1_h1')).toMatchObject({ state: 'sent', attempts: 3 });
      expect(store.notify.get('nt_2_h1')).toMatchObject({ state: 'sent' });
    } finally {
      await hook.close();
    }
  });

  it('sends the mail without the PDF when rendering fails or is too slow', async () => {
    const smtp = await startTestSmtp();
    const transport = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, requireTls: true, user: 'kiseki', password: 'secret', allowSelfSigned: true });
    try {
      await store.notify.putSettings(settings([{ id: 'r1', channel: 'email', to: 'soc@customer.jp', events: ['alert.new'], verdicts: ['black'] }]));
      await add(store, testAlert('al_1', 'TA', T0), testAlert('al_2', 'TA', T0 + 1));
      const n = createNotifier({
        store, clock, logger: createSilentLogger(), mail: { transport, from: 'kiseki@example.jp' }, consoleUrl: 'https://c', pdfTimeoutMs: 50,
        renderAlertPdf: (id) => (id === 'al_1' ? Promise.reject(new Error('chromium crashed')) : new Promise<Buffer>(() => undefined)),
      });
      expect(await n.tick()).toEqual({ sent: 2, retried: 0, dead: 0 });
      expect(smtp.mails).toHaveLength(2);
      for (const m of smtp.mails) {
        expect(m.raw).not.toContain('application/pdf');
        expect(m.raw).toContain('https://c/alerts/al_');
      }
    } finally {
      transport.close();
      await smtp.close();
    }
  });

  /** A mail part decoded from quoted-printable (nodemailer's encoding of UTF-8 text and HTML). */
  const decodeQp = (raw: string): string =>
    Buffer.from(
      raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');

  it('mails an incident report once, with its PDF, an HTML part and the console link, and not again after a restart or a regeneration', async () => {
    const smtp = await startTestSmtp();
    const transport = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, requireTls: true, user: 'kiseki', password: 'secret', allowSelfSigned: true });
    const make = (s: HotStore): Notifier => createNotifier({ store: s, clock, logger: createSilentLogger(), mail: { transport, from: 'kiseki@example.jp' }, consoleUrl: 'https://console.example.jp' });
    const report = (createdAt: number, pdf: string) =>
      store.periodicReports.put(
        { id: 'rp_TA_incident_al_1', supportId: 'TA', kind: 'incident', periodStart: T0, periodEnd: T0 + 1, label: 'al_1', createdAt, expiresAt: T0 + 400 * 86_400_000, htmlBytes: 4, pdfBytes: pdf.length, figures: { alertIds: ['al_1'], verdict: 'black' } },
        Buffer.from('<p/>'),
        Buffer.from(pdf),
      );
    try {
      await store.notify.putSettings(settings([{ id: 'r1', channel: 'email', to: 'soc@customer.jp', events: ['report.incident'], verdicts: ['black'] }]));
      await add(store, testAlert('al_1', 'TA', T0));
      await report(T0 + 5, '%PDF-1.4 first');
      const first = make(store);
      expect(await first.pump()).toBe(1);
      // Regenerated before the mail went (an analyst commented): no second notification, the mail carries the newest PDF.
      await report(T0 + 6, '%PDF-1.4 second version');
      expect(await first.pump()).toBe(0);
      await first.stop();
      await temp.reopen();
      const second = make(store);
      expect(await second.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      await report(T0 + 7, '%PDF-1.4 third version');
      expect(await second.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(smtp.mails).toHaveLength(1);
      const raw = smtp.mails[0]!.raw;
      expect(raw).toMatch(/^X-Kiseki-Event: report\.incident$/im);
      expect(raw).toContain('incident-report-al_1.pdf');
      expect(raw).toContain(Buffer.from('%PDF-1.4 second version').toString('base64'));
      expect(raw).toMatch(/Content-Type: text\/plain/i);
      expect(raw).toMatch(/Content-Type: text\/html/i);
      const decoded = decodeQp(raw);
      expect(decoded).toContain('インシデントレポートを PDF で添付しています。');
      expect(decoded).toContain('<a href="https://console.example.jp/reports/rp_TA_incident_al_1">');
      expect([...store.identity.scanAudit()].filter((a) => a.action === 'notify.delivered').map((a) => a.target)).toEqual(['nt_2_r1']);
    } finally {
      transport.close();
      await smtp.close();
    }
  });

  it('puts the quick-report mail in plain text and HTML, renders its PDF once for all recipients, and does not hold other mails behind a slow PDF', async () => {
    const smtp = await startTestSmtp();
    const transport = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, requireTls: true, user: 'kiseki', password: 'secret', allowSelfSigned: true });
    const renders: string[] = [];
    let releaseSlow: (pdf: Buffer) => void = () => undefined;
    try {
      await store.notify.putSettings(
        settings([
          { id: 'r1', channel: 'email', to: 'soc@customer.jp', events: ['alert.new'], verdicts: ['black'] },
          { id: 'r2', channel: 'email', to: 'cio@customer.jp', events: ['alert.new'], verdicts: ['black'] },
        ]),
      );
      await add(store, testAlert('al_slow', 'TA', T0), testAlert('al_fast', 'TA', T0 + 1));
      const n = createNotifier({
        store, clock, logger: createSilentLogger(), mail: { transport, from: 'kiseki@example.jp' }, consoleUrl: 'https://c', pdfTimeoutMs: 600_000,
        renderAlertPdf: (id) => {
          renders.push(id);
          return id === 'al_slow' ? new Promise<Buffer>((resolve) => (releaseSlow = resolve)) : Promise.resolve(Buffer.from(`%PDF-1.4 ${id}`));
        },
      });
      const round = n.tick();
      // Both mails of the fast alert arrive while the slow alert's PDF is still being made (bounded wait, no timing assumption).
      for (let i = 0; i < 600 && smtp.mails.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(smtp.mails.map((m) => m.messageId).sort()).toEqual(['<nt_2_r1@kiseki>', '<nt_2_r2@kiseki>']);
      releaseSlow(Buffer.from('%PDF-1.4 al_slow'));
      expect(await round).toEqual({ sent: 4, retried: 0, dead: 0 });
      // One render per alert, started when the mails were queued, shared by both recipients.
      expect(renders.sort()).toEqual(['al_fast', 'al_slow']);
      for (const m of smtp.mails) {
        expect(m.raw).toMatch(/Content-Type: text\/html/i);
        expect(m.raw).toContain('application/pdf');
        expect(m.raw).toMatch(/^X-Kiseki-Event: alert\.new$/im);
      }
      const slow = smtp.mails.find((m) => m.messageId === '<nt_1_r1@kiseki>')!;
      expect(slow.raw).toMatch(/^X-Kiseki-Alert-Id: al_slow$/im);
      expect(decodeQp(slow.raw)).toContain('<a href="https://c/alerts/al_slow">');
    } finally {
      releaseSlow(Buffer.from(''));
      transport.close();
      await smtp.close();
    }
  });

  it('stops waiting for PDFs while Chromium is behind, and waits again once one is in time', async () => {
    const smtp = await startTestSmtp();
    const transport = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, requireTls: true, user: 'kiseki', password: 'secret', allowSelfSigned: true });
    let release: (pdf: Buffer) => void = () => undefined;
    try {
      await store.notify.putSettings(settings([{ id: 'r1', channel: 'email', to: 'soc@customer.jp', events: ['alert.new'], verdicts: ['black'] }]));
      const n = createNotifier({
        store, clock, logger: createSilentLogger(), mail: { transport, from: 'kiseki@example.jp' }, consoleUrl: 'https://c', pdfTimeoutMs: 600_000,
        renderAlertPdf: (id) =>
          id === 'al_ok' ? Promise.resolve(Buffer.from('%PDF-1.4 ok'))
          : id === 'al_late' ? new Promise<Buffer>((resolve) => (release = resolve))
          : id === 'al_stuck' ? new Promise<Buffer>(() => undefined)
          : Promise.reject(new Error('chromium is behind')),
      });
      // Five failures in a row: the stuck one's mail goes at once instead of waiting 10 minutes.
      await add(store, ...[1, 2, 3, 4, 5].map((i) => testAlert(`al_f${i}`, 'TA', T0 + i)), testAlert('al_stuck', 'TA', T0 + 6));
      expect(await n.tick()).toEqual({ sent: 6, retried: 0, dead: 0 });
      expect(smtp.mails.every((m) => !m.raw.includes('application/pdf'))).toBe(true);
      // A PDF in time: mails carry it, and wait for the next one again.
      await add(store, testAlert('al_ok', 'TA', T0 + 7));
      expect(await n.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      expect(smtp.mails.at(-1)!.raw).toContain('application/pdf');
      await add(store, testAlert('al_late', 'TA', T0 + 8));
      const round = n.tick();
      for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 50));
      expect(smtp.mails).toHaveLength(7);
      release(Buffer.from('%PDF-1.4 late'));
      expect(await round).toEqual({ sent: 1, retried: 0, dead: 0 });
      expect(smtp.mails.at(-1)!.raw).toContain('quick-report-al_late.pdf');
    } finally {
      release(Buffer.from(''));
      transport.close();
      await smtp.close();
    }
  });

  it('sends the mail of an alert older than the PDF wait at once, without rendering its PDF', async () => {
    const smtp = await startTestSmtp();
    const transport = createSmtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, requireTls: true, user: 'kiseki', password: 'secret', allowSelfSigned: true });
    const renders: string[] = [];
    try {
      await store.notify.putSettings(settings([{ id: 'r1', channel: 'email', to: 'soc@customer.jp', events: ['alert.new'], verdicts: ['black'] }]));
      // A render that never ends: only the alert's age can let the mail go.
      const n = createNotifier({
        store, clock, logger: createSilentLogger(), mail: { transport, from: 'kiseki@example.jp' }, consoleUrl: 'https://c', pdfTimeoutMs: 600_000,
        renderAlertPdf: (id) => {
          renders.push(id);
          return new Promise<Buffer>(() => undefined);
        },
      });
      // Stored by its shard just after the wait ran out (a backlog): it is read and sent at once.
      await add(store, testAlert('al_late', 'TA', T0));
      clock.set(T0 + 600_000);
      expect(await n.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      expect(renders).toEqual([]);
      expect(smtp.mails[0]!.raw).not.toContain('application/pdf');
      expect(decodeQp(smtp.mails[0]!.raw)).toContain('https://c/alerts/al_late');
    } finally {
      transport.close();
      await smtp.close();
    }
  });

  it('reads the feed at once when woken, folds wakes during a read into one more read, and reads nothing once stopped', async () => {
    const hook = await startTestReceiver();
    // An hour between timed reads: within the test only start() and wake() read the feed.
    const n = createNotifier({ store, clock, logger: createSilentLogger(), consoleUrl: 'https://c' });
    try {
      await store.notify.putSettings(settings([{ id: 'h1', channel: 'webhook', to: hook.url, events: ['alert.new'], verdicts: ['black'] }]));
      expect(await n.wake()).toBeUndefined();
      await add(store, testAlert('al_0', 'TA', T0));
      // Not started: a wake reads nothing.
      expect(store.notify.get('nt_1_h1')).toBeUndefined();
      n.start(3_600_000);
      await n.wake();
      expect(store.notify.get('nt_1_h1')).toMatchObject({ recipientId: 'h1', supportId: 'TA' });
      await add(store, testAlert('al_1', 'TA', T0 + 1));
      expect(store.notify.get('nt_2_h1')).toBeUndefined();
      await n.wake();
      expect(store.notify.get('nt_2_h1')).toMatchObject({ recipientId: 'h1', events: [expect.objectContaining({ alertId: 'al_1' })] });
      // Wakes during a read share the one read that follows it.
      const first = n.wake();
      const second = n.wake();
      const third = n.wake();
      expect(second).toBe(third);
      expect(second).not.toBe(first);
      await add(store, testAlert('al_2', 'TA', T0 + 2));
      await Promise.all([first, second]);
      await n.wake();
      expect(store.notify.get('nt_3_h1')).toBeDefined();
      await n.stop();
      const delivered = hook.hooks.length;
      await add(store, testAlert('al_3', 'TA', T0 + 3));
      await n.wake();
      expect(store.notify.get('nt_4_h1')).toBeUndefined();
      expect(store.notify.cursor()).toBe(3);
      // What was queued before the stop was delivered (stop waits for the deliveries it started) or is still pending.
      expect(delivered + store.notify.due(clock.now(), 10).length).toBe(3);
    } finally {
      await n.stop();
      await hook.close();
    }
  });

  it('dead-letters after the last attempt and lists it', async () => {
    const hook = await startTestReceiver(() => 500);
    try {
      await store.notify.putSettings(settings([{ id: 'h1', channel: 'webhook', to: hook.url, events: ['alert.new'], verdicts: ['black'] }]));
      await add(store, testAlert('al_1', 'TA', T0));
      const n = createNotifier({ store, clock, logger: createSilentLogger(), consoleUrl: 'https://c', retry: { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000 } });
      expect(await n.tick()).toMatchObject({ retried: 1 });
      clock.advance(1000);
      expect(await n.tick()).toMatchObject({ retried: 1 });
      clock.advance(2000);
      expect(await n.tick()).toEqual({ sent: 0, retried: 0, dead: 1 });
      clock.advance(3_600_000);
      expect(await n.tick()).toEqual({ sent: 0, retried: 0, dead: 0 });
      expect(hook.hooks).toHaveLength(3);
      expect(store.notify.deadLetters('TA').map((e) => [e.id, e.state, e.attempts])).toEqual([['nt_1_h1', 'dead', 3]]);
      const actions = [...store.identity.scanAudit()].map((a) => a.action).reverse();
      expect(actions).toEqual(['notify.failed', 'notify.failed', 'notify.dead_lettered']);
    } finally {
      await hook.close();
    }
  });

  it('folds a storm into one digest at the end of the hour', async () => {
    const hook = await startTestReceiver();
    try {
      await store.notify.putSettings(settings([{ id: 'h1', channel: 'webhook', to: hook.url, events: ['alert.new'], verdicts: ['black', 'gray', 'white'] }], 2));
      await add(store, ...[1, 2, 3, 4, 5].map((i) => testAlert(`al_${i}`, 'TA', T0 + i)));
      const n = createNotifier({ store, clock, logger: createSilentLogger(), consoleUrl: 'https://c' });
      expect(await n.tick()).toEqual({ sent: 2, retried: 0, dead: 0 });
      clock.set(Math.floor(T0 / 3_600_000) * 3_600_000 + 3_600_000);
      expect(await n.tick()).toEqual({ sent: 1, retried: 0, dead: 0 });
      const digest = JSON.parse(hook.hooks[2]!.body) as { digest: boolean; events: { alertId: string }[] };
      expect(digest.digest).toBe(true);
      expect(digest.events.map((e) => e.alertId)).toEqual(['al_3', 'al_4', 'al_5']);
    } finally {
      await hook.close();
    }
  });

  it.each([
    ['new black alert, wants black', { kind: 'alert.new', verdict: 'black', state: 'reported' }, true],
    ['new white alert, wants black', { kind: 'alert.new', verdict: 'white', state: 'reported' }, false],
    ['suppressed alert', { kind: 'alert.new', verdict: 'black', state: 'suppressed' }, false],
    ['isolation, not subscribed', { kind: 'device.isolated' }, false],
    ['verdict change to black', { kind: 'alert.verdict', verdict: 'black', from: 'gray' }, true],
  ] as const)('recipientWants: %s', (_name, e, want) => {
    const r = { id: 'r', channel: 'email' as const, to: 'x@y', events: ['alert.new' as const, 'alert.verdict' as const], verdicts: ['black' as const] };
    expect(recipientWants(r, { seq: 1, supportId: 'TA', at: 0, ...e })).toBe(want);
  });
});
