import { describe, expect, it } from 'vitest';
import { businessDaysLater, holidayName, isBusinessDay, jstDay } from './business-days.js';

/** ms of a JST wall-clock time. */
const jst = (iso: string): number => Date.parse(`${iso}+09:00`);

describe('business days (JST, national holidays from @holiday-jp/holiday_jp)', () => {
  it.each([
    ['2026-11-02', true], // Monday
    ['2026-11-03', false], // 文化の日 (Tuesday)
    ['2026-11-07', false], // Saturday
    ['2026-11-08', false], // Sunday
    ['2026-11-23', false], // 勤労感謝の日 (Monday)
    ['2026-09-22', false], // 国民の休日 between 敬老の日 and 秋分の日
    ['2026-05-06', false], // 振替休日 (憲法記念日 fell on a Sunday)
    ['2026-12-28', true],
  ])('%s business day: %s', (day, want) => {
    expect(isBusinessDay(day)).toBe(want);
  });

  it('names holidays and converts to the JST day', () => {
    expect(holidayName('2026-11-03')).toBe('文化の日');
    expect(jstDay(Date.parse('2026-11-02T15:30:00Z'))).toBe('2026-11-03');
  });

  it.each([
    // Friday: Mon, Tue, Wed → due Thursday 00:00.
    ['2026-11-13T17:00:00', '2026-11-19T00:00:00'],
    // Friday before the 3 Nov holiday: Mon 2, (Tue 3 holiday), Wed 4, Thu 5 → due Fri 6 00:00.
    ['2026-10-30T10:00:00', '2026-11-06T00:00:00'],
    // Thursday 19 Nov: Fri 20, (weekend, Mon 23 holiday), Tue 24, Wed 25 → due Thu 26 00:00.
    ['2026-11-19T09:00:00', '2026-11-26T00:00:00'],
    // Just after midnight JST counts as that day.
    ['2026-11-24T00:00:01', '2026-11-28T00:00:00'],
  ])('3 business days after %s (JST) end at %s (JST)', (from, due) => {
    expect(businessDaysLater(jst(from), 3)).toBe(jst(due));
  });
});
