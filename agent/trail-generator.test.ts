/**
 * Tests of the seeded trail-event generator: determinism, seq and ts rules,
 * SPEC §2 field names and types per kind, process-tree linkage, and the
 * detection chain.
 */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import type { TrailEvent } from '../core/contracts.js';
import { createTrailGenerator } from './trail-generator.js';

const NOW = Date.UTC(2024, 2, 12, 1, 0, 0);
const GUID = /^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/;
const SHA = /^[0-9a-f]{64}$/;

/** Runs a generator for `calls` calls of `perCall` events, 1 s apart. */
function run(seed: number, calls: number, perCall: number, detectRate?: number): TrailEvent[] {
  const g = createTrailGenerator({ seed, computer: 'PC-TEST-001', ...(detectRate === undefined ? {} : { detectRate }) });
  const out: TrailEvent[] = [];
  for (let c = 0; c < calls; c++) out.push(...g.next(perCall, 1 + c * perCall, NOW + c * 1000));
  return out;
}

type FieldType = 'string' | 'number' | 'boolean' | 'string[]' | 'guid' | 'sha';

/** Required fields per kind (SPEC §2), beyond ts/k/seq. */
const REQUIRED: Record<string, Record<string, FieldType>> = {
  'proc.start': {
    pg: 'guid',
    pid: 'number',
    user: 'string',
    image: 'string',
    cmd: 'string',
    sha256: 'sha',
    signer: 'string',
    sig: 'string',
    ppg: 'guid',
    ppid: 'number',
    pimage: 'string',
    pcmd: 'string',
    cwd: 'string',
    integrity: 'string',
  },
  'proc.end': { pg: 'guid', pid: 'number', exit: 'number' },
  'file.create': { pg: 'guid', pid: 'number', path: 'string', size: 'number', vol: 'string' },
  'file.write': { pg: 'guid', pid: 'number', path: 'string', size: 'number', vol: 'string' },
  'file.read': { pg: 'guid', pid: 'number', path: 'string', vol: 'string', count: 'number', tsLast: 'number' },
  'file.delete': { pg: 'guid', pid: 'number', path: 'string' },
  'file.rename': { pg: 'guid', pid: 'number', path: 'string', newPath: 'string' },
  'reg.set': { pg: 'guid', pid: 'number', key: 'string', value: 'string', dtype: 'string', data: 'string' },
  'reg.create': { pg: 'guid', pid: 'number', key: 'string' },
  'reg.delete': { pg: 'guid', pid: 'number', key: 'string' },
  'net.conn': { pg: 'guid', pid: 'number', proto: 'string', dir: 'string', lip: 'string', lport: 'number', rip: 'string', rport: 'number' },
  'net.dns': { pg: 'guid', pid: 'number', qname: 'string', qtype: 'string', answers: 'string[]' },
  'usb.connect': { instanceId: 'string', vendorId: 'string', productId: 'string', serial: 'string', vendor: 'string', model: 'string', type: 'string' },
  'usb.disconnect': { instanceId: 'string', vendorId: 'string', productId: 'string', serial: 'string', vendor: 'string', model: 'string', type: 'string' },
  logon: { userName: 'string', domain: 'string', logonType: 'number', logonId: 'string', ok: 'boolean' },
  logoff: { userName: 'string', domain: 'string', logonType: 'number', logonId: 'string', ok: 'boolean' },
  'av.detect': { engine: 'string', threat: 'string', path: 'string', sha256: 'sha', action: 'string' },
};

function typeOk(v: unknown, t: FieldType): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'string[]':
      return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string');
    case 'guid':
      return typeof v === 'string' && GUID.test(v);
    case 'sha':
      return typeof v === 'string' && SHA.test(v);
  }
}

