/**
 * .evtx reading speed: kiseki's TypeScript reader against Debian's
 * python3-evtx (`evtx_dump.py`) on the same files in the same run — every
 * .evtx under ../shared/corpus and ../shared/sigma/regression (or
 * KISEKI_SHARED_DIR). The figure is MB of .evtx file per CPU-second (so
 * "per core": both readers are single-threaded), median of the repetitions
 * with min–max. Ours is timed with process.cpuUsage() around streaming every
 * file from disk, in three variants (records only; + XML text, the
 * reference's job; + evtx-dump JSON, the import's job). The reference is
 * timed inside its Python process (time.process_time() around each
 * evtx_dump.py run, interpreter start-up excluded) with its XML output
 * captured in memory.
 */
import { readFileSync, statSync } from 'node:fs';
import { readEvtxBuffer, readEvtxFile } from '../../ingest/import/evtx/evtx-reader.js';
import { recordJson } from '../../ingest/import/evtx/evtx-json.js';
import { renderXml } from '../../ingest/import/evtx/evtx-xml.js';
import { findEvtxDump, runEvtxDump, sampleEvtxFiles, sharedDir } from '../../ingest/import/evtx/reference-tool.js';
import { isMain } from './micro-fixtures.js';
import { median } from '../spread.js';
import { printTable, type MicroRow, type MicroTable } from './micro-report.js';

/** Repetitions per reader (the median is reported). */
const REPS_OURS = 7;
const REPS_REFERENCE = 3;

type Variant = 'memory' | 'records' | 'xml' | 'json';

async function oursOnce(files: string[], buffers: Buffer[], variant: Variant): Promise<{ cpuSeconds: number; records: number; sink: number }> {
  let records = 0;
  let sink = 0;
  const t0 = process.cpuUsage();
  if (variant === 'memory') {
    for (const b of buffers) for (const item of readEvtxBuffer(b)) if (item.kind === 'record') records++;
  }
  for (const f of variant === 'memory' ? [] : files) {
    for await (const item of readEvtxFile(f)) {
      if (item.kind !== 'record') continue;
      records++;
      if (variant === 'xml') sink += renderXml(item.record.nodes).length;
      else if (variant === 'json') sink += Object.keys(recordJson(item.record)).length;
    }
  }
  const d = process.cpuUsage(t0);
  return { cpuSeconds: (d.user + d.system) / 1e6, records, sink };
}


export interface EvtxSpeedRow extends MicroRow {
  /** MB/s per core: median, min and max over the repetitions. */
  mbPerCpuSecond: { median: number; min: number; max: number; reps: number };
  /** Records per CPU-second at the median (the samples are mostly empty chunk space, so both figures matter). */
  recordsPerCpuSecond: number;
}

function row(name: string, mb: number, records: number, cpuSeconds: number[]): EvtxSpeedRow {
  const rates = cpuSeconds.map((s) => mb / s);
  const med = median(cpuSeconds);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    name,
    opsPerSec: r2(1 / med),
    meanUs: Math.round(med * 1e6),
    p99Us: Math.round(Math.max(...cpuSeconds) * 1e6),
    itemsPerSec: r2(mb / med),
    samples: cpuSeconds.length,
    mbPerCpuSecond: { median: r2(mb / med), min: r2(Math.min(...rates)), max: r2(Math.max(...rates)), reps: cpuSeconds.length },
    recordsPerCpuSecond: Math.round(records / med),
  };
}

/** Runs the comparison and prints its table (nothing to run without the shared samples). */
export async function runBench(): Promise<MicroTable[]> {
  const shared = sharedDir();
  if (shared === undefined) {
    process.stderr.write('evtx bench skipped: no ../shared next to the repository (set KISEKI_SHARED_DIR)\n');
    return [];
  }
  const files = sampleEvtxFiles(shared);
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  const mb = bytes / 1e6;
  const rows: EvtxSpeedRow[] = [];
  let records = 0;
  let sink = 0;
  const buffers = files.map((f) => readFileSync(f));
  for (const variant of ['records', 'xml', 'json', 'memory'] as const) {
    await oursOnce(files, buffers, variant); // warm-up: JIT and page cache
    const times: number[] = [];
    for (let i = 0; i < REPS_OURS; i++) {
      const r = await oursOnce(files, buffers, variant);
      times.push(r.cpuSeconds);
      records = r.records;
      sink += r.sink;
    }
    const label = {
      records: 'kiseki reader: records (tree)',
      xml: 'kiseki reader: records + XML text',
      json: 'kiseki reader: records + evtx-dump JSON',
      memory: 'kiseki parser alone (files already in memory)',
    }[variant];
    rows.push(row(label, mb, records, times));
  }
  const tool = findEvtxDump();
  if (tool === undefined) {
    process.stderr.write('evtx bench: evtx_dump.py not found (apt-get install -y python3-evtx): reference row left out\n');
  } else {
    const times: number[] = [];
    for (let i = 0; i < REPS_REFERENCE; i++) times.push((await runEvtxDump(tool, files)).cpuSeconds);
    // The equality test holds the two readers to the same records, so the count is shared.
    rows.push(row('python3-evtx evtx_dump.py (XML text)', mb, records, times));
  }
  if (sink < 0) throw new Error('unreachable');
  const ours = rows.find((r) => r.name.includes('XML text') && r.name.startsWith('kiseki'))!;
  const ref = rows.find((r) => r.name.startsWith('python3-evtx'));
  const table: MicroTable = {
    bench: `read ${files.length} .evtx files (${mb.toFixed(2)} MB, ${records} records), MB of file per CPU-second, median of ${REPS_OURS} (ours) / ${REPS_REFERENCE} (evtx_dump.py)`,
    item: 'MB',
    itemsPerOp: Math.round(mb * 100) / 100,
    rows,
    verdict:
      ref === undefined
        ? 'kiseki reads .evtx natively (reference not installed: no comparison)'
        : `kiseki's reader with XML output runs at ${(ours.itemsPerSec / ref.itemsPerSec).toFixed(0)}× evtx_dump.py per core on the same files`,
  };
  printTable(table);
  for (const r of rows) process.stdout.write(`  ${r.name.padEnd(46)} ${r.mbPerCpuSecond.median} MB/s per core (min ${r.mbPerCpuSecond.min}, max ${r.mbPerCpuSecond.max}, ${r.mbPerCpuSecond.reps} reps), ${r.recordsPerCpuSecond} records/s\n`);
  return [table];
}

if (isMain(import.meta.url)) await runBench();
