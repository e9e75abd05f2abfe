/**
 * STIX 2.1 bundles → index entries. Only `indicator` objects with a STIX
 * pattern (`pattern_type: stix`) over the observables kiseki can see are
 * kept: `ipv4-addr:value`, `ipv6-addr:value` (an address or a CIDR, with `=`,
 * `ISSUBSET` or `IN`), `domain-name:value`, `url:value` and
 * `file:hashes.'SHA-256'`. A pattern is taken only when its comparisons are
 * joined by OR (each comparison alone is then enough to match): AND,
 * FOLLOWEDBY, qualifiers and other operators would need more than one
 * observation, so such indicators are skipped and counted, never matched on
 * part of their condition. Revoked indicators are skipped; `valid_from` /
 * `valid_until` bound validity, `confidence` (0–100) defaults to the
 * source's, and `labels` plus `indicator_types` become the entry's labels.
 */
import type { IntelEntry, IntelIndicatorKind } from './intel-index.js';

/** What a bundle gave: the entries, and indicators left out by reason. */
export interface StixParseResult {
  entries: IntelEntry[];
  skipped: Record<'revoked' | 'not_stix_pattern' | 'unsupported_pattern' | 'invalid', number>;
}

const OBJECT_PATH =
  /^(ipv4-addr|ipv6-addr|domain-name|url|file):(value|hashes\.(?:'SHA-256'|"SHA-256"|SHA256|'SHA256'|SHA-256))$/i;

const KIND_OF: Record<string, IntelIndicatorKind> = {
  'ipv4-addr': 'ip',
  'ipv6-addr': 'ip',
  'domain-name': 'domain',
  url: 'url',
  file: 'sha256',
};

function unquote(s: string): string {
  return s.slice(1, -1).replace(/\\(['\\])/g, '$1');
}

/**
 * The (kind, value) pairs a STIX pattern matches on, or undefined when the
 * pattern is not a pure disjunction of supported comparisons.
 */
export function parseStixPattern(pattern: string): { kind: IntelIndicatorKind; value: string }[] | undefined {
  // Tokens: brackets, parentheses, quoted strings, words/paths, operators.
  // Object paths first: `file:hashes.'SHA-256'` holds a quoted segment.
  const tokens = pattern.match(/[a-z0-9-]+:[a-z0-9_.-]*(?:'[^']*'|"[^"]*")?|'(?:[^'\\]|\\.)*'|\[|\]|\(|\)|,|[^\s[\]()',]+/gi);
  if (tokens === null) return undefined;
  const out: { kind: IntelIndicatorKind; value: string }[] = [];
  let i = 0;
  let depth = 0;
  let expectComparison = true;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (t === '[' || t === '(') {
      depth++;
      i++;
      continue;
    }
    if (t === ']' || t === ')') {
      depth--;
      i++;
      continue;
    }
    if (!expectComparison) {
      if (t.toUpperCase() !== 'OR') return undefined;
      expectComparison = true;
      i++;
      continue;
    }
    const path = OBJECT_PATH.exec(t);
    if (path === null) return undefined;
    const kind = KIND_OF[path[1]!.toLowerCase()]!;
    // A hash path on anything but file, or a value path on file, is not ours.
    if ((kind === 'sha256') !== path[2]!.toLowerCase().startsWith('hashes')) return undefined;
    const op = tokens[i + 1]?.toUpperCase();
    if (op === '=' || (op === 'ISSUBSET' && kind === 'ip')) {
      const v = tokens[i + 2];
      if (v === undefined || !v.startsWith("'")) return undefined;
      out.push({ kind, value: unquote(v) });
      i += 3;
    } else if (op === 'IN') {
      if (tokens[i + 2] !== '(') return undefined;
      let j = i + 3;
      for (;;) {
        const v = tokens[j];
        if (v === undefined || !v.startsWith("'")) return undefined;
        out.push({ kind, value: unquote(v) });
        if (tokens[j + 1] === ',') j += 2;
        else if (tokens[j + 1] === ')') break;
        else return undefined;
      }
      i = j + 2;
    } else {
      return undefined;
    }
    expectComparison = false;
  }
  return depth === 0 && out.length > 0 && !expectComparison ? out : undefined;
}

const time = (v: unknown): number | undefined => {
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
};

/**
 * Entries of the indicators of a STIX 2.1 bundle (or of a bare array of
 * objects, as a TAXII `objects` answer holds).
 * @param source - recorded on every entry, e.g. `stix:feed.json`.
 * @param defaultConfidence - for indicators without `confidence` (0–100).
 */
export function parseStixBundle(bundle: unknown, source: string, defaultConfidence: number): StixParseResult {
  const result: StixParseResult = { entries: [], skipped: { revoked: 0, not_stix_pattern: 0, unsupported_pattern: 0, invalid: 0 } };
  const objects = Array.isArray(bundle) ? bundle : (bundle as { objects?: unknown } | null)?.objects;
  if (!Array.isArray(objects)) return result;
  // The same indicator id may come twice (several versions): keep the newest `modified`.
  const newest = new Map<string, Record<string, unknown>>();
  for (const o of objects as unknown[]) {
    if (typeof o !== 'object' || o === null) continue;
    const obj = o as Record<string, unknown>;
    if (obj.type !== 'indicator') continue;
    const id = typeof obj.id === 'string' ? obj.id : `anon-${newest.size}`;
    const prev = newest.get(id);
    if (prev === undefined || String(obj.modified ?? '') >= String(prev.modified ?? '')) newest.set(id, obj);
  }
  for (const [id, obj] of newest) {
    if (obj.revoked === true) {
      result.skipped.revoked++;
      continue;
    }
    if (obj.pattern_type !== undefined && obj.pattern_type !== 'stix') {
      result.skipped.not_stix_pattern++;
      continue;
    }
    if (typeof obj.pattern !== 'string') {
      result.skipped.invalid++;
      continue;
    }
    const pairs = parseStixPattern(obj.pattern);
    if (pairs === undefined) {
      result.skipped.unsupported_pattern++;
      continue;
    }
    const confidence = typeof obj.confidence === 'number' && obj.confidence >= 0 && obj.confidence <= 100 ? obj.confidence : defaultConfidence;
    const labels = [
      ...(Array.isArray(obj.labels) ? obj.labels : []),
      ...(Array.isArray(obj.indicator_types) ? obj.indicator_types : []),
    ].filter((l): l is string => typeof l === 'string');
    const validFrom = time(obj.valid_from);
    const validUntil = time(obj.valid_until);
    for (const p of pairs) {
      result.entries.push({
        kind: p.kind,
        value: p.kind === 'url' ? p.value : p.value.toLowerCase(),
        source,
        confidence,
        labels,
        ref: id,
        ...(typeof obj.name === 'string' ? { name: obj.name } : {}),
        ...(validFrom === undefined ? {} : { validFrom }),
        ...(validUntil === undefined ? {} : { validUntil }),
      });
    }
  }
  return result;
}
