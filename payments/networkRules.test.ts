import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DECLINE_CODES, declineRule } from './declines';
import { decideRetry, type CardAttempt, type CardHistory, type RetryVerdict } from './networkRules';
import { loadRuleTable, ruleTableVersions, RULE_TABLES_DIR } from './ruleTables';

const table = loadRuleTable();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

const decline = (at: number, network: string, extra: Partial<CardAttempt> = {}): CardAttempt => ({
  at: iso(at),
  outcome: 'declined',
  network,
  decline_code: 'insufficient_funds',
  ...extra,
});
const history = (attempts: CardAttempt[], lookups: number[] = []): CardHistory => ({
  attempts,
  updater_lookups: lookups.map(iso),
});
const decide = (network: string, h: CardHistory, at: number) => decideRetry(table, network, h, new Date(at));

/** Persona's do-not-retry codes that bar a card for good (expired_card is renewed by the updater). */
const BARRING_CODES = DECLINE_CODES.filter((c) => declineRule(c).doNotRetry && c !== 'expired_card');

/**
 * The rules as the networks state them, written out by hand (not read from the table): what a
 * charge of the card at time t would break, given its history so far. The oracle of the
 * properties, both ways: the governor must never allow a charge this refuses, nor refuse one it
 * allows (the earliest time it names must be the first this accepts).
 */
function brokenAt(network: string, h: CardHistory, t: number): string[] {
  const found: string[] = [];
  const a = h.attempts.map((x) => ({ ...x, t: Date.parse(x.at) })).sort((x, y) => x.t - y.t);
  const lookups = h.updater_lookups.map((l) => Date.parse(l));
  const declined = a.filter((x) => x.outcome === 'declined');
  const macWait: Record<string, number> = {
    '24': HOUR,
    '25': DAY,
    '26': 2 * DAY,
    '27': 4 * DAY,
    '28': 6 * DAY,
    '29': 8 * DAY,
    '30': 10 * DAY,
  };
  if (declined.some((x) => x.decline_code && BARRING_CODES.includes(x.decline_code as never)))
    found.push('after a do-not-retry decline');
  if (network === 'visa') {
    // A charge is a reattempt when the one before it on the card was a category 2-4 decline.
    const softDecline = (x: CardAttempt | undefined) =>
      x?.outcome === 'declined' && [2, 3, 4].includes(x.category ?? 4);
    if (declined.some((x) => x.category === 1)) found.push('visa after category 1');
    if (softDecline(a.at(-1))) {
      const earlier = a.filter((x, k) => k > 0 && softDecline(a[k - 1]) && x.t > t - 30 * DAY).length;
      if (earlier >= 15) found.push('visa reattempt past the 15th in 30 days');
    }
  } else if (network === 'mastercard') {
    if (declined.some((x) => x.advice_code === '03' || x.advice_code === '21'))
      found.push('mastercard after MAC 03/21');
    for (const x of declined) {
      const wait = x.advice_code ? macWait[x.advice_code] : undefined;
      if (wait !== undefined && t < x.t + wait) found.push(`mastercard before MAC ${x.advice_code} allows`);
    }
    if (declined.filter((x) => x.t > t - DAY).length >= 10) found.push('mastercard 11th decline in 24 h');
    if (declined.filter((x) => x.t > t - 30 * DAY).length >= 35) found.push('mastercard 36th decline in 30 days');
    const mac01 = declined.filter((x) => x.advice_code === '01').at(-1);
    if (mac01 && !lookups.some((l) => l >= mac01.t && l <= t)) found.push('mastercard MAC 01 no updater');
  } else if (a.filter((x) => x.t > t - 30 * DAY).length >= 15) {
    found.push('other network 16th charge in 30 days');
  }
  return found;
}

/** What a sequence of charges on one card broke, charge by charge. */
function violations(network: string, h: CardHistory): string[] {
  return h.attempts.flatMap((x, i) =>
    brokenAt(network, { ...h, attempts: h.attempts.slice(0, i) }, Date.parse(x.at)).map((v) => `${i}: ${v}`),
  );
}

