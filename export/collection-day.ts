/**
 * Time arithmetic of the exports (SPEC §6): Asia/Tokyo has no daylight saving,
 * so JST is UTC+9 all year and every conversion is an offset, never a time
 * zone database lookup. A collection day `D` (YYYY-MM-DD) covers the batches
 * the server *received* in [D 05:00 JST, D+1 05:00 JST); a batch's send time is
 * printed as 15 digits `YYMMDDhhmmssSSS` in JST.
 */

/** JST is UTC+9 without daylight saving. */
export const JST_OFFSET_MS = 9 * 3600_000;
/** A collection day starts at 05:00 JST. */
export const DAY_START_HOUR_JST = 5;
export const DAY_MS = 86_400_000;

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** True for a real calendar date written YYYY-MM-DD (years 1980-9999: zip dates start in 1980). */
export function isValidDay(day: string): boolean {
  const m = DAY_RE.exec(day);
  if (m === null) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (y < 1980 || mo < 1 || mo > 12 || d < 1) return false;
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

function dayUtcMidnight(day: string): number {
  const m = DAY_RE.exec(day);
  if (m === null) throw new RangeError(`not a day: ${day}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
}

function formatUtcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Receive-time window of collection day `day`: [fromMs, toMs), ms since epoch. */
export function dayWindow(day: string): { fromMs: number; toMs: number } {
  const fromMs = dayUtcMidnight(day) + DAY_START_HOUR_JST * 3600_000 - JST_OFFSET_MS;
  return { fromMs, toMs: fromMs + DAY_MS };
}

/** The collection day a batch received at `ms` belongs to. */
export function collectionDayOf(ms: number): string {
  return formatUtcDay(ms + JST_OFFSET_MS - DAY_START_HOUR_JST * 3600_000);
}

/** The JST calendar date of `ms` (the delivery date of a 1-year log spot). */
export function jstDateOf(ms: number): string {
  return formatUtcDay(ms + JST_OFFSET_MS);
}

/** `day` shifted by `n` days (n may be negative). */
export function addDays(day: string, n: number): string {
  return formatUtcDay(dayUtcMidnight(day) + n * DAY_MS);
}

/** Days from `a` to `b` (b - a); 0 when equal. */
export function daysBetween(a: string, b: string): number {
  return Math.round((dayUtcMidnight(b) - dayUtcMidnight(a)) / DAY_MS);
}

/** Every day from `from` to `to`, both included (empty when to < from). */
export function daysFrom(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** A batch's send time as the 15 digits `YYMMDDhhmmssSSS` (JST) of its file names. */
export function send15(ms: number): string {
  const t = new Date(Math.floor(ms) + JST_OFFSET_MS);
  const sss = t.getUTCMilliseconds();
  return (
    pad2(t.getUTCFullYear() % 100) +
    pad2(t.getUTCMonth() + 1) +
    pad2(t.getUTCDate()) +
    pad2(t.getUTCHours()) +
    pad2(t.getUTCMinutes()) +
    pad2(t.getUTCSeconds()) +
    (sss < 10 ? `00${sss}` : sss < 100 ? `0${sss}` : String(sss))
  );
}

/**
 * MS-DOS date and time fields of a zip entry for `ms`, in JST wall-clock time
 * (the customers' clock; Windows Explorer shows these fields as they are).
 * Dates before 1980 are clamped to 1980-01-01 00:00.
 */
export function dosDateTime(ms: number): { date: number; time: number } {
  const t = new Date(ms + JST_OFFSET_MS);
  const year = t.getUTCFullYear();
  if (!Number.isFinite(ms) || year < 1980) return { date: (1 << 5) | 1, time: 0 };
  return {
    date: ((Math.min(year, 2107) - 1980) << 9) | ((t.getUTCMonth() + 1) << 5) | t.getUTCDate(),
    time: (t.getUTCHours() << 11) | (t.getUTCMinutes() << 5) | (t.getUTCSeconds() >> 1),
  };
}