describe('createTrailGenerator', () => {
  const CALLS = 30;
  const PER_CALL = 2000;
  const events = run(42, CALLS, PER_CALL);

  it('is deterministic for a seed and differs between seeds', () => {
    expect(run(42, 3, 2000)).toEqual(events.slice(0, 6000));
    expect(JSON.stringify(run(43, 1, 300))).not.toEqual(JSON.stringify(events.slice(0, 300)));
  });

  it('numbers events firstSeq + i across calls', () => {
    expect(events.every((e, i) => e.seq === 1 + i)).toBe(true);
    const g = createTrailGenerator({ seed: 1, computer: 'PC-X' });
    expect(g.next(5, 1000, NOW).map((e) => e.seq)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(g.next(0, 1005, NOW + 1000)).toEqual([]);
  });

  it('keeps ts non-decreasing, integral and inside the interval ending at nowMs', () => {
    const problems: string[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as TrailEvent;
      const call = Math.floor(i / PER_CALL);
      if (!Number.isInteger(e.ts)) problems.push(`#${i} ts not integral`);
      if (i > 0 && e.ts < (events[i - 1] as TrailEvent).ts) problems.push(`#${i} ts goes back`);
      if (e.ts > NOW + call * 1000) problems.push(`#${i} ts after nowMs`);
      if (call > 0 && e.ts < NOW + (call - 1) * 1000) problems.push(`#${i} ts before the previous nowMs`);
    }
    expect(problems.slice(0, 5)).toEqual([]);
    // nowMs going backwards never makes ts go backwards.
    const g = createTrailGenerator({ seed: 5, computer: 'PC-Y' });
    const a = g.next(100, 1, NOW);
    const b = g.next(100, 101, NOW - 10_000);
    expect((b[0] as TrailEvent).ts).toBeGreaterThanOrEqual((a[99] as TrailEvent).ts);
  });

  it('gives every kind its SPEC §2 fields with the right types', () => {
    const kinds = new Set(events.map((e) => e.k));
    for (const k of Object.keys(REQUIRED)) if (k !== 'av.detect') expect(kinds, k).toContain(k);
    const problems: string[] = [];
    for (const e of events) {
      const required = REQUIRED[e.k];
      if (!required) {
        problems.push(`unexpected kind ${e.k}`);
        continue;
      }
      for (const [field, t] of Object.entries(required)) {
        if (!typeOk(e[field], t)) problems.push(`${e.k}.${field} = ${JSON.stringify(e[field])}`);
      }
      if (e.pg !== undefined && !GUID.test(e.pg)) problems.push(`${e.k}.pg = ${e.pg}`);
      if (e.user !== undefined && !/^S-1-\d+(-\d+)*$/.test(e.user)) problems.push(`${e.k}.user = ${e.user}`);
    }
    expect(problems.slice(0, 10)).toEqual([]);
  });

  it('uses the enumerated values of sig, vol, dir and action', () => {
    const problems: string[] = [];
    for (const e of events) {
      if (e.k === 'proc.start' && !['trusted', 'untrusted', 'unsigned'].includes(e.sig as string)) problems.push(`sig ${String(e.sig)}`);
      if ((e.k === 'file.create' || e.k === 'file.write' || e.k === 'file.read') && !['fixed', 'removable', 'network'].includes(e.vol as string)) {
        problems.push(`vol ${String(e.vol)}`);
      }
      if (e.k === 'net.conn' && !['out', 'in'].includes(e.dir as string)) problems.push(`dir ${String(e.dir)}`);
      if (e.k === 'file.read' && (e.tsLast as number) < e.ts) problems.push('tsLast before ts');
      if (e.k === 'file.create' && e.originUrl !== undefined && (typeof e.originUrl !== 'string' || e.zone !== 3)) problems.push('bad Mark of the Web');
    }
    expect(problems.slice(0, 10)).toEqual([]);
    const vols = new Set(events.filter((e) => e.k === 'file.write' || e.k === 'file.read' || e.k === 'file.create').map((e) => e.vol));
    expect(vols).toEqual(new Set(['fixed', 'removable', 'network']));
    expect(events.some((e) => e.k === 'file.create' && typeof e.originUrl === 'string')).toBe(true);
  });

  it('links every proc.start to an earlier process or a root, and ends only started processes once', () => {
    const g = createTrailGenerator({ seed: 42, computer: 'PC-TEST-001' });
    const known = new Map<string, number>(g.roots.map((r) => [r.pg, r.pid]));
    const rootPgs = new Set(g.roots.map((r) => r.pg));
    const ended = new Set<string>();
    let starts = 0;
    let ends = 0;
    const problems: string[] = [];
    for (let c = 0; c < CALLS; c++) {
      for (const e of g.next(PER_CALL, 1 + c * PER_CALL, NOW + c * 1000)) {
        const pg = e.pg as string;
        if (e.k === 'proc.start') {
          starts++;
          if (known.get(e.ppg as string) !== e.ppid) problems.push(`#${e.seq} ppg/ppid unknown`);
          if (known.has(pg)) problems.push(`#${e.seq} pg reused`);
          known.set(pg, e.pid as number);
        } else if (e.k === 'proc.end') {
          ends++;
          if (known.get(pg) !== e.pid) problems.push(`#${e.seq} end of an unknown process`);
          if (rootPgs.has(pg)) problems.push(`#${e.seq} a root ended`);
          if (ended.has(pg)) problems.push(`#${e.seq} ended twice`);
          ended.add(pg);
        } else if (e.pg !== undefined) {
          // Every actor is a root or a started process that has not ended yet.
          if (known.get(pg) !== e.pid) problems.push(`#${e.seq} ${e.k} by an unknown process`);
          if (ended.has(pg)) problems.push(`#${e.seq} ${e.k} by an ended process`);
        }
      }
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(starts).toBeGreaterThan(100);
    expect(ends).toBeGreaterThan(50);
  });

  it('builds realistic trees: explorer starts browsers and Office, cmd starts conhost', () => {
    const g = createTrailGenerator({ seed: 7, computer: 'PC-TREE' });
    const evs = g.next(100_000, 1, NOW);
    const pairs = new Set(
      evs
        .filter((e) => e.k === 'proc.start')
        .map((e) => `${String(e.pimage).split('\\').pop()?.toLowerCase()}>${String(e.image).split('\\').pop()?.toLowerCase()}`),
    );
    for (const p of ['explorer.exe>chrome.exe', 'explorer.exe>winword.exe', 'explorer.exe>cmd.exe', 'cmd.exe>conhost.exe', 'chrome.exe>chrome.exe']) {
      expect(pairs, p).toContain(p);
    }
  });

  it('produces av.detect after a download and (unless blocked) an execution of the same file', () => {
    const g = createTrailGenerator({ seed: 9, computer: 'PC-DETECT', detectRate: 0.5 });
    const evs = g.next(5000, 1, NOW);
    const detects = evs.filter((e) => e.k === 'av.detect');
    expect(detects.length).toBeGreaterThan(20);
    expect(g.detections).toBe(detects.length);
    for (const d of detects) {
      expect(['blocked', 'quarantined', 'allowed']).toContain(d.action);
      const at = evs.indexOf(d);
      const before = evs.slice(0, at);
      const download = before.find((e) => e.k === 'file.create' && e.path === d.path && e.sha256 === d.sha256);
      expect(download?.originUrl, 'download with Mark of the Web').toEqual(expect.stringMatching(/^https:\/\//));
      if (d.action !== 'blocked') {
        const exec = before.findLast((e) => e.k === 'proc.start' && e.image === d.path);
        expect(exec?.pg).toBe(d.pg);
        expect(exec?.sig).toBe('unsigned');
      }
    }
    expect(run(3, 1, 2000, 0).some((e) => e.k === 'av.detect')).toBe(false);
  });

  it('keeps events small (MessagePack, a few hundred bytes on average)', () => {
    const sample = events.slice(0, 20_000);
    const total = sample.reduce((n, e) => n + encode(e).length, 0);
    const avg = total / sample.length;
    expect(avg).toBeGreaterThan(150);
    expect(avg).toBeLessThan(400);
  });
});
