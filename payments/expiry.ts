/**
 * The card-expiry calendar. A card is valid to the end of its expiry month: a card marked 02/28
 * works on 29 February 2028 and has expired on 1 March. Pure and deterministic, so the scan
 * workflow, its activity and the tests all use the same arithmetic.
 *
 * Dates are calendar days (`YYYY-MM-DD`) with no time of day; "today" is taken in a configured
 * time zone (PERSONA_EXPIRY_SCAN_TIMEZONE) once, when a scan starts.
 */

/** Warning stages, in days before the end of the expiry month: the most urgent one due is sent. */
export const EXPIRY_STAGES = [60, 30, 7] as const;
export type ExpiryStage = (typeof EXPIRY_STAGES)[number];

export type ExpiryAction =
  | { kind: 'expire'; daysPast: number }
  | { kind: 'warn'; stage: ExpiryStage; daysLeft: number }
  | { kind: 'none'; daysLeft: number };

const DAY_MS = 86_400_000;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Parses `YYYY-MM-DD` as a real calendar date (2026-02-30 is refused); null when it is not one. */
export function parseIsoDate(value: string): { year: number; month: number; day: number } | null {
  const m = ISO_DATE.exec(value);
  if (!m) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  return { year, month, day };
}

export function isIsoDate(value: string): boolean {
  return parseIsoDate(value) !== null;
}

/** Days in a month (1–12), leap years included. */
export function daysInMonth(year: number, month: number): number {
  // Not Date.UTC: it reads years 0–99 as 1900–1999.
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 ? (leap ? 29 : 28) : ([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0);
}

function dayNumber(year: number, month: number, day: number): number {
  return Math.round(Date.UTC(year, month - 1, day) / DAY_MS);
}

function asOfDay(asOf: string): number {
  const d = parseIsoDate(asOf);
  if (!d) throw new RangeError(`as_of must be a date YYYY-MM-DD, got ${JSON.stringify(asOf)}`);
  return dayNumber(d.year, d.month, d.day);
}

/** Days from `asOf` to the last valid day of the card (0 on that day, negative once expired). */
export function daysUntilExpiry(asOf: string, expiryYear: number, expiryMonth: number): number {
  return dayNumber(expiryYear, expiryMonth, daysInMonth(expiryYear, expiryMonth)) - asOfDay(asOf);
}

/** What the scan does with a card on `asOf`: expire it, warn at a stage, or leave it. */
export function expiryAction(asOf: string, expiryYear: number, expiryMonth: number): ExpiryAction {
  const daysLeft = daysUntilExpiry(asOf, expiryYear, expiryMonth);
  if (daysLeft < 0) return { kind: 'expire', daysPast: -daysLeft };
  // Smallest stage first: a card 5 days from expiry gets the 7-day warning, never the 60-day one.
  for (const stage of [...EXPIRY_STAGES].sort((a, b) => a - b)) {
    if (daysLeft <= stage) return { kind: 'warn', stage, daysLeft };
  }
  return { kind: 'none', daysLeft };
}

/**
 * The last expiry month the scan must read on `asOf`: the month `asOf + 60 days` falls in. Every
 * card expiring after it is more than 60 days away; every card up to it is expired or due for a
 * warning (or, in that last month, just outside the window — expiryAction decides).
 */
export function scanWindowEnd(asOf: string): { year: number; month: number } {
  const horizon = new Date((asOfDay(asOf) + Math.max(...EXPIRY_STAGES)) * DAY_MS);
  return { year: horizon.getUTCFullYear(), month: horizon.getUTCMonth() + 1 };
}

/** `YYYY-MM-DD` of an instant in a time zone (e.g. `Europe/Berlin`); the zone must be valid. */
export function dateInTimeZone(instant: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).formatToParts(instant);
  const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

/** The month label of an expiry, e.g. `2027-01`. */
export function expiryLabel(expiryYear: number, expiryMonth: number): string {
  return `${expiryYear}-${String(expiryMonth).padStart(2, '0')}`;
}

/**
 * The idempotency key of one warning: per card, expiry month and stage. A re-run, a retry or an
 * overlapping scan computes the same key, so the warning goes out once; a card given a new
 * expiry date is warned again for it.
 */
export function expiryNoticeKey(
  paymentMethodId: string,
  expiryYear: number,
  expiryMonth: number,
  stage: ExpiryStage,
): string {
  return `card-expiry:${paymentMethodId}:${expiryLabel(expiryYear, expiryMonth)}:${stage}d`;
}

/** The marker a card keeps of its most urgent settled warning, e.g. `2027-01:30`. */
export function expiryWarningMarker(expiryYear: number, expiryMonth: number, stage: ExpiryStage): string {
  return `${expiryLabel(expiryYear, expiryMonth)}:${stage}`;
}

/**
 * True when the card's marker shows this stage, or a more urgent one, settled for this expiry:
 * a scan never warns "60 days left" after "7 days left" (say, when ops re-run an older day).
 */
export function warningSettled(
  marker: string | null,
  expiryYear: number,
  expiryMonth: number,
  stage: ExpiryStage,
): boolean {
  if (!marker) return false;
  const [label, settled] = marker.split(':');
  return label === expiryLabel(expiryYear, expiryMonth) && Number(settled) <= stage;
}
