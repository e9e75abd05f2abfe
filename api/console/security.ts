/**
 * The console's HTTP-level protections, kept minimal because the API
 * helpers own the service-wide ones: security headers with a strict Content
 * Security Policy on every console response (no inline script or style: all
 * of it is served from /assets), and CSRF protection for every
 * state-changing form: the request's Origin must be this server (on top of
 * the SameSite=Strict session cookie), and a form sent with a session must
 * carry the token derived from that session.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';

/** The policy: only same-origin scripts, styles, images and fetches; no framing, no plugins, forms only to us. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers every console page and asset carries. */
export function setSecurityHeaders(c: Context): void {
  c.header('content-security-policy', CONTENT_SECURITY_POLICY);
  c.header('x-content-type-options', 'nosniff');
  c.header('x-frame-options', 'DENY');
  c.header('referrer-policy', 'same-origin');
  c.header('cross-origin-opener-policy', 'same-origin');
  c.header('permissions-policy', 'camera=(), microphone=(), geolocation=()');
  if (new URL(c.req.url).protocol === 'https:') c.header('strict-transport-security', 'max-age=31536000');
}

/**
 * The CSRF token of a session: an HMAC of a fixed label keyed by the session
 * secret, so it needs no storage, dies with the session, and cannot be made
 * by a page that cannot read the HttpOnly cookie.
 */
export function csrfToken(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('kiseki-console-csrf').digest('base64url');
}

/** True when `given` is the session's CSRF token (constant-time comparison). */
export function csrfValid(sessionToken: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const want = Buffer.from(csrfToken(sessionToken));
  const got = Buffer.from(given);
  return want.length === got.length && timingSafeEqual(want, got);
}

/**
 * True when a state-changing request comes from this origin: the Origin
 * header (sent by browsers on every POST) must name this host; without it,
 * Sec-Fetch-Site must say same-origin. Neither present: refused.
 */
export function sameOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  const host = c.req.header('host');
  if (origin !== undefined && origin !== 'null') {
    try {
      return host !== undefined && new URL(origin).host === host;
    } catch {
      return false;
    }
  }
  return c.req.header('sec-fetch-site') === 'same-origin';
}
