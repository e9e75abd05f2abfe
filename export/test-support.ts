/**
 * Test helpers of export/: a temporary hot store filled with batches built
 * the way ingest stores them, and real readers (Info-ZIP `unzip`, Python
 * `zipfile`, DuckDB) to check what the exporters write. Not part of the
 * public surface.
 */
import { encode } from '@msgpack/msgpack';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compress } from 'zstd-napi';
import { openHotStore, type DeviceRecord, type HotStore } from '../storage/index.js';

export interface TestStore {
  dir: string;
  store: HotStore;
  /** Next lsn to use. */
  nextLsn: number;
  close(): Promise<void>;
}

export function openTestStore(prefix = 'kiseki-export-'): TestStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = openHotStore({ dataDir: dir, mapSizeBytes: 64 * 1024 * 1024 });
  const t: TestStore = {
    dir,
    store,
    nextLsn: 1,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

export async function addTenant(t: TestStore, supportId: string): Promise<void> {
  await t.store.tenants.save({ supportId, name: `Tenant ${supportId}`, enrollKeyHash: '0'.repeat(64), createdAt: 0 });
}

export async function addDevice(t: TestStore, supportId: string, tmid: string, computer: string): Promise<void> {
  const device: DeviceRecord = {
    tmid,
    supportId,
    computer,
    agentVersion: '1.0.0',
    os: 'Windows 11',
    ips: [],
    macs: [],
    tokenHash: '0'.repeat(64),
    firstSeen: 0,
    lastSeen: 0,
    connected: false,
  };
  await t.store.devices.save(device);
}

let idCounter = 0;

/** A batch id: 32 lowercase hex characters, unique in the process. */
export function batchId(): string {
  idCounter++;
  return `${idCounter.toString(16).padStart(8, '0')}${'ab'.repeat(12)}`;
}

/** Simple events seq first..first+n-1, kinds cycling through `kinds`. */
export function simpleEvents(first: number, n: number, kinds: string[] = ['proc.start', 'net.conn', 'file.write'], ts = 1_767_000_000_000): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const k = kinds[i % kinds.length]!;
    const ev: Record<string, unknown> = { ts: ts + i, k, seq: first + i, pg: '{c37ebd7d-9f30-68ed-7a04-000000002a00}', pid: 4242, user: 'S-1-5-18' };
    if (k === 'net.conn') Object.assign(ev, { proto: 'tcp', dir: 'out', lip: '10.0.0.5', lport: 50000 + i, rip: '203.0.113.9', rport: 443 });
    if (k === 'proc.start') Object.assign(ev, { image: 'C:\\Windows\\System32\\cmd.exe', cmd: 'cmd.exe /c echo 日本語', ppid: 1000 });
    if (k === 'file.write') Object.assign(ev, { path: 'C:\\Users\\tanaka\\a.txt', size: 1234, vol: 'fixed' });
    out.push(ev);
  }
  return out;
}

/** Commits one batch of `events` for `tmid`, received at `recvAt`. Returns its lsn and id. */
export async function addBatch(
  t: TestStore,
  tmid: string,
  events: Record<string, unknown>[],
  times: { recvAt: number; sentAt?: number; id?: string },
): Promise<{ lsn: number; id: string }> {
  const lsn = t.nextLsn++;
  const id = times.id ?? batchId();
  const first = (events[0]?.seq as number | undefined) ?? 0;
  const last = (events[events.length - 1]?.seq as number | undefined) ?? 0;
  await t.store.log.commitBatches([{ lsn, record: { tmid, id, sentAt: times.sentAt ?? times.recvAt - 1000, recvAt: times.recvAt, first, last, n: events.length, z: compress(encode(events)) } }]);
  return { lsn, id };
}

/** `unzip -t` exit code and output. */
export function unzipTest(path: string): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync('unzip', ['-t', path], { encoding: 'utf8', maxBuffer: 256 << 20 }) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Entry names listed by `unzip -Z1` (Info-ZIP's own reader), in archive order. */
export function unzipNames(path: string): string[] {
  return execFileSync('unzip', ['-Z1', path], { encoding: 'utf8', maxBuffer: 256 << 20 })
    .split('\n')
    .filter((l) => l !== '');
}

/** Runs Python's zipfile over an archive: test CRCs and return names; optionally read nested zips' members. */
export function pythonZip(path: string): { names: string[]; bad: string | null; nested: Record<string, { names: string[]; text: Record<string, string> }> } {
  const script = `
import io, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
out = {"names": z.namelist(), "bad": z.testzip(), "nested": {}}
for n in z.namelist():
    if n.endswith(".zip"):
        inner = zipfile.ZipFile(io.BytesIO(z.read(n)))
        out["nested"][n] = {"names": inner.namelist(), "text": {m: inner.read(m).decode("utf-8") for m in inner.namelist()}}
print(json.dumps(out))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, path], { encoding: 'utf8', maxBuffer: 512 << 20 })) as ReturnType<typeof pythonZip>;
}

/** Runs a query with DuckDB and returns rows as plain objects (BIGINTs as numbers). */
export async function duckdb(sql: string): Promise<Record<string, unknown>[]> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}
