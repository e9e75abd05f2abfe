/**
 * MISP feeds → index entries, in the two forms MISP publishes:
 *  - a MISP-format feed directory: `manifest.json` (event uuid → summary) and
 *    one `<uuid>.json` per event (`{ Event: { Attribute, Object[].Attribute,
 *    threat_level_id, date, Tag } }`);
 *  - a CSV feed: `uuid,event_id,category,type,value,comment,to_ids,date,…`
 *    (the header line names the columns; without one, that order).
 * Only attributes flagged `to_ids` (MISP's "usable for detection") are kept.
 * Confidence follows the event's threat level (1 High → 85, 2 Medium → 65,
 * 3 Low → 40, 4 Undefined or absent → the source default); tags become labels.
 * MISP attributes carry no validity window: an entry expires `maxAgeDays`
 * after its attribute's (or event's) timestamp when that option is set.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IntelEntry, IntelIndicatorKind } from './intel-index.js';

const DAY_MS = 86_400_000;

/** Options of a MISP import. */
export interface MispOptions {
  /** Recorded on every entry, e.g. `misp:circl`. */
  source: string;
  /** For events without a threat level (0–100). */
  defaultConfidence: number;
  /** Entries older than this many days (by attribute timestamp) expire; 0 = never. */
  maxAgeDays: number;
}

const THREAT_LEVEL_CONFIDENCE: Record<string, number> = { '1': 85, '2': 65, '3': 40 };

/** The (kind, value) pairs of one MISP attribute; composite types give their indicator halves. */
export function mispAttributeValues(type: string, value: string): { kind: IntelIndicatorKind; value: string }[] {
  const [a = '', b = ''] = value.split('|');
  switch (type) {
    case 'ip-dst':
    case 'ip-src':
      return [{ kind: 'ip', value: value.toLowerCase() }];
    case 'ip-dst|port':
    case 'ip-src|port':
      return [{ kind: 'ip', value: a.toLowerCase() }];
    case 'domain':
    case 'hostname':
      return [{ kind: 'domain', value: value.toLowerCase() }];
    case 'hostname|port':
      return [{ kind: 'domain', value: a.toLowerCase() }];
    case 'domain|ip':
      return [
        { kind: 'domain', value: a.toLowerCase() },
        { kind: 'ip', value: b.toLowerCase() },
      ];
    case 'url':
      return [{ kind: 'url', value }];
    case 'sha256':
      return [{ kind: 'sha256', value: value.toLowerCase() }];
    case 'filename|sha256':
      return [{ kind: 'sha256', value: b.toLowerCase() }];
    default:
      return [];
  }
}

const truthy = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 'True' || v === 'true';

function epochMs(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v * 1000;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v) * 1000;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}

function tagNames(tags: unknown): string[] {
  if (!Array.isArray(tags)) return [];
  return tags.map((t) => (t as { name?: unknown } | null)?.name).filter((n): n is string => typeof n === 'string');
}

/** Entries of one MISP event document (`{ Event: … }`). */
export function parseMispEvent(doc: unknown, options: MispOptions): IntelEntry[] {
  const event = (doc as { Event?: Record<string, unknown> } | null)?.Event;
  if (event === undefined || event === null) return [];
  const confidence = THREAT_LEVEL_CONFIDENCE[String(event.threat_level_id ?? '')] ?? options.defaultConfidence;
  const eventLabels = tagNames(event.Tag);
  const eventTime = epochMs(event.timestamp) ?? epochMs(event.date);
  const attributes: Record<string, unknown>[] = [];
  if (Array.isArray(event.Attribute)) attributes.push(...(event.Attribute as Record<string, unknown>[]));
  if (Array.isArray(event.Object)) {
    for (const o of event.Object as { Attribute?: unknown }[]) if (Array.isArray(o?.Attribute)) attributes.push(...(o.Attribute as Record<string, unknown>[]));
  }
  const out: IntelEntry[] = [];
  for (const a of attributes) {
    if (typeof a !== 'object' || a === null || !truthy(a.to_ids) || typeof a.type !== 'string' || typeof a.value !== 'string') continue;
    const at = epochMs(a.timestamp) ?? eventTime;
    const validUntil = options.maxAgeDays > 0 && at !== undefined ? at + options.maxAgeDays * DAY_MS : undefined;
    for (const p of mispAttributeValues(a.type, a.value)) {
      out.push({
        ...p,
        source: options.source,
        confidence,
        labels: [...eventLabels, ...tagNames(a.Tag)],
        ...(typeof a.uuid === 'string' ? { ref: a.uuid } : {}),
        ...(typeof event.info === 'string' ? { name: event.info } : {}),
        ...(validUntil === undefined ? {} : { validUntil }),
      });
    }
  }
  return out;
}

/** Entries of a MISP-format feed directory (manifest.json and its event files); events missing on disk are skipped. */
export function readMispFeedDir(dir: string, options: MispOptions): IntelEntry[] {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const out: IntelEntry[] = [];
  for (const uuid of Object.keys(manifest)) {
    if (!/^[0-9a-f-]{36}$/i.test(uuid)) continue;
    const file = join(dir, `${uuid}.json`);
    if (!existsSync(file)) continue;
    out.push(...parseMispEvent(JSON.parse(readFileSync(file, 'utf8')), options));
  }
  return out;
}

/** One CSV line split into fields (RFC 4180 quoting). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const DEFAULT_CSV_COLUMNS = ['uuid', 'event_id', 'category', 'type', 'value', 'comment', 'to_ids', 'date'];

/** Entries of a MISP CSV feed. */
export function parseMispCsv(text: string, options: MispOptions): IntelEntry[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  let columns = DEFAULT_CSV_COLUMNS;
  if (lines[0] !== undefined && /^\s*uuid\s*,/i.test(lines[0])) columns = csvFields(lines.shift()!).map((c) => c.trim().toLowerCase());
  const col = (name: string): number => columns.indexOf(name);
  const [iUuid, iType, iValue, iIds, iDate, iComment] = [col('uuid'), col('type'), col('value'), col('to_ids'), col('date'), col('comment')];
  const out: IntelEntry[] = [];
  for (const line of lines) {
    const f = csvFields(line);
    if (iIds >= 0 && !truthy(f[iIds])) continue;
    const at = iDate >= 0 ? epochMs(f[iDate]) : undefined;
    const validUntil = options.maxAgeDays > 0 && at !== undefined ? at + options.maxAgeDays * DAY_MS : undefined;
    for (const p of mispAttributeValues(f[iType] ?? '', f[iValue] ?? '')) {
      out.push({
        ...p,
        source: options.source,
        confidence: options.defaultConfidence,
        labels: [],
        ...(iUuid >= 0 && f[iUuid] ? { ref: f[iUuid] } : {}),
        ...(iComment >= 0 && f[iComment] ? { name: f[iComment] } : {}),
        ...(validUntil === undefined ? {} : { validUntil }),
      });
    }
  }
  return out;
}
