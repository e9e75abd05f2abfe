import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULTS, type Config } from '../core/config.js';
import { createSilentLogger } from '../core/logger.js';
import { openHotStore, type HotStore } from '../storage/index.js';
import { startNotificationsThread } from './notify-thread.js';
import { testAlert } from './test-support.js';

// The thread runs on the system clock, and a mail waits for its PDF only while its alert is recent: alerts of now.
const T0 = Date.now();
const MAP_SIZE = 64 * 1024 * 1024;

/** A plain SMTP server (no STARTTLS, no auth) recording each mail's raw text. */
async function startPlainSmtp(): Promise<{ port: number; mails: string[]; close(): Promise<void> }> {
  const mails: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    logger: false,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push(Buffer.concat(chunks).toString('utf8'));
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.server.address() as AddressInfo).port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Polls (bounded, no timing assumption beyond the bound) until `ok()` holds. */
async function until(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

describe('notifier thread', () => {
  let dir: string;
  let store: HotStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-notify-thread-'));
    store = openHotStore({ dataDir: dir, mapSizeBytes: MAP_SIZE });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function add(id: string, at: number): Promise<void> {
    const a = testAlert(id, 'TA', at);
    await store.transaction(() => {
      store.alerts.saveSync(a);
      store.alerts.indexSync(a);
    });
  }

  it('mails from its own thread with the PDF the main thread renders, reads the feed when woken, and resumes after a restart without duplicates', async () => {
    const smtp = await startPlainSmtp();
    const config: Config['notify'] = {
      ...DEFAULTS.notify,
      smtpHost: '127.0.0.1',
      smtpPort: smtp.port,
      smtpRequireTls: false,
      consoleUrl: 'https://console.example.jp',
      // An hour between timed reads: after the first read at start, only wake() reads the feed.
      intervalMs: 3_600_000,
      grayTimeoutBusinessDays: 0,
    };
    const renders: string[] = [];
    const start = () =>
      startNotificationsThread({
        dataDir: dir, mapSizeBytes: MAP_SIZE, logger: createSilentLogger(), logLevel: 'silent', config,
        renderAlertPdf: async (id) => {
          renders.push(id);
          return Buffer.from(`%PDF-1.4 fake report of ${id}`);
        },
      });
    try {
      await store.notify.putSettings({ supportId: 'TA', recipients: [{ id: 'r1', channel: 'email', to: 'soc@customer.jp', events: ['alert.new'], verdicts: ['black'] }], maxPerHour: 100, updatedAt: T0, updatedBy: 'op' });
      await add('al_1', T0);
      const first = await start();
      // The read at start: the mail carries the PDF rendered on this (the main) thread.
      await until(() => smtp.mails.length === 1, 'the first mail');
      expect(smtp.mails[0]).toMatch(/^X-Kiseki-Alert-Id: al_1\r?$/im);
      expect(smtp.mails[0]).toContain('quick-report-al_1.pdf');
      expect(smtp.mails[0]).toContain(Buffer.from('%PDF-1.4 fake report of al_1').toString('base64'));
      await until(() => store.notify.get('nt_1_r1')?.state === 'sent', 'the first mail marked sent');
      // A new alert: only a wake reads it before the hour is out.
      await add('al_2', T0 + 1);
      first.wake();
      await until(() => smtp.mails.length === 2, 'the mail of the woken read');
      expect(smtp.mails[1]).toMatch(/^X-Kiseki-Alert-Id: al_2\r?$/im);
      await until(() => store.notify.get('nt_2_r1')?.state === 'sent', 'the second mail marked sent');
      await first.stop();

      // Stopped: an alert meanwhile is mailed by the next thread's first read, and nothing earlier again.
      await add('al_3', T0 + 2);
      const second = await start();
      try {
        await until(() => smtp.mails.length >= 3, 'the mail after the restart');
        await until(() => store.notify.get('nt_3_r1')?.state === 'sent', 'the third mail marked sent');
      } finally {
        await second.stop();
      }
      expect(smtp.mails.map((m) => /^X-Kiseki-Alert-Id: (\S+)/im.exec(m)?.[1])).toEqual(['al_1', 'al_2', 'al_3']);
      expect(renders).toEqual(['al_1', 'al_2', 'al_3']);
    } finally {
      await smtp.close();
    }
  }, 120_000);
});
