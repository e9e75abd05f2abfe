import { describe, expect, it } from 'vitest';
import { parseStixBundle, parseStixPattern } from './stix.js';

describe('STIX 2.1 patterns', () => {
  it.each([
    ["[ipv4-addr:value = '198.51.100.1']", [{ kind: 'ip', value: '198.51.100.1' }]],
    ["[ipv4-addr:value ISSUBSET '198.51.100.0/24']", [{ kind: 'ip', value: '198.51.100.0/24' }]],
    ["[ipv6-addr:value = '2001:db8::1']", [{ kind: 'ip', value: '2001:db8::1' }]],
    ["[domain-name:value = 'evil.example'] OR [url:value = 'http://evil.example/a']", [{ kind: 'domain', value: 'evil.example' }, { kind: 'url', value: 'http://evil.example/a' }]],
    ["[file:hashes.'SHA-256' = 'ab12']", [{ kind: 'sha256', value: 'ab12' }]],
    ["[domain-name:value IN ('a.example', 'b.example')]", [{ kind: 'domain', value: 'a.example' }, { kind: 'domain', value: 'b.example' }]],
    ["[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = '1.2.3.5']", [{ kind: 'ip', value: '1.2.3.4' }, { kind: 'ip', value: '1.2.3.5' }]],
  ])('takes %s', (pattern, pairs) => {
    expect(parseStixPattern(pattern)).toEqual(pairs);
  });

  it.each([
    "[file:hashes.'SHA-256' = 'ab12' AND file:name = 'x.exe']",
    "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.example']",
    "[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS",
    "[process:name = 'evil.exe']",
    "[file:hashes.MD5 = 'ab12']",
    "[domain-name:value LIKE '%.example']",
  ])('skips %s (needs more than one observation or is not an observable kiseki sees)', (pattern) => {
    expect(parseStixPattern(pattern)).toBeUndefined();
  });
});

describe('STIX 2.1 bundles', () => {
  it('keeps indicators with their validity, confidence and labels; skips revoked and other pattern languages; newest version wins', () => {
    const bundle = {
      type: 'bundle',
      id: 'bundle--1',
      objects: [
        { type: 'malware', id: 'malware--1', name: 'x' },
        { type: 'indicator', id: 'indicator--a', modified: '2026-01-01T00:00:00Z', pattern_type: 'stix', pattern: "[ipv4-addr:value = '198.51.100.1']", valid_from: '2026-01-01T00:00:00Z', confidence: 20 },
        { type: 'indicator', id: 'indicator--a', modified: '2026-02-01T00:00:00Z', pattern_type: 'stix', pattern: "[ipv4-addr:value = '198.51.100.1']", valid_from: '2026-01-01T00:00:00Z', valid_until: '2027-01-01T00:00:00Z', confidence: 90, labels: ['c2'], indicator_types: ['malicious-activity'], name: 'C2 server' },
        { type: 'indicator', id: 'indicator--b', pattern_type: 'stix', pattern: "[domain-name:value = 'gone.example']", revoked: true },
        { type: 'indicator', id: 'indicator--c', pattern_type: 'snort', pattern: 'alert tcp any any -> any any' },
        { type: 'indicator', id: 'indicator--d', pattern_type: 'stix', pattern: "[process:name = 'x']" },
        { type: 'indicator', id: 'indicator--e', pattern: "[domain-name:value = 'Plain.Example']" },
      ],
    };
    const r = parseStixBundle(bundle, 'stix:test', 60);
    expect(r.skipped).toEqual({ revoked: 1, not_stix_pattern: 1, unsupported_pattern: 1, invalid: 0 });
    expect(r.entries).toEqual([
      { kind: 'ip', value: '198.51.100.1', source: 'stix:test', confidence: 90, labels: ['c2', 'malicious-activity'], ref: 'indicator--a', name: 'C2 server', validFrom: Date.parse('2026-01-01T00:00:00Z'), validUntil: Date.parse('2027-01-01T00:00:00Z') },
      { kind: 'domain', value: 'plain.example', source: 'stix:test', confidence: 60, labels: [], ref: 'indicator--e' },
    ]);
  });
});
