/** Public surface of api/: the Hono app and its HTTP server. */
export { createHttpApp } from './http-app.js';
export type { HealthSource, HttpAppOptions } from './http-app.js';
export { createHealthCheck, freeDiskBytes } from './health.js';
export type { ExportFailure, HealthCheck, HealthProbes, HealthProblem } from './health.js';
export { startHttpServer } from './http-server.js';
export type { HttpServer, HttpServerOptions } from './http-server.js';
export { ROUTES } from './routes/index.js';
export { openApiDocument, mountRoutes, problemFrom, SESSION_COOKIE } from './route-kit.js';
export type { ApiDeps, Route, RouteSpec, TenantSettingsSharing, TenantSharing } from './route-kit.js';
export { createReportTemplates } from './console/index.js';
