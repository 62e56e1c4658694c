/**
 * The network-rule retry governor: whether one card may be charged again now, and if not, from
 * when (or never), under a versioned rule table (config/network-rules/<version>.json, loaded by
 * payments/ruleTables.ts). Pure: the table, the card's attempt history and the time in, a verdict
 * out. The history is per card identity (the card fingerprint, which survives re-tokenisation),
 * across every recovery and every agent's report.
 *
 * Rule kinds (each rule names its network — `visa`, `mastercard`, `*` for every network, `other`
 * for a network no rule names — and its source):
 *   never_after    a decline that matches bars the card (for good when `permanent`; else while the
 *                  decline is in the history the caller keeps);
 *   updater_first  after a decline that matches, the account updater must have been asked since;
 *   not_before     after a decline that matches, no attempt before (its time + `after`);
 *   cap            at most `max` counted events in any rolling `window`: `attempts` (every charge),
 *                  `declines` (declined charges) or `reattempts` (charges whose previous attempt on
 *                  the card was a decline that matches; only binding when the next one would be one).
 * A verdict names the rule that binds it, the table's version and the rule's source; an allowed
 * one lists nothing. When several rules defer, the latest time wins: every rule's constraint only
 * loosens as time passes (a count in a rolling window only falls, a deadline only passes), so
 * the card is allowed at that time and at no time before it.
 */
import { declineRule } from './declines';

export type Network = string;

export interface RuleMatch {
  /** Visa decline categories (1–4). */
  categories?: number[];
  /** Mastercard Merchant Advice Codes, two digits. */
  advice_codes?: string[];
  /** Persona decline codes (payments/declines.ts). */
  decline_codes?: string[];
  /** Any code Persona's decline classes mark do-not-retry. */
  do_not_retry?: boolean;
}

interface RuleBase {
  id: string;
  /** `visa`, `mastercard`, …; `*` applies to every network; `other` to networks no rule names. */
  network: string;
  source: string;
}

export type NetworkRule =
  /** `permanent`: the card's history keeps the bar after the decline has aged out (the networks' own "never"). */
  | (RuleBase & { kind: 'never_after'; match: RuleMatch; permanent?: boolean })
  | (RuleBase & { kind: 'updater_first'; match: RuleMatch })
  | (RuleBase & { kind: 'not_before'; match: RuleMatch; after: string })
  | (RuleBase & {
      kind: 'cap';
      counts: 'attempts' | 'declines' | 'reattempts';
      match?: RuleMatch;
      max: number;
      window: string;
    });

export interface VisaCategoryEntry {
  response_code: string;
  category: 1 | 2 | 3 | 4;
}

export interface RuleTable {
  version: string;
  effective: string;
  description: string;
  /** Where the processor sends no category: the category of each Persona decline code. */
  visa_categories: { source: string; codes: Record<string, VisaCategoryEntry> };
  rules: NetworkRule[];
}

/** One charge of the card, as the processor answered it. */
export interface CardAttempt {
  at: string;
  outcome: 'succeeded' | 'declined';
  network: Network;
  decline_code?: string | null;
  /** Visa's decline category, when the processor sent one. */
  category?: number | null;
  /** Mastercard's Merchant Advice Code, when the processor sent one. */
  advice_code?: string | null;
}

export interface CardHistory {
  /** Oldest first. */
  attempts: CardAttempt[];
  /** When the account updater was asked about this card. */
  updater_lookups: string[];
}

export interface RuleRef {
  id: string;
  table: string;
  source: string;
}

export type RetryVerdict =
  | { verdict: 'allowed'; table: string }
  | { verdict: 'never'; rule: RuleRef; since: string }
  | { verdict: 'updater_first'; rule: RuleRef; since: string }
  | { verdict: 'not_before'; at: string; rule: RuleRef };

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A time the governor can count with; anything else throws. A date that does not parse would
 * drop out of every window and wait (NaN compares false), and allow what the rules forbid.
 */
function timeOf(at: string | number, what: string): number {
  const t = typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(t)) throw new RangeError(`the network-rule governor cannot read the time of ${what}: ${at}`);
  return t;
}

