/**
 * Durations as configuration and the dunning schedule give them (`90m`, `24h`, `2d`, `45s`), in
 * milliseconds: one parser for every workflow (a recovery's settle window, attention deadline and
 * dunning waits; a fraud review's due time; an erasure's wait deadline).
 */

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;

/** `duration` in milliseconds; throws naming `field` when it is not a whole number and a unit. */
export function msOf(duration: string, field: string): number {
  const m = /^(\d+)\s*(d|h|m|s)$/.exec(duration.trim());
  if (!m) throw new Error(`${field}: bad duration ${duration} (expected e.g. 90m, 24h, 2d)`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
