/**
 * Device identities of imported hosts. The import speaks to the server as the
 * host's agent would, so it needs each device's token; kiseki stores tokens
 * only as hashes, so the import keeps the tokens of the devices it enrolled in
 * `<dataDir>/import-identities.json` (mode 0600, like a private key: anyone
 * holding it can write those devices' trails). The file is rewritten
 * atomically (temp file, then rename) right after each enrollment, before
 * any event is sent, so a crash never leaves a device whose token is lost.
 *
 * A lock file keeps two imports of the same data directory from enrolling
 * the same host twice or numbering one device's events concurrently.
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KisekiError } from '../../core/errors.js';
import { isProcessAlive } from '../../core/process-alive.js';

export interface ImportIdentity {
  supportId: string;
  /** The computer name as first imported. */
  computer: string;
  tmid: string;
  token: string;
  createdAt: number;
}

interface IdentityFile {
  version: 1;
  identities: ImportIdentity[];
}

export const IDENTITY_FILE = 'import-identities.json';
export const LOCK_FILE = 'import.lock';

function identityFileError(path: string, reason: string): KisekiError {
  return new KisekiError('ERR_IDENTITY_FILE', { path, reason });
}

export function identityFilePath(dataDir: string): string {
  return join(dataDir, IDENTITY_FILE);
}

function isIdentity(v: unknown): v is ImportIdentity {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.supportId === 'string' && typeof o.computer === 'string' && typeof o.tmid === 'string' && typeof o.token === 'string';
}

/** The identities kept so far; none when the file does not exist yet. */
export function loadIdentities(dataDir: string): ImportIdentity[] {
  const path = identityFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw identityFileError(path, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw identityFileError(path, `${path} is not valid JSON; restore it from a backup or move it away (the devices it names will then be enrolled again)`);
  }
  const list = (parsed as Partial<IdentityFile> | null)?.identities;
  if (!Array.isArray(list) || !list.every(isIdentity)) throw identityFileError(path, `${path} does not hold import identities`);
  return list;
}

export function saveIdentities(dataDir: string, identities: readonly ImportIdentity[]): void {
  const path = identityFilePath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  const body: IdentityFile = { version: 1, identities: [...identities] };
  writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** The identity of a tenant's host, matching computer names case-insensitively. */
export function findIdentity(identities: readonly ImportIdentity[], supportId: string, computer: string): ImportIdentity | undefined {
  const want = computer.trim().toUpperCase();
  return identities.find((i) => i.supportId === supportId && i.computer.trim().toUpperCase() === want);
}


/**
 * Takes the import lock of a data directory; returns its release. A lock
 * left by a process that no longer runs is taken over.
 * @throws KisekiError ERR_IMPORT_LOCKED when another import holds it, ERR_IDENTITY_FILE when the lock file cannot be made.
 */
export function acquireImportLock(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw identityFileError(path, `cannot create ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      const holder = Number(existsSync(path) ? readFileSync(path, 'utf8').trim() : NaN);
      if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && isProcessAlive(holder)) {
        throw new KisekiError('ERR_IMPORT_LOCKED', { pid: holder, reason: `another import or detect (pid ${holder}) is running on this data directory; wait for it to finish` });
      }
      rmSync(path, { force: true });
    }
  }
  throw identityFileError(path, `cannot take the import lock ${path}`);
}
