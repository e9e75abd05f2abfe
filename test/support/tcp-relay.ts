/**
 * A TCP relay for tests that restart a server: it listens on a port the OS
 * picks (port 0) for the whole test and forwards each connection to the
 * server's current port, so clients keep one address across a restart and no
 * test needs a fixed or random port. While no server is set, connections are
 * closed at once (the client sees a dropped connection and retries).
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpRelay {
  /** The port clients connect to (127.0.0.1). */
  readonly port: number;
  /** Where new connections go; undefined closes them. Existing ones stay until either side closes. */
  setTarget(port: number | undefined): void;
  close(): Promise<void>;
}

export async function startTcpRelay(): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  let target: number | undefined;
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (target === undefined) return void client.destroy();
    const upstream = connect(target, '127.0.0.1');
    track(upstream);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new TypeError('the relay has no TCP address');
  return {
    port: address.port,
    setTarget(port) {
      target = port;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
