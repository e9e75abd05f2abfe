/**
 * Runs SigmaHQ's regression cases (`regression_data/`: per case an
 * `info.yml` naming the rule id and the expected `match_count`, and the
 * events as evtx_dump JSON) through kiseki's own path: each record is mapped
 * by the import (ingest/import/sysmon-mapper.ts) into a trail event, and
 * every event goes through a matcher built from the whole rule directory.
 * A case passes when the rule matches exactly `match_count` of its events.
 * The case's own `proc.start` events form its process table, as a shard's
 * would.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { mapRecord } from '../../ingest/import/index.js';
import { loadSigmaRules } from './loader.js';
import { createSigmaMatcher } from './matcher.js';
import type { ProcessFacts } from './types.js';

/** One failed case. */
export interface CaseFailure {
  case: string;
  ruleId: string;
  reason: string;
}

/** The result printed by `kiseki sigma test --json`. */
export interface ConformanceResult {
  cases: number;
  passed: number;
  failed: CaseFailure[];
}

/**
 * Splits a stream of concatenated JSON values (evtx_dump's output:
 * pretty-printed objects one after another) into parsed values.
 * @throws SyntaxError on text that is not such a stream.
 */
export function parseJsonStream(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (depth === 0) start = i;
      depth++;
    } else if (c === 125 || c === 93) {
      depth--;
      if (depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
      if (depth < 0) throw new SyntaxError(`unbalanced JSON at ${i}`);
    } else if (depth === 0 && c > 32) throw new SyntaxError(`text outside a JSON value at ${i}`);
  }
  if (depth !== 0 || inString) throw new SyntaxError('truncated JSON stream');
  return out;
}

function* infoFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* infoFiles(p);
    else if (e === 'info.yml') yield p;
  }
}

interface TestInfo {
  ruleId: string;
  tests: { events: string; matchCount: number }[];
}

function readInfo(path: string): TestInfo {
  const info = parse(readFileSync(path, 'utf8')) as { rule_metadata?: { id?: string }[]; regression_tests_info?: { path?: string; match_count?: number; type?: string }[] };
  const ruleId = info.rule_metadata?.[0]?.id ?? '';
  const tests = (info.regression_tests_info ?? []).map((t) => {
    // `path` is relative to the SigmaHQ repository; the files sit next to info.yml.
    const evtx = basename(t.path ?? '');
    return { events: join(dirname(path), evtx.replace(/\.evtx$/i, '.json')), matchCount: typeof t.match_count === 'number' ? t.match_count : 1 };
  });
  return { ruleId, tests };
}

/**
 * Runs every case under `casesDir` against the rules under `rulesDir`.
 * @param casesDir a `regression/` folder (searched recursively for info.yml).
 */
export function runConformance(rulesDir: string, casesDir: string): ConformanceResult {
  const loaded = loadSigmaRules(rulesDir);
  const refusedById = new Map(loaded.refused.filter((r) => r.id !== undefined).map((r) => [r.id!, r]));
  const known = new Set(loaded.rules.map((r) => r.info.id));
  // One process table per case, swapped in before the case runs.
  let table = new Map<string, ProcessFacts>();
  const matcher = createSigmaMatcher(loaded.rules, { resolver: { process: (pg) => table.get(pg) } });
  const root = resolve(casesDir);
  const result: ConformanceResult = { cases: 0, passed: 0, failed: [] };
  for (const infoPath of infoFiles(root)) {
    const name = relative(root, dirname(infoPath)).replace(/^rules[\\/]/, '');
    const info = readInfo(infoPath);
    for (const t of info.tests) {
      result.cases++;
      const fail = (reason: string) => result.failed.push({ case: name, ruleId: info.ruleId, reason });
      if (!known.has(info.ruleId)) {
        const r = refusedById.get(info.ruleId);
        fail(r === undefined ? 'rule_not_found' : `rule_refused: ${r.reason} (${r.detail})`);
        continue;
      }
      if (!existsSync(t.events)) {
        fail(`events_missing: ${basename(t.events)}`);
        continue;
      }
      const records = parseJsonStream(readFileSync(t.events, 'utf8'));
      const events: Record<string, unknown>[] = [];
      const skipped: string[] = [];
      for (const rec of records) {
        const m = mapRecord(rec);
        if (m.ok) events.push(m.event);
        else skipped.push(`${m.reason}${m.eventId === undefined ? '' : `:${m.eventId}`}`);
      }
      table = new Map();
      for (const e of events) if (e.k === 'proc.start' && typeof e.pg === 'string') table.set(e.pg, e);
      let matched = 0;
      for (const e of events) if (matcher.match(e).some((r) => r.id === info.ruleId)) matched++;
      if (matched === t.matchCount) result.passed++;
      else fail(`matched ${matched} of ${records.length} events, expected ${t.matchCount}${skipped.length > 0 ? `; not mapped: ${skipped.join(', ')}` : ''}`);
    }
  }
  return result;
}
