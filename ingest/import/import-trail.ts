/**
 * Turns mapped records into per-host trails ready to be numbered and sent:
 * exact duplicate records dropped (same `rid`), a Defender 1116 and the 1117
 * of the same detection merged into one `av.detect`, detections enriched with
 * the process and hash the host's own trail knows, and the events put in time
 * order (UtcTime) — except that none of a process's events goes before its
 * start: Sysmon stamps network and DNS events of a new process slightly
 * before its event 1 now and then, and a trail where a process acts before it
 * exists reads wrong. Events keep their own `ts`; only their order changes.
 */
import { ENVELOPE_SKEW, type ImportedEvent } from './sysmon-mapper.js';
import { FALLBACK_FIELD, synthesizedGuid } from './windows-fallback.js';

/** One mapped record, with its position in the input (the tie-breaker of the sort). */
export interface InputEvent {
  host: string;
  event: ImportedEvent;
  order: number;
}

export interface HostTrail {
  /** The host name as first seen in the input. */
  computer: string;
  /** In the order seq will be assigned. */
  events: ImportedEvent[];
  /** Exact duplicate records dropped. */
  duplicates: number;
  /** Defender 1117 records folded into the 1116 of the same detection. */
  merged: number;
}

function foldKey(s: string): string {
  return s.toLowerCase();
}

/** The key hosts are grouped by: Windows computer names compare case-insensitively. */
export function hostKey(computer: string): string {
  return computer.trim().toUpperCase();
}

/**
 * Fills an `av.detect`'s missing `pg` / `pid` / `sha256` from a trail: the
 * latest start of a process with the detected file as its image at or before
 * the detection, else the latest event naming the file with a hash.
 */
export function enrichDetection(detection: Record<string, unknown>, trail: Iterable<Record<string, unknown>>): void {
  const path = typeof detection.path === 'string' ? foldKey(detection.path) : undefined;
  const at = typeof detection.ts === 'number' ? detection.ts : Number.POSITIVE_INFINITY;
  if (path === undefined || path === '') return;
  let proc: Record<string, unknown> | undefined;
  let hashed: Record<string, unknown> | undefined;
  for (const e of trail) {
    const ts = typeof e.ts === 'number' ? e.ts : 0;
    if (ts > at) continue;
    if (e.k === 'proc.start' && typeof e.image === 'string' && foldKey(e.image) === path) {
      if (proc === undefined || ts >= (proc.ts as number)) proc = e;
    } else if (typeof e.path === 'string' && typeof e.sha256 === 'string' && e.k !== 'av.detect' && foldKey(e.path) === path) {
      if (hashed === undefined || ts >= (hashed.ts as number)) hashed = e;
    }
  }
  if (proc !== undefined && detection.pg === undefined && typeof proc.pg === 'string') {
    detection.pg = proc.pg;
    if (detection.pid === undefined && typeof proc.pid === 'number') detection.pid = proc.pid;
  }
  if (detection.sha256 === undefined) {
    const sha = (typeof proc?.sha256 === 'string' ? proc.sha256 : undefined) ?? (hashed?.sha256 as string | undefined);
    if (sha !== undefined) detection.sha256 = sha;
  }
}

/** Keeps one av.detect per Defender detection ID: the 1116's time, the 1117's action. */
function mergeDefender(events: InputEvent[]): { kept: InputEvent[]; merged: number } {
  const byDetection = new Map<string, InputEvent>();
  const kept: InputEvent[] = [];
  let merged = 0;
  for (const item of events) {
    const e = item.event;
    const id = e.k === 'av.detect' && typeof e.detectionId === 'string' ? e.detectionId : undefined;
    if (id === undefined) {
      kept.push(item);
      continue;
    }
    const first = byDetection.get(id);
    if (first === undefined) {
      byDetection.set(id, item);
      kept.push(item);
      continue;
    }
    merged++;
    const a = first.event;
    const later = e.src === 'defender:1117' ? e : a.src === 'defender:1117' ? a : undefined;
    const earlier = e.ts < a.ts ? e : a;
    // The kept record keeps its own rid, so a re-import merges the same way and adds nothing.
    a.ts = earlier.ts;
    if (later !== undefined && later.action !== 'detected') a.action = later.action;
    for (const [k, v] of Object.entries(e)) if (a[k] === undefined) a[k] = v;
  }
  return { kept, merged };
}

/**
 * Sort key of each event: its time, raised to its process's start time
 * (itself raised to its parent's), so that no event of a process precedes
 * the process's start; and a rank among equal times: starts first, parents
 * before children, then everything else.
 */
function orderKeys(events: InputEvent[]): Map<InputEvent, { key: number; rank: number }> {
  const starts = new Map<string, ImportedEvent>();
  for (const { event: e } of events) {
    if (e.k === 'proc.start' && typeof e.pg === 'string' && !starts.has(e.pg)) starts.set(e.pg, e);
  }
  const resolved = new Map<string, { key: number; depth: number }>();
  const resolve = (pg: string, depth: number): { key: number; depth: number } | undefined => {
    const known = resolved.get(pg);
    if (known !== undefined) return known;
    const start = starts.get(pg);
    if (start === undefined) return undefined;
    let key = start.ts;
    let ancestors = 0;
    // Depth bound: a cycle in parent links (bad data) must not recurse forever.
    if (depth < 64 && typeof start.ppg === 'string' && start.ppg !== pg) {
      const parent = resolve(start.ppg, depth + 1);
      if (parent !== undefined) {
        if (parent.key > key) key = parent.key;
        ancestors = parent.depth + 1;
      }
    }
    const r = { key, depth: ancestors };
    resolved.set(pg, r);
    return r;
  };
  const keys = new Map<InputEvent, { key: number; rank: number }>();
  for (const item of events) {
    const e = item.event;
    const own = typeof e.pg === 'string' ? resolve(e.pg, 0) : undefined;
    const isStart = e.k === 'proc.start' && own !== undefined && starts.get(e.pg as string) === e;
    keys.set(item, { key: own !== undefined && own.key > e.ts ? own.key : e.ts, rank: isStart ? own.depth : 1000 });
  }
  return keys;
}

