#!/usr/bin/env node
/**
 * The kiseki command line: parses argv and dispatches to the folders'
 * factories. Every command takes `--data DIR` (default ./data, or
 * KISEKI_DATA). Output meant for scripts goes to stdout; logs go to stderr.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { configFromEnv, loadConfig, type Config, type DeepPartial } from '../core/config.js';
import { isKisekiError, KisekiError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { renderReportText } from '../engine/index.js';
import { randomBytes } from 'node:crypto';
import {
  addException,
  createTenant,
  createUser,
  inspectStore,
  listAlerts,
  openHotStore,
  readAlert,
  setPassword,
  setTenantPolicy,
  type HotStore,
  type Role,
} from '../storage/index.js';
import { startService } from './service.js';

const USAGE = `kiseki — trail-log backend for managed endpoint security

Usage:
  kiseki start [--data DIR] [--ingest-port 9100] [--http-port 8080] [--host H] [--shards N]
               [--tls-cert FILE --tls-key FILE] [--http-tls-cert FILE --http-tls-key FILE]
               [--client-ca FILE --require-client-cert] [--log-level info]
  kiseki tenant create --name NAME --support-id ID [--data DIR]
  kiseki inspect [--json] [--data DIR]
  kiseki report --alert ID [--revision N] [--json] [--data DIR]
  kiseki alerts --support-id S [--limit 20] [--json] [--data DIR]
  kiseki tenant policy --support-id S [--isolate-on-black yes|no] [--auto-except-white yes|no]
                       [--tuning-until YYYY-MM-DD|none]
  kiseki user create --id LOGIN --role operator|admin|viewer [--support-id S] [--password P]
  kiseki user reset-password --id LOGIN [--password P]
  kiseki bench [--scenario steady-1k|saturate|burst|fanin-19k|smoke] [--duration S] [--no-baselines] [--micro]
  kiseki export daily --tenant S --date YYYY-MM-DD | spot30 --tenant S --from D --to D
              | spot1y --tenant S --tmid T | close-days   (collection days 05:00-05:00 JST)
  kiseki import sysmon --tenant S [--computer NAME] [--url ws://127.0.0.1:9100/agent/v1] FILE...
  kiseki detect --tenant S --tmid T --path P [--sha256 H] [--at TIME]
  kiseki sigma list [--rules DIR] [--json] | test --rules DIR --cases DIR [--json]
  kiseki exception add --support-id S [--sha256 H] [--path-pattern GLOB] [--signer NAME]
                       [--expires YYYY-MM-DD] [--reason TEXT]
  kiseki simulate --url ws://127.0.0.1:9100/agent/v1 --enroll-key KEY [--agents 10] [--eps 20]
                  [--duration 30] [--batch-ms 1000] [--seed 1] [--state FILE] [--detect-rate R]
                  [--max-unacked 8] [--drain-timeout 30]

Environment: KISEKI_DATA, KISEKI_INGEST_PORT, KISEKI_HTTP_PORT, KISEKI_INGEST_HOST, KISEKI_HTTP_HOST,
KISEKI_SHARDS, KISEKI_TLS_CERT, KISEKI_TLS_KEY, KISEKI_LOG_LEVEL. Flags win over the environment.
`;

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(args: string[], options: Options): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options: { ...options, data: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false })
      .values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new KisekiError('ERR_USAGE', { reason: (err as Error).message });
  }
}

function numFlag(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) {
    throw new KisekiError('ERR_USAGE', { reason: `--${name} must be a number`, value: raw });
  }
  return n;
}

function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

function requireStr(values: Record<string, unknown>, name: string): string {
  const v = str(values, name);
  if (v === undefined || v === '') throw new KisekiError('ERR_USAGE', { reason: `--${name} is required` });
  return v;
}

function baseConfig(values: Record<string, unknown>, extra: DeepPartial<Config> = {}): Readonly<Config> {
  return loadConfig(configFromEnv(process.env), { dataDir: str(values, 'data') }, extra);
}

async function cmdStart(args: string[]): Promise<void> {
  const v = parse(args, {
    'ingest-port': { type: 'string' },
    'http-port': { type: 'string' },
    host: { type: 'string' },
    shards: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'http-tls-cert': { type: 'string' },
    'http-tls-key': { type: 'string' },
    'client-ca': { type: 'string' },
    'require-client-cert': { type: 'boolean' },
    'log-level': { type: 'string' },
  });
  if (v.help) return void process.stdout.write(USAGE);
  const host = str(v, 'host');
  const config = baseConfig(v, {
    logLevel: str(v, 'log-level') as Config['logLevel'] | undefined,
    ingest: { port: numFlag(v, 'ingest-port'), host, tlsCertFile: str(v, 'tls-cert'), tlsKeyFile: str(v, 'tls-key') },
    http: {
      port: numFlag(v, 'http-port'),
      host,
      tlsCertFile: str(v, 'http-tls-cert'),
      tlsKeyFile: str(v, 'http-tls-key'),
      clientCaFile: str(v, 'client-ca'),
      requireClientCert: v['require-client-cert'] === true ? true : undefined,
    },
    engine: { shards: numFlag(v, 'shards') },
  });
  const logger = createLogger(config.logLevel);
  const service = await startService({ config, logger });
  // Machine-readable line for scripts and tests that start the server with port 0.
  process.stdout.write(`${JSON.stringify({ event: 'listening', ingestPort: service.ingestPort, httpPort: service.httpPort, dataDir: config.dataDir })}\n`);
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'Second signal: exiting without waiting.');
      process.exit(130);
    }
    logger.info({ signal }, 'Signal received.');
    service.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'Shutdown failed.');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function withStore<T>(values: Record<string, unknown>, run: (store: HotStore) => Promise<T> | T): Promise<T> {
  const config = baseConfig(values);
  const store = openHotStore({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

function yesNo(values: Record<string, unknown>, name: string): boolean | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  if (v === 'yes' || v === 'true' || v === 'on') return true;
  if (v === 'no' || v === 'false' || v === 'off') return false;
  throw new KisekiError('ERR_USAGE', { reason: `--${name} takes yes or no`, value: v });
}

function dateFlag(values: Record<string, unknown>, name: string): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw new KisekiError('ERR_USAGE', { reason: `--${name} takes a date like 2026-12-31`, value: v });
  return ms;
}

async function cmdTenantPolicy(args: string[]): Promise<void> {
  const v = parse(args, { 'support-id': { type: 'string' }, 'isolate-on-black': { type: 'string' }, 'auto-except-white': { type: 'string' }, 'tuning-until': { type: 'string' } });
  const tuning = str(v, 'tuning-until');
  const change = {
    ...(yesNo(v, 'isolate-on-black') === undefined ? {} : { isolateOnBlack: yesNo(v, 'isolate-on-black')! }),
    ...(yesNo(v, 'auto-except-white') === undefined ? {} : { autoExceptWhite: yesNo(v, 'auto-except-white')! }),
    ...(tuning === undefined ? {} : { tuningUntil: tuning === 'none' ? null : dateFlag(v, 'tuning-until')! }),
  };
  const policy = await withStore(v, (store) => setTenantPolicy(store, requireStr(v, 'support-id'), change));
  process.stdout.write(`${JSON.stringify(policy)}\n`);
}

async function cmdException(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'add') throw new KisekiError('ERR_USAGE', { reason: 'expected: kiseki exception add --support-id S ...' });
  const v = parse(rest, { 'support-id': { type: 'string' }, sha256: { type: 'string' }, 'path-pattern': { type: 'string' }, signer: { type: 'string' }, expires: { type: 'string' }, reason: { type: 'string' } });
  const entry = await withStore(v, (store) =>
    addException(store, {
      supportId: requireStr(v, 'support-id'),
      ...(str(v, 'sha256') === undefined ? {} : { sha256: str(v, 'sha256')! }),
      ...(str(v, 'path-pattern') === undefined ? {} : { pathPattern: str(v, 'path-pattern')! }),
      ...(str(v, 'signer') === undefined ? {} : { signer: str(v, 'signer')! }),
      ...(dateFlag(v, 'expires') === undefined ? {} : { expiresAt: dateFlag(v, 'expires')! }),
      reason: str(v, 'reason') ?? 'added with the CLI',
      createdAt: Date.now(),
      createdBy: 'cli',
    }),
  );
  process.stdout.write(`${JSON.stringify(entry)}\n`);
}

/** A temporary password: 16 printable characters, shown once, changed at first login. */
function temporaryPassword(): string {
  return randomBytes(12).toString('base64url');
}

