/**
 * Our reader against Debian's python3-evtx on every .evtx of the shared
 * samples (`../shared/corpus`, `../shared/sigma/regression`). The comparison
 * is byte for byte: our records rendered the way evtx_dump.py prints them
 * (reference-view.ts) must equal its whole stdout for the file — same
 * records, same order, same element and attribute names, same values in its
 * formatting. Skipped, with a note, where evtx_dump.py or the samples are
 * missing; `.ci/run` installs python3-evtx so CI never skips.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readEvtxBuffer } from './evtx-reader.js';
import { findEvtxDump, runEvtxDump, sampleEvtxFiles, sharedDir } from './reference-tool.js';
import { pythonEvtxDump } from './reference-view.js';
import type { EvtxRecord } from './evtx-types.js';

const shared = sharedDir();
const tool = findEvtxDump();
const skip =
  tool === undefined
    ? 'evtx_dump.py not found: install it with `apt-get install -y python3-evtx`'
    : shared === undefined
      ? 'no ../shared next to the repository (set KISEKI_SHARED_DIR to the shared folder)'
      : undefined;
if (skip !== undefined) console.warn(`evtx reference comparison skipped: ${skip}`);

function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `at ${i}: ours ${JSON.stringify(a.slice(Math.max(0, i - 60), i + 60))} vs evtx_dump.py ${JSON.stringify(b.slice(Math.max(0, i - 60), i + 60))}`;
}

describe.skipIf(skip !== undefined)('evtx reader vs evtx_dump.py (python3-evtx)', () => {
  it('gives the same records as evtx_dump.py for every sample .evtx, byte for byte', async () => {
    const files = sampleEvtxFiles(shared!);
    expect(files.length).toBeGreaterThan(0);
    const ref = await runEvtxDump(tool!, files);
    let records = 0;
    const mismatches: string[] = [];
    for (const file of files) {
      const expected = ref.outputs.get(file);
      if (expected === undefined || 'error' in expected) {
        mismatches.push(`${file}: evtx_dump.py failed: ${expected?.error ?? 'no output'}`);
        continue;
      }
      const ours: EvtxRecord[] = [];
      for (const item of readEvtxBuffer(readFileSync(file))) {
        if (item.kind === 'record') ours.push(item.record);
        else mismatches.push(`${file}: issue ${item.issue.reason} ${item.issue.detail ?? ''}`);
      }
      records += ours.length;
      const text = pythonEvtxDump(ours);
      if (text !== expected.xml) mismatches.push(`${file}: ${firstDifference(text, expected.xml)}`);
    }
    expect(mismatches).toEqual([]);
    // The samples hold a few hundred records; none may be lost on both sides at once.
    expect(records).toBeGreaterThan(files.length);
  });
});