/** `30d`, `24h`, `90m` in milliseconds. */
export function durationMs(d: string): number {
  const m = /^(\d+)(m|h|d)$/.exec(d);
  if (!m) throw new Error(`bad rule duration ${d} (expected a number and m, h or d)`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** The Visa category of a decline: the processor's, else the table's for its code, else 4 (generic). */
export function visaCategory(table: RuleTable, a: CardAttempt): number {
  if (a.category !== null && a.category !== undefined) return a.category;
  return (a.decline_code ? table.visa_categories.codes[a.decline_code]?.category : undefined) ?? 4;
}

function matches(table: RuleTable, match: RuleMatch | undefined, a: CardAttempt): boolean {
  if (a.outcome !== 'declined') return false;
  if (!match) return true;
  if (match.categories && a.network === 'visa' && match.categories.includes(visaCategory(table, a))) return true;
  if (match.advice_codes && a.advice_code && match.advice_codes.includes(a.advice_code)) return true;
  if (match.decline_codes && a.decline_code && match.decline_codes.includes(a.decline_code)) return true;
  if (match.do_not_retry && a.decline_code && declineRule(a.decline_code).doNotRetry) return true;
  return false;
}

/** The rules that govern a card of this network. */
export function rulesFor(table: RuleTable, network: Network): NetworkRule[] {
  const named = table.rules.some((r) => r.network === network);
  return table.rules.filter((r) => r.network === '*' || r.network === network || (!named && r.network === 'other'));
}

const ref = (table: RuleTable, rule: NetworkRule): RuleRef => ({
  id: rule.id,
  table: table.version,
  source: rule.source,
});

/** Whether a charge of this card may be made at `now`, and if not, from when (or never). */
export function decideRetry(table: RuleTable, network: Network, history: CardHistory, now: Date): RetryVerdict {
  const rules = rulesFor(table, network);
  const t = timeOf(now.getTime(), 'now');
  // Oldest first, whatever order the history came in (a stable sort: one millisecond keeps its order).
  const attempts = history.attempts
    .map((a, i) => ({ a, i, at: timeOf(a.at, 'an attempt') }))
    .sort((x, y) => x.at - y.at || x.i - y.i)
    .map((x) => x.a);
  const lookups = history.updater_lookups.map((l) => timeOf(l, 'an updater lookup'));

  for (const rule of rules) {
    if (rule.kind !== 'never_after') continue;
    const barring = attempts.find((a) => matches(table, rule.match, a));
    if (barring) return { verdict: 'never', rule: ref(table, rule), since: barring.at };
  }

  for (const rule of rules) {
    if (rule.kind !== 'updater_first') continue;
    const last = [...attempts].reverse().find((a) => matches(table, rule.match, a));
    if (!last) continue;
    const since = Date.parse(last.at);
    if (!lookups.some((l) => l >= since)) return { verdict: 'updater_first', rule: ref(table, rule), since: last.at };
  }

  let latest: { at: number; rule: NetworkRule } | null = null;
  const defer = (at: number, rule: NetworkRule) => {
    if (at > t && (latest === null || at > latest.at)) latest = { at, rule };
  };
  for (const rule of rules) {
    if (rule.kind === 'not_before') {
      const wait = durationMs(rule.after);
      for (const a of attempts) if (matches(table, rule.match, a)) defer(Date.parse(a.at) + wait, rule);
    } else if (rule.kind === 'cap') {
      const counted = countedTimes(table, rule, attempts);
      if (counted === null) continue;
      const window = durationMs(rule.window);
      const live = counted.filter((at) => at > t - window).sort((x, y) => x - y);
      // Allowed once enough have left the window that fewer than `max` remain.
      if (live.length >= rule.max) defer((live[live.length - rule.max] as number) + window, rule);
    }
  }
  const binding = latest as { at: number; rule: NetworkRule } | null;
  if (binding) return { verdict: 'not_before', at: new Date(binding.at).toISOString(), rule: ref(table, binding.rule) };
  return { verdict: 'allowed', table: table.version };
}

/**
 * The times of the events a cap counts; null when the cap does not bind the next attempt (a
 * reattempt cap when the card's last attempt was not a matching decline).
 */
function countedTimes(
  table: RuleTable,
  rule: Extract<NetworkRule, { kind: 'cap' }>,
  attempts: CardAttempt[],
): number[] | null {
  if (rule.counts === 'attempts') return attempts.map((a) => Date.parse(a.at));
  if (rule.counts === 'declines')
    return attempts.filter((a) => matches(table, rule.match, a)).map((a) => Date.parse(a.at));
  const last = attempts[attempts.length - 1];
  if (!last || !matches(table, rule.match, last)) return null;
  const times: number[] = [];
  for (let i = 1; i < attempts.length; i++)
    if (matches(table, rule.match, attempts[i - 1] as CardAttempt))
      times.push(Date.parse((attempts[i] as CardAttempt).at));
  return times;
}

/** A verdict in words: what the status query, the timer's summary and the history say. */
export function describeVerdict(v: RetryVerdict): string {
  switch (v.verdict) {
    case 'allowed':
      return `allowed by network rules ${v.table}`;
    case 'never':
      return `never again: ${v.rule.id} (rules ${v.rule.table}, since ${v.since})`;
    case 'updater_first':
      return `ask the account updater first: ${v.rule.id} (rules ${v.rule.table})`;
    case 'not_before':
      return `not before ${v.at}: ${v.rule.id} (rules ${v.rule.table})`;
  }
}
