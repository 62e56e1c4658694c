import { describe, expect, it } from 'vitest';
import { msOf } from './durations';

describe('a duration as configuration gives it', () => {
  it('is read in days, hours, minutes or seconds', () => {
    expect(msOf('2d', 'x')).toBe(172_800_000);
    expect(msOf('24h', 'x')).toBe(86_400_000);
    expect(msOf(' 90m ', 'x')).toBe(5_400_000);
    expect(msOf('45 s', 'x')).toBe(45_000);
  });

  it('is refused naming its field when it is not a whole number and a unit', () => {
    for (const bad of ['', '1.5h', '10', 'h', '3w', '-1d'])
      expect(() => msOf(bad, 'review_due')).toThrow(`review_due: bad duration ${bad} (expected e.g. 90m, 24h, 2d)`);
  });
});
