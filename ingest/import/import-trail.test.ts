import { describe, expect, it } from 'vitest';
import { buildTrails, correctEnvelopeTimes, enrichDetection, linkFallbackProcesses, type InputEvent } from './import-trail.js';
import type { ImportedEvent } from './sysmon-mapper.js';

const T0 = Date.UTC(2024, 0, 2, 3, 0, 0);
const P = (n: number) => `{00000000-0000-0000-0000-00000000000${n}}`;

let order = 0;
function input(host: string, k: string, ts: number, fields: Record<string, unknown> = {}, rid?: string): InputEvent {
  const n = order++;
  const event: ImportedEvent = { ts, k, ...fields, src: 'sysmon:0', rid: rid ?? `rid-${n}` };
  return { host, event, order: n };
}

const kinds = (events: readonly ImportedEvent[]) => events.map((e) => `${e.k}@${e.ts - T0}`);

describe('buildTrails', () => {
  it('puts each host’s events in time order, whatever the input order', () => {
    const trails = buildTrails([
      input('PC1', 'file.create', T0 + 300, { path: 'C:\\a' }),
      input('PC1', 'logon', T0 + 100),
      input('PC1', 'file.delete', T0 + 200, { path: 'C:\\a' }),
    ]);
    expect(trails).toHaveLength(1);
    expect(kinds(trails[0]!.events)).toEqual(['logon@100', 'file.delete@200', 'file.create@300']);
  });

  it('never puts a process’s events before its start, keeping their own times', () => {
    const trails = buildTrails([
      // A child stamped before its parent's start, and read before it, goes after it.
      input('PC1', 'proc.start', T0 + 999, { pg: P(2), ppg: P(1), image: 'C:\\c.exe' }),
      input('PC1', 'proc.start', T0 + 1000, { pg: P(1), image: 'C:\\p.exe' }),
      // Stamped before the start (Sysmon does this for network and DNS events).
      input('PC1', 'net.conn', T0 + 995, { pg: P(1), rip: '198.51.100.7' }),
      input('PC1', 'net.dns', T0 + 990, { pg: P(1), qname: 'x.example' }),
      input('PC1', 'logon', T0 + 997),
      input('PC1', 'reg.set', T0 + 1001, { pg: P(2), key: 'HKLM\\x' }),
    ]);
    const events = trails[0]!.events;
    expect(kinds(events)).toEqual(['logon@997', 'proc.start@1000', 'proc.start@999', 'net.conn@995', 'net.dns@990', 'reg.set@1001']);
  });

  it('drops exact duplicate records and counts them', () => {
    const trails = buildTrails([
      input('PC1', 'logon', T0, {}, 'same'),
      input('PC1', 'logon', T0, {}, 'same'),
      input('PC1', 'logoff', T0 + 1, {}, 'other'),
      input('PC1', 'logon', T0, {}, 'same'),
    ]);
    expect(trails[0]!.duplicates).toBe(2);
    expect(kinds(trails[0]!.events)).toEqual(['logon@0', 'logoff@1']);
  });

  it('groups hosts case-insensitively and keeps the first spelling', () => {
    const trails = buildTrails([input('pc-1.corp', 'logon', T0), input('PC-1.CORP', 'logoff', T0 + 1), input('PC-2', 'logon', T0)]);
    expect(trails.map((t) => [t.computer, t.events.length])).toEqual([
      ['pc-1.corp', 2],
      ['PC-2', 1],
    ]);
  });

  it('merges a Defender 1116 and the 1117 of the same detection: the 1116’s time, the 1117’s action', () => {
    const det = { path: 'C:\\x.exe', threat: 'T', engine: 'E', detectionId: '{d1}' };
    const trails = buildTrails([
      input('PC1', 'av.detect', T0 + 5000, { ...det, action: 'quarantined', src: 'defender:1117' }),
      input('PC1', 'av.detect', T0 + 4000, { ...det, action: 'detected', src: 'defender:1116' }),
      input('PC1', 'av.detect', T0 + 6000, { ...det, detectionId: '{d2}', action: 'detected', src: 'defender:1116' }),
    ]);
    const t = trails[0]!;
    expect(t.merged).toBe(1);
    expect(t.events.map((e) => [e.ts - T0, e.action, e.detectionId])).toEqual([
      [4000, 'quarantined', '{d1}'],
      [6000, 'detected', '{d2}'],
    ]);
  });

  it('gives a detection the process and hash the trail knows for the file', () => {
    const trails = buildTrails([
      input('PC1', 'proc.start', T0, { pg: P(1), pid: 10, image: 'C:\\Users\\a\\x.exe', sha256: 'a'.repeat(64) }),
      input('PC1', 'proc.start', T0 + 50, { pg: P(2), pid: 11, image: 'C:\\USERS\\A\\X.EXE', sha256: 'b'.repeat(64) }),
      // A later run of the same file does not count: it started after the detection.
      input('PC1', 'proc.start', T0 + 500, { pg: P(3), pid: 12, image: 'C:\\Users\\a\\x.exe' }),
      input('PC1', 'av.detect', T0 + 100, { path: 'c:\\users\\a\\x.exe', action: 'detected' }),
    ]);
    expect(trails[0]!.events.find((e) => e.k === 'av.detect')).toMatchObject({ pg: P(2), pid: 11, sha256: 'b'.repeat(64) });
  });
});

