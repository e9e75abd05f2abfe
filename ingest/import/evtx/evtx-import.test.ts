/**
 * `kiseki import` of .evtx files: the records of a Sysmon .evtx become the
 * same trail events as the same records exported as evtx-dump JSON (the
 * `.json` twins of the Sigma regression files), record by record through the
 * mapper for every twin, and end to end through a running agent endpoint for
 * a folder given on the command line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { textSink } from '../../../test/support/text-sink.js';
import { startAgentHarness, stopAgentHarness } from '../../../test/support/agent-harness.js';
import { runImportCommand, type ImportSummary } from '../import-command.js';
import { storedEvents } from '../stored-trail.js';
import { mapRecord } from '../sysmon-mapper.js';
import { readRecords } from '../sysmon-reader.js';
import { ChunkWriter, evtxFile } from './evtx-fixture.js';
import { expandInputs } from './evtx-source.js';
import { sampleEvtxFiles, sharedDir } from './reference-tool.js';

const shared = sharedDir();
if (shared === undefined) console.warn('evtx import comparison skipped: no ../shared next to the repository (set KISEKI_SHARED_DIR)');

/** A twin holds one pretty-printed JSON object per record, one after the other. */
function twinRecords(path: string): Record<string, unknown>[] {
  const text = readFileSync(path, 'utf8').trim();
  return text.split(/\n(?=\{)/).map((s) => JSON.parse(s) as Record<string, unknown>);
}

function twinOf(evtx: string): string | undefined {
  const p = evtx.replace(/\.evtx$/i, '.json');
  try {
    readFileSync(p);
    return p;
  } catch {
    return undefined;
  }
}

describe.skipIf(shared === undefined)('importing .evtx vs the evtx-dump JSON of the same records', () => {
  it('maps every twinned sample .evtx to the same trail events as its JSON twin', async () => {
    const pairs = sampleEvtxFiles(shared!).flatMap((f) => {
      const t = twinOf(f);
      return t === undefined ? [] : [[f, t] as const];
    });
    expect(pairs.length).toBeGreaterThan(100);
    let events = 0;
    for (const [evtx, json] of pairs) {
      const fromEvtx: unknown[] = [];
      for await (const item of readRecords(evtx)) {
        expect(item.ok, `${evtx}: ${item.ok ? '' : item.reason}`).toBe(true);
        if (item.ok) fromEvtx.push(mapRecord(item.record));
      }
      const fromJson = twinRecords(json).map((r) => mapRecord(r));
      expect(fromEvtx, evtx).toEqual(fromJson);
      events += fromJson.filter((m) => (m as { ok: boolean }).ok).length;
    }
    expect(events).toBeGreaterThan(pairs.length / 2);
  });

  it('stores the same events for a folder of .evtx as for its JSON-lines export', async () => {
    const evtx = sampleEvtxFiles(shared!).find((f) => f.includes('file_event_win_hktl_netexec_file_indicators'))!;
    const work = mkdtempSync(join(tmpdir(), 'kiseki-evtx-import-'));
    try {
      // The folder as copied: the .evtx next to other files, which the import leaves alone.
      const folder = join(work, 'Logs');
      mkdirSync(join(folder, 'sub'), { recursive: true });
      writeFileSync(join(folder, 'sub', basename(evtx)), readFileSync(evtx));
      writeFileSync(join(folder, 'info.yml'), readFileSync(join(dirname(evtx), 'info.yml')));
      const jsonl = join(work, 'twin.jsonl');
      writeFileSync(jsonl, twinRecords(twinOf(evtx)!).map((r) => JSON.stringify(r)).join('\n'));

      const stored: unknown[][] = [];
      const summaries: ImportSummary[] = [];
      for (const input of [folder, jsonl]) {
        const h = await startAgentHarness();
        try {
          const stdout = textSink();
          const stderr = textSink();
          const code = await runImportCommand(['sysmon', '--tenant', 'T001', '--url', h.url, input], { dataDir: h.dir, stdout, stderr });
          expect(code, stderr.text()).toBe(0);
          const summary = JSON.parse(stdout.text()) as ImportSummary;
          summaries.push(summary);
          await h.settled();
          stored.push(summary.hosts.flatMap((host) => [...storedEvents(h.store, host.tmid)]));
        } finally {
          await stopAgentHarness(h);
        }
      }
      expect(summaries[0]!.files).toEqual([join(folder, 'sub', basename(evtx))]);
      expect(summaries[0]!.events).toMatchObject({ read: 7, mapped: 7, sent: 7 });
      expect(summaries[0]!.badLines.count).toBe(0);
      expect(summaries[0]!.byKind).toEqual(summaries[1]!.byKind);
      expect(stored[0]!.length).toBe(7);
      expect(stored[0]).toEqual(stored[1]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('expandInputs and .evtx issues in the import reader', () => {
  it('replaces folders by the .evtx files under them, keeps files, refuses a folder without any', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-evtx-inputs-'));
    try {
      mkdirSync(join(dir, 'logs', 'b'), { recursive: true });
      mkdirSync(join(dir, 'empty'));
      for (const f of ['logs/Security.evtx', 'logs/b/Sysmon.EVTX', 'logs/notes.txt', 'events.jsonl']) writeFileSync(join(dir, f), '');
      expect(await expandInputs([join(dir, 'events.jsonl'), join(dir, 'logs')])).toEqual([join(dir, 'events.jsonl'), join(dir, 'logs', 'Security.evtx'), join(dir, 'logs', 'b', 'Sysmon.EVTX')]);
      await expect(expandInputs([join(dir, 'empty')])).rejects.toMatchObject({ code: 'ERR_INPUT_UNREADABLE', details: { reason: `no .evtx files in the folder ${join(dir, 'empty')}` } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists .evtx issues as bad items with the record number', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-evtx-issues-'));
    try {
      const w = new ChunkWriter();
      w.record(41, 0n, (c) => {
        c.fragmentHeader();
        c.raw(0x2f);
      });
      const path = join(dir, 'broken.evtx');
      writeFileSync(path, evtxFile([w.finish()], 1));
      const items = [];
      for await (const item of readRecords(path)) items.push(item);
      expect(items).toEqual([
        { ok: false, file: path, line: 0, reason: 'evtx_dirty_file' },
        { ok: false, file: path, line: 41, reason: 'evtx_binxml_error', detail: 'unknown token 0x2f' },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
