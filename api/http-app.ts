/**
 * The HTTP side of the service (Hono): health and Prometheus metrics, and the
 * /api/v1 routes with their OpenAPI document, and the web console's pages
 * under `/` (api/console). Built as a plain Hono app so
 * tests drive it with app.request() and the server wraps it with
 * @hono/node-server.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Metrics } from '../core/metrics.js';
import { mountRoutes, openApiDocument, problemFrom, type ApiDeps } from './route-kit.js';
import { ROUTES } from './routes/index.js';
import { EXPORT_ROUTES } from './routes/exports.js';
import { KisekiError } from '../core/errors.js';
import type { HealthProblem } from './health.js';
import { createConsoleApp } from './console/index.js';

export interface HealthSource {
  /** Problems that make the service degraded; empty when healthy (api/health.ts builds them). */
  problems(): HealthProblem[];
  /** Figures shown alongside the status (connections, positions). */
  details(): Record<string, unknown>;
}

export interface HttpAppOptions {
  metrics: Metrics;
  health: HealthSource;
  /** The API's dependencies; without them only /healthz and /metrics are served. */
  api?: ApiDeps;
  /** Largest request body in bytes (default 1 MiB); larger ones answer 413 ERR_BODY_TOO_LARGE unread. */
  maxBodyBytes?: number;
}

/** The default of HttpAppOptions.maxBodyBytes (config http.maxBodyBytes). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Headers on every response: no sniffing, no framing, no referrer, a CSP
 * that allows nothing unless the response set its own (the API serves JSON
 * and files; the console's pages set their strict page CSP in
 * api/console/security.ts), HSTS over HTTPS, and no caching of API answers
 * (they carry tenant data).
 */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  // A new Response with copied headers: @hono/node-server's lightweight Response (installed globally
  // by serve()) may hand out a detached Headers object, so setting on c.res.headers can be lost.
  const res = c.res;
  const h = new Headers(res.headers);
  h.set('x-content-type-options', 'nosniff');
  h.set('x-frame-options', 'DENY');
  if (!h.has('content-security-policy')) h.set('content-security-policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  h.set('referrer-policy', 'no-referrer');
  h.set('cross-origin-opener-policy', 'same-origin');
  h.set('cross-origin-resource-policy', 'same-origin');
  if (new URL(c.req.url).protocol === 'https:') h.set('strict-transport-security', 'max-age=31536000; includeSubDomains');
  if (c.req.path.startsWith('/api/') || c.req.path === '/healthz' || c.req.path === '/metrics') h.set('cache-control', 'no-store');
  // Cleared first so Hono does not merge the old headers back in.
  c.res = undefined;
  c.res = new Response(res.body, { status: res.status, statusText: res.statusText, headers: h });
};

export function createHttpApp(options: HttpAppOptions): Hono {
  const app = new Hono();
  // Mounted on '*' (not '/api/v1/*') so the route list stays the served operations only.
  app.use('*', securityHeaders);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  app.use(
    '*',
    bodyLimit({ maxSize: maxBodyBytes, onError: (c) => problemFrom(c, new KisekiError('ERR_BODY_TOO_LARGE', { maxBytes: maxBodyBytes })) }),
  );
  app.get('/healthz', (c) => {
    const problems = options.health.problems();
    if (problems.length === 0) return c.json({ status: 'ok', ...options.health.details() }, 200);
    return c.json({ status: 'degraded', problems, ...options.health.details() }, 503);
  });
  app.get('/metrics', async (c) => {
    const body = await options.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': options.metrics.registry.contentType });
  });
  if (options.api !== undefined) {
    const routes = [...ROUTES, ...EXPORT_ROUTES];
    const doc = openApiDocument(routes);
    app.get('/api/v1/openapi.json', (c) => c.json(doc));
    mountRoutes(app, routes, options.api);
    // The console's pages live beside the API under `/` (api/console), with the same sessions and roles.
    app.route('/', createConsoleApp({ api: options.api, reportsAvailable: routes.some((r) => r.path.startsWith('/reports')) }));
  }
  app.notFound((c) => problemFrom(c, new KisekiError('ERR_NOT_FOUND')));
  app.onError((err, c) => problemFrom(c, err));
  return app;
}
