import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NetworkLogRecord } from '../core/contracts.js';
import { dayWindow } from './collection-day.js';
import { buildDayArchive } from './day-archive.js';
import { coldDayPaths, readManifest } from './layout.js';
import { addBatch, addDevice, addTenant, openTestStore, simpleEvents, unzipNames, unzipTest, type TestStore } from './test-support.js';

const TMID = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const DAY = '2026-01-05';

const rec = (supportId: string, receivedAt: number, format: NetworkLogRecord['format'], i: number): NetworkLogRecord => ({
  supportId,
  receivedAt,
  ts: receivedAt - 1000,
  format,
  sourceAddress: '192.0.2.1',
  action: 'allowed',
  dstIp: `203.0.113.${i}`,
  raw: `<13>line ${i} "quoted" 日本`,
});

/** The text of one zip entry, read with Info-ZIP `unzip -p`. */
const entry = (zip: string, name: string): string => execFileSync('unzip', ['-p', zip, name], { encoding: 'utf8' });

describe('network logs in the daily archive', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = openTestStore();
    await addTenant(t, 'EX0001');
    await addTenant(t, 'OTHER1');
    await addDevice(t, 'EX0001', TMID, 'PC-A');
  });
  afterEach(async () => t.close());

  const opts = (day: string) => ({ dataDir: t.dir, supportId: 'EX0001', day, deflateLevel: 6, parquetRowGroupRows: 1000, parquetCompression: 'zstd' as const, now: Date.UTC(2026, 0, 6) });

  it('adds the records received in the window as netlog/<format>-NNNN.jsonl, in receive order, with manifest counts', async () => {
    const { fromMs, toMs } = dayWindow(DAY);
    await addBatch(t, TMID, simpleEvents(1, 3), { recvAt: fromMs + 10 });
    await t.store.netlog.append(
      [
        rec('EX0001', fromMs - 1, 'squid', 0), // the day before
        rec('EX0001', fromMs, 'squid', 1),
        rec('EX0001', fromMs + 5, 'cef', 2),
        rec('EX0001', toMs - 1, 'squid', 3),
        rec('EX0001', toMs, 'squid', 4), // the next day
        rec('OTHER1', fromMs + 5, 'squid', 5),
      ],
      [],
    );
    expect((await buildDayArchive(t.store, opts(DAY))).status).toBe('archived');
    const zip = coldDayPaths(t.dir, 'EX0001', DAY).zip;
    expect(unzipTest(zip)).toMatchObject({ ok: true });
    const names = unzipNames(zip);
    expect(names.filter((n) => n.startsWith('netlog/'))).toEqual(['netlog/', 'netlog/squid-0001.jsonl', 'netlog/cef-0001.jsonl']);
    const squid = entry(zip, 'netlog/squid-0001.jsonl');
    expect(squid.endsWith('\n')).toBe(true);
    expect(squid.trimEnd().split('\n').map((l) => (JSON.parse(l) as NetworkLogRecord).dstIp)).toEqual(['203.0.113.1', '203.0.113.3']);
    expect(JSON.parse(entry(zip, 'netlog/cef-0001.jsonl'))).toEqual(rec('EX0001', fromMs + 5, 'cef', 2));
    expect(readManifest(t.dir, 'EX0001', DAY)!.netlog).toEqual({ records: 3, byFormat: { squid: 2, cef: 1 }, files: ['netlog/squid-0001.jsonl', 'netlog/cef-0001.jsonl'] });
  });

  it('archives a day that has network logs and no agent batch', async () => {
    const { fromMs } = dayWindow(DAY);
    await t.store.netlog.append([rec('EX0001', fromMs + 1, 'suricata', 7)], []);
    expect((await buildDayArchive(t.store, opts(DAY))).status).toBe('archived');
    const zip = coldDayPaths(t.dir, 'EX0001', DAY).zip;
    expect(unzipNames(zip)).toEqual([`${DAY}/`, 'netlog/', 'netlog/suricata-0001.jsonl']);
    expect(readManifest(t.dir, 'EX0001', DAY)).toMatchObject({ batches: 0, events: 0, parquet: { rows: 0 }, netlog: { records: 1 } });
  });
});
