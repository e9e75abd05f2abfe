/**
 * The syslog receiver: TCP (RFC 6587 octet counting or newline framing), TLS
 * (node:tls, same framing) and UDP (one message per datagram) listeners that
 * parse each message into a NetworkLogRecord, route it to a tenant, and store
 * records and failure counts in batches (one LMDB transaction per batch,
 * storage/netlog.ts). `onRecords` is called with each batch once it is on
 * disk: intel matching subscribes there without touching this file.
 *
 * Bounds: at most `maxConnections` TCP+TLS connections (more are closed at
 * once and counted), messages over `maxLineBytes` are skipped and counted,
 * and while `maxPendingRecords` wait for a commit every TCP/TLS socket is
 * paused (the kernel window then pushes back on the sender, whose queue
 * holds the lines) and UDP datagrams are dropped and counted as queue_full.
 *
 * Delivery (docs/NETLOG.md): syslog over TCP has no application-level ack.
 * What a sender handed to the kernel is gone from its queue; what kiseki
 * read and has not yet committed (at most one flush interval or one batch),
 * plus what sits in the socket buffers, is lost by a kill -9.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../../core/clock.js';
import type { Config } from '../../core/config.js';
import type { NetworkLogRecord } from '../../core/contracts.js';
import { KisekiError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { HotStore, NetlogFailureCount } from '../../storage/index.js';
import { createSyslogFramer } from './framing.js';
import type { NetlogFailureReason } from './parse-result.js';
import { parseLine } from './parse-line.js';
import type { SyslogRouter } from './routing.js';

/** The receiver's settings: core/config.ts `syslog` (ports -1 off, 0 any free port; TLS only with both PEM files). */
export type SyslogReceiverSettings = Omit<Config['syslog'], 'enabled' | 'routesFile'>;

export interface SyslogReceiverOptions {
  settings: SyslogReceiverSettings;
  store: HotStore;
  router: SyslogRouter;
  logger: Logger;
  clock?: Clock;
  /** Registry for the kiseki_syslog_* metrics (the service's); none: not exported. */
  registry?: Registry;
  /** Called with every batch of records once it is durably stored (not for failures). */
  onRecords?: (records: NetworkLogRecord[]) => void;
}

/** Running figures of this process (the persisted totals are in store.netlog). */
export interface SyslogStats {
  connections: number;
  connectionsRejected: number;
  messages: number;
  stored: number;
  failed: Record<string, number>;
  pending: number;
  commits: number;
}

export interface SyslogReceiver {
  /** Bound ports, undefined for a listener that is off. */
  readonly tcpPort: number | undefined;
  readonly tlsPort: number | undefined;
  readonly udpPort: number | undefined;
  stats(): SyslogStats;
  /** Commits whatever is pending; resolves when it is on disk. */
  flush(): Promise<void>;
  /** Stops listening, closes connections, commits what was read. */
  close(): Promise<void>;
}

interface SyslogMetrics {
  connections: Gauge<'transport'>;
  connectionsRejected: Counter;
  messages: Counter<'transport'>;
  records: Counter<'tenant' | 'format'>;
  failures: Counter<'tenant' | 'reason'>;
  commitSeconds: Histogram;
}

