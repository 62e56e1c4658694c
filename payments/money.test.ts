import { describe, expect, it } from 'vitest';
import { currencyExponent, decimalPattern, decimalProblem, fromMinorUnits, toMinorUnits } from './money';

describe('money in minor units', () => {
  it('knows each currency’s minor units (2 unless ISO 4217 says otherwise)', () => {
    expect([
      currencyExponent('USD'),
      currencyExponent('EUR'),
      currencyExponent('JPY'),
      currencyExponent('KWD'),
    ]).toEqual([2, 2, 0, 3]);
  });

  it.each([
    ['0', 'USD', 0],
    ['0.1', 'USD', 10],
    ['0.10', 'USD', 10],
    ['1234.5', 'USD', 123450],
    ['1234.56', 'EUR', 123456],
    ['999999999999.99', 'USD', 99999999999999],
    ['1500', 'JPY', 1500],
    ['1.005', 'KWD', 1005],
  ])('reads %s %s exactly as %i minor units, and writes it back', (value, currency, minor) => {
    expect(toMinorUnits(value, currency)).toBe(minor);
    expect(toMinorUnits(fromMinorUnits(minor, currency), currency)).toBe(minor);
  });

  it('writes every decimal place the currency has, and never a float’s digits', () => {
    expect(fromMinorUnits(10, 'USD')).toBe('0.10');
    expect(fromMinorUnits(123450, 'USD')).toBe('1234.50');
    expect(fromMinorUnits(5, 'KWD')).toBe('0.005');
    expect(fromMinorUnits(1500, 'JPY')).toBe('1500');
    // 0.1 + 0.2 as floats is 0.30000000000000004; as minor units it is 30.
    expect(fromMinorUnits(toMinorUnits('0.1', 'USD') + toMinorUnits('0.2', 'USD'), 'USD')).toBe('0.30');
  });

  it.each([
    ['1234.567', 'USD', /more decimal places than USD has \(2\); amounts are never rounded/],
    ['12.5', 'JPY', /more decimal places than JPY has \(0\)/],
    ['-1', 'USD', /non-negative decimal string/],
    ['01', 'USD', /non-negative decimal string/],
    ['1e3', 'USD', /non-negative decimal string/],
    ['1.', 'USD', /non-negative decimal string/],
    ['', 'USD', /non-negative decimal string/],
    ['1000000000000', 'USD', /at most 12 digits/],
  ])('refuses %s %s, saying why', (value, currency, why) => {
    expect(decimalProblem(value, currency)).toMatch(why);
    expect(decimalPattern(currency).test(value)).toBe(false);
    expect(() => toMinorUnits(value, currency)).toThrow(RangeError);
  });
});