describe('the rule tables', () => {
  it('load, newest by default, every rule with its source', () => {
    expect(ruleTableVersions()).toContain(table.version);
    expect(table.version).toBe(ruleTableVersions().at(-1));
    for (const r of table.rules) expect(r.source.length).toBeGreaterThan(20);
    expect(Object.keys(table.visa_categories.codes).sort()).toEqual([...DECLINE_CODES].sort());
  });

  it('refuse an unknown version, naming the setting and the versions there are', () => {
    expect(() => loadRuleTable('1999-01')).toThrow(/PERSONA_NETWORK_RULES_VERSION: .*1999-01.*there are: .*2026-11/);
  });

  it('refuse a table that a rule of cannot be read, naming the file and the field', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rules-'));
    const good = JSON.parse(readFileSync(path.join(RULE_TABLES_DIR, `${table.version}.json`), 'utf8')) as {
      rules: Record<string, unknown>[];
    };
    const write = (t: unknown) => writeFileSync(path.join(dir, '2030-01.json'), JSON.stringify(t));
    write({ ...good, version: '2030-01', rules: [{ ...good.rules[0], source: '' }] });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/2030-01\.json: rules\.0\.source/);
    write({ ...good, version: '2030-01', rules: [{ ...good.rules[4], after: 'soon' }] });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/rules\.0\.after: a duration/);
    write({ ...good, version: '2030-01', rules: [good.rules[0], good.rules[0]] });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/rules\.1\.id: visa-category-1-never twice/);
    write({ ...good, version: '2030-02' });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/version says 2030-02/);
    // Rules that would load and then never fire, or fire wrongly.
    const rule = (r: Record<string, unknown>) => write({ ...good, version: '2030-01', rules: [r] });
    const mac = good.rules.find((r) => r.id === 'mastercard-mac-03-21-never');
    rule({ ...mac, network: 'mastercrd' });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/rules\.0\.network/);
    rule({ ...mac, match: { categories: [1] } });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/rules\.0\.match\.categories: categories are Visa/);
    rule({ ...mac, network: 'visa' });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/advice codes are Mastercard/);
    rule({ ...mac, match: { decline_codes: ['stolen_crad'] } });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/rules\.0\.match\.decline_codes\.0/);
    rule({ ...good.rules.at(-1), match: { decline_codes: ['lost_card'] } });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/a cap of all charges matches nothing/);
    rule({ ...good.rules[4], after: '200000000d' });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/at most a year/);
    // A file that is not a version is not a table (nor the newest one).
    writeFileSync(path.join(dir, 'schema.json'), '{}');
    expect(ruleTableVersions(dir)).toEqual(['2030-01']);
  });
});

