import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { flattenKeys, toCef, toEcs, toOcsf, toSyslog } from './formats.js';
import { SIEM_SAMPLES } from './siem-samples.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The ECS field names docs/SIEM.md lists between its ecs-fields markers. */
function documentedEcsFields(): string[] {
  const text = readFileSync(join(ROOT, 'docs/SIEM.md'), 'utf8');
  const section = text.slice(text.indexOf('<!-- ecs-fields:start -->'), text.indexOf('<!-- ecs-fields:end -->'));
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

describe('SIEM formats', () => {
  it('ECS output uses exactly the field names docs/SIEM.md lists', () => {
    const documented = documentedEcsFields();
    expect(documented.length).toBeGreaterThan(40);
    const emitted = new Set<string>();
    for (const e of SIEM_SAMPLES) {
      const keys = flattenKeys(toEcs(e));
      // Every key of every document is documented…
      for (const k of keys) expect(documented, `ECS field ${k} (from a ${e.type} event) is not in docs/SIEM.md`).toContain(k);
      keys.forEach((k) => emitted.add(k));
    }
    // …and the doc lists nothing kiseki never writes.
    expect([...emitted].sort()).toEqual([...documented].sort());
  });

  it('ECS fields follow the Elastic types: @timestamp ISO, severity numeric, ip arrays where ECS has them', () => {
    const doc = toEcs(SIEM_SAMPLES[0]!) as Record<string, any>;
    expect(doc['@timestamp']).toBe('2026-11-30T03:00:00.000Z');
    expect(doc.event.severity).toBe(99);
    expect(doc.observer.ip).toEqual(['10.0.0.2']);
    expect(doc.source.port).toBe(51234);
    expect(doc.threat.indicator.confidence).toBe('High');
  });

  it('OCSF output is a Detection Finding with the mapped severity and the evidence', () => {
    const f = toOcsf(SIEM_SAMPLES[0]!) as Record<string, any>;
    expect(f).toMatchObject({ class_uid: 2004, category_uid: 2, activity_id: 1, type_uid: 200401, severity_id: 5, severity: 'Critical', metadata: { uid: 'nt_41_soc', tenant_uid: 'T1', product: { name: 'kiseki' } } });
    expect(f.evidences[0]).toMatchObject({ process: { pid: 7344, file: { name: 'updater.exe' } }, dst_endpoint: { ip: '203.0.113.45', port: 443 } });
    expect(f.observables[0]).toMatchObject({ type_id: 2, value: '203.0.113.45', reputation: { base_score: 90 } });
    const alert = toOcsf(SIEM_SAMPLES.find((e) => e.type === 'endpoint-alert')!) as Record<string, any>;
    expect(alert.evidences[0].file.hashes[0]).toEqual({ algorithm_id: 3, algorithm: 'SHA-256', value: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' });
  });

  it('CEF escapes header pipes and extension equals signs, and maps severity to 0–10', () => {
    const e = { ...SIEM_SAMPLES[0]!, title: 'a|b = c\\d', indicator: { ...SIEM_SAMPLES[0]!.indicator!, value: 'x=y' } };
    const line = toCef(e);
    expect(line.startsWith('CEF:0|kiseki|kiseki|0.1.0|network-intel|a\\|b = c\\\\d|10|')).toBe(true);
    expect(line).toContain('cs2=x\\=y');
    expect(line).toContain('msg=a|b \\= c\\\\d');
  });

  it.each([
    ['Critical', 162],
    ['Serious', 163],
    ['Medium', 164],
    ['Information', 166],
  ] as const)('RFC 5424: %s is PRI %i, structured data escaped', (severity, pri) => {
    const line = toSyslog({ ...SIEM_SAMPLES[1]!, severity, supportId: 'T"1]' }, 'cef', 'host name');
    expect(line.startsWith(`<${pri}>1 2026-11-30T03:01:00.400Z hostname kiseki - network-intel [kiseki@32473 eventId="nt_45_soc" supportId="T\\"1\\]" severity="${severity}"`)).toBe(true);
  });
});
