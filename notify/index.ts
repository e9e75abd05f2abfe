/**
 * Public surface of notify/: the durable notifier (feed → outbox → mail and
 * webhooks), its SMTP transport, and the gray → white business-day rule.
 */
export { createNotifier, recipientWants, signWebhook, DEFAULT_RETRY } from './notifier.js';
export type { Notifier, NotifierOptions, MailPort, RetryPolicy, DeliveryCounts } from './notifier.js';
export { createSmtpTransport } from './smtp.js';
export type { SmtpSettings } from './smtp.js';
export { renderMail, webhookBody } from './messages.js';
export type { WebhookBody } from './messages.js';
export { applyGrayTimeouts, GRAY_TIMEOUT_ACTOR } from './gray-timeout.js';
export type { GrayTimeoutOptions } from './gray-timeout.js';
export { startNotifications } from './runtime.js';
export type { NotificationsRuntime } from './runtime.js';
