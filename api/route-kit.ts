/**
 * One table of routes drives both the Hono router and the OpenAPI document,
 * so the document cannot drift from what is served. Each route declares its
 * method, path, roles and zod schemas for params, query and body; the kit
 * authenticates, authorizes, validates, and turns every failure into
 * problem+json with a stable code (one place: problemFrom).
 */
import type { Context, Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { ERRORS, isKisekiError, KisekiError, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SigmaRuleSourceOptions } from '../engine/index.js';
import type { ExportConfig, ExportRunner } from '../export/index.js';
import type { ExceptionEntry, SigmaTenantSettings, TenantPolicy } from '../core/contracts.js';
import type { AnalysisRecord, CommandRecord, FleetPolicyChange, FleetPolicyRecord, HotStore, LivenessSettings, NotifySettings, Role, TenantRecord, ThresholdRuleSet, UserRecord } from '../storage/index.js';

export const SESSION_COOKIE = 'kiseki_session';

/**
 * On an API node (cluster/tenant-sync.ts): tenants and their policies written to the bucket every node
 * copies, then to the local store. Each method resolves once NATS acked the write.
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when NATS did not take it (nothing changed then)
 */
export interface TenantSharing {
  /**
   * Claims the support ID in the bucket (refused when any node's tenant holds it) and stores the tenant.
   * @throws KisekiError ERR_TENANT_EXISTS
   */
  create(tenant: TenantRecord): Promise<void>;
  /** @throws KisekiError ERR_TENANT_NOT_FOUND */
  setPolicy(supportId: string, change: Partial<TenantPolicy>, now: number): Promise<TenantPolicy>;
  /** @throws KisekiError ERR_TENANT_NOT_FOUND */
  setFleetPolicy(supportId: string, change: FleetPolicyChange, by: string, now: number): Promise<FleetPolicyRecord>;
}

/**
 * On an API node (cluster/settings-sync.ts): the per-tenant settings other nodes read (the exception list,
 * Sigma settings and threshold rules the shard nodes apply; liveness settings other API nodes show) written to
 * the bucket every node copies, then to the local store. Each method resolves once NATS acked the write.
 * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when NATS did not take it (nothing changed then)
 */
export interface TenantSettingsSharing {
  /** Adds a prepared entry (`store.exceptions.prepare`) to the tenant's exception list. */
  addException(entry: ExceptionEntry): Promise<void>;
  /** Removes an entry; false when neither the bucket nor this node holds it (removed elsewhere already). */
  removeException(supportId: string, id: string, by: string, now: number): Promise<boolean>;
  /** Changes the given fields of the tenant's Sigma settings; resolves with the new settings. */
  setSigmaSettings(supportId: string, change: Partial<Pick<SigmaTenantSettings, 'enabled' | 'disabledRules'>>, now: number): Promise<SigmaTenantSettings>;
  /** Replaces the tenant's threshold rules; resolves with what was stored (`updatedAt` possibly moved forward). */
  setAnalyticsRules(set: ThresholdRuleSet): Promise<ThresholdRuleSet>;
  /** Replaces the tenant's liveness settings; resolves with what was stored (`updatedAt` possibly moved forward). */
  setLivenessSettings(settings: LivenessSettings): Promise<LivenessSettings>;
}

export interface ApiDeps {
  store: HotStore;
  clock: Clock;
  logger: Logger;
  /** Sends a device its pending commands when it is connected (the agent server). */
  deliverCommands: (tmid: string) => void;
  /**
   * On an API node (cluster/api-node.ts): hands a command an operator queued or cancelled to the ingest nodes
   * (the `kiseki-commands` bucket); the request is answered once it resolves.
   * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when the bucket did not take it
   */
  shareCommand?: (command: CommandRecord) => Promise<void>;
  /** On an API node: tenant changes go through the shared bucket (absent: the local store only). */
  sharedTenants?: TenantSharing;
  /**
   * On an API node: hands a tenant's notification settings, saved here, to the other API nodes (the
   * `kiseki-notify-settings` bucket); the request is answered once it resolves.
   * @throws KisekiError ERR_CLUSTER_UNAVAILABLE when the bucket did not take them (they are shared once it does)
   */
  shareNotifySettings?: (settings: NotifySettings) => Promise<void>;
  /** On an API node: exception list, Sigma, threshold-rule and liveness changes go through the shared bucket. */
  sharedSettings?: TenantSettingsSharing;
  /** On an API node: an analyst's verdict or comment, stored here, is handed to the other API nodes (in the background). */
  shareAnalysis?: (record: AnalysisRecord) => void;
  /** Sends a tenant's changed fleet policy to its connected agents (the agent server); absent, they get it at their next welcome. */
  pushFleetPolicy?: (supportId: string) => void;
  /** When true, every authenticated request must come with a verified TLS client certificate. */
  requireClientCert: boolean;
  /** Exports (downloads and log-spot jobs); the routes answer 404 without them. */
  exports?: { dataDir: string; runner: ExportRunner; config: Readonly<ExportConfig> };
  /** The server's Sigma rule set, for hunt jobs (`/sigma/hunts`); default: the shipped pack. */
  sigmaRules?: SigmaRuleSourceOptions;
  /** The server's liveness defaults a tenant's settings override; absent: DEFAULTS.liveness. */
  liveness?: Readonly<Config['liveness']>;
}

export interface RouteContext<P, Q, B> {
  c: Context;
  deps: ApiDeps;
  user: UserRecord;
  params: P;
  query: Q;
  body: B;
  /** The client address as the server sees it. */
  from: string;
  /** The session or bearer token the request was authenticated with (undefined on public routes). */
  token: string | undefined;
  /** Appends an audit record for this user and request. */
  audit(action: string, target: string, supportId: string | null, details?: Record<string, unknown>): Promise<void>;
}

export interface RouteSpec<P, Q, B> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Hono path below /api/v1, e.g. `/devices/:tmid`. */
  path: string;
  summary: string;
  tag: string;
  /** `public` routes skip authentication; the rest need a session or token. */
  auth?: 'public';
  /** Roles allowed; all roles when absent. */
  roles?: Role[];
  /** Allowed while the user still must change the password. */
  beforePasswordChange?: boolean;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Status → description, for the OpenAPI document. */
  responses: Record<number, string>;
  /** Raw (non-JSON) response, e.g. a file download. */
  produces?: string;
  handler: (ctx: RouteContext<P, Q, B>) => Response | Promise<Response>;
}

