/**
 * Serves the Hono app over HTTP or HTTPS with @hono/node-server; resolves
 * once listening. The server has its own connection budget and cuts clients
 * that send their headers or request too slowly, so slow or idle HTTP
 * clients cannot take the descriptors the agent port needs.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { KisekiError } from '../core/errors.js';

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  tlsCertFile?: string | undefined;
  tlsKeyFile?: string | undefined;
  /** Client certificates are requested (and verified against this CA) when given. */
  clientCaFile?: string | undefined;
  /** Open connections at most; more are closed at once by Node (default 1024). */
  maxConnections?: number;
  /** Time to receive the request headers, ms (default 10,000; 408 and close beyond). */
  headersTimeoutMs?: number;
  /** Time to receive the whole request, ms (default 30,000); the response is not limited. */
  requestTimeoutMs?: number;
}

/** Node's timeout options for the limits above. */
function timeoutOptions(options: HttpServerOptions) {
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(headersTimeout, options.requestTimeoutMs ?? 30_000);
  // Node enforces both timeouts on this period; a quarter of the headers timeout keeps the overshoot small.
  return { headersTimeout, requestTimeout, connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(headersTimeout / 4))) };
}

export function startHttpServer(app: Hono, options: HttpServerOptions): Promise<HttpServer> {
  const { host, port } = options;
  const timeouts = timeoutOptions(options);
  const tls =
    options.tlsCertFile !== undefined && options.tlsKeyFile !== undefined
      ? {
          createServer: createHttpsServer,
          serverOptions: {
            ...timeouts,
            cert: readFileSync(options.tlsCertFile),
            key: readFileSync(options.tlsKeyFile),
            ...(options.clientCaFile === undefined
              ? {}
              : // Verified here, enforced per route: login pages can explain what is missing.
                { ca: readFileSync(options.clientCaFile), requestCert: true, rejectUnauthorized: false }),
          },
        }
      : { serverOptions: timeouts };
  return new Promise((resolve, reject) => {
    let server: ServerType;
    const onError = (cause: unknown) => reject(new KisekiError('ERR_LISTEN_FAILED', { host, port, component: 'http' }, { cause }));
    server = serve({ fetch: app.fetch, hostname: host, port, ...tls }, (info: AddressInfo) => {
      server.off('error', onError);
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      });
    });
    // Past the budget Node closes new connections at once (net.Server maxConnections).
    server.maxConnections = options.maxConnections ?? 1024;
    server.once('error', onError);
  });
}
