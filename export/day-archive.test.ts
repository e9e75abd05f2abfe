import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dayWindow, send15 } from './collection-day.js';
import { buildDayArchive } from './day-archive.js';
import { coldDayPaths, readManifest } from './layout.js';
import { addBatch, addDevice, addTenant, duckdb, openTestStore, pythonZip, simpleEvents, unzipNames, unzipTest, type TestStore } from './test-support.js';

const TMID_A = '6F9619FF-8B86-D011-B42D-00C04FC964FF';
const TMID_B = '0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D';
const TMID_OTHER = 'FFFFFFFF-0000-4000-8000-000000000000';
const DAY = '2026-01-05';

describe('day close archives', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = openTestStore();
    await addTenant(t, 'EX0001');
    await addTenant(t, 'OTHER1');
    await addDevice(t, 'EX0001', TMID_A, 'PC-A');
    await addDevice(t, 'EX0001', TMID_B, '経理-PC/02');
    await addDevice(t, 'OTHER1', TMID_OTHER, 'PC-A');
  });
  afterEach(async () => t.close());

  const opts = (day: string) => ({ dataDir: t.dir, supportId: 'EX0001', day, deflateLevel: 6, parquetRowGroupRows: 1000, parquetCompression: 'zstd' as const, now: Date.UTC(2026, 0, 6) });

  it('archives exactly the batches received in [D 05:00, D+1 05:00) JST, in the SPEC §6 layout', async () => {
    const { fromMs, toMs } = dayWindow(DAY);
    expect(new Date(fromMs).toISOString()).toBe('2026-01-04T20:00:00.000Z');
    // 04:59:59.999 JST belongs to the day before; 05:00:00.000 to this day; D+1 05:00 to the next.
    await addBatch(t, TMID_A, simpleEvents(1, 3), { recvAt: fromMs - 1 });
    const a1 = await addBatch(t, TMID_A, simpleEvents(4, 3), { recvAt: fromMs, sentAt: fromMs - 5000 });
    const b1 = await addBatch(t, TMID_B, simpleEvents(1, 2, ['net.conn']), { recvAt: fromMs + 3600_000, sentAt: fromMs + 3599_000 });
    await addBatch(t, TMID_OTHER, simpleEvents(1, 5), { recvAt: fromMs + 10 });
    // A gap: seq 7-9 never arrived.
    const a2 = await addBatch(t, TMID_A, simpleEvents(10, 4, ['reg.set']), { recvAt: toMs - 1, sentAt: toMs - 2 });
    await addBatch(t, TMID_A, simpleEvents(14, 2), { recvAt: toMs });

    const r = await buildDayArchive(t.store, opts(DAY));
    expect(r.status).toBe('archived');
    const paths = coldDayPaths(t.dir, 'EX0001', DAY);
    expect(readdirSync(paths.dir).sort()).toEqual([`${DAY}.manifest.json`, `${DAY}.parquet`, `${DAY}.zip`]);

    expect(send15(fromMs - 5000)).toBe('260105045955000');
    const innerA1 = `${TMID_A}_260105045955000-${a1.id}.zip`;
    const innerA2 = `${TMID_A}_${send15(toMs - 2)}-${a2.id}.zip`;
    const innerB1 = `${TMID_B}_260105055959000-${b1.id}.zip`;
    expect(send15(toMs - 2)).toBe('260106045959998');
    const expectedNames = [`${DAY}/`, `${DAY}/PC-A/`, `${DAY}/PC-A/${innerA1}`, `${DAY}/PC-A/${innerA2}`, `${DAY}/経理-PC_02/`, `${DAY}/経理-PC_02/${innerB1}`];
    expect(unzipTest(paths.zip)).toMatchObject({ ok: true });
    expect(unzipNames(paths.zip)).toEqual(expectedNames);

    const py = pythonZip(paths.zip);
    expect(py.bad).toBeNull();
    expect(py.names).toEqual(expectedNames);
    const a1Log = py.nested[`${DAY}/PC-A/${innerA1}`]!;
    expect(a1Log.names).toEqual(['260105045955000.log']);
    const lines = a1Log.text['260105045955000.log']!;
    expect(lines.endsWith('\r\n')).toBe(true);
    expect(lines.split('\r\n').slice(0, -1).map((l) => JSON.parse(l) as unknown)).toEqual(simpleEvents(4, 3));
    expect(py.nested[`${DAY}/経理-PC_02/${innerB1}`]!.text['260105055959000.log']).toBe(simpleEvents(1, 2, ['net.conn']).map((e) => `${JSON.stringify(e)}\r\n`).join(''));

    const m = readManifest(t.dir, 'EX0001', DAY)!;
    expect(m).toMatchObject({ supportId: 'EX0001', day: DAY, batches: 3, events: 9, eventsByKind: { 'proc.start': 1, 'net.conn': 3, 'file.write': 1, 'reg.set': 4 } });
    expect(m.devices).toEqual([
      expect.objectContaining({ tmid: TMID_A, computer: 'PC-A', folder: 'PC-A', batches: 2, events: 7, firstSeq: 4, lastSeq: 13, ranges: [[4, 6], [10, 13]], gaps: [[7, 9]] }),
      expect.objectContaining({ tmid: TMID_B, computer: '経理-PC/02', folder: '経理-PC_02', batches: 1, events: 2, ranges: [[1, 2]], gaps: [], trailGapsBefore: [] }),
    ]);
    expect(m.devices[0]!.trailGapsBefore).toEqual([[7, 9]]);
    const { createHash } = await import('node:crypto');
    expect(m.zip.sha256).toBe(createHash('sha256').update(readFileSync(paths.zip)).digest('hex'));
    expect(m.parquet.sha256).toBe(createHash('sha256').update(readFileSync(paths.parquet)).digest('hex'));

    const counts = await duckdb(`SELECT k, count(*)::INTEGER AS n FROM read_parquet('${paths.parquet}') GROUP BY k ORDER BY k`);
    expect(Object.fromEntries(counts.map((c) => [c.k, c.n]))).toEqual(m.eventsByKind);
    const perDevice = await duckdb(`SELECT tmid, computer, count(*)::INTEGER AS n, min(recv_at) >= '2026-01-04 20:00:00+00' AS inside FROM read_parquet('${paths.parquet}') GROUP BY ALL ORDER BY tmid`);
    expect(perDevice).toEqual([
      { tmid: TMID_B, computer: '経理-PC/02', n: 2, inside: true },
      { tmid: TMID_A, computer: 'PC-A', n: 7, inside: true },
    ]);
  });

  it("leaves out the events the tenant's tuning filters drop, without showing their seqs as gaps", async () => {
    const { fromMs } = dayWindow(DAY);
    await t.store.fleet.setPolicy('EX0001', { tuning: [{ id: 'tf_reg', kind: 'reg.set' }] }, 'op', 1);
    await addBatch(t, TMID_A, simpleEvents(1, 3), { recvAt: fromMs + 1 });
    await addBatch(t, TMID_A, simpleEvents(4, 2, ['reg.set']), { recvAt: fromMs + 2 });
    expect((await buildDayArchive(t.store, opts(DAY))).status).toBe('archived');
    const m = readManifest(t.dir, 'EX0001', DAY)!;
    expect(m).toMatchObject({ batches: 2, events: 3 });
    expect(m.eventsByKind['reg.set']).toBeUndefined();
    expect(m.devices[0]).toMatchObject({ tmid: TMID_A, ranges: [[1, 5]], gaps: [] });
    // The batch that held only reg.set events has no inner zip.
    expect(unzipNames(coldDayPaths(t.dir, 'EX0001', DAY).zip)).toHaveLength(3);
  });

  it('writes no file for a day without logs', async () => {
    const { fromMs } = dayWindow(DAY);
    await addBatch(t, TMID_OTHER, simpleEvents(1, 5), { recvAt: fromMs + 10 });
    const r = await buildDayArchive(t.store, opts(DAY));
    expect(r).toEqual({ status: 'empty', supportId: 'EX0001', day: DAY });
    expect(existsSync(coldDayPaths(t.dir, 'EX0001', DAY).dir)).toBe(false);
  });
});
