/**
 * What `kiseki start` runs of engine/intel in the main thread: the intel
 * directory index for network logs, the network matcher (its `onRecords` is
 * what the syslog receiver calls with each batch of stored records) with
 * its relink / reload / sweep round, and the TAXII poller when a servers
 * file is configured. The shards hold their own index of the same
 * directory (shard-worker.ts) for endpoint trails.
 */
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { readSettingsFile, type Config } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { HotStore } from '../../storage/index.js';
import { createThreatIntel, type ThreatIntel } from './intel-dir.js';
import { createNetworkIntelMatcher, type NetworkIntelMatcher } from './network-matcher.js';
import { createTaxiiPoller, type TaxiiPoller, type TaxiiServerConfig } from './taxii.js';

const taxiiServer = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    url: z.string().url(),
    collection: z.string().min(1),
    username: z.string().optional(),
    password: z.string().optional(),
    token: z.string().optional(),
    pageSize: z.number().int().min(1).max(10_000).optional(),
  })
  .strict();

/**
 * Reads the TAXII servers file (a JSON array of TaxiiServerConfig).
 * @throws KisekiError ERR_CONFIG_INVALID when it is unreadable or invalid.
 */
export function loadTaxiiServers(file: string): TaxiiServerConfig[] {
  const servers = readSettingsFile(file, z.array(taxiiServer).max(100), 'the TAXII servers file');
  return servers.map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as unknown as TaxiiServerConfig);
}

export interface NetworkIntelRuntime {
  readonly intel: ThreatIntel;
  /** Call with each batch of network-log records the syslog receiver stored. */
  readonly matcher: NetworkIntelMatcher;
  readonly poller: TaxiiPoller | undefined;
  stop(): Promise<void>;
}

/** Starts the network matcher's round and the TAXII poller. */
export function startNetworkIntel(options: { store: HotStore; clock: Clock; logger: Logger; intelDir: string; config: Readonly<Config['intel']> }): NetworkIntelRuntime {
  const { config, clock, logger } = options;
  const log = logger.child({ component: 'intel' });
  const intel = createThreatIntel(options.intelDir, {
    clock,
    defaultConfidence: config.defaultConfidence,
    mispMaxAgeDays: config.mispMaxAgeDays,
    onLoad: (r) => {
      if (r.failures.length > 0) log.warn({ failures: r.failures }, 'Some threat-intelligence files could not be read; the others are in use.');
      log.info({ counts: r.counts, rejected: r.rejected, skipped: r.skipped }, 'Threat intelligence loaded.');
    },
  });
  const matcher = createNetworkIntelMatcher({ store: options.store, intel, clock, logger, linkWindowMs: config.linkWindowMs, relinkForMs: config.relinkForMs });
  matcher.start(config.checkIntervalMs);
  const poller =
    config.taxiiServersFile === undefined ? undefined : createTaxiiPoller({ servers: loadTaxiiServers(config.taxiiServersFile), intelDir: options.intelDir, clock, logger });
  poller?.start(config.taxiiIntervalMs);
  return {
    intel,
    matcher,
    poller,
    async stop() {
      await poller?.stop();
      await matcher.stop();
    },
  };
}
