/**
 * Report periods in JST (UTC+9, no daylight saving): calendar months and
 * ISO weeks (Monday 00:00 JST to the next Monday). A report covers
 * [start, end) and is made at the start of the next period.
 */
const JST_OFFSET_MS = 9 * 3600_000;
const DAY_MS = 86_400_000;

export interface Period {
  kind: 'monthly' | 'weekly';
  /** `2026-10` or `2026-W44`. */
  label: string;
  start: number;
  end: number;
}

/** The JST month containing `ms`. */
export function monthOf(ms: number): Period {
  const d = new Date(ms + JST_OFFSET_MS);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return {
    kind: 'monthly',
    label: `${y}-${String(m + 1).padStart(2, '0')}`,
    start: Date.UTC(y, m, 1) - JST_OFFSET_MS,
    end: Date.UTC(y, m + 1, 1) - JST_OFFSET_MS,
  };
}

/** The JST ISO week (Monday to Sunday) containing `ms`. */
export function weekOf(ms: number): Period {
  const local = ms + JST_OFFSET_MS;
  const dayStart = Math.floor(local / DAY_MS) * DAY_MS;
  const weekday = (new Date(dayStart).getUTCDay() + 6) % 7; // Monday 0
  const monday = dayStart - weekday * DAY_MS;
  // ISO week number: the week of the year's first Thursday is week 1.
  const thursday = new Date(monday + 3 * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * DAY_MS)) + 1;
  return { kind: 'weekly', label: `${year}-W${String(week).padStart(2, '0')}`, start: monday - JST_OFFSET_MS, end: monday + 7 * DAY_MS - JST_OFFSET_MS };
}

/** The period of `kind` that ended last before `ms` (the one to report at `ms`). */
export function previousPeriod(kind: Period['kind'], ms: number): Period {
  const current = kind === 'monthly' ? monthOf(ms) : weekOf(ms);
  return kind === 'monthly' ? monthOf(current.start - 1) : weekOf(current.start - 1);
}

/**
 * 13 months after `ms` on the JST calendar (the retention of periodic
 * reports, seed 000 §5-1); a day past the target month's end is clamped to it.
 */
export function thirteenMonthsAfter(ms: number): number {
  const d = new Date(ms + JST_OFFSET_MS);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 13;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const day = Math.min(d.getUTCDate(), lastDay);
  return Date.UTC(y, m, day) + (ms + JST_OFFSET_MS - Date.UTC(y, d.getUTCMonth(), d.getUTCDate())) - JST_OFFSET_MS;
}
