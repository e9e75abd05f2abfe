/** Serves the Hono app over HTTP with @hono/node-server; resolves once listening. */
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { KisekiError } from '../core/errors.js';

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

export function startHttpServer(app: Hono, host: string, port: number): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    let server: ServerType;
    const onError = (cause: unknown) => reject(new KisekiError('ERR_LISTEN_FAILED', { host, port, component: 'http' }, { cause }));
    server = serve({ fetch: app.fetch, hostname: host, port }, (info: AddressInfo) => {
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
