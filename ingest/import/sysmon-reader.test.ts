import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { KisekiError } from '../../core/errors.js';
import { jsonDepthExceeds, MAX_LINE_CHARS, maxExpandedBytes, readRecords, trimAfterEndRecord, type ReadItem } from './sysmon-reader.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

async function readAll(path: string): Promise<ReadItem[]> {
  const out: ReadItem[] = [];
  for await (const item of readRecords(path)) out.push(item);
  return out;
}

const bad = (items: ReadItem[]) => items.filter((i) => !i.ok).map((i) => [i.line, !i.ok && i.reason]);

function zip(path: string, entries: [string, Buffer][]): Promise<void> {
  return new Promise((resolve, reject) => {
    const z = new yazl.ZipFile();
    for (const [name, data] of entries) z.addBuffer(data, name);
    z.end();
    const chunks: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => {
      writeFileSync(path, Buffer.concat(chunks));
      resolve();
    });
    z.outputStream.on('error', reject);
  });
}

describe('readRecords', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-reader-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the fixtures line by line, reporting bad lines with their numbers and skipping blank ones', async () => {
    const nx = await readAll(join(FIXTURES, 'download-chain.nxlog.jsonl'));
    expect(bad(nx)).toEqual([
      [11, 'invalid_json'],
      [19, 'not_an_object'],
    ]);
    expect(nx.filter((i) => i.ok)).toHaveLength(16);
    // CRLF line ends (Windows shippers).
    const wlb = await readAll(join(FIXTURES, 'download-chain.winlogbeat.jsonl'));
    expect(bad(wlb)).toEqual([
      [10, 'invalid_json'],
      [18, 'not_an_object'],
    ]);
    expect(wlb.filter((i) => i.ok)).toHaveLength(16);
  });

  it('reads gzip by its magic bytes, whatever the file is called', async () => {
    const path = join(dir, 'events.log');
    writeFileSync(path, gzipSync('\uFEFF{"a":1}\n\n{"b":2}\nnope\n'));
    const items = await readAll(path);
    expect(items).toEqual([
      { ok: true, file: path, line: 1, record: { a: 1 } },
      { ok: true, file: path, line: 3, record: { b: 2 } },
      { ok: false, file: path, line: 4, reason: 'invalid_json' },
    ]);
  });

  it('reads every member of a zip archive, gzipped members too, naming the member in line reports', async () => {
    const path = join(dir, 'export.zip');
    await zip(path, [
      ['dataset/host1.json', Buffer.from('{"n":1}\n{"n":2}\n')],
      ['dataset/host2.json.gz', gzipSync('{"n":3}\n{broken\n')],
    ]);
    const items = await readAll(path);
    expect(items.filter((i) => i.ok).map((i) => i.ok && i.record.n)).toEqual([1, 2, 3]);
    expect(items.filter((i) => !i.ok)).toEqual([{ ok: false, file: `${path}!dataset/host2.json.gz`, line: 2, reason: 'invalid_json' }]);
  });

  // A real export (an OTRF dataset zip) ends with a stray newline after the end record: unzip reads it, so must we.
  it('reads a zip with bytes appended after its end record, and still refuses a zip cut short', async () => {
    const path = join(dir, 'tail.zip');
    await zip(path, [['dataset/host1.json', Buffer.from('{"n":1}\n{"n":2}\n')]]);
    const whole = readFileSync(path);
    writeFileSync(path, Buffer.concat([whole, Buffer.from('\n')]));
    const items = await readAll(path);
    expect(items.filter((i) => i.ok).map((i) => i.ok && i.record.n)).toEqual([1, 2]);
    expect(trimAfterEndRecord(Buffer.concat([whole, Buffer.from('\n')]))?.length).toBe(whole.length);
    expect(trimAfterEndRecord(whole)).toBeUndefined();
    const cut = join(dir, 'cut.zip');
    writeFileSync(cut, whole.subarray(0, whole.length - 10));
    await expect(readAll(cut)).rejects.toMatchObject({ code: 'ERR_INPUT_UNREADABLE' });
  });

  it('fails clearly on a missing file, a truncated gzip and a broken zip', async () => {
    const unreadable = (re: RegExp) => ({ code: 'ERR_INPUT_UNREADABLE', details: { reason: expect.stringMatching(re) } });
    await expect(readAll(join(dir, 'missing.json'))).rejects.toBeInstanceOf(KisekiError);
    await expect(readAll(join(dir, 'missing.json'))).rejects.toMatchObject(unreadable(/missing\.json: file not found/));
    const gz = gzipSync(readFileSync(join(FIXTURES, 'download-chain.nxlog.jsonl')));
    writeFileSync(join(dir, 'cut.gz'), gz.subarray(0, gz.length - 200));
    await expect(readAll(join(dir, 'cut.gz'))).rejects.toMatchObject(unreadable(/cannot be read/));
    writeFileSync(join(dir, 'bad.zip'), Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(64)]));
    await expect(readAll(join(dir, 'bad.zip'))).rejects.toMatchObject(unreadable(/zip archive/));
  });
  it('bounds what one line may cost: a line deeper than 32 levels is too_deep, an endless line is skipped unbuffered', async () => {
    const path = join(dir, 'bounds.jsonl');
    const deep = `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`;
    writeFileSync(path, `{"ok":1}\n${deep}\n${'x'.repeat(MAX_LINE_CHARS + 10)}\n{"ok":2}\r\n${'y'.repeat(MAX_LINE_CHARS * 2)}`);
    const items = await readAll(path);
    expect(bad(items)).toEqual([
      [2, 'too_deep'],
      [3, 'line_too_long'],
      [5, 'line_too_long'],
    ]);
    expect(items.filter((i) => i.ok).map((i) => i.ok && i.record)).toEqual([{ ok: 1 }, { ok: 2 }]);
  });

  it('sizes the expansion limit of compressed inputs and scans JSON depth outside strings', () => {
    expect(maxExpandedBytes(1000)).toBe(256 * 1024 * 1024);
    expect(maxExpandedBytes(10 * 1024 * 1024)).toBe(2000 * 1024 * 1024);
    expect(maxExpandedBytes(1e12)).toBe(4 * 1024 * 1024 * 1024);
    expect(jsonDepthExceeds('{"a":"[[[[[[[["}', 2)).toBe(false);
    expect(jsonDepthExceeds('[[[1]]]', 2)).toBe(true);
  });
});
