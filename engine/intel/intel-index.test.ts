import { describe, expect, it } from 'vitest';
import { createIntelIndex, parseCidr, parseIp, type IntelEntry } from './intel-index.js';

const e = (kind: IntelEntry['kind'], value: string, extra: Partial<IntelEntry> = {}): IntelEntry => ({ kind, value, source: 'test', confidence: 50, labels: [], ...extra });

describe('intel index', () => {
  it.each([
    ['203.0.113.9', [203, 0, 113, 9]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    ['2001:db8::ff00:42:8329', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]],
    ['::ffff:1.2.3.4', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]],
  ])('parses %s', (text, bytes) => {
    expect([...parseIp(text)!]).toEqual(bytes);
  });

  it.each(['1.2.3', '1.2.3.256', '1:2:3', '1::2::3', 'example.com', ''])('refuses %s', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });

  it('parses CIDRs and refuses prefixes past the address length', () => {
    expect(parseCidr('10.0.0.0/8')?.prefix).toBe(8);
    expect(parseCidr('2001:db8::/32')?.prefix).toBe(32);
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
  });

  it('matches addresses exactly and by every CIDR containing them, IPv4 and IPv6', () => {
    const idx = createIntelIndex([
      e('ip', '203.0.113.9', { source: 'exact' }),
      e('ip', '203.0.113.0/24', { source: 'net24' }),
      e('ip', '203.0.0.0/16', { source: 'net16' }),
      e('ip', '0.0.0.0/0', { source: 'all', validUntil: 0 }),
      e('ip', '2001:db8::/32', { source: 'v6net' }),
      e('ip', 'not-an-ip'),
    ]);
    expect(idx.rejected).toBe(1);
    expect(idx.matchIp('203.0.113.9', 1).map((x) => x.source).sort()).toEqual(['exact', 'net16', 'net24']);
    expect(idx.matchIp('203.0.113.10', 1).map((x) => x.source).sort()).toEqual(['net16', 'net24']);
    expect(idx.matchIp('203.1.0.1', 1)).toEqual([]);
    expect(idx.matchIp('2001:db8:1::5', 1).map((x) => x.source)).toEqual(['v6net']);
    expect(idx.matchIp('2001:db9::5', 1)).toEqual([]);
    expect(idx.matchIp('garbage', 1)).toEqual([]);
  });

  it('matches a domain and its subdomains, never a look-alike, and URLs by their host', () => {
    const idx = createIntelIndex([e('domain', 'Evil.Example.'), e('url', 'HTTP://Bad.Example/x.exe'), e('sha256', 'A'.repeat(64)), e('sha256', 'short')]);
    expect(idx.rejected).toBe(1);
    expect(idx.matchDomain('cdn.a.evil.example', 1)).toHaveLength(1);
    expect(idx.matchDomain('evil.example', 1)).toHaveLength(1);
    expect(idx.matchDomain('notevil.example', 1)).toEqual([]);
    expect(idx.matchDomain('https://x.evil.example/path', 1)).toHaveLength(1);
    expect(idx.matchUrl('http://bad.example/x.exe', 1)).toHaveLength(1);
    expect(idx.matchUrl('http://bad.example/y.exe', 1)).toEqual([]);
    expect(idx.matchSha256('a'.repeat(64), 1)).toHaveLength(1);
    expect(idx.counts()).toEqual({ ip: 0, domain: 1, url: 1, sha256: 1 });
  });

  it('returns only entries valid at the time asked', () => {
    const idx = createIntelIndex([e('domain', 'later.example', { validFrom: 100, validUntil: 200 })]);
    expect(idx.matchDomain('later.example', 99)).toEqual([]);
    expect(idx.matchDomain('later.example', 100)).toHaveLength(1);
    expect(idx.matchDomain('later.example', 200)).toEqual([]);
  });
});
