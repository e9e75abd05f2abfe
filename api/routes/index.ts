/**
 * The /api/v1 routes (SPEC §7, §8), one file per resource. Every handler is
 * scoped by tenant: an admin or viewer sees only their tenant, and any other
 * tenant's resource answers 404 exactly like one that does not exist. Every
 * state change writes an audit record (who, what, when, from where). The
 * order here is the order of the OpenAPI document.
 */
import type { Route } from '../route-kit.js';
import { ALERT_ROUTES } from './alerts.js';
import { DETECTION_ROUTES } from './detections.js';
import { SIGMA_HUNT_ROUTES } from './sigma-hunts.js';
import { INTEL_ALERT_ROUTES } from './intel-alerts.js';
import { AUDIT_ROUTES } from './audit.js';
import { AUTH_ROUTES } from './auth.js';
import { COMMAND_ROUTES } from './commands.js';
import { DEVICE_ROUTES } from './devices.js';
import { EXCEPTION_ROUTES } from './exceptions.js';
import { NETLOG_ROUTES } from './netlogs.js';
import { FLEET_ROUTES } from './fleet.js';
import { NOTIFICATION_ROUTES } from './notifications.js';
import { REPORT_ROUTES } from './reports.js';
import { TENANT_ROUTES } from './tenants.js';
import { USER_ROUTES } from './users.js';
import { LIVENESS_ROUTES } from './liveness.js';
import { ANALYTICS_ROUTES } from './analytics.js';

export const ROUTES: Route[] = [...AUTH_ROUTES, ...USER_ROUTES, ...TENANT_ROUTES, ...DEVICE_ROUTES, ...COMMAND_ROUTES, ...ALERT_ROUTES, ...DETECTION_ROUTES, ...SIGMA_HUNT_ROUTES, ...INTEL_ALERT_ROUTES, ...EXCEPTION_ROUTES, ...AUDIT_ROUTES, ...NOTIFICATION_ROUTES, ...REPORT_ROUTES, ...NETLOG_ROUTES, ...LIVENESS_ROUTES, ...ANALYTICS_ROUTES, ...FLEET_ROUTES];
