import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ChunkWriter, evtxFile, sub, type SubValue } from './evtx-fixture.js';
import { recordJson } from './evtx-json.js';
import { filetimeToIso, readEvtxBuffer, readEvtxFile } from './evtx-reader.js';
import { renderXml } from './evtx-xml.js';
import { VT, type EvtxIssue, type EvtxItem, type EvtxRecord } from './evtx-types.js';
import { pythonRecordXml } from './reference-view.js';
import { sampleEvtxFiles, sharedDir } from './reference-tool.js';

// 2019-03-19T23:34:25.6345540Z
const TICKS = BigInt(Date.UTC(2019, 2, 19, 23, 34, 25)) * 10_000n + 6_345_540n + 116_444_736_000_000_000n;
const NS = 'http://schemas.microsoft.com/win/2004/08/events/event';

/** EventData fields of the test template: name and value; the template refers to them by index. */
const DATA: [string, SubValue][] = [
  ['Str', sub.wstring('C:\\Windows\\cmd.exe <x> & "y"')],
  ['Ansi', sub.ansi('plain')],
  ['I8', sub.int8(-5)],
  ['U8', sub.uint8(250)],
  ['I16', sub.int16(-300)],
  ['U16', sub.uint16(65000)],
  ['I32', sub.int32(-70000)],
  ['U32', sub.uint32(4000000000)],
  ['I64', sub.int64(-5000000000n)],
  ['U64', sub.uint64(18446744073709551615n)],
  ['F32', sub.float(0.5)],
  ['F64', sub.double(1e-7)],
  ['Bool', sub.bool(true)],
  ['Bin', sub.binary(Uint8Array.from([0xde, 0xad, 0x01]))],
  ['Guid', sub.guid('5770385f-c22a-43e0-bf4c-06f5698ffbd9')],
  ['Size', sub.sizeT(4096n)],
  ['FileTime', sub.filetime(TICKS)],
  ['SysTime', sub.systemtime([2024, 2, 4, 29, 13, 5, 9, 42])],
  ['Sid', sub.sid('S-1-5-21-1004336348-1177238915-682003330-512')],
  ['Hex32', sub.hex32(0x1f)],
  ['Hex64', sub.hex64(0x529ae3n)],
  ['Strings', sub.wstringArray(['one', '', 'three'])],
  ['Words', sub.uint16Array([1, 2, 65535])],
  ['Null', sub.null()],
];
// Fixed System values come first in the substitution array.
const SYS = 6;

function eventBody(w: ChunkWriter): void {
  w.open('Event', true);
  w.attribute('xmlns');
  w.text(NS);
  w.closeStart();
  w.open('System');
  w.closeStart();
  w.open('Provider', true);
  w.attribute('Name');
  w.sub(0, VT.WSTRING);
  w.closeEmpty();
  w.open('EventID', true);
  w.attribute('Qualifiers');
  w.sub(1, VT.UINT16, true);
  w.closeStart();
  w.sub(2, VT.UINT16);
  w.end();
  w.open('TimeCreated', true);
  w.attribute('SystemTime');
  w.sub(3, VT.FILETIME);
  w.closeEmpty();
  w.open('Computer');
  w.closeStart();
  w.sub(4, VT.WSTRING);
  w.end();
  w.open('Security', true);
  w.attribute('UserID');
  w.sub(5, VT.SID, true);
  w.closeEmpty();
  w.end(); // System
  w.open('EventData');
  w.closeStart();
  DATA.forEach(([name, v], i) => {
    w.open('Data', true);
    w.attribute('Name');
    w.text(name);
    w.closeStart();
    w.sub(SYS + i, v.type, true);
    w.end();
  });
  w.end(); // EventData
  w.end(); // Event
}

function eventValues(eventId: number, data: SubValue[] = DATA.map(([, v]) => v)): SubValue[] {
  return [sub.wstring('Microsoft-Windows-Sysmon'), sub.null(), sub.uint16(eventId), sub.filetime(TICKS), sub.wstring('PC-01.corp.example'), sub.sid('S-1-5-18'), ...data];
}