describe('enrichDetection', () => {
  it('falls back to a hash recorded for the path when the file never ran, and keeps given values', () => {
    const trail = [{ ts: T0, k: 'file.delete', path: 'C:\\x.exe', sha256: 'c'.repeat(64) }];
    const d: Record<string, unknown> = { ts: T0 + 1, k: 'av.detect', path: 'C:\\X.exe' };
    enrichDetection(d, trail);
    expect(d).toEqual({ ts: T0 + 1, k: 'av.detect', path: 'C:\\X.exe', sha256: 'c'.repeat(64) });
    const given: Record<string, unknown> = { ts: T0 + 1, k: 'av.detect', path: 'C:\\x.exe', sha256: 'd'.repeat(64) };
    enrichDetection(given, trail);
    expect(given.sha256).toBe('d'.repeat(64));
  });
});

describe('linkFallbackProcesses (Security fallbacks)', () => {
  const sec = (k: string, ts: number, fields: Record<string, unknown>): ImportedEvent => ({ ts, k, ...fields, fallback: true, src: `security:${k === 'proc.start' ? 4688 : 5156}`, rid: `r${order++}` });

  it('links 4688 parents and other events’ acting processes by PID and time when the host has no Sysmon', () => {
    const parent = sec('proc.start', T0, { pg: P(1), pid: 100, ppid: 4, image: 'C:\\Windows\\System32\\cmd.exe', cmd: 'cmd' });
    const child = sec('proc.start', T0 + 10, { pg: P(2), pid: 200, ppid: 100, image: 'C:\\t\\a.exe', cmd: 'a.exe' });
    const conn = sec('net.conn', T0 + 20, { pid: 200, rip: '203.0.113.1' });
    // PID 100 reused later by another process: a later child links to it, not to the first.
    const reuse = sec('proc.start', T0 + 30, { pg: P(3), pid: 100, ppid: 4, image: 'C:\\x.exe', cmd: 'x' });
    const child2 = sec('proc.start', T0 + 40, { pg: P(4), pid: 300, ppid: 100, image: 'C:\\y.exe', cmd: 'y' });
    linkFallbackProcesses('PC1', [child2, conn, child, reuse, parent]);
    expect(child).toMatchObject({ ppg: P(1), pimage: 'C:\\Windows\\System32\\cmd.exe', pcmd: 'cmd' });
    expect(conn.pg).toBe(P(2));
    expect(child2.ppg).toBe(P(3));
    // An unknown parent gets one GUID per host and PID, shared by its children.
    expect(parent.ppg).toBe(reuse.ppg);
    expect(parent.fallback).toBeUndefined();
  });

  it('returns the fallbacks to their raw kinds on a host with Sysmon', () => {
    const start = sec('proc.start', T0, { pg: P(1), pid: 100, image: 'C:\\a.exe' });
    const sysmon: ImportedEvent = { ts: T0, k: 'proc.start', pg: P(2), src: 'sysmon:1', rid: 'x' };
    linkFallbackProcesses('PC1', [start, sysmon]);
    expect(start.k).toBe('security.4688');
    expect(sysmon.k).toBe('proc.start');
  });
});

describe('correctEnvelopeTimes', () => {
  const ev = (src: string, ts: number, skew?: number): ImportedEvent => ({ ts, k: 'x', src, rid: `r${order++}`, ...(skew === undefined ? {} : { envelopeSkew: skew }) });

  it('moves envelope-only records by the offset most Sysmon records of the host show', () => {
    const H = 5 * 3_600_000;
    const sysmon = Array.from({ length: 12 }, (_, i) => ev('sysmon:1', T0 + i, i < 10 ? -H : undefined));
    const security = ev('security:4624', T0 - H);
    const defender = ev('defender:1116', T0);
    correctEnvelopeTimes([...sysmon, security, defender]);
    expect(security.ts).toBe(T0);
    expect(defender.ts).toBe(T0);
    expect(sysmon.every((e) => e.envelopeSkew === undefined && e.ts >= T0)).toBe(true);
  });

  it('leaves times alone with too few Sysmon records or no agreement', () => {
    const few = [...Array.from({ length: 5 }, () => ev('sysmon:1', T0, 3_600_000)), ev('security:4624', T0)];
    correctEnvelopeTimes(few);
    expect(few.at(-1)!.ts).toBe(T0);
    const split = [...Array.from({ length: 6 }, () => ev('sysmon:1', T0, 3_600_000)), ...Array.from({ length: 6 }, () => ev('sysmon:1', T0)), ev('security:4624', T0)];
    correctEnvelopeTimes(split);
    expect(split.at(-1)!.ts).toBe(T0);
  });
});
