/**
 * `kiseki start --role ingest`: the agent endpoint of the embedded mode with
 * the JetStream committer behind it (jetstream-committer.ts). The node's
 * local store holds tenants, devices and their tokens (enrollment happens
 * here) and the command queue; raw batches go to the stream only. Devices and
 * tenants are shared through the directory bucket (directory.ts): with the
 * shard nodes, and with the other ingest nodes, so that an agent may say
 * hello to any of them; tenants and fleet policies created or changed on an
 * API node are copied in while it runs (tenant-sync.ts). Commands come and go through `kiseki-commands`
 * (commands-sync.ts).
 */
import type { HttpServer } from '../api/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { startAgentServer, type AgentServer } from '../ingest/index.js';
import type { HotStore } from '../storage/index.js';
import { openNodeBase, startNodeHttp } from './node-base.js';
import { createIngestDirectory } from './directory.js';
import { startCommandSync, type CommandSync } from './commands-sync.js';
import { createJetStreamCommitter } from './jetstream-committer.js';
import { watchTenants, type TenantWatch } from './tenant-sync.js';
import { createDeviceStatePublisher, type DeviceStatePublisher } from './device-state.js';
import { clusterLinkOptionsFrom, openClusterLink, retryWhileStarting, type ClusterLink } from './nats.js';

export interface IngestNodeOptions {
  config: Readonly<Config>;
  logger: Logger;
  clock?: Clock;
  /** Bound of a directory lookup on the hello path, ms (default 5,000: under the agents' 10 s hello timeout). */
  directoryLookupTimeoutMs?: number;
}

export interface RunningIngestNode {
  readonly nodeId: string;
  readonly ingestPort: number;
  /** `/healthz` and `/metrics`, when `cluster.nodeHttpPort` is set. */
  readonly httpPort?: number;
  readonly store: HotStore;
  readonly metrics: Metrics;
  close(): Promise<void>;
}

/** Starts an ingest node: local store, NATS link, agent endpoint. */
export async function startIngestNode(options: IngestNodeOptions): Promise<RunningIngestNode> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const base = openNodeBase(config);
  const { nodeId, store, metrics } = base;
  const log = logger.child({ component: 'ingest-node', node: nodeId });
  let link: ClusterLink | undefined;
  let agents: AgentServer | undefined;
  let commands: CommandSync | undefined;
  let http: HttpServer | undefined;
  let tenantWatch: TenantWatch | undefined;
  let states: DeviceStatePublisher | undefined;
  try {
    // Devices still marked connected: this node stopped without closing their sockets (a crash).
    const leftovers: { tmid: string; supportId: string }[] = [];
    for (const d of store.devices.all()) if (d.connected) leftovers.push({ tmid: d.tmid, supportId: d.supportId });
    await store.devices.markAllDisconnected();
    link = await openClusterLink(clusterLinkOptionsFrom(config, `kiseki-ingest-${nodeId}`, logger));
    // One put per connect and per disconnect of an agent here: API nodes show the device's connection and facts.
    states = createDeviceStatePublisher({ kv: link.directory, nodeId, logger });
    void states.disconnectLeftovers(leftovers, clock.now());
    const directory = createIngestDirectory({
      directory: link.directory,
      jsm: link.jsm,
      store,
      ...(options.directoryLookupTimeoutMs === undefined ? {} : { lookupTimeoutMs: options.directoryLookupTimeoutMs }),
    });
    // Tenants created on this node's data directory become usable for enrollment on every ingest node.
    const published = await retryWhileStarting(() => directory.publishTenants(), 'the local tenants in the directory bucket', log);
    log.info({ tenants: published.tenants }, 'Local tenants published to the directory bucket.');
    if (published.conflicts.length > 0) {
      log.warn({ supportIds: published.conflicts }, "Local tenants conflict with the cluster's (same support ID, another enrollment key); the cluster's records replace them here.");
    }
    // Tenants created and policies changed on an API node (or another ingest node's directory) are copied here;
    // a newer fleet policy goes to this node's connected agents at once.
    tenantWatch = watchTenants({ kv: link.directory, store, logger, onFleetPolicy: (supportId) => agents?.pushFleetPolicy(supportId) });
    const committer = createJetStreamCommitter({
      js: link.js,
      directory,
      clock,
      logger,
      metrics,
      maxInFlight: config.cluster.maxInFlightPublishes,
      zstdLevel: config.storage.zstdLevel,
    });
    // Commands queued on an API node arrive through kiseki-commands; the node holding the agent's socket sends them,
    // and every state the agent moves them to goes back the same way.
    commands = startCommandSync({
      kv: link.commands,
      store,
      logger,
      onChanged: (c) => {
        if (c.state === 'queued' || c.state === 'sent') agents?.deliverCommands(c.tmid);
      },
    });
    agents = await startAgentServer({
      config: config.ingest,
      store,
      committer,
      clock,
      logger,
      metrics,
      directory,
      onCommandChanged: (c) => void commands?.share(c).catch(() => undefined),
      onDeviceConnection: (change) => states?.publish(change),
    });
    const agentServer = agents;
    const sync = commands;
    http = await startNodeHttp(config, base, {
      storageFailure: () => committer.storageFailure(),
      details: () => ({
        role: 'ingest',
        node: nodeId,
        connections: agentServer.connections(),
        commands: sync.stats(),
        tenantCopies: { ...tenantWatch!.stats(), caughtUp: tenantWatch!.caughtUp() },
        deviceStates: states!.stats(),
      }),
    });
  } catch (err) {
    await http?.close().catch(() => undefined);
    await agents?.close().catch(() => undefined);
    await commands?.stop().catch(() => undefined);
    await tenantWatch?.stop().catch(() => undefined);
    await states?.stop().catch(() => undefined);
    await link?.close().catch(() => undefined);
    await base.release();
    throw err;
  }
  const server = agents;
  const nats = link;
  const sync = commands!;
  const httpServer = http;
  const tenants = tenantWatch!;
  const deviceStates = states!;
  log.info({ ingestPort: server.port, httpPort: httpServer?.port, dataDir: config.dataDir }, 'Ingest node is running.');
  let closing: Promise<void> | undefined;
  return {
    nodeId,
    ingestPort: server.port,
    ...(httpServer === undefined ? {} : { httpPort: httpServer.port }),
    store,
    metrics,
    close() {
      closing ??= (async () => {
        // The agent server waits for the publishes in flight (committer.idle) before it returns.
        await httpServer?.close();
        await server.close();
        await sync.stop();
        await tenants.stop();
        // The agents' disconnects from the close above, put before the link goes (bounded).
        await deviceStates.stop();
        await nats.close();
        await base.release();
        log.info('Ingest node stopped; every acked batch is in the stream.');
      })();
      return closing;
    },
  };
}
