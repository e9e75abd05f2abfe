#!/usr/bin/env node
/**
 * The kiseki command line: parses argv and dispatches to the folders'
 * factories. Every command takes `--data DIR` (default ./data, or
 * KISEKI_DATA). Output meant for scripts goes to stdout; logs go to stderr.
 */
import { COMMON_FLAGS, parseFlags, parseJstDate, peekDataDir, requireFlag, usageError, type FlagSpecs, type FlagValues } from '../core/cli-flags.js';
import { CONFIG_FLAGS, configFromEnv, configFromFlags, loadConfig, type Config, type DeepPartial } from '../core/config.js';
import { describeError, isKisekiError, KisekiError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/logger.js';
import { renderReportText } from '../engine/index.js';
import { randomBytes } from 'node:crypto';
import { inspectStore, openHotStore, type HotStore, type Role } from '../storage/index.js';
import { installLastResort } from './last-resort.js';
import { startService } from './service.js';

const USAGE = `kiseki — trail-log backend for managed endpoint security

Usage:
  kiseki start [--data DIR] [--ingest-port 9100] [--http-port 8080] [--host H] [--shards N]
               [--tls-cert FILE --tls-key FILE] [--http-tls-cert FILE --http-tls-key FILE]
               [--client-ca FILE --require-client-cert] [--intel-dir DIR] [--log-level info]
               [--hot-retention-days 8] [--cold-retention-days 365] [--export-retention-days 30]
               [--export-workers 1] [--syslog --syslog-routes FILE [--syslog-tcp-port 5140]
               [--syslog-udp-port 5140] [--syslog-tls-port 6514 --syslog-tls-cert F --syslog-tls-key F]]
               [--role all|ingest|shard|api --nats URL[,URL...] [--nats-replicas 1|3] [--node-id ID] [--stream-max-age-days 8] [--node-http-port P] [--archive]]  (docs/CLUSTER.md)
  kiseki tenant create --name NAME --support-id ID [--json]
  kiseki tenant policy --support-id S [--isolate-on-black yes|no] [--auto-except-white yes|no]
                       [--tuning-until YYYY-MM-DD|none]   (JST; a date means through its end)
  kiseki user create --id LOGIN --role operator|admin|viewer [--support-id S] [--password P]
  kiseki user reset-password --id LOGIN [--password P]
  kiseki exception add --support-id S [--sha256 H] [--path-pattern GLOB] [--signer NAME]
                       [--expires YYYY-MM-DD] [--reason TEXT]
  kiseki inspect [--json]
  kiseki alerts --support-id S [--limit 20] [--json]
  kiseki report --alert ID [--revision N] [--json]
  kiseki import sysmon --tenant S [--computer NAME] [--url ws://127.0.0.1:9100/agent/v1] FILE...
  kiseki detect --tenant S --tmid T --path P [--sha256 H] [--at TIME]
  kiseki eval --cases FILE [--json] [--case NAME]... [--report] [--corpus DIR]
  kiseki sigma list [--rules DIR] [--json] | test --rules DIR --cases DIR [--json]
  kiseki sigma detections --tenant S [--device TMID] [--rule ID] [--since D] [--json]
  kiseki sigma hunt --tenant S [--since D] [--rule ID | --rules DIR] [--json]
  kiseki simulate --url ws://127.0.0.1:9100/agent/v1[,URL...] --enroll-key KEY [--agents 10] [--eps 20]
                  [--duration 30] [--batch-ms 1000] [--seed 1] [--state FILE] [--detect-rate R]
                  [--max-unacked 8] [--drain-timeout 30] [--agent-version 3.2.1]
                  [--dropouts SHARE:AFTER_SEC:DOWN_SEC] [--logon-bursts SHARE:EVERY_SEC:SIZE]
  kiseki export daily --tenant S --date YYYY-MM-DD [--partial] [--rebuild]
  kiseki export spot30 --tenant S --from YYYY-MM-DD --to YYYY-MM-DD
  kiseki export spot1y --tenant S --tmid T [--computer NAME]
  kiseki export close-days                 (collection days run 05:00-05:00 JST)
  kiseki bench [--scenario steady-1k] [--duration S] [--no-baselines] [--micro [NAME]] [--list]

Every command takes --data DIR (default ./data). Flags are --name value or --name=value.
Environment: KISEKI_DATA, KISEKI_INGEST_PORT, KISEKI_HTTP_PORT, KISEKI_SHARDS, KISEKI_LOG_LEVEL
and the rest listed in docs/OPERATIONS.md; flags win over the environment.
`;

type Values = Readonly<Record<string, unknown>>;

/** Parses a command's flags (plus --data and --help) with the one CLI flag parser. */
function parse<S extends FlagSpecs>(args: string[], specs: S): FlagValues<S & typeof COMMON_FLAGS> {
  return parseFlags(args, { ...specs, ...COMMON_FLAGS }).values;
}

function numFlag(values: Values, name: string): number | undefined {
  const v = values[name];
  return typeof v === 'number' ? v : undefined;
}

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

const requireStr = requireFlag;

function baseConfig(values: Values, extra: DeepPartial<Config> = {}): Readonly<Config> {
  return loadConfig(configFromEnv(process.env), { dataDir: str(values, 'data') }, extra);
}

async function cmdStart(args: string[]): Promise<void> {
  // Every configuration flag (core/config.ts CONFIG_SETTINGS), plus --host for both listeners.
  const v = parse(args, { ...CONFIG_FLAGS, host: { type: 'string' } });
  if (v.help) return void process.stdout.write(USAGE);
  const host = str(v, 'host');
  const config = loadConfig(configFromEnv(process.env), { ingest: { host }, http: { host } }, configFromFlags(v));
  const logger = createLogger(config.logLevel);
  // cluster (issue 19): `--role ingest|shard|api` runs a node over NATS JetStream; `all` (default) is the embedded mode.
  if (config.cluster.role !== 'all') return startClusterNode(config, logger);
  // Installed before start-up: the policy (log and keep serving, or exit 70) is in bin/last-resort.ts.
  let countRejection: (() => void) | undefined;
  const lastResort = installLastResort({ logger, countRejection: () => countRejection?.(), exit: (code) => process.exit(code) });
  const service = await startService({ config, logger });
  countRejection = () => service.metrics.processUnhandledRejectionsTotal.inc();
  lastResort.setShutdown(() => service.close());
  // Machine-readable line for scripts and tests that start the server with port 0.
  process.stdout.write(`${JSON.stringify({ event: 'listening', ingestPort: service.ingestPort, httpPort: service.httpPort, syslogPorts: service.syslogPorts, dataDir: config.dataDir })}\n`);
  stopOnSignals(logger, () => service.close());
}

/** SIGINT / SIGTERM: a clean shutdown (exit 0, or 1 when it fails); a second signal exits at once (130). */
function stopOnSignals(logger: Logger, close: () => Promise<void>): void {
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'Second signal: exiting without waiting.');
      process.exit(130);
    }
    logger.info({ signal }, 'Signal received.');
    close().then(
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

/** `kiseki start --role ingest|shard|api` (docs/CLUSTER.md): one node role, stopped by SIGINT/SIGTERM like the embedded server. */
async function startClusterNode(config: Readonly<Config>, logger: Logger): Promise<void> {
  const { startApiNode, startIngestNode, startShardNode } = await import('../cluster/index.js');
  const node =
    config.cluster.role === 'ingest'
      ? await startIngestNode({ config, logger }).then((n) => ({ close: () => n.close(), line: { event: 'listening', role: 'ingest', node: n.nodeId, ingestPort: n.ingestPort, httpPort: n.httpPort, dataDir: config.dataDir } }))
      : config.cluster.role === 'api'
        ? await startApiNode({ config, logger }).then((n) => ({ close: () => n.close(), line: { event: 'listening', role: 'api', node: n.nodeId, httpPort: n.httpPort, dataDir: config.dataDir, archive: config.cluster.archive } }))
        : await startShardNode({ config, logger }).then((n) => ({ close: () => n.close(), line: { event: 'listening', role: 'shard', node: n.nodeId, vshards: n.owned().length, httpPort: n.httpPort, dataDir: config.dataDir } }));
  process.stdout.write(`${JSON.stringify(node.line)}\n`);
  stopOnSignals(logger, () => node.close());
}

async function withStore<T>(values: Values, run: (store: HotStore) => Promise<T> | T): Promise<T> {
  const config = baseConfig(values);
  const store = openHotStore({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

function yesNo(values: Values, name: string): boolean | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  if (v === 'yes' || v === 'true' || v === 'on') return true;
  if (v === 'no' || v === 'false' || v === 'off') return false;
  throw usageError(`--${name} takes yes or no`, { value: v });
}

/** A JST date flag: `2026-12-31` means through the end of that day in Japan (core/cli-flags.ts parseJstDate). */
function dateFlag(values: Values, name: string): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const ms = parseJstDate(v);
  if (ms === undefined) throw usageError(`--${name} takes a JST date like 2026-12-31 (through the end of that day) or a time like 2026-12-31T09:00`, { value: v });
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
  const policy = await withStore(v, (store) => store.tenants.setPolicy(requireStr(v, 'support-id'), change, Date.now()));
  process.stdout.write(`${JSON.stringify(policy)}\n`);
}

async function cmdException(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'add') throw usageError('expected: kiseki exception add --support-id S ...');
  const v = parse(rest, { 'support-id': { type: 'string' }, sha256: { type: 'string' }, 'path-pattern': { type: 'string' }, signer: { type: 'string' }, expires: { type: 'string' }, reason: { type: 'string' } });
  const entry = await withStore(v, (store) =>
    store.exceptions.add({
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
    if (role !== 'operator' && role !== 'admin' && role !== 'viewer') throw usageError('--role is operator, admin or viewer');
    const password = str(v, 'password') ?? temporaryPassword();
    const user = await withStore(v, (store) =>
      store.identity.createUser({ id: requireStr(v, 'id'), role: role as Role, supportId: str(v, 'support-id') ?? null, password, now: Date.now() }),
    );
    process.stdout.write(`${JSON.stringify({ id: user.id, role: user.role, supportId: user.supportId, mustChangePassword: true, ...(str(v, 'password') === undefined ? { temporaryPassword: password } : {}) })}\n`);
    return;
  }
  if (sub === 'reset-password') {
    const v = parse(rest, { id: { type: 'string' }, password: { type: 'string' } });
    const password = str(v, 'password') ?? temporaryPassword();
    // A reset unlocks the account and forces a change at the next login.
    await withStore(v, (store) => store.identity.setPassword(requireStr(v, 'id'), password, Date.now(), true));
    process.stdout.write(`${JSON.stringify({ id: requireStr(v, 'id'), mustChangePassword: true, ...(str(v, 'password') === undefined ? { temporaryPassword: password } : {}) })}\n`);
    return;
  }
  throw usageError('expected: kiseki user create | kiseki user reset-password');
}

async function cmdReport(args: string[]): Promise<void> {
  const v = parse(args, { alert: { type: 'string' }, revision: { type: 'number' }, json: { type: 'boolean' } });
  const id = requireStr(v, 'alert');
  await withStore(v, (store) => {
    const view = store.alerts.view(id);
    if (view === undefined) throw new KisekiError('ERR_ALERT_NOT_FOUND', { alert: id });
    const wanted = numFlag(v, 'revision');
    const report = wanted === undefined ? view.revisions.at(-1) : view.revisions.find((r) => r.revision === wanted);
    if (v.json) process.stdout.write(`${JSON.stringify({ alert: view.alert, report: report ?? null, revisions: view.revisions.length, verdicts: view.verdicts })}\n`);
    else process.stdout.write(renderReportText(view.alert, report, view.verdicts));
  });
}

async function cmdAlerts(args: string[]): Promise<void> {
  const v = parse(args, { 'support-id': { type: 'string' }, limit: { type: 'number' }, json: { type: 'boolean' } });
  await withStore(v, (store) => {
    // Effective verdicts (an analyst's change wins), the same the API shows.
    const alerts = store.alerts.latest(requireStr(v, 'support-id'), numFlag(v, 'limit') ?? 20);
    if (v.json) return void process.stdout.write(`${JSON.stringify(alerts)}\n`);
    for (const a of alerts) {
      process.stdout.write(`${a.id}  ${new Date(a.detectedAt).toISOString()}  ${a.verdict.padEnd(5)} ${a.state.padEnd(10)} ${a.computer}  ${a.threat}  ${a.path}\n`);
    }
  });
}

async function cmdTenant(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'policy') return cmdTenantPolicy(rest);
  if (sub !== 'create') throw usageError('expected: kiseki tenant create --name N --support-id S');
  const v = parse(rest, { name: { type: 'string' }, 'support-id': { type: 'string' }, json: { type: 'boolean' } });
  const config = baseConfig(v);
  const store = openHotStore({ dataDir: config.dataDir, mapSizeBytes: config.storage.mapSizeBytes });
  try {
    const { tenant, enrollKey } = await store.tenants.create({ supportId: requireStr(v, 'support-id'), name: requireStr(v, 'name'), now: Date.now() });
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
      `quarantined        ${Object.values(r.quarantined).reduce((a, b) => a + b, 0)} poison events${Object.keys(r.quarantined).length === 0 ? '' : ` (${Object.entries(r.quarantined).map(([k, n]) => `${k} ${n}`).join(', ')})`}`,
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

/** `a:b:c` of three non-negative numbers (`--dropouts 0.1:10:5`), or undefined when the flag is absent. */
function triple(v: Values, flag: string): [number, number, number] | undefined {
  const text = str(v, flag);
  if (text === undefined) return undefined;
  const parts = text.split(':').map(Number);
  if (parts.length !== 3 || parts.some((n) => !Number.isFinite(n) || n < 0)) throw new KisekiError('ERR_USAGE', { flag: `--${flag}`, reason: `--${flag} takes three numbers a:b:c` });
  return parts as [number, number, number];
}

async function cmdSimulate(args: string[]): Promise<void> {
  const v = parse(args, {
    url: { type: 'string' },
    'enroll-key': { type: 'string' },
    agents: { type: 'number' },
    eps: { type: 'number' },
    duration: { type: 'number' },
    'batch-ms': { type: 'number' },
    seed: { type: 'number' },
    state: { type: 'string' },
    'detect-rate': { type: 'number' },
    'max-unacked': { type: 'number' },
    'drain-timeout': { type: 'number' },
    dropouts: { type: 'string' },
    'logon-bursts': { type: 'string' },
    'agent-version': { type: 'string' },
  });
  const dropouts = triple(v, 'dropouts');
  const bursts = triple(v, 'logon-bursts');
  const { runSimulation } = await import('../agent/index.js');
  // A first SIGINT / SIGTERM ends generation and drains what is unacked; a second one stops at once.
  const controller = new AbortController();
  const stopGeneration = new AbortController();
  const onSignal = (): void => (stopGeneration.signal.aborted ? controller.abort() : stopGeneration.abort());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const summary = await runSimulation({
    url: endpointUrls(str(v, 'url') ?? 'ws://127.0.0.1:9100/agent/v1'),
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
    ...(dropouts === undefined ? {} : { dropouts: { share: dropouts[0], afterSec: dropouts[1], downSec: dropouts[2] } }),
    ...(bursts === undefined ? {} : { failedLogonBursts: { share: bursts[0], everySec: bursts[1], size: Math.max(1, Math.round(bursts[2])) } }),
    ...(str(v, 'agent-version') === undefined ? {} : { agentVersion: str(v, 'agent-version')! }),
    signal: controller.signal,
    stopGeneration: stopGeneration.signal,
    log: (msg: string) => process.stderr.write(`${msg}\n`),
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}


/** `--url A,B`: the endpoints of several ingest nodes (agents move to the next on a lost connection); one URL stays a string. */
function endpointUrls(flag: string): string | string[] {
  const urls = flag
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  return urls.length === 1 ? urls[0]! : urls;
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
      if (rest[0] === 'hunt' || rest[0] === 'detections') {
        const config = loadConfig(configFromEnv(process.env), { dataDir: peekDataDir(rest) });
        const { runSigmaStoreCommand } = await import('../engine/sigma-hunt-cli.js');
        process.exitCode = await runSigmaStoreCommand(rest, { stdout: process.stdout, stderr: process.stderr, dataDir: config.dataDir });
        return;
      }
      const { runSigmaCommand } = await import('../engine/sigma/cli.js');
      process.exitCode = await runSigmaCommand(rest);
      return;
    }
    case 'export': {
      const config = loadConfig(configFromEnv(process.env), { dataDir: peekDataDir(rest) });
      const { runExportCommand } = await import('../export/index.js');
      process.exitCode = await runExportCommand(rest, {
        dataDir: config.dataDir,
        stdout: process.stdout,
        stderr: process.stderr,
        isTTY: process.stderr.isTTY === true,
        mapSizeBytes: config.storage.mapSizeBytes,
        config: config.export,
      });
      return;
    }
    case 'import':
    case 'detect': {
      // These commands parse their own flags; --data is resolved here like everywhere else.
      const config = loadConfig(configFromEnv(process.env), { dataDir: peekDataDir(rest) });
      const { runImportCommand, runDetectCommand } = await import('../ingest/import/index.js');
      const io = { dataDir: config.dataDir, stdout: process.stdout, stderr: process.stderr };
      process.exitCode = command === 'import' ? await runImportCommand(rest, io) : await runDetectCommand(rest, io);
      return;
    }
    case 'eval': {
      // In-process, in temporary data directories: no server, no --data.
      const { runEvalCommand } = await import('../engine/eval/index.js');
      process.exitCode = await runEvalCommand(rest, { stdout: process.stdout, stderr: process.stderr });
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw usageError(`unknown command ${command}`);
  }
}

/** Exit codes for scripts and supervisors (docs/ERRORS.md): sysexits where one fits. */
const EXIT_CODES: Partial<Record<string, number>> = { ERR_USAGE: 64, ERR_DATA_DIR_LOCKED: 73, ERR_STORAGE_DAMAGED: 74 };

main(process.argv.slice(2)).catch((err: unknown) => {
  if (isKisekiError(err)) {
    process.stderr.write(`kiseki: ${describeError(err)}\n`);
    if (err.code === 'ERR_USAGE') process.stderr.write(`\n${USAGE}`);
    process.exit(EXIT_CODES[err.code] ?? 1);
  }
  process.stderr.write(`kiseki: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