describe('the governor', () => {
  it('never retries a Visa card after a category 1 decline, whatever the processor calls the code', () => {
    const h = history([decline(T0, 'visa', { decline_code: 'try_again_later', category: 1 })]);
    expect(decide('visa', h, T0 + 60 * DAY)).toMatchObject({
      verdict: 'never',
      rule: { id: 'visa-category-1-never', table: '2026-11' },
    });
    // Without a category from the processor, the table's: lost_card is category 1.
    expect(decide('visa', history([decline(T0, 'visa', { decline_code: 'lost_card' })]), T0 + DAY).verdict).toBe(
      'never',
    );
  });

  it('reattempts a Visa card 15 times in 30 days after category 2-4 declines, then once the first leaves', () => {
    const attempts = Array.from({ length: 16 }, (_, i) => decline(T0 + i * HOUR, 'visa', { category: 2 }));
    expect(decide('visa', history(attempts.slice(0, 15)), T0 + 15 * HOUR).verdict).toBe('allowed');
    // 15 reattempts made (attempts 1..15): the next waits until the first reattempt is 30 days old.
    const v = decide('visa', history(attempts), T0 + 16 * HOUR);
    expect(v).toEqual({
      verdict: 'not_before',
      at: iso(T0 + HOUR + 30 * DAY),
      rule: expect.objectContaining({ id: 'visa-categories-2-4-15-in-30-days' }),
    });
    expect(decide('visa', history(attempts), T0 + HOUR + 30 * DAY - 1).verdict).toBe('not_before');
    expect(decide('visa', history(attempts), T0 + HOUR + 30 * DAY).verdict).toBe('allowed');
    // After an approval the next charge is not a reattempt.
    const paid = [...attempts, { at: iso(T0 + 17 * HOUR), outcome: 'succeeded' as const, network: 'visa' }];
    expect(decide('visa', history(paid), T0 + 18 * HOUR).verdict).toBe('allowed');
  });

  it('waits as long as a Mastercard advice code says, to the millisecond, and never after 03 or 21', () => {
    const h = history([decline(T0, 'mastercard', { advice_code: '26' })]);
    expect(decide('mastercard', h, T0 + 2 * DAY - 1)).toMatchObject({
      verdict: 'not_before',
      at: iso(T0 + 2 * DAY),
      rule: { id: 'mastercard-mac-26-after-2-days' },
    });
    expect(decide('mastercard', h, T0 + 2 * DAY).verdict).toBe('allowed');
    for (const mac of ['03', '21'])
      expect(
        decide('mastercard', history([decline(T0, 'mastercard', { advice_code: mac })]), T0 + 90 * DAY),
      ).toMatchObject({ verdict: 'never', rule: { id: 'mastercard-mac-03-21-never' } });
  });

  it('asks the account updater first after MAC 01, and only a lookup after that decline counts', () => {
    const h = (lookups: number[]) => history([decline(T0, 'mastercard', { advice_code: '01' })], lookups);
    expect(decide('mastercard', h([]), T0 + HOUR)).toMatchObject({
      verdict: 'updater_first',
      since: iso(T0),
      rule: { id: 'mastercard-mac-01-updater-first' },
    });
    expect(decide('mastercard', h([T0 - 1]), T0 + HOUR).verdict).toBe('updater_first');
    expect(decide('mastercard', h([T0 + 1]), T0 + HOUR).verdict).toBe('allowed');
  });

  it('holds Mastercard to 10 declined attempts in 24 hours and 35 in 30 days', () => {
    const ten = Array.from({ length: 10 }, (_, i) => decline(T0 + i * 60_000, 'mastercard'));
    expect(decide('mastercard', history(ten), T0 + HOUR)).toMatchObject({
      verdict: 'not_before',
      at: iso(T0 + DAY),
      rule: { id: 'mastercard-excessive-attempts-10-in-24-hours' },
    });
    const month = Array.from({ length: 35 }, (_, i) => decline(T0 + i * 0.5 * DAY, 'mastercard'));
    const v = decide('mastercard', history(month), T0 + 18 * DAY);
    expect(v).toMatchObject({ verdict: 'not_before', at: iso(T0 + 30 * DAY) });
    expect((v as Extract<RetryVerdict, { verdict: 'not_before' }>).rule.id).toBe(
      'mastercard-excessive-attempts-35-in-30-days',
    );
  });

  it('falls back on other networks to the decline classes and 15 charges in 30 days', () => {
    expect(decide('amex', history([decline(T0, 'amex', { decline_code: 'stolen_card' })]), T0 + DAY)).toMatchObject({
      verdict: 'never',
      rule: { id: 'persona-do-not-retry-declines' },
    });
    const fifteen = Array.from({ length: 15 }, (_, i) => decline(T0 + i * DAY, 'amex'));
    expect(decide('amex', history(fifteen), T0 + 15 * DAY)).toMatchObject({
      verdict: 'not_before',
      at: iso(T0 + 30 * DAY),
      rule: { id: 'persona-other-networks-15-in-30-days' },
    });
    // Visa and Mastercard are not held to the fallback cap.
    const visaSuccesses = fifteen.map((a) => ({ ...a, network: 'visa', outcome: 'succeeded' as const }));
    expect(decide('visa', history(visaSuccesses), T0 + 15 * DAY).verdict).toBe('allowed');
  });

  it('refuses to decide on a time it cannot read, rather than let it drop out of every window', () => {
    const h = history([decline(T0, 'mastercard', { advice_code: '30' })]);
    expect(() => decide('mastercard', h, Number.NaN)).toThrow(/cannot read the time of now/);
    const bad = history([{ ...decline(T0, 'mastercard', { advice_code: '30' }), at: '2026-13-01T00:00:00Z' }]);
    expect(() => decide('mastercard', bad, T0 + DAY)).toThrow(/cannot read the time of an attempt: 2026-13-01/);
    expect(() => decideRetry(table, 'mastercard', { attempts: [], updater_lookups: ['soon'] }, new Date(T0))).toThrow(
      /an updater lookup/,
    );
  });

  it('reads a history in any order', () => {
    const sorted = [
      decline(T0, 'mastercard', { advice_code: '01' }),
      decline(T0 + 2 * HOUR, 'mastercard', { advice_code: '01' }),
    ];
    // The lookup came between the two MAC 01 declines: the later one still wants one.
    expect(decide('mastercard', history([...sorted].reverse(), [T0 + HOUR]), T0 + 3 * HOUR).verdict).toBe(
      'updater_first',
    );
  });

  it('does not bar an expired card for good: the updater renews it under the same fingerprint', () => {
    const h = history([decline(T0, 'visa', { decline_code: 'expired_card', category: 3 })]);
    expect(decide('visa', h, T0 + HOUR).verdict).toBe('allowed');
    const amex = history([decline(T0, 'amex', { decline_code: 'expired_card' })]);
    expect(decide('amex', amex, T0 + HOUR).verdict).toBe('allowed');
  });

  it('finds violations in charges nobody governed (the checker the properties trust can fail)', () => {
    const h = history([
      decline(T0, 'mastercard', { advice_code: '25' }),
      decline(T0 + HOUR, 'mastercard', { advice_code: '01' }),
      decline(T0 + 2 * HOUR, 'mastercard'),
    ]);
    expect(violations('mastercard', h)).toEqual([
      '1: mastercard before MAC 25 allows',
      '2: mastercard before MAC 25 allows',
      '2: mastercard MAC 01 no updater',
    ]);
  });
});

