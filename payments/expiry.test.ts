import { describe, expect, it } from 'vitest';
import {
  dateInTimeZone,
  daysUntilExpiry,
  expiryAction,
  expiryNoticeKey,
  expiryWarningMarker,
  isIsoDate,
  isTimeZone,
  scanWindowEnd,
  warningSettled,
} from './expiry';

describe('card-expiry calendar', () => {
  it('treats a card as valid to the last day of its expiry month', () => {
    expect(daysUntilExpiry('2026-11-30', 2026, 11)).toBe(0);
    expect(expiryAction('2026-11-30', 2026, 11)).toEqual({ kind: 'warn', stage: 7, daysLeft: 0 });
    expect(expiryAction('2026-12-01', 2026, 11)).toEqual({ kind: 'expire', daysPast: 1 });
  });

  it('crosses December into January', () => {
    expect(daysUntilExpiry('2026-12-31', 2026, 12)).toBe(0);
    expect(expiryAction('2027-01-01', 2026, 12)).toEqual({ kind: 'expire', daysPast: 1 });
    // 2026-12-02 → 2027-01-31 is 60 days: the first warning for a January card.
    expect(expiryAction('2026-12-02', 2027, 1)).toEqual({ kind: 'warn', stage: 60, daysLeft: 60 });
    expect(expiryAction('2026-12-01', 2027, 1)).toEqual({ kind: 'none', daysLeft: 61 });
    expect(scanWindowEnd('2026-11-15')).toEqual({ year: 2027, month: 1 });
  });

  it('knows leap years', () => {
    expect(daysUntilExpiry('2028-02-28', 2028, 2)).toBe(1);
    expect(expiryAction('2028-02-29', 2028, 2)).toEqual({ kind: 'warn', stage: 7, daysLeft: 0 });
    expect(expiryAction('2028-03-01', 2028, 2)).toEqual({ kind: 'expire', daysPast: 1 });
    expect(expiryAction('2027-03-01', 2027, 2)).toEqual({ kind: 'expire', daysPast: 1 });
    expect(daysUntilExpiry('2027-02-28', 2027, 2)).toBe(0);
    // 1900 was not a leap year, 2000 was.
    expect(daysUntilExpiry('2000-02-01', 2000, 2)).toBe(28);
    expect(daysUntilExpiry('2100-02-01', 2100, 2)).toBe(27);
  });

  it('sends the most urgent stage that is due, on the stage boundaries', () => {
    const asOf = '2026-01-01';
    // 2026-03-02 is 60 days after 2026-01-01; the March card ends 2026-03-31 (89 days).
    expect(expiryAction(asOf, 2026, 3)).toEqual({ kind: 'none', daysLeft: 89 });
    expect(expiryAction('2026-01-30', 2026, 3)).toEqual({ kind: 'warn', stage: 60, daysLeft: 60 });
    expect(expiryAction('2026-01-29', 2026, 3)).toEqual({ kind: 'none', daysLeft: 61 });
    expect(expiryAction('2026-03-01', 2026, 3)).toEqual({ kind: 'warn', stage: 30, daysLeft: 30 });
    expect(expiryAction('2026-02-28', 2026, 3)).toEqual({ kind: 'warn', stage: 60, daysLeft: 31 });
    expect(expiryAction('2026-03-24', 2026, 3)).toEqual({ kind: 'warn', stage: 7, daysLeft: 7 });
    expect(expiryAction('2026-03-23', 2026, 3)).toEqual({ kind: 'warn', stage: 30, daysLeft: 8 });
  });

  it('reads only the months that can hold a due card', () => {
    expect(scanWindowEnd('2026-01-01')).toEqual({ year: 2026, month: 3 });
    expect(scanWindowEnd('2028-01-01')).toEqual({ year: 2028, month: 3 }); // leap: Jan 1 + 60 = Mar 1
    expect(scanWindowEnd('2027-01-01')).toEqual({ year: 2027, month: 3 }); // Jan 1 + 60 = Mar 2
    expect(scanWindowEnd('2026-10-31')).toEqual({ year: 2026, month: 12 });
    expect(scanWindowEnd('2026-11-01')).toEqual({ year: 2026, month: 12 });
    expect(scanWindowEnd('2026-11-02')).toEqual({ year: 2027, month: 1 });
  });

  it('validates dates and time zones', () => {
    expect(isIsoDate('2028-02-29')).toBe(true);
    expect(isIsoDate('2027-02-29')).toBe(false);
    expect(isIsoDate('2026-13-01')).toBe(false);
    expect(isIsoDate('2026-1-01')).toBe(false);
    expect(() => expiryAction('tomorrow', 2026, 1)).toThrow(/as_of/);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    // 23:30 UTC on New Year's Eve is already New Year's Day in Berlin.
    expect(dateInTimeZone(new Date('2026-12-31T23:30:00Z'), 'Europe/Berlin')).toBe('2027-01-01');
    expect(dateInTimeZone(new Date('2026-12-31T23:30:00Z'), 'UTC')).toBe('2026-12-31');
  });

  it('keys a warning per card, expiry month and stage', () => {
    expect(expiryNoticeKey('pm-1', 2027, 1, 30)).toBe('card-expiry:pm-1:2027-01:30d');
    expect(expiryNoticeKey('pm-1', 2027, 1, 7)).not.toBe(expiryNoticeKey('pm-1', 2027, 1, 30));
    expect(expiryNoticeKey('pm-1', 2028, 1, 30)).not.toBe(expiryNoticeKey('pm-1', 2027, 1, 30));
  });

  it('remembers the most urgent settled warning per expiry, and never goes back to an earlier stage', () => {
    const marker = expiryWarningMarker(2027, 1, 30);
    expect(marker).toBe('2027-01:30');
    expect(warningSettled(marker, 2027, 1, 30)).toBe(true);
    expect(warningSettled(marker, 2027, 1, 60)).toBe(true); // 60 days after "30 days left": no
    expect(warningSettled(marker, 2027, 1, 7)).toBe(false); // the next stage is still due
    expect(warningSettled(marker, 2028, 1, 30)).toBe(false); // a card with a new expiry starts over
    expect(warningSettled(null, 2027, 1, 60)).toBe(false);
  });
});
