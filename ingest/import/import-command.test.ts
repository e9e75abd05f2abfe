import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type HotStore } from '../../storage/index.js';
import { runDetectCommand, runImportCommand, type ImportSummary } from './index.js';
import { IDENTITY_FILE, loadIdentities } from './import-identities.js';
import { storedEvents } from './stored-trail.js';
import { textSink } from '../../test/support/text-sink.js';
import { ChunkWriter, evtxFile } from './evtx/evtx-fixture.js';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../../test/support/agent-harness.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const NXLOG = join(FIXTURES, 'download-chain.nxlog.jsonl');
const WINLOGBEAT = join(FIXTURES, 'download-chain.winlogbeat.jsonl');
const HOST = 'PC-IMPORT-01.corp.example';
const PAYLOAD = 'C:\\Users\\tanaka\\Downloads\\invoice_0415.pdf.exe';
const PAYLOAD_SHA = '04e72585b9111f88c2c02bfb544c20a2860847085c8630a86fe37c8b171ef7e2';
const PAYLOAD_PG = '{6f1c2a10-4b31-68ed-2a01-000000001f00}';


interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The running harness's `settled` (set by each test's harness). */
let settleCommitter = (): Promise<void> => Promise.resolve();

async function run(command: typeof runImportCommand, args: string[], dataDir: string): Promise<Run> {
  const stdout = textSink();
  const stderr = textSink();
  const code = await command(args, { dataDir, stdout, stderr });
  // An ack waits for the ack log only: what the command sent is read from LMDB once the committer settled.
  await settleCommitter();
  const r = { code, stdout: stdout.text(), stderr: stderr.text() };
  // Whatever happens, never a stack trace.
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r;
}