const NETWORKS = ['visa', 'mastercard', 'amex'] as const;
const ADVICE = [null, '01', '02', '03', '21', '24', '25', '26', '27', '28', '29', '30'];

const SOFT = ['insufficient_funds', 'do_not_honor', 'try_again_later', 'processing_error'];
const WAITS = ['24', '25', '26', '27', '28', '29', '30'];

/**
 * What the processor answers a charge: success, or a decline with what the network adds. A
 * stubborn card declines softly (no code that ends its sequence, rare approvals, advice codes
 * that wait or ask for the updater), so lives reach the caps and several rules bind at once; any
 * other card may answer anything.
 */
const answer = (network: string, stubborn: boolean) =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant({ outcome: 'succeeded' as const }) },
    {
      weight: stubborn ? 25 : 5,
      arbitrary: fc.record({
        outcome: fc.constant('declined' as const),
        decline_code: stubborn
          ? fc.constantFrom(...SOFT)
          : fc.oneof(
              { weight: 6, arbitrary: fc.constantFrom(...SOFT) },
              { weight: 1, arbitrary: fc.constantFrom(...DECLINE_CODES) },
            ),
        category:
          network !== 'visa'
            ? fc.constant(null)
            : stubborn
              ? fc.constantFrom(2, 3, 4)
              : fc.oneof({ weight: 1, arbitrary: fc.constant(1) }, { weight: 12, arbitrary: fc.constantFrom(2, 3, 4) }),
        advice_code:
          network !== 'mastercard'
            ? fc.constant(null)
            : stubborn
              ? fc.oneof(
                  { weight: 8, arbitrary: fc.constantFrom(null, '02') },
                  { weight: 1, arbitrary: fc.constant('01') },
                  { weight: 2, arbitrary: fc.constantFrom(...WAITS) },
                )
              : fc.constantFrom(...ADVICE),
      }),
    },
  );

