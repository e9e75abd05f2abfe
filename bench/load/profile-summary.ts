/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, one .cpuprofile per thread:
 * kiseki's main thread and each shard worker) into the few functions that
 * take the most self time, so a missed target can name what limits it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
}

/** One thread's profile: its busiest functions by self time. */
export interface ProfileSummary {
  file: string;
  /** Sampled time, s. */
  seconds: number;
  /** Share of samples not idle (program + GC), 0..1. */
  busyShare: number;
  top: { fn: string; where: string; selfShare: number }[];
}

/** Reads every .cpuprofile in `dir`; returns the top `n` functions of each (by self samples). */
export function summariseProfiles(dir: string, n = 15): ProfileSummary[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return files.sort().map((file) => {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const bySelf = new Map<string, { fn: string; where: string; hits: number }>();
    let total = 0;
    let idle = 0;
    for (const node of p.nodes) {
      const hits = node.hitCount ?? 0;
      total += hits;
      const fn = node.callFrame.functionName || '(anonymous)';
      if (fn === '(idle)') idle += hits;
      const where = node.callFrame.url ? `${node.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${node.callFrame.lineNumber + 1}` : '';
      const key = `${fn}@${where}`;
      const e = bySelf.get(key) ?? { fn, where, hits: 0 };
      e.hits += hits;
      bySelf.set(key, e);
    }
    const busy = Math.max(1, total - idle);
    const top = [...bySelf.values()]
      .filter((e) => e.fn !== '(idle)')
      .sort((a, b) => b.hits - a.hits)
      .slice(0, n)
      .map((e) => ({ fn: e.fn, where: e.where, selfShare: Math.round((e.hits / busy) * 1000) / 1000 }));
    return { file, seconds: Math.round((p.endTime - p.startTime) / 1e4) / 100, busyShare: total > 0 ? Math.round((busy / total) * 1000) / 1000 : 0, top };
  });
}
