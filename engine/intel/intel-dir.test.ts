import { mkdirSync, mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../core/clock.js';
import { createThreatIntel, type IntelLoadReport } from './intel-dir.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('intel directory', () => {
  it('reads plain lists, STIX bundles, TAXII bundles and MISP feeds into one index, and reloads on change', () => {
    dir = mkdtempSync(join(tmpdir(), 'kiseki-intel-'));
    writeFileSync(join(dir, 'ips.txt'), '# bad\n203.0.113.9\n198.51.100.0/24\n');
    writeFileSync(join(dir, 'urls.txt'), 'http://dl.example/payload.exe\n');
    mkdirSync(join(dir, 'stix'));
    writeFileSync(join(dir, 'stix', 'vendor.json'), JSON.stringify({ type: 'bundle', objects: [{ type: 'indicator', id: 'indicator--1', pattern_type: 'stix', pattern: "[domain-name:value = 'c2.example']", valid_from: '2026-01-01T00:00:00Z', valid_until: '2026-06-01T00:00:00Z', confidence: 95 }] }));
    mkdirSync(join(dir, 'misp', 'circl'), { recursive: true });
    writeFileSync(join(dir, 'misp', 'circl', 'manifest.json'), JSON.stringify({ '5f0c3a8e-0000-4000-8000-000000000001': { info: 'x' } }));
    writeFileSync(join(dir, 'misp', 'circl', '5f0c3a8e-0000-4000-8000-000000000001.json'), JSON.stringify({ Event: { threat_level_id: '2', Attribute: [{ type: 'sha256', value: 'c'.repeat(64), to_ids: true }] } }));
    writeFileSync(join(dir, 'misp', 'broken.csv'), 'uuid,type,value,to_ids\nu,ip-dst,192.0.2.1,1\n');
    writeFileSync(join(dir, 'stix', 'bad.json'), '{ not json');
    const reports: IntelLoadReport[] = [];
    const clock = createManualClock(Date.parse('2026-03-01T00:00:00Z'));
    const intel = createThreatIntel(dir, { clock, onLoad: (r) => reports.push(r) });
    expect(intel.counts()).toEqual({ ip: 3, domain: 1, url: 1, sha256: 1 });
    expect(reports[0]!.failures.map((f) => f.file)).toEqual([join(dir, 'stix', 'bad.json')]);
    expect(intel.has('ip', '198.51.100.77')).toBe(true);
    expect(intel.has('ip', '192.0.2.1')).toBe(true);
    expect(intel.has('domain', 'x.c2.example')).toBe(true);
    expect(intel.has('sha256', 'C'.repeat(64))).toBe(true);
    const hit = intel.index().matchDomain('c2.example', clock.now())[0]!;
    expect(hit).toMatchObject({ source: 'stix:vendor', confidence: 95, ref: 'indicator--1' });
    expect(intel.index().matchSha256('c'.repeat(64), clock.now())[0]!.confidence).toBe(65);
    // Expiry: past valid_until the STIX indicator stops matching without a reload.
    clock.set(Date.parse('2026-07-01T00:00:00Z'));
    expect(intel.has('domain', 'x.c2.example')).toBe(false);
    expect(intel.reloadIfChanged()).toBe(false);
    // A new TAXII bundle written by rename is picked up.
    mkdirSync(join(dir, 'taxii'));
    writeFileSync(join(dir, 'taxii', '.tmp'), JSON.stringify({ type: 'bundle', objects: [{ type: 'indicator', id: 'indicator--2', pattern: "[ipv4-addr:value = '192.0.2.200']" }] }));
    renameSync(join(dir, 'taxii', '.tmp'), join(dir, 'taxii', 'srv.json'));
    expect(intel.reloadIfChanged()).toBe(true);
    expect(intel.index().matchIp('192.0.2.200', clock.now())[0]!.source).toBe('taxii:srv');
  });

  it('is empty and never reloads without a directory', () => {
    const intel = createThreatIntel(undefined);
    expect(intel.has('ip', '1.2.3.4')).toBe(false);
    expect(intel.reloadIfChanged()).toBe(false);
  });
});