async function deadPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('kiseki import sysmon / kiseki detect (agent server in process)', () => {
  let dir: string;
  let store: HotStore;
  let url: string;

  let harness: AgentHarness;
  beforeEach(async () => {
    harness = await startAgentHarness();
    settleCommitter = () => harness.settled();
    ({ dir, store, url } = harness);
  });
  afterEach(() => stopAgentHarness(harness));

  it('imports a host’s trail in time order, enrolling its device and reporting bad lines and duplicates', async () => {
    const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, NXLOG], dir);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as ImportSummary;
    expect(s).toMatchObject({
      ok: true,
      tenant: 'T001',
      lines: 18,
      events: { read: 16, mapped: 16, skipped: 0, duplicates: 1, merged: 0, alreadyImported: 0, sent: 15 },
      badLines: {
        count: 2,
        first: [
          { file: NXLOG, line: 11, reason: 'invalid_json' },
          { file: NXLOG, line: 19, reason: 'not_an_object' },
        ],
      },
      devicesEnrolled: 1,
      batches: { sent: 1, acked: 1, duplicateAcks: 0 },
    });
    expect(s.byKind).toEqual({ logon: 1, 'proc.start': 5, 'net.dns': 1, 'file.create': 3, 'net.conn': 1, 'image.load': 1, 'reg.set': 1, 'proc.access': 1, 'proc.end': 1 });
    expect(s.hosts).toEqual([expect.objectContaining({ computer: HOST, enrolled: true, events: 15, firstSeq: 1, lastSeq: 15 })]);
    const tmid = s.hosts[0]!.tmid;

    // The device and its identity: the token only in the identity file (0600), its hash in the store.
    const device = store.devices.get(tmid)!;
    expect(device).toMatchObject({ supportId: 'T001', computer: HOST, agentVersion: 'kiseki-import/1' });
    const identities = loadIdentities(dir);
    expect(identities).toEqual([expect.objectContaining({ supportId: 'T001', computer: HOST, tmid })]);
    expect(statSync(join(dir, IDENTITY_FILE)).mode & 0o777).toBe(0o600);
    expect(JSON.stringify(device)).not.toContain(identities[0]!.token);

    // Time order, with the payload's connection (stamped 5 ms early) after its start.
    const stored = [...storedEvents(store, tmid)];
    expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(stored.map((e) => e.k)).toEqual([
      'logon',
      'proc.start',
      'proc.start',
      'net.dns',
      'file.create',
      'file.create',
      'proc.start',
      'net.conn',
      'image.load',
      'proc.start',
      'proc.start',
      'reg.set',
      'file.create',
      'proc.access',
      'proc.end',
    ]);
    expect(stored[6]).toMatchObject({ pg: PAYLOAD_PG, image: PAYLOAD });
    expect(stored[7]).toMatchObject({ pg: PAYLOAD_PG, rip: '198.51.100.7', ts: stored[6]!.ts - 5 });
    expect(store.log.trail(tmid)?.ranges).toEqual([[1, 15]]);
  });

  it('adds nothing when the same records are imported again, in either layout', async () => {
    const first = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, NXLOG], dir);
    expect(first.code, first.stderr).toBe(0);
    const tmid = (JSON.parse(first.stdout) as ImportSummary).hosts[0]!.tmid;
    // The Winlogbeat fixture holds the same records (same record numbers and times).
    const again = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, NXLOG, WINLOGBEAT], dir);
    expect(again.code, again.stderr).toBe(0);
    const s = JSON.parse(again.stdout) as ImportSummary;
    expect(s).toMatchObject({ ok: true, devicesEnrolled: 0, events: { read: 32, duplicates: 17, alreadyImported: 15, sent: 0 }, batches: { sent: 0 } });
    expect(s.hosts).toEqual([expect.objectContaining({ tmid, enrolled: false, events: 0, alreadyImported: 15 })]);
    expect([...storedEvents(store, tmid)]).toHaveLength(15);
    expect(store.log.trail(tmid)?.ranges).toEqual([[1, 15]]);
  });

  it('sends only the new records of a grown export, numbered on from the device’s seq', async () => {
    const lines = readFileSync(NXLOG, 'utf8').split('\n');
    const part = join(dir, 'part.jsonl');
    writeFileSync(part, lines.slice(0, 8).join('\n'));
    const first = JSON.parse((await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, part], dir)).stdout) as ImportSummary;
    const gz = join(dir, 'all.jsonl.gz');
    writeFileSync(gz, gzipSync(readFileSync(NXLOG)));
    const second = JSON.parse((await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, gz], dir)).stdout) as ImportSummary;
    expect(second.hosts[0]).toMatchObject({ tmid: first.hosts[0]!.tmid, firstSeq: first.hosts[0]!.lastSeq! + 1, lastSeq: 15 });
    expect(second.events.alreadyImported).toBe(first.events.sent);
  });

  it('puts every record on the host named by --computer', async () => {
    const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--computer', 'PC-LAB-7', '--url', url, NXLOG], dir);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as ImportSummary).hosts).toEqual([expect.objectContaining({ computer: 'PC-LAB-7', events: 15 })]);
  });

  it('injects a detection on an imported device once, with the process and hash the trail knows', async () => {
    const imported = JSON.parse((await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, NXLOG], dir)).stdout) as ImportSummary;
    const tmid = imported.hosts[0]!.tmid;
    const args = ['--tenant', 'T001', '--tmid', tmid, '--path', PAYLOAD, '--at', '2025-10-14T05:21:10Z', '--url', url];
    const r = await run(runDetectCommand, args, dir);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ tmid, seq: 16, ts: Date.UTC(2025, 9, 14, 5, 21, 10), path: PAYLOAD, sha256: PAYLOAD_SHA, pg: PAYLOAD_PG, alertId: expect.stringMatching(/^al_/) });
    const last = [...storedEvents(store, tmid)].at(-1)!;
    expect(last).toMatchObject({ seq: 16, k: 'av.detect', engine: 'import', threat: 'customer-reported', action: 'allowed', path: PAYLOAD, sha256: PAYLOAD_SHA, pg: PAYLOAD_PG, src: 'detect' });
    // The same detection again: recognised, not sent twice.
    const again = await run(runDetectCommand, args, dir);
    expect(JSON.parse(again.stdout)).toMatchObject({ seq: 16, duplicate: true, alertId: out.alertId });
    expect([...storedEvents(store, tmid)]).toHaveLength(16);
  });

  it('refuses to detect on a device that was not imported', async () => {
    const tenant = store.tenants.get('T001')!;
    const { device } = await store.devices.enroll(tenant, { computer: 'PC-AGENT', agentVersion: '3', os: 'Windows 11', ips: [], macs: [] }, Date.now());
    const r = await run(runDetectCommand, ['--tenant', 'T001', '--tmid', device.tmid, '--path', 'C:\\x.exe', '--url', url], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('was not created by `kiseki import`');
  });

  it('fails with a clear message and writes nothing when the server is not running', async () => {
    const port = await deadPort();
    const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', `ws://127.0.0.1:${port}/agent/v1`, NXLOG], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `kiseki import: Nothing answers at the agent endpoint: start the server with \`kiseki start\` first, or check the URL. {"url":"ws://127.0.0.1:${port}/agent/v1","problem":"ECONNREFUSED"}\n`,
    );
    expect(loadIdentities(dir)).toEqual([]);
  });

  it('fails when no line of the input is a JSON record', async () => {
    const path = join(dir, 'binary.dat');
    writeFileSync(path, 'garbage\nmore garbage\n');
    const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, path], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no records in the input (2 bad lines or .evtx issues)');
  });

  it('fails on an .evtx cut inside its header, listing the issue', async () => {
    const path = join(dir, 'binary.evtx');
    writeFileSync(path, 'ElfFile\u0000\u0001garbage\nmore garbage\n');
    const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, path], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no records in the input (1 bad lines or .evtx issues)');
    expect((JSON.parse(r.stdout) as ImportSummary).badLines.first).toEqual([{ file: path, line: 0, reason: 'evtx_truncated_file' }]);
  });

  it('lists what is wrong in a broken .evtx record and imports the others', async () => {
    const w = new ChunkWriter();
    w.record(1, 0n, (c) => {
      c.fragmentHeader();
      c.raw(0x2f);
    });
    const path = join(dir, 'broken.evtx');
    writeFileSync(path, evtxFile([w.finish()]));
    const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, path, NXLOG], dir);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as ImportSummary;
    expect(s.badLines.byReason).toEqual({ evtx_binxml_error: 1, invalid_json: 1, not_an_object: 1 });
    expect(s.badLines.first[0]).toEqual({ file: path, line: 1, reason: 'evtx_binxml_error', detail: 'unknown token 0x2f' });
  });

  it.each([
    ['no format', [], 64, 'name the format to import'],
    ['an unknown format', ['evtx', '--tenant', 'T001', 'x'], 64, 'unknown import format evtx'],
    ['no tenant', ['sysmon', 'x.json'], 64, '--tenant is required'],
    ['no file', ['sysmon', '--tenant', 'T001'], 64, 'name at least one file'],
    ['an unknown flag', ['sysmon', '--tenant', 'T001', '--bogus', 'x.json'], 64, 'unknown flag --bogus'],
    ['a bad URL', ['sysmon', '--tenant', 'T001', '--url', 'http://x', 'x.json'], 64, '--url must be a ws:// or wss:// URL'],
    ['an unknown tenant', ['sysmon', '--tenant', 'NOPE', 'x.json'], 1, 'no tenant with support ID NOPE'],
  ])('rejects %s', async (_name, args, code, message) => {
    const r = await run(runImportCommand, args, dir);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
  });

  it('names a missing input file', async () => {
    const missing = join(dir, 'missing.json');
    const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', '--url', url, missing], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`kiseki import: ${missing}: file not found\n`);
  });

  it.each([
    ['no path', ['--tenant', 'T001', '--tmid', 'X'], 64, '--path is required'],
    ['a bad hash', ['--tenant', 'T001', '--tmid', 'X', '--path', 'C:\\x', '--sha256', 'abc'], 64, '--sha256 takes 64 hexadecimal characters'],
    ['a bad time', ['--tenant', 'T001', '--tmid', 'X', '--path', 'C:\\x', '--at', 'yesterday'], 64, '--at takes a UTC time'],
    ['an unknown device', ['--tenant', 'T001', '--tmid', 'X', '--path', 'C:\\x'], 1, 'no device with TMID X'],
  ])('detect rejects %s', async (_name, args, code, message) => {
    const r = await run(runDetectCommand, args, dir);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
  });

  it('refuses a data directory without kiseki data', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'kiseki-empty-'));
    try {
      const r = await run(runImportCommand, ['sysmon', '--tenant', 'T001', NXLOG], empty);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no kiseki data in ${empty}`);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
