import { describe, expect, it } from 'vitest';
import { BIRTH_DATE_PATTERN } from './model';

/** What the calendar says of a date of birth written `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, years 1800–2099. */
function calendarSays(y: number, m: number | null, d: number | null): boolean {
  if (y < 1800 || y > 2099) return false;
  if (m === null) return true;
  if (m < 1 || m > 12) return false;
  if (d === null) return true;
  const date = new Date(Date.UTC(y, m - 1, d));
  return d >= 1 && date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

const two = (n: number): string => String(n).padStart(2, '0');

describe('a date of birth (BIRTH_DATE_PATTERN)', () => {
  it('accepts exactly the years, months and days the calendar has, 29 February in leap years only', () => {
    const wrong: string[] = [];
    for (let y = 1795; y <= 2104; y++) {
      const check = (text: string, valid: boolean) => {
        if (BIRTH_DATE_PATTERN.test(text) !== valid) wrong.push(text);
      };
      check(String(y), calendarSays(y, null, null));
      for (let m = 0; m <= 13; m++) {
        check(`${y}-${two(m)}`, calendarSays(y, m, null));
        for (let d = 0; d <= 32; d++) check(`${y}-${two(m)}-${two(d)}`, calendarSays(y, m, d));
      }
    }
    expect(wrong).toEqual([]);
    for (const leap of ['2000-02-29', '1904-02-29', '2024-02-29']) expect(BIRTH_DATE_PATTERN.test(leap)).toBe(true);
    for (const not of ['1900-02-29', '1800-02-29', '2023-02-29', '1980-04-31', '02/04/1980', '1980-4-2'])
      expect(BIRTH_DATE_PATTERN.test(not)).toBe(false);
  });
});
