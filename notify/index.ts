/**
 * Public surface of notify/: the durable notifier (feed → outbox → mail and
 * webhooks), its SMTP transport, and the gray → white business-day rule.
 */
export { createNotifier, recipientWants, signWebhook, deliveryClaimKey, DEFAULT_RETRY, DEFAULT_PDF_WAIT_MS } from './notifier.js';
export type { Notifier, NotifierOptions, MailPort, RetryPolicy, DeliveryCounts, DeliveryClaims, ClaimAnswer } from './notifier.js';
export { createSmtpTransport } from './smtp.js';
export type { SmtpSettings } from './smtp.js';
export { renderMail, webhookBody } from './messages.js';
export type { WebhookBody } from './messages.js';
export { applyGrayTimeouts, GRAY_TIMEOUT_ACTOR } from './gray-timeout.js';
export type { GrayTimeoutOptions } from './gray-timeout.js';
export { startNotifications } from './runtime.js';
export type { NotificationsRuntime } from './runtime.js';
// alert → mail latency (issue 15): the notifier in its own worker thread.
export { startNotificationsThread } from './notify-thread.js';
export type { NotificationsThread, NotificationsThreadOptions } from './notify-thread.js';
// SIEM forwarding (issue 17, part B): formats, transports, operator-wide destinations.
export { toEcs, toOcsf, toCef, toSyslog, formatFor, flattenKeys, ECS_VERSION, OCSF_VERSION, SD_ID } from './siem/formats.js';
export { siemEventOf } from './siem/siem-event.js';
export type { SiemEvent } from './siem/siem-event.js';
export { sendSiemLines, isSyslogAddress, tenantAllowedAddress } from './siem/transport.js';
export { loadSiemDestinations, siemTargetSchema, SIEM_EVENT_KINDS } from './siem/destinations.js';