async function cmdUser(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'create') {
    const v = parse(rest, { id: { type: 'string' }, role: { type: 'string' }, 'support-id': { type: 'string' }, password: { type: 'string' } });
    const role = requireStr(v, 'role');
    if (role !== 'operator' && role !== 'admin' && role !== 'viewer') throw new KisekiError('ERR_USAGE', { reason: '--role is operator, admin or viewer' });
    const password = str(v, 'password') ?? temporaryPassword();
    const user = await withStore(v, (store) =>
      createUser(store, { id: requireStr(v, 'id'), role: role as Role, supportId: str(v, 'support-id') ?? null, password, now: Date.now() }),
    );
    process.stdout.write(`${JSON.stringify({ id: user.id, role: user.role, supportId: user.supportId, mustChangePassword: true, ...(str(v, 'password') === undefined ? { temporaryPassword: password } : {}) })}\n`);
    return;
  }
  if (sub === 'reset-password') {
    const v = parse(rest, { id: { type: 'string' }, password: { type: 'string' } });
    const password = str(v, 'password') ?? temporaryPassword();
    // A reset unlocks the account and forces a change at the next login.
    await withStore(v, (store) => setPassword(store, requireStr(v, 'id'), password, Date.now(), true));
    process.stdout.write(`${JSON.stringify({ id: requireStr(v, 'id'), mustChangePassword: true, ...(str(v, 'password') === undefined ? { temporaryPassword: password } : {}) })}\n`);
    return;
  }
  throw new KisekiError('ERR_USAGE', { reason: 'expected: kiseki user create | kiseki user reset-password' });
}