/** A chunk with three records: the template inline in the first, referenced by offset in the others. */
function sampleChunk(): ChunkWriter {
  const w = new ChunkWriter();
  for (const [id, eventId] of [
    [101, 1],
    [102, 3],
    [103, 11],
  ] as const) {
    w.record(id, TICKS + BigInt(id), (c) => {
      c.fragmentHeader();
      c.templateInstance('event', eventBody, eventValues(eventId));
    });
  }
  return w;
}

function collect(items: Iterable<EvtxItem>): { records: EvtxRecord[]; issues: EvtxIssue[] } {
  const records: EvtxRecord[] = [];
  const issues: EvtxIssue[] = [];
  for (const it of items) {
    if (it.kind === 'record') records.push(it.record);
    else issues.push(it.issue);
  }
  return { records, issues };
}

describe('readEvtxBuffer', () => {
  it('reads records with every value type through a cached template', () => {
    const { records, issues } = collect(readEvtxBuffer(evtxFile([sampleChunk().finish()])));
    expect(issues).toEqual([]);
    expect(records.map((r) => r.recordId)).toEqual([101, 102, 103]);
    expect(records[0]!.filetime).toBe(TICKS + 101n);
    expect(records[0]!.timestamp).toBe('2019-03-19T23:34:25.6345641Z');
    expect(records[0]!.offset).toBe(4096 + 512);
    const xml = renderXml(records[1]!.nodes);
    expect(xml.startsWith(`<Event xmlns="${NS}"><System><Provider Name="Microsoft-Windows-Sysmon"/><EventID>3</EventID>`)).toBe(true);
    expect(xml).toContain('<TimeCreated SystemTime="2019-03-19T23:34:25.6345540Z"/>');
    expect(xml).toContain('<Security UserID="S-1-5-18"/>');
    const data = Object.fromEntries([...xml.matchAll(/<Data Name="(\w+)">(.*?)<\/Data>|<Data Name="(\w+)"\/>/g)].map((m) => [m[1] ?? m[3], m[2] ?? '']));
    expect(data).toEqual({
      Str: 'C:\\Windows\\cmd.exe &lt;x&gt; &amp; &quot;y&quot;',
      Ansi: 'plain',
      I8: '-5',
      U8: '250',
      I16: '-300',
      U16: '65000',
      I32: '-70000',
      U32: '4000000000',
      I64: '-5000000000',
      U64: '18446744073709551615',
      F32: '0.5',
      F64: '1e-7',
      Bool: 'true',
      Bin: 'DEAD01',
      Guid: '{5770385F-C22A-43E0-BF4C-06F5698FFBD9}',
      Size: '4096',
      FileTime: '2019-03-19T23:34:25.6345540Z',
      SysTime: '2024-02-29T13:05:09.042Z',
      Sid: 'S-1-5-21-1004336348-1177238915-682003330-512',
      Hex32: '0x1f',
      Hex64: '0x529ae3',
      Strings: 'one,,three',
      Words: '1,2,65535',
      Null: '',
    });
  });

  it('gives the evtx-dump JSON layout the Sysmon mapper reads', () => {
    const { records } = collect(readEvtxBuffer(evtxFile([sampleChunk().finish()])));
    const json = recordJson(records[2]!) as { Event: Record<string, Record<string, unknown>> };
    expect(json.Event['#attributes']).toEqual({ xmlns: NS });
    expect(json.Event.System).toEqual({
      Provider: { '#attributes': { Name: 'Microsoft-Windows-Sysmon' } },
      // The null optional Qualifiers attribute is dropped, as evtx_dump does.
      EventID: 11,
      TimeCreated: { '#attributes': { SystemTime: '2019-03-19T23:34:25.634554Z' } },
      Computer: 'PC-01.corp.example',
      Security: { '#attributes': { UserID: 'S-1-5-18' } },
    });
    expect(json.Event.EventData).toMatchObject({
      Str: 'C:\\Windows\\cmd.exe <x> & "y"',
      I64: -5000000000,
      U64: '18446744073709551615',
      Bool: true,
      Bin: 'DEAD01',
      Guid: '5770385F-C22A-43E0-BF4C-06F5698FFBD9',
      Hex64: '0x529ae3',
      Strings: ['one', '', 'three'],
      Words: [1, 2, 65535],
      Null: null,
    });
  });

  it('renders the python-evtx view with its quirks (padded hex, braces, float time, True)', () => {
    const { records } = collect(readEvtxBuffer(evtxFile([sampleChunk().finish()])));
    const xml = pythonRecordXml(records[0]!);
    expect(xml).toContain('<EventID Qualifiers="">1</EventID>\n');
    expect(xml).toContain('<Data Name="Hex64">0x0000000000529ae3</Data>\n');
    expect(xml).toContain('<Data Name="Guid">{5770385f-c22a-43e0-bf4c-06f5698ffbd9}</Data>\n');
    expect(xml).toContain('<Data Name="Bool">True</Data>\n');
    expect(xml).toContain('<Data Name="F64">1e-07</Data>\n');
    expect(xml).toContain('<Data Name="SysTime">2024-02-29 13:05:09.000042</Data>\n');
    expect(xml).toContain('<Data Name="Strings">&lt;string&gt;one&lt;/string&gt;\n&lt;string&gt;&lt;/string&gt;\n&lt;string&gt;three&lt;/string&gt;\n</Data>');
  });

  it('reads an embedded BinXML document, character and entity references and CDATA', () => {
    const w = new ChunkWriter();
    w.record(7, TICKS, (c) => {
      c.fragmentHeader();
      c.templateInstance(
        'outer',
        (t) => {
          t.open('Event');
          t.closeStart();
          t.open('UserData');
          t.closeStart();
          t.sub(0, VT.BINXML);
          t.end();
          t.open('Note');
          t.closeStart();
          t.text('a');
          t.charRef(0x41);
          t.entityRef('amp');
          t.cdata('x<y');
          t.end();
          t.end();
        },
        [
          sub.binxml(
            'inner',
            (t) => {
              t.open('Rule', true);
              t.attribute('Id');
              t.sub(0, VT.UINT32);
              t.closeStart();
              t.sub(1, VT.WSTRING);
              t.end();
            },
            [sub.uint32(42), sub.wstring('block')],
          ),
        ],
      );
    });
    const { records, issues } = collect(readEvtxBuffer(evtxFile([w.finish()])));
    expect(issues).toEqual([]);
    expect(renderXml(records[0]!.nodes)).toBe('<Event><UserData><Rule Id="42">block</Rule></UserData><Note>a&#x41;&amp;<![CDATA[x<y]]></Note></Event>');
    expect(recordJson(records[0]!)).toEqual({ Event: { UserData: { Rule: { '#attributes': { Id: 42 }, '#text': 'block' } }, Note: 'aA&x<y' } });
  });

  it('reads a record without a template (plain elements)', () => {
    const w = new ChunkWriter();
    w.record(1, TICKS, (c) => {
      c.fragmentHeader();
      c.open('Event');
      c.closeStart();
      c.text('hello');
      c.end();
    });
    const { records, issues } = collect(readEvtxBuffer(evtxFile([w.finish()])));
    expect(issues).toEqual([]);
    expect(renderXml(records[0]!.nodes)).toBe('<Event>hello</Event>');
  });

  it('reports a file header CRC mismatch and still reads the records', () => {
    const file = evtxFile([sampleChunk().finish()]);
    file[60] = 0x55; // inside the checksummed 120 bytes, in unused space
    const { records, issues } = collect(readEvtxBuffer(file));
    expect(issues.map((i) => i.reason)).toEqual(['file_header_crc_mismatch']);
    expect(records).toHaveLength(3);
  });

  it('reports a dirty file', () => {
    const { records, issues } = collect(readEvtxBuffer(evtxFile([sampleChunk().finish()], 1)));
    expect(issues).toEqual([{ reason: 'dirty_file', offset: 120 }]);
    expect(records).toHaveLength(3);
  });

  it('reports chunk header and record data CRC mismatches', () => {
    const chunk = sampleChunk().finish();
    chunk[100] = 0xff; // unused header bytes covered by the header CRC
    chunk.writeUInt32LE((chunk.readUInt32LE(52) ^ 1) >>> 0, 52); // record data CRC
    const { records, issues } = collect(readEvtxBuffer(evtxFile([chunk])));
    expect(issues).toEqual([
      { chunk: 0, reason: 'chunk_header_crc_mismatch', offset: 4096 },
      { chunk: 0, reason: 'chunk_data_crc_mismatch', offset: 4096 },
    ]);
    expect(records).toHaveLength(3);
  });

  it('reports a truncated chunk and keeps the records that are wholly there', () => {
    const w = sampleChunk();
    const file = evtxFile([w.finish()]);
    const secondEnds = 4096 + 512 + (w.pos - 512) - 1; // one byte short of the third record's end
    const { records, issues } = collect(readEvtxBuffer(file.subarray(0, secondEnds)));
    expect(issues[0]).toMatchObject({ reason: 'truncated_chunk', chunk: 0 });
    expect(issues[1]).toMatchObject({ reason: 'bad_record', chunk: 0 });
    expect(records.map((r) => r.recordId)).toEqual([101, 102]);
  });

  it('reports an unknown token as a BinXML issue for that record only', () => {
    const w = new ChunkWriter();
    w.record(1, TICKS, (c) => {
      c.fragmentHeader();
      c.templateInstance('event', eventBody, eventValues(1));
    });
    w.record(2, TICKS, (c) => {
      c.fragmentHeader();
      c.open('Event');
      c.closeStart();
      c.raw(0x1f);
      c.end();
    });
    w.record(3, TICKS, (c) => {
      c.fragmentHeader();
      c.templateInstance('event', eventBody, eventValues(3));
    });
    const { records, issues } = collect(readEvtxBuffer(evtxFile([w.finish()])));
    expect(records.map((r) => r.recordId)).toEqual([1, 3]);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ reason: 'binxml_error', chunk: 0, recordId: 2, detail: 'unknown token 0x1f' });
  });

  it('reports a substitution the record does not have', () => {
    const w = new ChunkWriter();
    w.record(1, TICKS, (c) => {
      c.fragmentHeader();
      c.templateInstance('event', eventBody, eventValues(1).slice(0, 8));
    });
    const { records, issues } = collect(readEvtxBuffer(evtxFile([w.finish()])));
    expect(records).toEqual([]);
    expect(issues).toMatchObject([{ reason: 'binxml_error', recordId: 1, detail: 'substitution 8 of 8' }]);
  });

  it.each([
    ['an empty file', Buffer.alloc(0), 'not_evtx'],
    ['a text file', Buffer.from('{"EventID": 1}\n'.repeat(20)), 'not_evtx'],
    ['a header cut short', evtxFile([]).subarray(0, 100), 'truncated_file'],
  ])('reports %s', (_name, buf, reason) => {
    const { records, issues } = collect(readEvtxBuffer(buf));
    expect(records).toEqual([]);
    expect(issues[0]!.reason).toBe(reason);
  });

  it('skips a zero-filled chunk silently and reports a chunk with a bad magic', () => {
    const garbage = Buffer.alloc(65536, 0x41);
    const { records, issues } = collect(readEvtxBuffer(evtxFile([sampleChunk().finish(), Buffer.alloc(65536), garbage])));
    expect(records).toHaveLength(3);
    expect(issues).toEqual([{ chunk: 2, reason: 'bad_chunk_magic', offset: 4096 + 2 * 65536 }]);
  });

  it('never throws on corrupted bytes (seeded mutations of a valid file)', () => {
    const good = evtxFile([sampleChunk().finish()]);
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const end = 4096 + sampleChunk().pos;
    let records = 0;
    let issues = 0;
    for (let round = 0; round < 400; round++) {
      const file = Buffer.from(good);
      for (let k = 0; k < 1 + rand(8); k++) file[4096 + 512 + rand(end - 4096 - 512)] = rand(256);
      // Keep the data CRC right so the corruption reaches the BinXML parser.
      file.writeUInt32LE(crc32(file.subarray(4096 + 512, end)), 4096 + 52);
      for (const item of readEvtxBuffer(file)) {
        if (item.kind === 'record') {
          records++;
          renderXml(item.record.nodes);
          recordJson(item.record);
        } else issues++;
      }
    }
    // Both outcomes occur: some mutations hit values only, others break the structure.
    expect(records).toBeGreaterThan(0);
    expect(issues).toBeGreaterThan(0);
  });
});

