/**
 * Japanese business days: Monday to Friday except national holidays, from
 * the maintained `@holiday-jp/holiday_jp` data (substitute and citizens'
 * holidays included) rather than a hand-typed list. Days are JST calendar
 * days (UTC+9, no daylight saving). Used by the gray → white rule (seed 000
 * §4-2) and the reports' calendars.
 */
import holidayJp from '@holiday-jp/holiday_jp';

const JST_OFFSET_MS = 9 * 3600_000;
const DAY_MS = 86_400_000;

/** The JST calendar day of `ms` as `YYYY-MM-DD`. */
export function jstDay(ms: number): string {
  return new Date(ms + JST_OFFSET_MS).toISOString().slice(0, 10);
}

/** The instant 00:00 JST of the JST day containing `ms`. */
export function jstMidnight(ms: number): number {
  return Math.floor((ms + JST_OFFSET_MS) / DAY_MS) * DAY_MS - JST_OFFSET_MS;
}

/** The national holiday's Japanese name on that JST day, or undefined. */
export function holidayName(day: string): string | undefined {
  return (holidayJp.holidays as Record<string, { name: string } | undefined>)[day]?.name;
}

/** True when the JST day `YYYY-MM-DD` is a weekday and not a national holiday. */
export function isBusinessDay(day: string): boolean {
  const weekday = new Date(`${day}T00:00:00Z`).getUTCDay();
  return weekday !== 0 && weekday !== 6 && holidayName(day) === undefined;
}

/**
 * The instant `n` full business days after `ms` have passed: 00:00 JST of
 * the day after the n-th business day that follows the JST day of `ms`.
 * The day of `ms` itself never counts (a detection at 17:00 on a Friday
 * has not had a business day yet). With n = 3, an alert on Friday waits
 * Monday, Tuesday and Wednesday and is due at Thursday 00:00 JST.
 */
export function businessDaysLater(ms: number, n: number): number {
  let t = jstMidnight(ms);
  let counted = 0;
  while (counted < n) {
    t += DAY_MS;
    if (isBusinessDay(jstDay(t))) counted++;
  }
  return t + DAY_MS;
}
