/**
 * Event decoding: the shard's per-event CPU floor. The same 215-event batch
 * (~64 KiB, standard MessagePack maps as agents send them) decoded by
 * @msgpack/msgpack and by msgpackr with the options the shards use, plus
 * JSON.parse of the same events as a reference. The wire stays standard
 * MessagePack; only the decoder differs.
 */
import { decode, encode } from '@msgpack/msgpack';
import { Unpackr } from 'msgpackr';
import { Bench } from 'tinybench';
import { fixtureEvents, isMain } from './micro-fixtures.js';
import { printTable, rowsOf, type MicroTable } from './micro-report.js';

/** Runs the decode comparison and prints its table. */
export async function runBench(): Promise<MicroTable[]> {
  const events = fixtureEvents(215);
  const bytes = encode(events);
  const json = JSON.stringify(events);
  // As in engine/shard-core.ts.
  const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
  const bench = new Bench({ time: 1500, warmupTime: 300 });
  let sink = 0;
  bench
    .add('@msgpack/msgpack decode', () => {
      sink += (decode(bytes) as unknown[]).length;
    })
    .add('msgpackr unpack (maps, shard options)', () => {
      sink += (unpackr.unpack(bytes) as unknown[]).length;
    })
    .add('JSON.parse (same events as JSON, reference)', () => {
      sink += (JSON.parse(json) as unknown[]).length;
    });
  await bench.run();
  if (sink < 0) throw new Error('unreachable');
  const table: MicroTable = {
    bench: `decode a ${events.length}-event batch (${bytes.length} B MessagePack, ${json.length} B JSON)`,
    item: 'event',
    itemsPerOp: events.length,
    rows: rowsOf(bench, events.length),
    verdict: 'msgpackr decodes in the shards (engine/shard-core.ts, correlator.ts); @msgpack/msgpack stays for small control frames',
  };
  printTable(table);
  return [table];
}

if (isMain(import.meta.url)) await runBench();
