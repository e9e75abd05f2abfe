/**
 * The intel directory (DATA/intel by default) as one index, reloaded without
 * a restart. What it reads:
 *
 *   sha256.txt, domains.txt, ips.txt   plain lists (one entry a line, `#` comments;
 *   urls.txt, cidrs.txt                ips.txt takes addresses and CIDRs alike)
 *   stix/*.json                        STIX 2.1 bundles
 *   taxii/*.json                       bundles the TAXII poller keeps (engine/intel/taxii.ts)
 *   misp/<feed>/manifest.json          MISP-format feeds (manifest + event files)
 *   misp/*.csv                         MISP CSV feeds
 *
 * `reloadIfChanged()` stats those files (a MISP feed directory by its
 * manifest only: MISP rewrites it with every update) and rebuilds the whole
 * index when any changed, so an operator or the poller updates intel by
 * writing a file (write a temporary name, then rename, to be atomic). The
 * shards and the network-log matcher each hold one and check it every few
 * seconds; lookups between two reloads see one consistent index.
 *
 * `has(kind, value)` keeps the interface the report rules used with the
 * flat lists (engine/rules/evaluate.ts), now answered by the index at the
 * clock's time, so expired indicators stop matching without a reload.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { createIntelIndex, type IntelCounts, type IntelEntry, type IntelIndex } from './intel-index.js';
import { parseMispCsv, readMispFeedDir } from './misp.js';
import { parseStixBundle } from './stix.js';

/** The kinds the report rules ask about (engine/rules/rule-types.ts). */
export type IntelKind = 'sha256' | 'domain' | 'ip';

/** Plain-list files and the kind of their lines. */
const PLAIN_LISTS: readonly [string, IntelEntry['kind']][] = [
  ['sha256.txt', 'sha256'],
  ['domains.txt', 'domain'],
  ['ips.txt', 'ip'],
  ['cidrs.txt', 'ip'],
  ['urls.txt', 'url'],
];

/** Confidence of a plain-list entry and of STIX/MISP entries that state none (0–100). */
export const DEFAULT_LIST_CONFIDENCE = 80;

export interface ThreatIntelOptions {
  clock?: Clock;
  /** Confidence of plain-list entries and of indicators without one (default 80). */
  defaultConfidence?: number;
  /** MISP entries expire this many days after their timestamp; 0 = never (default 0). */
  mispMaxAgeDays?: number;
  /** Called after each (re)load with what was read and what was left out. */
  onLoad?: (report: IntelLoadReport) => void;
}

/** What a load read: entries by kind, and entries or files left out with their reasons. */
export interface IntelLoadReport {
  counts: IntelCounts;
  rejected: number;
  skipped: Record<string, number>;
  /** Files that could not be read or parsed, with the error message. */
  failures: { file: string; error: string }[];
}

export interface ThreatIntel {
  /** True when `value` is a listed indicator of `kind` valid now (domains also by parent domain, IPs also by CIDR). */
  has(kind: IntelKind, value: string): boolean;
  /** Re-reads the directory when any of its files changed; returns true when the index was rebuilt. */
  reloadIfChanged(): boolean;
  counts(): IntelCounts;
  /** The current index (replaced, never changed, by a reload). */
  index(): IntelIndex;
}

function parsePlainList(text: string, kind: IntelEntry['kind'], source: string, confidence: number): IntelEntry[] {
  const out: IntelEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    out.push({ kind, value: kind === 'url' ? line : line.toLowerCase(), source, confidence, labels: [] });
  }
  return out;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function stamp(file: string): string {
  try {
    const st = statSync(file);
    return `${st.mtimeMs}:${st.size}`;
  } catch {
    return 'missing';
  }
}