function createSyslogMetrics(registry: Registry | undefined): SyslogMetrics | undefined {
  if (registry === undefined) return undefined;
  const registers = [registry];
  return {
    connections: new Gauge({ name: 'kiseki_syslog_connections', help: 'Open syslog connections, by transport (tcp, tls).', labelNames: ['transport'], registers }),
    connectionsRejected: new Counter({ name: 'kiseki_syslog_connections_rejected_total', help: 'Syslog connections closed at once because syslog.maxConnections were open.', registers }),
    messages: new Counter({ name: 'kiseki_syslog_messages_total', help: 'Syslog messages framed, by transport (tcp, tls, udp).', labelNames: ['transport'], registers }),
    records: new Counter({ name: 'kiseki_syslog_records_total', help: 'Network-log records stored, by tenant and format.', labelNames: ['tenant', 'format'], registers }),
    failures: new Counter({ name: 'kiseki_syslog_parse_failures_total', help: 'Syslog messages not stored, by tenant ("" when unrouted) and reason.', labelNames: ['tenant', 'reason'], registers }),
    commitSeconds: new Histogram({
      name: 'kiseki_syslog_commit_seconds',
      help: 'Time to commit one batch of network-log records to disk.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    }),
  };
}

type Transport = 'tcp' | 'tls' | 'udp';

/**
 * Starts the listeners that are on and returns the receiver.
 * @throws KisekiError ERR_LISTEN_FAILED when a port cannot be bound, ERR_CONFIG_INVALID when a TLS file cannot be read
 */
export async function startSyslogReceiver(options: SyslogReceiverOptions): Promise<SyslogReceiver> {
  const { settings, store, router } = options;
  const clock = options.clock ?? systemClock;
  const log = options.logger.child({ component: 'syslog' });
  const metrics = createSyslogMetrics(options.registry);
  const sockets = new Set<Socket>();
  let records: NetworkLogRecord[] = [];
  let failures = new Map<string, NetlogFailureCount>();
  let pendingFailures = 0;
  let flushing: Promise<void> | undefined;
  let paused = false;
  let closed = false;
  const stats: SyslogStats = { connections: 0, connectionsRejected: 0, messages: 0, stored: 0, failed: {}, pending: 0, commits: 0 };

  const fail = (supportId: string, reason: NetlogFailureReason): void => {
    const key = `${supportId}\u0000${reason}`;
    const f = failures.get(key);
    if (f === undefined) failures.set(key, { supportId, reason, count: 1 });
    else f.count++;
    pendingFailures++;
    stats.failed[reason] = (stats.failed[reason] ?? 0) + 1;
  };

  const accept = (line: string, address: string): void => {
    stats.messages++;
    const r = parseLine(line, clock.now(), address);
    const supportId = router.route(address, r.token);
    if (supportId === undefined) fail('', 'unknown_tenant');
    else if (!r.ok) fail(supportId, r.reason);
    else {
      const rec = r.record as NetworkLogRecord;
      rec.supportId = supportId;
      records.push(rec);
    }
    if (records.length >= settings.batchMaxRecords) void flush();
    if (records.length >= settings.maxPendingRecords && !paused) pause();
  };

  const pause = (): void => {
    paused = true;
    for (const s of sockets) s.pause();
  };
  const resume = (): void => {
    paused = false;
    for (const s of sockets) s.resume();
  };

  const commit = async (): Promise<void> => {
    while (records.length > 0 || pendingFailures > 0) {
      // Everything pending in one transaction: when the disk is behind, one fsync covers what piled up meanwhile.
      const batch = records;
      records = [];
      const failed = [...failures.values()];
      failures = new Map();
      pendingFailures = 0;
      const t0 = performance.now();
      try {
        await store.netlog.append(batch, failed);
      } catch (err) {
        // Put the batch back in front and retry: sockets stay paused meanwhile, so senders queue.
        records = batch.concat(records);
        for (const f of failed) {
          const key = `${f.supportId}\u0000${f.reason}`;
          const cur = failures.get(key);
          if (cur === undefined) failures.set(key, f);
          else cur.count += f.count;
          pendingFailures += f.count;
        }
        log.error({ err, records: batch.length }, 'Storing network logs failed; retrying in one second.');
        if (!paused) pause();
        await new Promise((r) => setTimeout(r, 1000));
        if (closed) throw err;
        continue;
      }
      stats.commits++;
      stats.stored += batch.length;
      if (metrics !== undefined) {
        metrics.commitSeconds.observe((performance.now() - t0) / 1000);
        const byLabel = new Map<string, number>();
        for (const r of batch) {
          const k = `${r.supportId}\u0000${r.format}`;
          byLabel.set(k, (byLabel.get(k) ?? 0) + 1);
        }
        for (const [k, n] of byLabel) {
          const [tenant, format] = k.split('\u0000') as [string, string];
          metrics.records.inc({ tenant, format }, n);
        }
        for (const f of failed) metrics.failures.inc({ tenant: f.supportId, reason: f.reason }, f.count);
      }
      if (batch.length > 0 && options.onRecords !== undefined) {
        try {
          options.onRecords(batch);
        } catch (err) {
          log.error({ err }, 'An onRecords subscriber failed; the records are stored.');
        }
      }
      if (paused && records.length < settings.maxPendingRecords / 2) resume();
    }
  };

  function flush(): Promise<void> {
    if (flushing !== undefined) return flushing.then(() => (records.length > 0 || pendingFailures > 0 ? flush() : undefined));
    flushing = commit().finally(() => (flushing = undefined));
    return flushing;
  }

  const timer = setInterval(() => {
    if (flushing === undefined && (records.length > 0 || pendingFailures > 0)) void flush().catch(() => undefined);
  }, settings.flushIntervalMs);

  const onConnection = (transport: Transport) => (socket: Socket) => {
    if (sockets.size >= settings.maxConnections || closed) {
      stats.connectionsRejected++;
      metrics?.connectionsRejected.inc();
      socket.destroy();
      return;
    }
    const address = socket.remoteAddress ?? '';
    sockets.add(socket);
    stats.connections = sockets.size;
    metrics?.connections.inc({ transport });
    if (paused) socket.pause();
    const framer = createSyslogFramer(settings.maxLineBytes, {
      message: (line) => {
        metrics?.messages.inc({ transport });
        accept(line, address);
      },
      tooLong: () => {
        stats.messages++;
        metrics?.messages.inc({ transport });
        fail(router.route(address, undefined) ?? '', 'line_too_long');
      },
    });
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('end', () => framer.end());
    socket.on('error', (err) => log.debug({ err, address }, 'A syslog connection failed.'));
    socket.on('close', () => {
      sockets.delete(socket);
      stats.connections = sockets.size;
      metrics?.connections.dec({ transport });
    });
  };

  const listen = (server: Server, port: number, name: string): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', (cause) => reject(new KisekiError('ERR_LISTEN_FAILED', { port, listener: name }, { cause })));
      server.listen(port, settings.host, () => {
        const a = server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : port);
      });
    });

  const servers: Server[] = [];
  let udp: UdpSocket | undefined;
  let tcpPort: number | undefined;
  let tlsPort: number | undefined;
  let udpPort: number | undefined;
  const closeAll = async (): Promise<void> => {
    closed = true;
    clearInterval(timer);
    for (const s of servers) s.close();
    for (const s of sockets) s.destroy();
    if (udp !== undefined) await new Promise<void>((r) => udp!.close(() => r()));
  };
  try {
    if (settings.tcpPort >= 0) {
      const server = createServer({ noDelay: true }, onConnection('tcp'));
      servers.push(server);
      tcpPort = await listen(server, settings.tcpPort, 'syslog tcp');
    }
    if (settings.tlsPort >= 0 && settings.tlsCertFile !== '' && settings.tlsKeyFile !== '') {
      let cert: Buffer;
      let key: Buffer;
      try {
        cert = readFileSync(settings.tlsCertFile);
        key = readFileSync(settings.tlsKeyFile);
      } catch (cause) {
        throw new KisekiError('ERR_CONFIG_INVALID', { issues: ['syslog.tlsCertFile / syslog.tlsKeyFile cannot be read'] }, { cause });
      }
      const server = createTlsServer({ cert, key }, onConnection('tls'));
      // A failed handshake (wrong CA, plain TCP on the TLS port) is the sender's problem: log it, keep serving.
      server.on('tlsClientError', (err) => log.warn({ err: err.message }, 'A syslog TLS handshake failed.'));
      servers.push(server);
      tlsPort = await listen(server, settings.tlsPort, 'syslog tls');
    }
    if (settings.udpPort >= 0) {
      const socket = createSocket(settings.host.includes(':') ? 'udp6' : 'udp4');
      udp = socket;
      socket.on('message', (msg, rinfo) => {
        metrics?.messages.inc({ transport: 'udp' });
        if (msg.length > settings.maxLineBytes) {
          stats.messages++;
          fail(router.route(rinfo.address, undefined) ?? '', 'line_too_long');
          return;
        }
        if (records.length >= settings.maxPendingRecords) {
          stats.messages++;
          fail(router.route(rinfo.address, undefined) ?? '', 'queue_full');
          return;
        }
        let end = msg.length;
        while (end > 0 && (msg[end - 1] === 10 || msg[end - 1] === 13 || msg[end - 1] === 0)) end--;
        accept(msg.toString('utf8', 0, end), rinfo.address);
      });
      udpPort = await new Promise<number>((resolve, reject) => {
        socket.once('error', (cause) => reject(new KisekiError('ERR_LISTEN_FAILED', { port: settings.udpPort, listener: 'syslog udp' }, { cause })));
        socket.bind(settings.udpPort, settings.host, () => resolve(socket.address().port));
      });
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  log.info({ tcpPort, tlsPort, udpPort, tenants: router.tenants.length }, 'The syslog receiver is listening.');
  return {
    tcpPort,
    tlsPort,
    udpPort,
    stats: () => ({ ...stats, failed: { ...stats.failed }, pending: records.length }),
    flush,
    async close() {
      await closeAll();
      await flush();
      log.info({ stored: stats.stored, failed: stats.failed }, 'The syslog receiver stopped.');
    },
  };
}