const shared = sharedDir();

describe.skipIf(shared === undefined)('readEvtxBuffer on corrupted copies of a real Sysmon log', () => {
  it('never throws and loses only records near the damage', () => {
    const path = sampleEvtxFiles(shared!).find((f) => f.endsWith('rundll32_cmd_schtask.evtx'))!;
    const good = readFileSync(path);
    const intact = collect(readEvtxBuffer(good)).records.length;
    expect(intact).toBe(50);
    let seed = 99;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const used = 4096 + good.readUInt32LE(4096 + 48);
    let kept = 0;
    for (let round = 0; round < 200; round++) {
      const file = Buffer.from(good);
      const at = 4096 + 512 + rand(used - 4096 - 512);
      file[at] = rand(256);
      const { records } = collect(readEvtxBuffer(file));
      for (const r of records) {
        renderXml(r.nodes);
        recordJson(r);
      }
      kept += records.length;
    }
    // A damaged byte costs its record at most, or the rest of the chunk when it hits a record
    // header's magic or size: over 200 rounds, well under a tenth of the records.
    expect(kept).toBeGreaterThan(200 * intact * 0.9);
  });
});

describe('readEvtxFile', () => {
  it('streams the same items as the buffer reader, and reports an unreadable path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-evtx-'));
    try {
      const file = evtxFile([sampleChunk().finish(), sampleChunk().finish()]);
      const path = join(dir, 'Sysmon.evtx');
      writeFileSync(path, file);
      const streamed: EvtxItem[] = [];
      for await (const it of readEvtxFile(path)) streamed.push(it);
      expect(streamed.map((i) => (i.kind === 'record' ? renderXml(i.record.nodes) : i.issue.reason))).toEqual(
        [...readEvtxBuffer(file)].map((i) => (i.kind === 'record' ? renderXml(i.record.nodes) : i.issue.reason)),
      );
      expect(streamed.filter((i) => i.kind === 'record').map((i) => (i as { record: EvtxRecord }).record.chunk)).toEqual([0, 0, 0, 1, 1, 1]);
      const cut = join(dir, 'cut.evtx');
      writeFileSync(cut, file.subarray(0, 4096 + 65536 + 300));
      const fromCut: EvtxItem[] = [];
      for await (const it of readEvtxFile(cut)) fromCut.push(it);
      expect(fromCut.filter((i) => i.kind === 'record')).toHaveLength(3);
      expect(fromCut.filter((i) => i.kind === 'issue').map((i) => (i as { issue: EvtxIssue }).issue)).toMatchObject([
        // Shorter than a chunk header: nothing more to read in it.
        { chunk: 1, reason: 'truncated_chunk', offset: 4096 + 65536, detail: '300 of 65536 bytes' },
      ]);
      const missing: EvtxItem[] = [];
      for await (const it of readEvtxFile(join(dir, 'missing.evtx'))) missing.push(it);
      expect(missing).toEqual([{ kind: 'issue', issue: { reason: 'read_error', detail: 'ENOENT' } }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('filetimeToIso', () => {
  it.each([
    [0n, '1601-01-01T00:00:00.0000000Z'],
    [116444736000000000n, '1970-01-01T00:00:00.0000000Z'],
    [TICKS, '2019-03-19T23:34:25.6345540Z'],
  ])('%s → %s', (ticks, iso) => {
    expect(filetimeToIso(ticks)).toBe(iso);
  });
});
