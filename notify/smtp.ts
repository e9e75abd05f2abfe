/**
 * The SMTP transport: nodemailer with STARTTLS (required unless the server is
 * local and says otherwise) and optional authentication. One pooled
 * transport per process.
 */
import nodemailer, { type Transporter } from 'nodemailer';

export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS. */
  secure: boolean;
  /** Refuse to send when the server does not offer STARTTLS (default true). */
  requireTls: boolean;
  user?: string;
  password?: string;
  /** Accept self-signed certificates (tests, private relays). */
  allowSelfSigned?: boolean;
}

/** Creates a pooled nodemailer transport for `settings`. */
export function createSmtpTransport(settings: SmtpSettings): Transporter {
  return nodemailer.createTransport({
    host: settings.host,
    port: settings.port,
    secure: settings.secure,
    requireTLS: !settings.secure && settings.requireTls,
    ignoreTLS: !settings.secure && !settings.requireTls,
    pool: true,
    maxConnections: 2,
    ...(settings.user === undefined ? {} : { auth: { user: settings.user, pass: settings.password ?? '' } }),
    tls: { rejectUnauthorized: !(settings.allowSelfSigned ?? false) },
  });
}