/** A card's life: the times something wants to charge it, and the answers. */
const life = fc.tuple(fc.constantFrom(...NETWORKS), fc.boolean()).chain(([network, stubborn]) =>
  fc.record({
    network: fc.constant(network),
    steps: fc.array(
      fc.record({
        // Mostly minutes to hours apart (so the caps are reached), sometimes days; a stubborn card is retried hard.
        gap: fc.oneof(
          { weight: stubborn ? 19 : 4, arbitrary: fc.integer({ min: 0, max: 2 * HOUR }) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 * DAY }) },
        ),
        answer: answer(network, stubborn),
        /** Whether the caller waits for the earliest time the rules allow, or tries later on its schedule. */
        waitsForEarliest: fc.boolean(),
        /** The account updater asked before this charge, whatever the rules said. */
        lookupFirst: fc.oneof(
          { weight: 9, arbitrary: fc.constant(false) },
          { weight: 1, arbitrary: fc.constant(true) },
        ),
      }),
      { minLength: 1, maxLength: 120, size: 'max' },
    ),
  }),
);

describe('the governor over any sequence of declines (fast-check)', () => {
  it('never lets a violation happen, never refuses a charge the rules allow, and names the exact earliest time', () => {
    fc.assert(
      fc.property(life, ({ network, steps }) => {
        const h: CardHistory = { attempts: [], updater_lookups: [] };
        // The governor sorts what it is given: it is asked with the history newest first (charges
        // of one millisecond keep their order: nothing else can tell it which came first).
        const newestFirst = () => [...h.attempts].sort((x, y) => Date.parse(y.at) - Date.parse(x.at));
        const decide = (at: number) =>
          decideRetry(
            table,
            network,
            { attempts: newestFirst(), updater_lookups: [...h.updater_lookups].reverse() },
            new Date(at),
          );
        let t = T0;
        for (const step of steps) {
          t += step.gap;
          if (step.lookupFirst) h.updater_lookups.push(iso(t));
          let v = decide(t);
          if (v.verdict === 'never') {
            expect(brokenAt(network, h, t)).not.toEqual([]);
            expect(brokenAt(network, h, t + 400 * DAY)).not.toEqual([]);
            break;
          }
          if (v.verdict === 'updater_first') {
            expect(brokenAt(network, h, t)).toContain('mastercard MAC 01 no updater');
            h.updater_lookups.push(iso(t));
            v = decide(t);
          }
          if (v.verdict === 'not_before') {
            const at = Date.parse(v.at);
            expect(at).toBeGreaterThan(t);
            // Exact, by the rules as written: a charge a millisecond before breaks one, at the time named none.
            expect(brokenAt(network, h, at - 1)).not.toEqual([]);
            expect(brokenAt(network, h, at)).toEqual([]);
            expect(decide(at).verdict).toBe('allowed');
            if (!step.waitsForEarliest) continue;
            t = at;
            v = decide(t);
          }
          expect(v.verdict).toBe('allowed');
          expect(brokenAt(network, h, t)).toEqual([]);
          h.attempts.push({ at: iso(t), network, ...step.answer });
        }
        expect(violations(network, h)).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });

  it('is needed: the same lives charged on schedule without it break the rules', () => {
    let broken = 0;
    fc.assert(
      fc.property(life, ({ network, steps }) => {
        const h: CardHistory = { attempts: [], updater_lookups: [] };
        let t = T0;
        for (const step of steps) {
          t += step.gap;
          h.attempts.push({ at: iso(t), network, ...step.answer });
        }
        if (violations(network, h).length > 0) broken++;
      }),
      { numRuns: 400 },
    );
    expect(broken).toBeGreaterThan(100);
  });
});
