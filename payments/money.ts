/**
 * Money, exactly. Neo4j has no decimal type and a float cannot hold 0.10, so an amount lives in
 * the graph as an integer of the currency's minor units (cents for USD, yen for JPY) and
 * crosses the API as a decimal string ("1234.50"). Nothing here rounds: a value with more
 * decimal places than the currency has is refused, not cut. Pure functions, no I/O.
 */

/**
 * ISO 4217 minor units of the currencies whose exponent is not 2 (the rest have 2): a
 * reporting currency is one of these or any other three-letter code.
 */
const EXPONENTS: Record<string, number> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  CLF: 4,
  UYW: 4,
};

/**
 * Digits before the decimal point: at most 12, and fewer for a currency with more than three
 * decimals, so every amount's minor units stay below 2^53 (exact as a JS number).
 */
function maxWholeDigits(currency: string): number {
  return Math.min(12, 15 - currencyExponent(currency));
}

/** The largest amount in `currency`, in minor units (every digit a nine). */
export function maxMinorUnits(currency: string): number {
  return 10 ** (maxWholeDigits(currency) + currencyExponent(currency)) - 1;
}

export const CURRENCY_PATTERN = /^[A-Z]{3}$/;

/** How many minor units a currency's major unit has, as a power of ten. */
export function currencyExponent(currency: string): number {
  return EXPONENTS[currency] ?? 2;
}

/** The pattern of a non-negative decimal amount in `currency`: "0", "1234", "1234.5", "1234.50". */
export function decimalPattern(currency: string): RegExp {
  const exponent = currencyExponent(currency);
  // [0-9], not \\d: in other languages' patterns \\d matches every script's digits.
  const fraction = exponent > 0 ? `(\\.[0-9]{1,${exponent}})?` : '';
  return new RegExp(`^(0|[1-9][0-9]{0,${maxWholeDigits(currency) - 1}})${fraction}$`);
}

/** Why a decimal string is not an amount in `currency`, or null when it is one. */
export function decimalProblem(value: string, currency: string): string | null {
  if (decimalPattern(currency).test(value)) return null;
  const exponent = currencyExponent(currency);
  if (/^\d+\.\d+$/.test(value) && (value.split('.')[1]?.length ?? 0) > exponent)
    return `has more decimal places than ${currency} has (${exponent}); amounts are never rounded`;
  const example = exponent > 0 ? `1234.${'5'.padEnd(exponent, '0')}` : '1234';
  return (
    `must be a non-negative decimal string such as "${example}" ` +
    `(at most ${maxWholeDigits(currency)} digits before the point)`
  );
}

/** "1234.5" in USD → 123450. Throws on a value `decimalProblem` refuses. */
export function toMinorUnits(value: string, currency: string): number {
  const problem = decimalProblem(value, currency);
  if (problem) throw new RangeError(`${value}: ${problem}`);
  const exponent = currencyExponent(currency);
  const [whole = '0', fraction = ''] = value.split('.');
  return Number(whole) * 10 ** exponent + Number(fraction.padEnd(exponent, '0') || '0');
}

/** 123450 in USD → "1234.50": always every decimal place the currency has. */
export function fromMinorUnits(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`${minor} is not a whole number of minor units`);
  const exponent = currencyExponent(currency);
  const sign = minor < 0 ? '-' : '';
  const digits = String(Math.abs(minor)).padStart(exponent + 1, '0');
  return exponent === 0 ? `${sign}${digits}` : `${sign}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}
