/** Public surface of api/: the Hono app and its HTTP server. */
export { createHttpApp } from './http-app.js';
export type { HealthSource, HttpAppOptions } from './http-app.js';
export { startHttpServer } from './http-server.js';
export type { HttpServer } from './http-server.js';
