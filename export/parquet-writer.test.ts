import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EVENT_COLUMNS, ParquetDayWriter } from './parquet-writer.js';
import { duckdb, simpleEvents } from './test-support.js';

describe('ParquetDayWriter', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-parquet-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes typed columns that DuckDB reads back, with row groups of the configured size', async () => {
    const path = join(dir, 'day.parquet');
    // Hand-overs of 300 rows: the encoder must merge them into 1000-row groups and split one across each boundary.
    const w = new ParquetDayWriter(path, { rowGroupRows: 1000, chunkRows: 300, metadata: { supportId: 'EX0001', day: '2026-01-05' } });
    const kinds = ['proc.start', 'net.conn', 'file.write', 'net.dns'];
    let seq = 1;
    for (let b = 0; b < 25; b++) {
      const events = simpleEvents(seq, 100, kinds);
      for (const e of events) if (e.k === 'net.dns') Object.assign(e, { qname: 'example.com', qtype: 'A', answers: ['93.184.216.34', '2606:2800::1'] });
      seq += 100;
      w.append({ tmid: b % 2 === 0 ? 'TMID-A' : 'TMID-B', computer: 'PC-01', batchId: `${b}`.padStart(32, '0'), sentAt: 1_767_000_000_000 + b, recvAt: 1_767_000_001_000 + b }, events);
      await w.drain();
    }
    // Forward compatibility: unknown kinds and fields, and known fields of an unexpected type, land in `extra`.
    w.append({ tmid: 'TMID-A', computer: 'PC-01', batchId: 'f'.repeat(32), sentAt: 1, recvAt: 2 }, [
      { ts: 5, k: 'future.kind', seq: seq, shiny: { a: 1 } },
      { ts: 6, k: 'net.conn', seq: seq + 1, lport: 'not-a-port', ok: true },
      { ts: 7, k: 'logon', seq: seq + 2, ok: false, logonType: 10, userName: '田中' },
    ]);
    const r = await w.finish();
    expect(r.rows).toBe(2503);
    expect(readdirSync(dir)).toEqual(['day.parquet']);

    const file = `read_parquet('${path}')`;
    const byKind = await duckdb(`SELECT k, count(*)::INTEGER AS n FROM ${file} GROUP BY k ORDER BY k`);
    expect(byKind).toEqual([
      { k: 'file.write', n: 625 },
      { k: 'future.kind', n: 1 },
      { k: 'logon', n: 1 },
      { k: 'net.conn', n: 626 },
      { k: 'net.dns', n: 625 },
      { k: 'proc.start', n: 625 },
    ]);
    const types = Object.fromEntries((await duckdb(`DESCRIBE SELECT * FROM ${file}`)).map((c) => [c.column_name, c.column_type]));
    expect(types).toMatchObject({
      tmid: 'VARCHAR',
      sent_at: 'TIMESTAMP WITH TIME ZONE',
      recv_at: 'TIMESTAMP WITH TIME ZONE',
      ts: 'TIMESTAMP WITH TIME ZONE',
      seq: 'BIGINT',
      lport: 'INTEGER',
      rport: 'INTEGER',
      size: 'BIGINT',
      ok: 'BOOLEAN',
      answers: 'VARCHAR[]',
      extra: 'VARCHAR',
    });
    expect(Object.keys(types)).toHaveLength(5 + EVENT_COLUMNS.length + 1);

    const sample = await duckdb(`SELECT epoch_ms(ts)::BIGINT::VARCHAR AS ts, seq::INTEGER AS seq, rport, cmd, answers FROM ${file} WHERE seq IN (1, 2, 4) ORDER BY seq`);
    expect(sample).toEqual([
      { ts: '1767000000000', seq: 1, rport: null, cmd: 'cmd.exe /c echo 日本語', answers: null },
      { ts: '1767000000001', seq: 2, rport: 443, cmd: null, answers: null },
      { ts: '1767000000003', seq: 4, rport: null, cmd: null, answers: ['93.184.216.34', '2606:2800::1'] },
    ]);
    const odd = await duckdb(`SELECT k, lport, ok, logonType, userName, extra FROM ${file} WHERE seq >= ${seq} ORDER BY seq`);
    expect(odd).toEqual([
      { k: 'future.kind', lport: null, ok: null, logonType: null, userName: null, extra: '{"shiny":{"a":1}}' },
      { k: 'net.conn', lport: null, ok: true, logonType: null, userName: null, extra: '{"lport":"not-a-port"}' },
      { k: 'logon', lport: null, ok: false, logonType: 10, userName: '田中', extra: null },
    ]);
    const groups = await duckdb(`SELECT row_group_num_rows::INTEGER AS n FROM parquet_metadata('${path}') GROUP BY row_group_id, row_group_num_rows ORDER BY row_group_id`);
    expect(groups.map((g) => g.n)).toEqual([1000, 1000, 503]);
    const batchCols = await duckdb(`SELECT tmid, count(*)::INTEGER AS n, count(DISTINCT batch_id)::INTEGER AS batches FROM ${file} GROUP BY tmid ORDER BY tmid`);
    expect(batchCols).toEqual([
      { tmid: 'TMID-A', n: 1303, batches: 14 },
      { tmid: 'TMID-B', n: 1200, batches: 12 },
    ]);
    const meta = await duckdb(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata('${path}') WHERE decode(key) IN ('supportId', 'day', 'kiseki.schema') ORDER BY 1`);
    expect(meta).toEqual([
      { key: 'day', value: '2026-01-05' },
      { key: 'kiseki.schema', value: '1' },
      { key: 'supportId', value: 'EX0001' },
    ]);
  });

  it('writes a readable empty file when no rows were appended, and leaves nothing behind on abort', async () => {
    const empty = new ParquetDayWriter(join(dir, 'empty.parquet'));
    const r = await empty.finish();
    expect(r.rows).toBe(0);
    expect(await duckdb(`SELECT count(*)::INTEGER AS n FROM read_parquet('${join(dir, 'empty.parquet')}')`)).toEqual([{ n: 0 }]);
    const aborted = new ParquetDayWriter(join(dir, 'aborted.parquet'));
    aborted.append({ tmid: 'T', computer: 'C', batchId: 'b', sentAt: 0, recvAt: 0 }, simpleEvents(1, 10));
    aborted.abort();
    expect(readdirSync(dir)).toEqual(['empty.parquet']);
  });
});
