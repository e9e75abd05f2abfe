import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseLine, parseMessage } from './parse-line.js';
import { parseSyslogHeader } from './syslog-header.js';
import { parseCefExtension } from './cef.js';

const fixture = (name: string): string[] =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l !== '');

const RECEIVED = Date.UTC(2024, 2, 12, 9, 30);

/** Outcome counts of a fixture file: `ok` and one key per failure reason. */
function outcomes(lines: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    const r = parseMessage(l);
    const k = r.ok ? `ok:${r.format}` : r.reason;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

describe('sample files', () => {
  it.each([
    ['squid-access.txt', { 'ok:squid': 7, bad_header: 1, bad_field: 1, unknown_format: 1 }],
    ['suricata-eve.jsonl', { 'ok:suricata': 7, unsupported_event: 1, missing_field: 1, bad_json: 1 }],
    ['cef.txt', { 'ok:cef': 5, bad_header: 1, bad_field: 1 }],
    ['fortigate.txt', { 'ok:fortigate': 2, bad_field: 1 }],
  ])('%s parses to the expected outcomes', (name, expected) => {
    expect(outcomes(fixture(name))).toEqual(expected);
  });
});

describe('squid', () => {
  it('maps a proxied GET', () => {
    const r = parseMessage(fixture('squid-access.txt')[0]!);
    expect(r).toEqual({
      ok: true,
      format: 'squid',
      fields: { ts: 1710234000123, action: 'allowed', srcIp: '10.0.0.5', url: 'http://example.com/index.html', signature: 'TCP_MISS/200', protocol: 'http', domain: 'example.com', dstPort: 80, bytesIn: 1520, dstIp: '93.184.216.34' },
    });
  });
  it('maps a denied CONNECT with its user', () => {
    const r = parseMessage(fixture('squid-access.txt')[1]!);
    expect(r.ok && r.fields).toMatchObject({ action: 'blocked', domain: 'evil.example.net', dstPort: 443, protocol: 'https', user: 'alice' });
    expect(r.ok && r.fields.dstIp).toBe(undefined);
  });
  it('gives an error: pseudo-URL no domain', () => {
    const r = parseMessage(fixture('squid-access.txt')[6]!);
    expect(r.ok && r.fields.domain).toBe(undefined);
  });
});

describe('suricata', () => {
  const lines = fixture('suricata-eve.jsonl');
  it.each([
    [0, { action: 'alert', signature: 'ET POLICY Vulnerable Java Version 1.8.x Detected', vendorSeverity: '2', domain: 'malware.example.net', url: 'http://malware.example.net/payload.exe', dstIp: '203.0.113.55', dstPort: 80, protocol: 'http' }],
    [1, { action: 'blocked', signature: 'ET EXPLOIT Possible ETERNALBLUE Probe MS17-010', dstPort: 445 }],
    [2, { action: 'unknown', domain: 'c2.badness.example', protocol: 'udp' }],
    [3, { domain: 'www.example.org' }],
    [4, { domain: 'example.com', url: 'http://example.com/index.html', bytesIn: 1256 }],
    [5, { domain: 'www.google.com', dstIp: '142.250.196.100' }],
    [6, { bytesOut: 1834, bytesIn: 5321, protocol: 'tls', srcPort: 51514 }],
  ])('line %i maps its fields', (i, expected) => {
    const r = parseMessage(lines[i]!);
    expect(r.ok).toBe(true);
    expect(r.ok && r.fields).toMatchObject(expected);
  });
  it('reads the EVE time with its +0000 offset', () => {
    const r = parseMessage(lines[0]!);
    expect(r.ok && r.fields.ts).toBe(Date.UTC(2024, 2, 12, 9, 0, 0, 123));
  });
});

describe('cef', () => {
  const lines = fixture('cef.txt');
  it.each([
    [0, { action: 'blocked', srcIp: '10.0.0.5', srcPort: 51514, dstIp: '198.51.100.23', dstPort: 445, protocol: 'tcp', ts: 1710234000000, signature: 'Drop', vendorSeverity: '5' }],
    [1, { action: 'blocked', url: 'http://malware.example.net/payload.exe', domain: 'malware.example.net', user: 'corp\\alice', ts: Date.UTC(2024, 2, 12, 9, 0, 1) }],
    [2, { action: 'blocked', srcIp: '10.0.0.21', signature: 'Eicar_test_file' }],
    [3, { signature: 'detected a | in message', action: 'blocked', dstIp: '1.1.1.1', vendorSeverity: '10' }],
    [4, { action: 'allowed', bytesOut: 1834, bytesIn: 5321, domain: 'example.com' }],
  ])('line %i maps its fields', (i, expected) => {
    const r = parseMessage(lines[i]!);
    expect(r.ok && r.fields).toMatchObject(expected);
  });
  it('unescapes extension values and keeps spaces in them', () => {
    const ext = parseCefExtension('src=10.0.0.1 act=blocked a \\= dst=1.1.1.1 msg=two\\nlines cs1=a\\\\b');
    expect(Object.fromEntries(ext)).toEqual({ src: '10.0.0.1', act: 'blocked a =', dst: '1.1.1.1', msg: 'two\nlines', cs1: 'a\\b' });
  });
  it('finds CEF after a host prefix', () => {
    expect(parseMessage('fw01 CEF:0|V|P|1|1|n|5|src=10.0.0.1').ok).toBe(true);
  });
});

describe('fortigate', () => {
  const lines = fixture('fortigate.txt');
  it('prefers eventtime (ns) and maps a session', () => {
    const r = parseMessage(lines[0]!);
    expect(r.ok && r.fields).toMatchObject({ ts: 1710234000123, action: 'allowed', srcIp: '10.0.0.5', dstIp: '93.184.216.34', dstPort: 443, protocol: 'tcp', domain: 'example.com', bytesOut: 1834, bytesIn: 5321, vendorSeverity: 'notice' });
  });
  it('reads date and time in the tz offset and maps an IPS drop', () => {
    const r = parseMessage(lines[1]!);
    expect(r.ok && r.fields).toMatchObject({ ts: Date.UTC(2024, 2, 12, 9, 0, 5), action: 'blocked', signature: 'Eicar.Virus.Test.File', vendorSeverity: 'alert' });
  });
});

describe('syslog header', () => {
  it.each([
    ['<134>1 2024-03-12T09:00:00.123Z fw01 suricata 42 - - {"a":1}', { ts: Date.UTC(2024, 2, 12, 9, 0, 0, 123), host: 'fw01', app: 'suricata', msg: '{"a":1}' }],
    ['<134>1 - - - - - [kiseki@32473 token="abc\\"d\\]"][other@1 x="y"] \uFEFFhello', { token: 'abc"d]', msg: 'hello' }],
    ['<13>Mar 12 09:00:00 proxy01 squid[123]: 1710234000.123 x', { ts: Date.UTC(2024, 2, 12, 9), host: 'proxy01', app: 'squid', msg: '1710234000.123 x' }],
    ['<13>Mar  2 09:00:00 squid: hello', { ts: Date.UTC(2024, 2, 2, 9), app: 'squid', msg: 'hello' }],
    ['no header at all', { msg: 'no header at all' }],
  ])('%s', (line, expected) => {
    const r = parseSyslogHeader(line, RECEIVED);
    expect(r).toEqual({ ok: true, message: expected });
  });
  it.each(['<999>1 - - - - - - x', '<1x>hello', '<134>1 notatime h a p m - x', '<134>1 - h a p m [broken x'])('refuses %s', (line) => {
    expect(parseSyslogHeader(line, RECEIVED)).toEqual({ ok: false, reason: 'bad_syslog_header' });
  });
  it('puts a December line received in January in the previous year', () => {
    const r = parseSyslogHeader('<13>Dec 31 23:59:00 h t: x', Date.UTC(2025, 0, 1, 0, 1));
    expect(r.ok && r.message.ts).toBe(Date.UTC(2024, 11, 31, 23, 59));
  });
});

describe('parseLine', () => {
  it('builds a record with the header host and the raw line', () => {
    const line = `<134>1 2024-03-12T09:00:00Z fw01 squid - - - ${fixture('squid-access.txt')[0]!}`;
    const r = parseLine(line, RECEIVED, '192.0.2.1');
    expect(r.ok && r.record).toMatchObject({ receivedAt: RECEIVED, ts: 1710234000123, format: 'squid', sourceAddress: '192.0.2.1', host: 'fw01', raw: line });
  });
  it('uses the header time when the format has none, and counts an empty message', () => {
    const r = parseLine('<13>Mar 12 09:00:00 fw01 cef: CEF:0|V|P|1|1|n|5|src=10.0.0.1', RECEIVED, '192.0.2.1');
    expect(r.ok && r.record.ts).toBe(Date.UTC(2024, 2, 12, 9));
    expect(parseLine('<13>Mar 12 09:00:00 fw01 tag: ', RECEIVED, '192.0.2.1')).toMatchObject({ ok: false, reason: 'empty_message' });
  });
});
