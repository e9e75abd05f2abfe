/**
 * What `kiseki import` and `kiseki detect` share: argument parsing with clear
 * usage errors, the data directory and its store, the import lock, device
 * identities (found in the identity file or enrolled), and turning any
 * failure into one line on stderr and an exit code — never a stack trace.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { COMMON_FLAGS, parseFlags as parseCliFlags, requireFlag as requireCliFlag, usageError, type FlagSpecs, type ParsedFlags } from '../../core/cli-flags.js';
import { describeError, isKisekiError, KisekiError } from '../../core/errors.js';
import { openHotStore, type DeviceRecord, type HotStore, type TenantRecord } from '../../storage/index.js';
import type { HelloFacts } from './import-client.js';
import { acquireImportLock, findIdentity, loadIdentities, saveIdentities, type ImportIdentity } from './import-identities.js';

export interface CommandIo {
  /** The data directory of the server (`--data`, resolved by the caller). */
  dataDir: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Exit codes: 0 done, 1 failed, 64 bad command line (as the rest of the CLI). */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 64;

export { usageError };

/** A failure with a reason meant for the operator as it is (ERR_COMMAND_FAILED). */
export function commandError(reason: string): KisekiError {
  return new KisekiError('ERR_COMMAND_FAILED', { reason });
}

/** Parses flags with the CLI's one parser; `--data` is accepted and ignored (the caller resolved it into `io.dataDir`). */
export function parseFlags<S extends FlagSpecs>(args: string[], options: S, positionals: boolean): ParsedFlags<S & typeof COMMON_FLAGS> {
  return parseCliFlags(args, { ...options, ...COMMON_FLAGS }, { positionals });
}

export function flag(values: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export const requireFlag = requireCliFlag;

export function agentUrl(values: Readonly<Record<string, unknown>>, fallback: string): string {
  const url = flag(values, 'url') ?? fallback;
  if (!/^wss?:\/\/[^\s]+$/i.test(url)) throw usageError(`--url must be a ws:// or wss:// URL, like ${fallback}`);
  return url;
}

/** Opens the store of an existing data directory (never creates one: that would hide a wrong --data). */
export function openExistingStore(dataDir: string): HotStore {
  if (!existsSync(join(dataDir, 'kiseki.lmdb'))) {
    throw commandError(`no kiseki data in ${dataDir}: pass the server's --data directory (create a tenant with \`kiseki tenant create\` first)`);
  }
  return openHotStore({ dataDir });
}

export function requireTenant(store: HotStore, supportId: string): TenantRecord {
  const tenant = store.tenants.get(supportId);
  if (tenant === undefined) throw commandError(`no tenant with support ID ${supportId}: create it with \`kiseki tenant create --support-id ${supportId} --name NAME\``);
  return tenant;
}

/** Runs `body` holding the data directory's import lock and its store, closing both after. */
export async function withImportStore<T>(dataDir: string, body: (store: HotStore) => Promise<T>): Promise<T> {
  const store = openExistingStore(dataDir);
  let release: (() => void) | undefined;
  try {
    release = acquireImportLock(dataDir);
    return await body(store);
  } finally {
    release?.();
    await store.close();
  }
}

export function factsFor(computer: string): HelloFacts {
  return { computer: computer.slice(0, 256), agentVersion: 'kiseki-import/1', os: 'Windows (imported event logs)', ips: [], macs: [] };
}

export interface ResolvedDevice {
  identity: ImportIdentity;
  device: DeviceRecord;
  enrolled: boolean;
  /** Set when an agent-enrolled device has the same name: the import cannot write as it. */
  note?: string;
}

/**
 * The device an imported host's events go to: the one named in the identity
 * file when its token still authenticates, else a newly enrolled device
 * (its identity saved before anything is sent).
 */
export async function resolveDevice(store: HotStore, dataDir: string, tenant: TenantRecord, computer: string, now: number): Promise<ResolvedDevice> {
  const identities = loadIdentities(dataDir);
  const known = findIdentity(identities, tenant.supportId, computer);
  if (known !== undefined) {
    const device = store.devices.authenticate(known.tmid, known.token);
    if (device !== undefined && device.supportId === tenant.supportId) return { identity: known, device, enrolled: false };
  }
  const { device, token } = await store.devices.enroll(tenant, factsFor(computer), now);
  const identity: ImportIdentity = { supportId: tenant.supportId, computer: computer.trim(), tmid: device.tmid, token, createdAt: now };
  saveIdentities(dataDir, [...identities.filter((i) => i !== known), identity]);
  const want = computer.trim().toUpperCase();
  let other: DeviceRecord | undefined;
  for (const value of store.devices.scan()) {
    if (value.supportId === tenant.supportId && value.tmid !== device.tmid && value.computer.trim().toUpperCase() === want) {
      other = value;
      break;
    }
  }
  return {
    identity,
    device,
    enrolled: true,
    ...(known !== undefined
      ? { note: `the identity kept for this host (${known.tmid}) no longer authenticates; enrolled a new device` }
      : other !== undefined
        ? { note: `device ${other.tmid} has the same computer name but its token is not in import-identities.json (an agent enrolled it); imported as a separate device` }
        : {}),
  };
}

/** One line on stderr for a failure, and its exit code. Never a stack trace. */
export function reportFailure(err: unknown, command: string, usage: string, io: CommandIo): number {
  const say = (msg: string) => io.stderr.write(`kiseki ${command}: ${msg}\n`);
  if (isKisekiError(err, 'ERR_USAGE')) {
    say(describeError(err));
    io.stderr.write(`\n${usage}`);
    return EXIT_USAGE;
  }
  if (isKisekiError(err)) say(describeError(err));
  else say(`unexpected failure: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT_FAILED;
}