/** The files a load reads, each with how its change is noticed. */
function watchedFiles(dir: string): string[] {
  const files = PLAIN_LISTS.map(([f]) => join(dir, f));
  for (const sub of ['stix', 'taxii']) for (const f of listDir(join(dir, sub))) if (f.endsWith('.json')) files.push(join(dir, sub, f));
  for (const f of listDir(join(dir, 'misp'))) {
    if (f.endsWith('.csv')) files.push(join(dir, 'misp', f));
    else files.push(join(dir, 'misp', f, 'manifest.json'));
  }
  return files;
}

/**
 * Reads every source of the intel directory into entries.
 * Unreadable or malformed files are reported, not thrown: one bad feed must
 * not empty the index of the others.
 */
export function readIntelDir(dir: string, options: Pick<ThreatIntelOptions, 'defaultConfidence' | 'mispMaxAgeDays'> = {}): { entries: IntelEntry[]; report: Omit<IntelLoadReport, 'counts' | 'rejected'> } {
  const confidence = options.defaultConfidence ?? DEFAULT_LIST_CONFIDENCE;
  const entries: IntelEntry[] = [];
  const skipped: Record<string, number> = {};
  const failures: { file: string; error: string }[] = [];
  const attempt = (file: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      failures.push({ file, error: err instanceof Error ? err.message : String(err) });
    }
  };
  for (const [name, kind] of PLAIN_LISTS) {
    const file = join(dir, name);
    if (stamp(file) === 'missing') continue;
    attempt(file, () => entries.push(...parsePlainList(readFileSync(file, 'utf8'), kind, `list:${name}`, confidence)));
  }
  for (const sub of ['stix', 'taxii']) {
    for (const f of listDir(join(dir, sub))) {
      if (!f.endsWith('.json')) continue;
      const file = join(dir, sub, f);
      attempt(file, () => {
        const r = parseStixBundle(JSON.parse(readFileSync(file, 'utf8')), `${sub}:${f.slice(0, -5)}`, confidence);
        entries.push(...r.entries);
        for (const [reason, n] of Object.entries(r.skipped)) if (n > 0) skipped[`stix_${reason}`] = (skipped[`stix_${reason}`] ?? 0) + n;
      });
    }
  }
  const misp = { defaultConfidence: confidence, maxAgeDays: options.mispMaxAgeDays ?? 0 };
  for (const f of listDir(join(dir, 'misp'))) {
    const path = join(dir, 'misp', f);
    if (f.endsWith('.csv')) attempt(path, () => entries.push(...parseMispCsv(readFileSync(path, 'utf8'), { ...misp, source: `misp:${f.slice(0, -4)}` })));
    else if (stamp(join(path, 'manifest.json')) !== 'missing') attempt(path, () => entries.push(...readMispFeedDir(path, { ...misp, source: `misp:${f}` })));
  }
  return { entries, report: { skipped, failures } };
}

/**
 * Opens the intel directory (undefined: an empty index that never reloads).
 * Reads it at once; later changes are picked up by `reloadIfChanged()`.
 */
export function createThreatIntel(dir: string | undefined, options: ThreatIntelOptions = {}): ThreatIntel {
  const clock = options.clock ?? systemClock;
  let index: IntelIndex = createIntelIndex([]);
  let stamps = '';

  function reloadIfChanged(): boolean {
    if (dir === undefined) return false;
    const next = watchedFiles(dir)
      .map((f) => `${f}=${stamp(f)}`)
      .join('\n');
    if (next === stamps) return false;
    stamps = next;
    const { entries, report } = readIntelDir(dir, options);
    const built = createIntelIndex(entries);
    index = built;
    options.onLoad?.({ counts: built.counts(), rejected: built.rejected, ...report });
    return true;
  }
  reloadIfChanged();

  return {
    has(kind, value) {
      const at = clock.now();
      if (kind === 'domain') return index.matchDomain(value, at).length > 0;
      if (kind === 'ip') return index.matchIp(value, at).length > 0;
      return index.matchSha256(value, at).length > 0;
    },
    reloadIfChanged,
    counts: () => index.counts(),
    index: () => index,
  };
}