/**
 * The Security fallbacks of one host (windows-fallback.ts): on a host with
 * Sysmon they go back to their raw `security.<id>` kind (Sysmon already
 * recorded the same facts); without Sysmon, each 4688's parent is the latest
 * process started earlier with its creator PID, and every other fallback
 * event's acting process the latest started with its PID.
 */
export function linkFallbackProcesses(host: string, events: readonly ImportedEvent[]): void {
  const fallbacks = events.filter((e) => e[FALLBACK_FIELD] === true);
  if (fallbacks.length === 0) return;
  const hasSysmon = events.some((e) => e.src.startsWith('sysmon:'));
  if (hasSysmon) {
    for (const e of fallbacks) {
      e.k = `security.${e.src.slice(e.src.indexOf(':') + 1)}`;
      delete e[FALLBACK_FIELD];
    }
    return;
  }
  const byTime = [...fallbacks].sort((a, b) => a.ts - b.ts || (a.k === 'proc.start' ? -1 : 0) - (b.k === 'proc.start' ? -1 : 0));
  const byPid = new Map<number, ImportedEvent>();
  for (const e of byTime) {
    delete e[FALLBACK_FIELD];
    if (e.k === 'proc.start') {
      const ppid = typeof e.ppid === 'number' ? e.ppid : undefined;
      if (ppid !== undefined) {
        const parent = byPid.get(ppid);
        // Unknown parent (started before the log begins): one GUID per host and PID, so its children share it.
        e.ppg = parent?.pg ?? synthesizedGuid(host, ppid, 0);
        if (e.pimage === undefined && typeof parent?.image === 'string') e.pimage = parent.image;
        if (e.pcmd === undefined && typeof parent?.cmd === 'string') e.pcmd = parent.cmd;
      }
      if (typeof e.pid === 'number') byPid.set(e.pid, e);
      continue;
    }
    if (e.pg === undefined && typeof e.pid === 'number') {
      const proc = byPid.get(e.pid);
      if (proc !== undefined) e.pg = proc.pg;
    }
  }
}

/**
 * Corrects the time of records that have only an envelope time (Security,
 * System, …) on a host whose envelope times are its local time marked as UTC:
 * when more than half of the host's Sysmon records (at least 10) show the same offset
 * between envelope and UtcTime, the other records are moved by it. Defender
 * detections keep their own Detection Time.
 */
export function correctEnvelopeTimes(events: readonly ImportedEvent[]): void {
  const counts = new Map<number, number>();
  let sysmon = 0;
  for (const e of events) {
    if (!e.src.startsWith('sysmon:')) continue;
    sysmon++;
    const skew = typeof e[ENVELOPE_SKEW] === 'number' ? (e[ENVELOPE_SKEW] as number) : 0;
    counts.set(skew, (counts.get(skew) ?? 0) + 1);
  }
  for (const e of events) delete e[ENVELOPE_SKEW];
  let best = 0;
  let bestCount = 0;
  for (const [skew, n] of counts) if (n > bestCount) [best, bestCount] = [skew, n];
  if (best === 0 || sysmon < 10 || bestCount * 2 <= sysmon) return;
  for (const e of events) if (!e.src.startsWith('sysmon:') && !e.src.startsWith('defender:')) e.ts -= best;
}

/** Groups mapped records by host and builds each host's trail (see the file comment). */
export function buildTrails(input: readonly InputEvent[]): HostTrail[] {
  const hosts = new Map<string, { computer: string; events: InputEvent[]; seen: Set<string>; duplicates: number }>();
  for (const item of input) {
    const key = hostKey(item.host);
    let h = hosts.get(key);
    if (h === undefined) {
      h = { computer: item.host.trim(), events: [], seen: new Set(), duplicates: 0 };
      hosts.set(key, h);
    }
    if (h.seen.has(item.event.rid)) {
      h.duplicates++;
      continue;
    }
    h.seen.add(item.event.rid);
    h.events.push(item);
  }
  const trails: HostTrail[] = [];
  for (const h of hosts.values()) {
    const { kept, merged } = mergeDefender(h.events);
    correctEnvelopeTimes(kept.map((x) => x.event));
    linkFallbackProcesses(h.computer, kept.map((x) => x.event));
    const keys = orderKeys(kept);
    kept.sort((a, b) => {
      const ka = keys.get(a)!;
      const kb = keys.get(b)!;
      return ka.key - kb.key || ka.rank - kb.rank || a.order - b.order;
    });
    const events = kept.map((x) => x.event);
    for (const e of events) if (e.k === 'av.detect') enrichDetection(e, events);
    trails.push({ computer: h.computer, events, duplicates: h.duplicates, merged });
  }
  return trails;
}
