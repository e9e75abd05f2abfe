/**
 * Public surface of the web console: server-rendered pages (Hono JSX) under
 * `/`, behind the same login, sessions and roles as /api/v1, with their
 * static assets under /assets. See docs/CONSOLE.md.
 */
import { Hono } from 'hono';
import type { ApiDeps } from '../route-kit.js';
import { createConsoleAssets, type ConsoleAssets } from './assets.js';
import type { ConsoleDeps } from './kit.js';
import { mountAdminPages } from './pages/admin.js';
import { mountAlertPages } from './pages/alerts.js';
import { mountAuthPages } from './pages/auth.js';
import { mountDashboard } from './pages/dashboard.js';
import { mountDevicePages } from './pages/devices.js';
import { mountExportPages } from './pages/exports.js';
import { mountReportPages } from './pages/reports.js';

export { CATALOGUE, pickLang, LANGS, LANG_COOKIE } from './i18n.js';
export type { Lang, Messages } from './i18n.js';
export { CONTENT_SECURITY_POLICY, csrfToken } from './security.js';
export { createConsoleAssets } from './assets.js';
export type { ConsoleAssets, AssetName } from './assets.js';
export { devicesPage, DevicesPage, parseAllowList } from './pages/devices.js';
export { dashboardData } from './pages/dashboard.js';
export { processNodes, layoutNodes } from './process-graph.js';
export type { Ui } from './layout.js';
export { createReportTemplates, IncidentReportBody, PeriodicReportBody, QuickReportBody, ReportDocument } from './report-document.js';

export interface ConsoleOptions {
  api: ApiDeps;
  /** True when the periodic-reports API is mounted (the reports page links to it). */
  reportsAvailable?: boolean;
  /** Shared assets (tests and benchmarks build several apps); made once per app otherwise. */
  assets?: ConsoleAssets;
}

/** The console as a Hono app, mounted at `/` by createHttpApp. */
export function createConsoleApp(options: ConsoleOptions): Hono {
  const app = new Hono();
  const assets = options.assets ?? createConsoleAssets();
  const deps: ConsoleDeps = { api: options.api, assets, reportsAvailable: options.reportsAvailable ?? false };
  assets.mount(app);
  mountAuthPages(app, deps);
  mountDashboard(app, deps);
  mountDevicePages(app, deps);
  mountAlertPages(app, deps);
  mountExportPages(app, deps);
  mountAdminPages(app, deps);
  mountReportPages(app, deps);
  return app;
}
