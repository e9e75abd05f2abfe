/** Serves the Hono app over HTTP or HTTPS with @hono/node-server; resolves once listening. */
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
}

export function startHttpServer(app: Hono, options: HttpServerOptions): Promise<HttpServer> {
  const { host, port } = options;
  const tls =
    options.tlsCertFile !== undefined && options.tlsKeyFile !== undefined
      ? {
          createServer: createHttpsServer,
          serverOptions: {
            cert: readFileSync(options.tlsCertFile),
            key: readFileSync(options.tlsKeyFile),
            ...(options.clientCaFile === undefined
              ? {}
              : // Verified here, enforced per route: login pages can explain what is missing.
                { ca: readFileSync(options.clientCaFile), requestCert: true, rejectUnauthorized: false }),
          },
        }
      : {};
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
    server.once('error', onError);
  });
}