/** A route with its types erased, as the router and the document see it. */
export type Route = RouteSpec<unknown, unknown, unknown>;

/** Declares a route; the generic parameters come from its zod schemas. */
export function defineRoute<P = Record<string, string>, Q = Record<string, never>, B = undefined>(spec: RouteSpec<P, Q, B>): Route {
  return spec as unknown as Route;
}

/** problem+json for an error; unexpected errors become 500 without internals. */
export function problemFrom(c: Context, err: unknown, log?: Logger): Response {
  let code: ErrorCode = 'ERR_STORAGE';
  let status = 500;
  let detail: string = 'The server failed to handle the request.';
  let extra: Record<string, unknown> = {};
  if (isKisekiError(err)) {
    code = err.code;
    status = err.status;
    detail = err.message;
    if (err.details !== undefined) extra = { details: err.details };
  } else if (err instanceof z.ZodError) {
    code = 'ERR_VALIDATION';
    status = 400;
    detail = ERRORS.ERR_VALIDATION.message;
    extra = { issues: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) };
  } else {
    log?.error({ err }, 'API handler failed.');
  }
  return c.json({ type: `https://kiseki.dev/problems/${code.toLowerCase()}`, title: detail, status, code, instance: c.req.path, ...extra }, status as 400, {
    'content-type': 'application/problem+json',
  });
}

/** The request's token: the bearer header first, else the session cookie (and which it was). */
export function requestToken(c: Context): { token: string; fromCookie: boolean } | undefined {
  const h = c.req.header('authorization');
  if (h !== undefined && /^Bearer\s+/i.test(h)) return { token: h.replace(/^Bearer\s+/i, '').trim(), fromCookie: false };
  const cookie = getCookie(c, SESSION_COOKIE);
  return cookie === undefined ? undefined : { token: cookie, fromCookie: true };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF defence for cookie-authenticated state changes: the browser's
 * `Origin` must name this host; without one, `Sec-Fetch-Site` must not say
 * another site. Bearer tokens are never sent by a browser on its own, so
 * they are not checked. The host is compared, not the scheme, so a proxy
 * terminating TLS in front of the API keeps working.
 */
export function sameOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  const host = c.req.header('host') ?? new URL(c.req.url).host;
  if (origin !== undefined) {
    if (origin === 'null') return false;
    try {
      return new URL(origin).host.toLowerCase() === host.toLowerCase();
    } catch {
      return false;
    }
  }
  const site = c.req.header('sec-fetch-site');
  return site === undefined || site === 'same-origin' || site === 'none';
}

/** True for `application/json` and `application/<x>+json`, with or without parameters. */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

function clientCertVerified(c: Context): boolean {
  const socket = (c.env as { incoming?: { socket?: { authorized?: boolean } } } | undefined)?.incoming?.socket;
  return socket?.authorized === true;
}

