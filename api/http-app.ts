/**
 * The HTTP side of the service (Hono): health and Prometheus metrics, and the
 * /api/v1 routes with their OpenAPI document, and the web console's pages
 * under `/` (api/console). Built as a plain Hono app so
 * tests drive it with app.request() and the server wraps it with
 * @hono/node-server.
 */
import { Hono } from 'hono';
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
}

export function createHttpApp(options: HttpAppOptions): Hono {
  const app = new Hono();
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
