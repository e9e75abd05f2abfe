/**
 * Configuration: one defaults object with units in the names, one strict
 * schema (unknown keys are errors), cross-field checks, frozen. Environment
 * variables are read here and nowhere else; command-line flags override them.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { KisekiError } from './errors.js';

const port = z.number().int().min(0).max(65535);

const configSchema = z
  .object({
    /** Directory of the LMDB environment. */
    dataDir: z.string().min(1),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    ingest: z
      .object({
        host: z.string().min(1),
        port,
        path: z.string().startsWith('/'),
        /** Largest frame answered with a frame_too_large error; frames over 2x are cut by uWS. */
        maxFrameBytes: z.number().int().min(1024).max(64 * 1024 * 1024),
        helloTimeoutMs: z.number().int().min(100),
        /** uWS idle timeout; agents heartbeat more often than this. */
        idleTimeoutSec: z.number().int().min(8).max(960),
        tlsCertFile: z.string().min(1).optional(),
        tlsKeyFile: z.string().min(1).optional(),
        /** Policy handed to agents in `welcome`. */
        batchIntervalMs: z.number().int().min(10),
        maxBatchEvents: z.number().int().min(1),
        maxUnackedBatches: z.number().int().min(1).max(1024),
        hbIntervalMs: z.number().int().min(1000),
        /** Inventory frames larger than this are refused (invalid_field). */
        maxInventoryBytes: z.number().int().min(1024),
      })
      .strict(),
    http: z
      .object({
        host: z.string().min(1),
        port,
        /** PEM files: the API serves HTTPS when both are given. */
        tlsCertFile: z.string().min(1).optional(),
        tlsKeyFile: z.string().min(1).optional(),
        /** CA that signs client certificates; with requireClientCert, the second login factor. */
        clientCaFile: z.string().min(1).optional(),
        requireClientCert: z.boolean(),
      })
      .strict(),
    engine: z
      .object({
        /** Shard worker threads; devices map to 256 virtual shards, then to workers. */
        shards: z.number().int().min(1).max(64),
        /** Batches posted to one shard and not yet processed before it falls back to catch-up reads. */
        maxQueuedBatchesPerShard: z.number().int().min(1),
        /** How often a shard persists its derived state and checkpoint. */
        flushIntervalMs: z.number().int().min(1),
        /** How often a shard writes its device state snapshots (recovery replays at most this much). */
        stateSnapshotIntervalMs: z.number().int().min(100),
        /** Endpoint ms after a detection during which the process tree's events revise its report. */
        revisionWindowMs: z.number().int().min(0),
        /** Devices whose correlation state each shard keeps in memory; the rest are snapshotted to LMDB. */
        maxDevicesInMemory: z.number().int().min(1),
        /** Threat-intelligence lists (sha256.txt, domains.txt, ips.txt); default DATA/intel. */
        intelDir: z.string().min(1).optional(),
      })
      .strict(),
    storage: z
      .object({
        zstdLevel: z.number().int().min(1).max(19),
        /** LMDB map size; grows automatically, this is only the starting reservation. */
        mapSizeBytes: z.number().int().min(1024 * 1024),
      })
      .strict(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.ingest.tlsCertFile === undefined) !== (c.ingest.tlsKeyFile === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'tlsCertFile and tlsKeyFile must be given together', path: ['ingest'] });
    }
    if ((c.http.tlsCertFile === undefined) !== (c.http.tlsKeyFile === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'http tlsCertFile and tlsKeyFile must be given together', path: ['http'] });
    }
    if (c.http.requireClientCert && (c.http.tlsCertFile === undefined || c.http.clientCaFile === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'requireClientCert needs HTTPS (tlsCertFile, tlsKeyFile) and clientCaFile', path: ['http'] });
    }
    if (c.ingest.port !== 0 && c.ingest.port === c.http.port) {
      ctx.addIssue({ code: 'custom', message: 'ingest and http ports must differ', path: ['http', 'port'] });
    }
  });

export type Config = z.infer<typeof configSchema>;

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Defaults that work on a fresh machine. */
export const DEFAULTS: Config = {
  dataDir: './data',
  logLevel: 'info',
  ingest: {
    host: '0.0.0.0',
    port: 9100,
    path: '/agent/v1',
    maxFrameBytes: 4 * 1024 * 1024,
    helloTimeoutMs: 10_000,
    idleTimeoutSec: 120,
    batchIntervalMs: 1000,
    maxBatchEvents: 5000,
    maxUnackedBatches: 16,
    hbIntervalMs: 30_000,
    maxInventoryBytes: 256 * 1024,
  },
  http: { host: '0.0.0.0', port: 8080, requireClientCert: false },
  engine: {
    // One core serves sockets and commits; the rest decode and correlate.
    shards: Math.max(1, availableParallelism() - 1),
    maxQueuedBatchesPerShard: 512,
    flushIntervalMs: 100,
    stateSnapshotIntervalMs: 30_000,
    revisionWindowMs: 10 * 60 * 1000,
    maxDevicesInMemory: 5_000,
  },
  storage: { zstdLevel: 1, mapSizeBytes: 1024 * 1024 * 1024 },
};

function int(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new KisekiError('ERR_CONFIG_INVALID', { variable: name, reason: 'not an integer' });
  return n;
}

/** The slice of configuration the environment may set (KISEKI_*). */
export function configFromEnv(env: NodeJS.ProcessEnv): DeepPartial<Config> {
  return {
    dataDir: env.KISEKI_DATA || undefined,
    logLevel: (env.KISEKI_LOG_LEVEL || undefined) as Config['logLevel'] | undefined,
    ingest: {
      host: env.KISEKI_INGEST_HOST || undefined,
      port: int('KISEKI_INGEST_PORT', env.KISEKI_INGEST_PORT),
      tlsCertFile: env.KISEKI_TLS_CERT || undefined,
      tlsKeyFile: env.KISEKI_TLS_KEY || undefined,
      maxFrameBytes: int('KISEKI_MAX_FRAME_BYTES', env.KISEKI_MAX_FRAME_BYTES),
    },
    http: {
      host: env.KISEKI_HTTP_HOST || undefined,
      port: int('KISEKI_HTTP_PORT', env.KISEKI_HTTP_PORT),
      tlsCertFile: env.KISEKI_HTTP_TLS_CERT || undefined,
      tlsKeyFile: env.KISEKI_HTTP_TLS_KEY || undefined,
      clientCaFile: env.KISEKI_HTTP_CLIENT_CA || undefined,
      requireClientCert: env.KISEKI_HTTP_REQUIRE_CLIENT_CERT === undefined ? undefined : env.KISEKI_HTTP_REQUIRE_CLIENT_CERT === 'true',
    },
    engine: { shards: int('KISEKI_SHARDS', env.KISEKI_SHARDS), intelDir: env.KISEKI_INTEL_DIR || undefined },
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(v) && isPlainObject(base[k]) ? merge(base[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (isPlainObject(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Builds the configuration: defaults, then each override in order (later
 * wins; undefined leaves a value alone), validated once and frozen.
 * @throws KisekiError ERR_CONFIG_INVALID with the schema issues in details.
 */
export function loadConfig(...overrides: DeepPartial<Config>[]): Readonly<Config> {
  let merged: Record<string, unknown> = DEFAULTS as unknown as Record<string, unknown>;
  for (const o of overrides) merged = merge(merged, o as Record<string, unknown>);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    throw new KisekiError('ERR_CONFIG_INVALID', {
      issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return deepFreeze(parsed.data);
}
