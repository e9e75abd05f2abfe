import { describe, expect, it } from 'vitest';
import { addDays, collectionDayOf, dayWindow, daysFrom, dosDateTime, isValidDay, jstDateOf, send15 } from './collection-day.js';

const utc = (iso: string) => Date.parse(iso);

describe('collection days (Asia/Tokyo, 05:00 to 05:00)', () => {
  it.each([
    // [receive time UTC, collection day]  (JST = UTC+9; the day starts at 05:00 JST = 20:00 UTC the evening before)
    ['2026-01-04T19:59:59.999Z', '2026-01-04'], // 2026-01-05 04:59:59.999 JST
    ['2026-01-04T20:00:00.000Z', '2026-01-05'], // 2026-01-05 05:00 JST
    ['2026-01-05T14:59:59.999Z', '2026-01-05'], // 23:59 JST
    ['2026-01-05T15:00:00.000Z', '2026-01-05'], // 2026-01-06 00:00 JST, still day D until 05:00
    ['2026-01-05T19:59:59.999Z', '2026-01-05'],
    ['2026-01-05T20:00:00.000Z', '2026-01-06'],
    ['2024-02-29T12:00:00.000Z', '2024-02-29'],
    ['2025-12-31T20:00:00.000Z', '2026-01-01'],
  ])('a batch received at %s belongs to %s', (iso, day) => {
    expect(collectionDayOf(utc(iso))).toBe(day);
  });

  it('gives the receive window of a day', () => {
    expect(dayWindow('2026-01-05')).toEqual({ fromMs: utc('2026-01-04T20:00:00Z'), toMs: utc('2026-01-05T20:00:00Z') });
    expect(dayWindow('2026-03-01').fromMs).toBe(utc('2026-02-28T20:00:00Z'));
  });

  it.each([
    ['2026-01-04T20:00:00.000Z', '260105050000000'],
    ['2026-01-05T06:07:08.009Z', '260105150708009'],
    ['2026-12-31T15:00:00.123Z', '270101000000123'],
  ])('prints send time %s as %s (YYMMDDhhmmssSSS, JST)', (iso, digits) => {
    expect(send15(utc(iso))).toBe(digits);
  });

  it.each([
    ['2026-01-05', true],
    ['2024-02-29', true],
    ['2026-02-29', false],
    ['2026-13-01', false],
    ['2026-1-5', false],
    ['1979-12-31', false],
    ['20260105', false],
    ['', false],
  ])('validates %j as a day: %s', (day, ok) => {
    expect(isValidDay(day)).toBe(ok);
  });

  it('steps through days and JST dates', () => {
    expect(addDays('2026-02-27', 2)).toBe('2026-03-01');
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31');
    expect(daysFrom('2026-01-30', '2026-02-02')).toEqual(['2026-01-30', '2026-01-31', '2026-02-01', '2026-02-02']);
    expect(jstDateOf(utc('2026-01-05T15:00:00Z'))).toBe('2026-01-06');
  });

  it('writes DOS times in JST wall-clock time', () => {
    const { date, time } = dosDateTime(utc('2026-01-05T06:07:08Z')); // 15:07:08 JST
    expect([date >> 9, (date >> 5) & 15, date & 31]).toEqual([46, 1, 5]);
    expect([time >> 11, (time >> 5) & 63, (time & 31) * 2]).toEqual([15, 7, 8]);
  });
});
