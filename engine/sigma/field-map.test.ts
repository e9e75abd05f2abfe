import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fieldTableMarkdown, LOGSOURCES, partsOf, readerOf } from './field-map.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('field map', () => {
  it('docs/SIGMA.md holds the table generated from the code', () => {
    const docs = readFileSync(join(ROOT, 'docs', 'SIGMA.md'), 'utf8');
    const m = /<!-- field-table:start -->\n([\s\S]*?)\n<!-- field-table:end -->/.exec(docs);
    expect(m?.[1]).toBe(fieldTableMarkdown());
  });

  it('every reader spec of the table is valid', () => {
    for (const l of LOGSOURCES) for (const spec of Object.values(l.fields)) expect(() => readerOf(spec)).not.toThrow();
  });

  it.each([
    ['=targetObject', { k: 'reg.set', key: 'HKLM\\A', value: 'B' }, 'HKLM\\A\\B'],
    ['=targetObject', { k: 'reg.create', key: 'HKLM\\A' }, 'HKLM\\A'],
    ['=targetObject', { k: 'reg.create', key: 'HKLM\\New', renamedFrom: 'HKLM\\Old' }, 'HKLM\\Old'],
    ['=regEventType', { k: 'reg.delete', key: 'HKLM\\A', value: 'B' }, 'DeleteValue'],
    ['=regEventType', { k: 'reg.create', key: 'HKLM\\A' }, 'CreateKey'],
    ['=hashes', { sha256: 'ab', md5: 'cd' }, 'MD5=CD,SHA256=AB'],
    ['=eventId', { k: 'proc.start' }, 1],
    ['=eventId', { k: 'security.4688' }, 4688],
    ['=eventId', { k: 'logon', ok: false }, 4625],
    ['=eventId', { k: 'file.create', path: 'x', stream: 'Zone.Identifier' }, 15],
    ['=initiated', { dir: 'out' }, 'true'],
    ['=signed', { sig: 'unsigned' }, 'false'],
    ['=queryResults', { answers: ['a.example', '1.2.3.4'] }, 'a.example;1.2.3.4'],
    ['=streamTarget', { path: 'C:\\a.exe', stream: 'Zone.Identifier' }, 'C:\\a.exe:Zone.Identifier'],
    ['=streamTarget', { path: 'C:\\a.txt:hidden', stream: 'hidden' }, 'C:\\a.txt:hidden'],
  ])('%s of %j is %j', (spec, event, want) => {
    const reader = readerOf(spec);
    expect(reader(event, undefined)).toEqual(want);
    // What the matcher scans in parts is exactly the computed value.
    const parts = partsOf(reader);
    if (parts !== undefined) {
      let text = '';
      parts(event, (t) => (text += t));
      expect(text.toLowerCase()).toBe(String(want).toLowerCase());
    }
  });
});