async function cmdReport(args: string[]): Promise<void> {
  const v = parse(args, { alert: { type: 'string' }, revision: { type: 'string' }, json: { type: 'boolean' } });
  const id = requireStr(v, 'alert');
  await withStore(v, (store) => {
    const view = readAlert(store, id);
    if (view === undefined) throw new KisekiError('ERR_ALERT_NOT_FOUND', { alert: id });
    const wanted = numFlag(v, 'revision');
    const report = wanted === undefined ? view.revisions.at(-1) : view.revisions.find((r) => r.revision === wanted);
    if (v.json) process.stdout.write(`${JSON.stringify({ alert: view.alert, report: report ?? null, revisions: view.revisions.length, verdicts: view.verdicts })}\n`);
    else process.stdout.write(renderReportText(view.alert, report, view.verdicts));
  });
}

async function cmdAlerts(args: string[]): Promise<void> {
  const v = parse(args, { 'support-id': { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
  await withStore(v, (store) => {
    const alerts = listAlerts(store, requireStr(v, 'support-id'), numFlag(v, 'limit') ?? 20);
    if (v.json) return void process.stdout.write(`${JSON.stringify(alerts)}\n`);
    for (const a of alerts) {
      process.stdout.write(`${a.id}  ${new Date(a.detectedAt).toISOString()}  ${a.verdict.padEnd(5)} ${a.state.padEnd(10)} ${a.computer}  ${a.threat}  ${a.path}\n`);
    }
  });
}

async function cmdTenant(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'policy') return cmdTenantPolicy(rest);
  if (sub !== 'create') throw new KisekiError('ERR_USAGE', { reason: 'expected: kiseki tenant create --name N --support-id S' });
  const v = parse(rest, { name: { type: 'string' }, 'support-id': { type: 'string' }, json: { type: 'boolean' } });
  const config = baseConfig(v);
  const store = openHotStore({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes });
  try {
    const { tenant, enrollKey } = await createTenant(store, { supportId: requireStr(v, 'support-id'), name: requireStr(v, 'name'), now: Date.now() });
    if (v.json) process.stdout.write(`${JSON.stringify({ supportId: tenant.supportId, name: tenant.name, enrollKey })}\n`);
    else process.stdout.write(`Tenant ${tenant.supportId} (${tenant.name}) created.\nEnrollment key (shown once, give it to the agents):\n${enrollKey}\n`);
  } finally {
    await store.close();
  }
}

async function cmdInspect(args: string[]): Promise<void> {
  const v = parse(args, { json: { type: 'boolean' } });
  const config = baseConfig(v);
  const store = openHotStore({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes });
  try {
    const r = inspectStore(store);
    if (v.json) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    const lines = [
      `tenants            ${r.tenants}`,
      `devices            ${r.devices}`,
      `batches            ${r.batches} (batch-id index ${r.batchIds})`,
      `events             ${r.events} (processed by shards: ${r.eventsProcessed})`,
      `seq gaps           ${r.seqGaps} missing events on ${r.seqGapDevices.length} devices`,
      `log / checkpoint   ${r.lastLsn} / ${r.minCheckpoint}`,
      'events by kind:',
      ...Object.entries(r.eventsByKind)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `  ${k.padEnd(18)} ${n}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await store.close();
  }
}

async function cmdSimulate(args: string[]): Promise<void> {
  const v = parse(args, {
    url: { type: 'string' },
    'enroll-key': { type: 'string' },
    agents: { type: 'string' },
    eps: { type: 'string' },
    duration: { type: 'string' },
    'batch-ms': { type: 'string' },
    seed: { type: 'string' },
    state: { type: 'string' },
    'detect-rate': { type: 'string' },
    'max-unacked': { type: 'string' },
    'drain-timeout': { type: 'string' },
  });
  const { runSimulation } = await import('../bench/load/simulator.js');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const summary = await runSimulation({
    url: str(v, 'url') ?? 'ws://127.0.0.1:9100/agent/v1',
    enrollKey: requireStr(v, 'enroll-key'),
    agents: numFlag(v, 'agents') ?? 10,
    eps: numFlag(v, 'eps') ?? 20,
    durationSec: numFlag(v, 'duration') ?? 30,
    batchMs: numFlag(v, 'batch-ms') ?? 1000,
    seed: numFlag(v, 'seed') ?? 1,
    statePath: str(v, 'state') ?? './kiseki-sim-state.json',
    ...(numFlag(v, 'detect-rate') === undefined ? {} : { detectRate: numFlag(v, 'detect-rate')! }),
    ...(numFlag(v, 'max-unacked') === undefined ? {} : { maxUnacked: numFlag(v, 'max-unacked')! }),
    ...(numFlag(v, 'drain-timeout') === undefined ? {} : { drainTimeoutSec: numFlag(v, 'drain-timeout')! }),
    signal: controller.signal,
    log: (msg: string) => process.stderr.write(`${msg}\n`),
  });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

/** The value of `--data DIR` or `--data=DIR` for commands that parse the rest of their flags themselves. */
function dataDirFlag(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--data') return args[i + 1];
    if (args[i]!.startsWith('--data=')) return args[i]!.slice('--data='.length);
  }
  return undefined;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return cmdStart(rest);
    case 'tenant':
      return cmdTenant(rest);
    case 'inspect':
      return cmdInspect(rest);
    case 'simulate':
      return cmdSimulate(rest);
    case 'report':
      return cmdReport(rest);
    case 'alerts':
      return cmdAlerts(rest);
    case 'exception':
      return cmdException(rest);
    case 'user':
      return cmdUser(rest);
    case 'bench': {
      const { runBenchCommand } = await import('../bench/load/bench-cli.js');
      process.exitCode = await runBenchCommand(rest);
      return;
    }
    case 'sigma': {
      const { runSigmaCommand } = await import('../engine/sigma/cli.js');
      process.exitCode = await runSigmaCommand(rest);
      return;
    }
    case 'export': {
      const config = loadConfig(configFromEnv(process.env), { dataDir: dataDirFlag(rest) });
      const { runExportCommand } = await import('../export/index.js');
      process.exitCode = await runExportCommand(rest, {
        dataDir: config.dataDir,
        stdout: process.stdout,
        stderr: process.stderr,
        isTTY: process.stderr.isTTY === true,
        mapSizeBytes: config.storage.mapSizeBytes,
      });
      return;
    }
    case 'import':
    case 'detect': {
      // These commands parse their own flags; --data is resolved here like everywhere else.
      const config = loadConfig(configFromEnv(process.env), { dataDir: dataDirFlag(rest) });
      const { runImportCommand, runDetectCommand } = await import('../ingest/import/index.js');
      const io = { dataDir: config.dataDir, stdout: process.stdout, stderr: process.stderr };
      process.exitCode = command === 'import' ? await runImportCommand(rest, io) : await runDetectCommand(rest, io);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new KisekiError('ERR_USAGE', { reason: `unknown command ${command}` });
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (isKisekiError(err)) {
    process.stderr.write(`kiseki: ${err.message} ${err.details ? JSON.stringify(err.details) : ''}\n`);
    if (err.code === 'ERR_USAGE') process.stderr.write(`\n${USAGE}`);
    process.exit(err.code === 'ERR_USAGE' ? 64 : 1);
  }
  process.stderr.write(`kiseki: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
