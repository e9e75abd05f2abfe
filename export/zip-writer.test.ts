import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dosToMs, openZipReader } from './zip-reader.js';
import { buildInnerZip, ZipFileWriter } from './zip-writer.js';
import { pythonZip, unzipNames, unzipTest } from './test-support.js';

const MTIME = Date.parse('2026-01-05T06:07:08Z');

function yauzlNames(path: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: false, autoClose: true, validateEntrySizes: true }, (err, zip) => {
      if (err) return reject(err);
      const names: string[] = [];
      zip.on('entry', (e: yauzl.Entry) => names.push(e.fileName));
      zip.on('end', () => resolve(names));
      zip.on('error', reject);
    });
  });
}

describe('zip writer', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-zip-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('builds an inner zip every reader opens, with the .log deflated', () => {
    const text = Buffer.from('{"k":"proc.start","seq":1}\r\n'.repeat(200), 'utf8');
    const path = join(dir, 'inner.zip');
    const inner = buildInnerZip('260105150708000.log', text, MTIME, 6);
    execFileSync('sh', ['-c', `cat > ${path}`], { input: inner });
    expect(unzipTest(path).ok).toBe(true);
    expect(unzipNames(path)).toEqual(['260105150708000.log']);
    expect(execFileSync('unzip', ['-p', path], { maxBuffer: 1 << 24 }).equals(text)).toBe(true);
    // Info-ZIP reads the UTC extended timestamp and shows local time; the DOS fields hold JST wall-clock time.
    expect(execFileSync('unzip', ['-Z', '-T', path], { encoding: 'utf8', env: { ...process.env, TZ: 'Asia/Tokyo' } })).toContain('20260105.150708');
    const r = openZipReader(path);
    expect(r.entries[0]).toMatchObject({ name: '260105150708000.log', method: 8, uncompressedSize: text.length });
    expect(dosToMs(r.entries[0]!.dosDate, r.entries[0]!.dosTime)).toBe(MTIME);
    expect(inflateRawSync(r.readRaw(r.entries[0]!)).equals(text)).toBe(true);
    r.close();
  });

  // 65,536 entries written and read by three readers: about 16 s alone on 2 cores, over a minute
  // (the suite's default limit) when the machine runs another suite beside it.
  it('switches to Zip64 past 65,535 entries, and every reader still opens the archive', async () => {
    const path = join(dir, 'many.zip');
    const w = new ZipFileWriter(path);
    w.addDirectory('2026-01-05/', MTIME);
    const n = 66_000;
    for (let i = 0; i < n; i++) w.addStored(`2026-01-05/PC-${i % 7}/e${i}.txt`, Buffer.from(`entry ${i}\n`), { mtimeMs: MTIME });
    const r = w.finish();
    expect(r).toMatchObject({ entries: n + 1, zip64: true, bytes: statSync(path).size });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    const test = unzipTest(path);
    expect(test.ok, test.output.slice(-500)).toBe(true);
    expect(test.output).toContain('No errors detected');
    const names = unzipNames(path);
    expect(names).toHaveLength(n + 1);
    expect(names[66_000]).toBe('2026-01-05/PC-3/e65999.txt');
    const py = execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(len(z.namelist()), z.testzip(), z.read("2026-01-05/PC-4/e12345.txt").decode().strip())', path], { encoding: 'utf8' });
    expect(py.trim()).toBe(`${n + 1} None entry 12345`);
    expect(await yauzlNames(path)).toHaveLength(n + 1);
    const reader = openZipReader(path);
    expect(reader.entries).toHaveLength(n + 1);
    expect(reader.readRaw(reader.entries[12346]!).toString()).toBe('entry 12345\n');
    reader.close();
  }, 240_000);

  it('copies entries from one archive into another byte for byte, with UTF-8 names flagged', () => {
    const src = join(dir, 'src.zip');
    const w = new ZipFileWriter(src);
    const innerA = buildInnerZip('a.log', Buffer.from('x\r\n'.repeat(1000)), MTIME);
    const innerB = buildInnerZip('b.log', Buffer.from('y\r\n'), MTIME);
    w.addStored('D/経理-PC/a.zip', innerA, { mtimeMs: MTIME });
    w.addStored('D/経理-PC/b.zip', innerB, { mtimeMs: MTIME });
    w.finish();
    const dst = join(dir, 'dst.zip');
    const reader = openZipReader(src);
    const out = new ZipFileWriter(dst);
    out.addDirectory('経理-PC/', MTIME);
    for (const e of reader.entries) {
      out.addRawFromFile(e.name.slice(2), { fd: reader.fd, position: reader.dataOffset(e), length: e.compressedSize, method: e.method, crc32: e.crc32, uncompressedSize: e.uncompressedSize }, MTIME);
    }
    out.finish();
    reader.close();
    expect(unzipTest(dst).ok).toBe(true);
    const py = pythonZip(dst);
    expect(py.bad).toBeNull();
    expect(py.names).toEqual(['経理-PC/', '経理-PC/a.zip', '経理-PC/b.zip']);
    expect(py.nested['経理-PC/b.zip']!.text['b.log']).toBe('y\r\n');
    const copied = openZipReader(dst);
    expect(copied.readRaw(copied.entries[1]!).equals(innerA)).toBe(true);
    copied.close();
    expect(readFileSync(dst).includes(innerA)).toBe(true);
  });

  it('leaves nothing behind when aborted', () => {
    const sub = mkdtempSync(join(dir, 'abort-'));
    const w = new ZipFileWriter(join(sub, 'x.zip'));
    w.addStored('a', Buffer.from('a'), { mtimeMs: MTIME });
    w.abort();
    expect(readdirSync(sub)).toEqual([]);
  });
});
