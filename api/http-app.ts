/**
 * The HTTP side of the service (Hono): health and Prometheus metrics now, the
 * /api/v1 routes as they land. Built as a plain Hono app so tests drive it
 * with app.request() and the server wraps it with @hono/node-server.
 */
import { Hono } from 'hono';
import type { Metrics } from '../core/metrics.js';

export interface HealthSource {
  /** Returns problems that make the service unhealthy; empty when healthy. */
  problems(): string[];
  details(): Record<string, unknown>;
}

export interface HttpAppOptions {
  metrics: Metrics;
  health: HealthSource;
}

export function createHttpApp(options: HttpAppOptions): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => {
    const problems = options.health.problems();
    return c.json({ status: problems.length === 0 ? 'ok' : 'unhealthy', problems, ...options.health.details() }, problems.length === 0 ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const body = await options.metrics.registry.metrics();
    return c.body(body, 200, { 'content-type': options.metrics.registry.contentType });
  });
  app.notFound((c) =>
    c.json({ type: 'about:blank', title: 'Not Found', status: 404, code: 'not_found' }, 404, { 'content-type': 'application/problem+json' }),
  );
  return app;
}