/** Registers every route on `app` under `/api/v1`. */
export function mountRoutes(app: Hono, routes: readonly Route[], deps: ApiDeps): void {
  for (const route of routes) {
    app.on(route.method.toUpperCase(), `/api/v1${route.path}`, async (c) => {
      try {
        let user: UserRecord | undefined;
        // The second factor applies to every route, the login included.
        if (deps.requireClientCert && !clientCertVerified(c)) throw new KisekiError('ERR_CLIENT_CERT_REQUIRED');
        const presented = requestToken(c);
        // A browser attaches the cookie to cross-site requests by itself; only the origin tells them apart.
        if (presented?.fromCookie === true && !SAFE_METHODS.has(c.req.method) && !sameOrigin(c)) {
          throw new KisekiError('ERR_ORIGIN_MISMATCH', { origin: c.req.header('origin') ?? null });
        }
        let token: string | undefined;
        if (route.auth !== 'public') {
          token = presented?.token;
          const resolved = token === undefined ? undefined : deps.store.identity.resolveSession(token, deps.clock.now());
          if (resolved === undefined) throw new KisekiError('ERR_UNAUTHENTICATED');
          user = resolved.user;
          if (user.mustChangePassword && route.beforePasswordChange !== true) throw new KisekiError('ERR_PASSWORD_CHANGE_REQUIRED');
          if (route.roles !== undefined && !route.roles.includes(user.role)) throw new KisekiError('ERR_FORBIDDEN', { role: user.role });
        }
        const params = route.params === undefined ? c.req.param() : route.params.parse(c.req.param());
        const query = route.query === undefined ? {} : route.query.parse(c.req.query());
        let body: unknown;
        if (route.body !== undefined) {
          // JSON only: a text/plain or form body is what a cross-site form can send without a preflight.
          if (!isJson(c.req.header('content-type'))) throw new KisekiError('ERR_UNSUPPORTED_MEDIA_TYPE', { contentType: c.req.header('content-type') ?? null });
          let raw: unknown;
          try {
            raw = await c.req.json();
          } catch {
            throw new KisekiError('ERR_VALIDATION', { reason: 'the body must be JSON' });
          }
          body = route.body.parse(raw);
        }
        const from = clientAddress(c);
        const actor = user;
        return await route.handler({
          c,
          deps,
          user: actor as UserRecord,
          params,
          query,
          body,
          from,
          token,
          audit: (action, target, supportId, details) => auditAs(deps, actor, from, action, target, supportId, details),
        });
      } catch (err) {
        return problemFrom(c, err, deps.logger);
      }
    });
  }
}

function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function schemaOf(t: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(t, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** The OpenAPI 3.1 document of the routes. */
export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const p = `/api/v1${toOpenApiPath(r.path)}`;
    const parameters: Record<string, unknown>[] = [];
    for (const name of [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!)) {
      parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
    }
    if (r.query !== undefined) {
      const js = schemaOf(r.query) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: 'query', required: js.required?.includes(name) ?? false, schema });
      }
    }
    const op: Record<string, unknown> = {
      operationId: `${r.method}${r.path.replace(/[/:{}-]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`,
      summary: r.summary,
      tags: [r.tag],
      ...(r.auth === 'public' ? { security: [] } : {}),
      ...(r.roles === undefined ? {} : { 'x-roles': r.roles }),
      parameters,
      ...(r.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(r.body) } } } }),
      responses: Object.fromEntries(
        Object.entries(r.responses).map(([status, description]) => [
          status,
          Number(status) >= 400
            ? { description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } }
            : { description, content: { [r.produces ?? 'application/json']: {} } },
        ]),
      ),
    };
    paths[p] = { ...paths[p], [r.method]: op };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'kiseki API', version: '1.0.0', description: 'Tenants, devices, alerts and quick reports, exceptions, response actions and audit (SPEC §7, §8).' },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'code'],
          properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, code: { type: 'string', enum: Object.keys(ERRORS) }, instance: { type: 'string' } },
        },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths,
  };
}

/** Pagination query shared by list routes. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(512).optional(),
});

export function encodeCursor(parts: unknown[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): unknown[] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v)) return v;
  } catch {
    // fall through
  }
  throw new KisekiError('ERR_VALIDATION', { field: 'cursor', reason: 'not a cursor this API issued' });
}

/** Appends an audit record for `user` (or an anonymous caller) seen from `from`. */
export async function auditAs(
  deps: ApiDeps,
  user: UserRecord | undefined,
  from: string,
  action: string,
  target: string,
  supportId: string | null,
  details?: Record<string, unknown>,
): Promise<void> {
  await deps.store.identity.appendAudit({
    at: deps.clock.now(),
    actor: user?.id ?? 'anonymous',
    role: user?.role ?? 'system',
    supportId,
    action,
    target,
    from,
    ...(details === undefined ? {} : { details }),
  });
}
