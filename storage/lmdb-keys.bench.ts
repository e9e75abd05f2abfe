/**
 * LMDB key layouts for the ingest path (storage/log.ts): the batch log
 * keyed by an ascending log sequence number (appends at the right edge of the
 * B-tree), the per-device index keyed by [TMID, lsn] (ordered composite keys,
 * inserts spread over the devices), and the exactly-once index keyed by the
 * random 32-hex batch id (inserts anywhere). Each op writes 500 entries in one
 * synchronous transaction on a fresh environment (noSync, so the disk is not
 * what is measured); values are what the product stores: ~16 KiB compressed
 * batches for the log, small records for the indexes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Bench } from 'tinybench';
import { isMain } from '../bench/micro/micro-fixtures.js';
import { printTable, rowsOf, type MicroTable } from '../bench/micro/micro-report.js';

const PER_OP = 500;

/** Runs the key-layout comparison and prints its table. */
export async function runBench(): Promise<MicroTable[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kiseki-micro-lmdb-'));
  const env = open({ path: dir, noSync: true, mapSize: 8 * 2 ** 30 });
  try {
    const log = env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
    const logComposite = env.openDB<Buffer, [string, number]>({ name: 'log-composite', encoding: 'binary' });
    const logRandom = env.openDB<Buffer, string>({ name: 'log-random', encoding: 'binary' });
    const deviceIndex = env.openDB<number, [string, number]>({ name: 'device-batches' });
    const idIndex = env.openDB<[number, string], string>({ name: 'batch-ids' });
    const blob = randomBytes(16 * 1024);
    const tmids = Array.from({ length: 1000 }, (_, i) => `T${String(i).padStart(15, '0')}`);
    let lsn = 0;
    let lsn2 = 0;
    let lsn3 = 0;
    const bench = new Bench({ time: 1500, warmupTime: 200 });
    bench
      .add('log: ascending lsn → 16 KiB batch (product)', () => {
        log.transactionSync(() => {
          for (let i = 0; i < PER_OP; i++) log.putSync(++lsn, blob);
        });
      })
      .add('log: [tmid, lsn] → 16 KiB batch', () => {
        logComposite.transactionSync(() => {
          for (let i = 0; i < PER_OP; i++) logComposite.putSync([tmids[++lsn2 % 1000] as string, lsn2], blob);
        });
      })
      .add('log: random batch id → 16 KiB batch', () => {
        logRandom.transactionSync(() => {
          for (let i = 0; i < PER_OP; i++) logRandom.putSync(randomBytes(16).toString('hex'), blob);
        });
      })
      .add('index: [tmid, lsn] → count (product)', () => {
        deviceIndex.transactionSync(() => {
          for (let i = 0; i < PER_OP; i++) deviceIndex.putSync([tmids[++lsn3 % 1000] as string, lsn3], 200);
        });
      })
      .add('index: random batch id → [lsn, tmid] (product)', () => {
        idIndex.transactionSync(() => {
          for (let i = 0; i < PER_OP; i++) idIndex.putSync(randomBytes(16).toString('hex'), [lsn3 + i, 'T000000000000001']);
        });
      });
    await bench.run();
    const table: MicroTable = {
      bench: 'LMDB key layouts, 500 puts per synchronous transaction (noSync)',
      item: 'put',
      itemsPerOp: PER_OP,
      rows: rowsOf(bench, PER_OP),
      verdict: 'the log is keyed by ascending lsn (right-edge appends, one forward scan for replay); the random-key batch-id index holds only small values',
    };
    printTable(table);
    return [table];
  } finally {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) await runBench();
