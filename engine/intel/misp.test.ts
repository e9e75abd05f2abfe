import { describe, expect, it } from 'vitest';
import { mispAttributeValues, parseMispCsv, parseMispEvent } from './misp.js';

const opts = { source: 'misp:test', defaultConfidence: 50, maxAgeDays: 0 };

describe('MISP feeds', () => {
  it.each([
    ['ip-dst', '203.0.113.5', [{ kind: 'ip', value: '203.0.113.5' }]],
    ['ip-dst|port', '203.0.113.5|443', [{ kind: 'ip', value: '203.0.113.5' }]],
    ['domain|ip', 'Evil.Example|203.0.113.5', [{ kind: 'domain', value: 'evil.example' }, { kind: 'ip', value: '203.0.113.5' }]],
    ['hostname', 'a.evil.example', [{ kind: 'domain', value: 'a.evil.example' }]],
    ['url', 'http://evil.example/x', [{ kind: 'url', value: 'http://evil.example/x' }]],
    ['filename|sha256', `x.exe|${'AB'.repeat(32)}`, [{ kind: 'sha256', value: 'ab'.repeat(32) }]],
    ['md5', 'abcd', []],
    ['comment', 'text', []],
  ])('reads a %s attribute', (type, value, pairs) => {
    expect(mispAttributeValues(type, value)).toEqual(pairs);
  });

  it('keeps to_ids attributes of events and objects, with the threat level as confidence and tags as labels, and ages them out when asked', () => {
    const doc = {
      Event: {
        info: 'Phishing wave',
        threat_level_id: '1',
        timestamp: '1700000000',
        Tag: [{ name: 'tlp:white' }],
        Attribute: [
          { type: 'domain', value: 'phish.example', to_ids: true, uuid: 'u1', Tag: [{ name: 'phishing' }] },
          { type: 'domain', value: 'context.example', to_ids: false },
        ],
        Object: [{ Attribute: [{ type: 'ip-dst', value: '198.51.100.7', to_ids: true, timestamp: '1700000100' }] }],
      },
    };
    expect(parseMispEvent(doc, opts)).toEqual([
      { kind: 'domain', value: 'phish.example', source: 'misp:test', confidence: 85, labels: ['tlp:white', 'phishing'], ref: 'u1', name: 'Phishing wave' },
      { kind: 'ip', value: '198.51.100.7', source: 'misp:test', confidence: 85, labels: ['tlp:white'], name: 'Phishing wave' },
    ]);
    const aged = parseMispEvent(doc, { ...opts, maxAgeDays: 30 });
    expect(aged[1]!.validUntil).toBe(1700000100_000 + 30 * 86_400_000);
  });

  it('reads a CSV feed with or without its header, quoted fields included', () => {
    const withHeader = 'uuid,event_id,category,type,value,comment,to_ids,date\nu1,1,Network activity,ip-dst,203.0.113.1,"C2, stage 2",1,1700000000\nu2,1,Network activity,domain,ctx.example,,0,1700000000\n';
    expect(parseMispCsv(withHeader, opts)).toEqual([{ kind: 'ip', value: '203.0.113.1', source: 'misp:test', confidence: 50, labels: [], ref: 'u1', name: 'C2, stage 2' }]);
    expect(parseMispCsv('u3,2,Payload delivery,url,http://x.example/a,,1,1700000000\n', opts).map((x) => x.kind)).toEqual(['url']);
  });
});
