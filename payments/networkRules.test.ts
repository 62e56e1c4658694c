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

/**
 * The rules as the networks state them, written out by hand (not read from the table): the
 * violations a sequence of charges on one card commits. The governor must never let one happen.
 */
function violations(network: string, h: CardHistory): string[] {
  const found: string[] = [];
  const a = h.attempts.map((x) => ({ ...x, t: Date.parse(x.at) }));
  const lookups = h.updater_lookups.map((l) => Date.parse(l));
  const macWait: Record<string, number> = {
    '24': HOUR,
    '25': DAY,
    '26': 2 * DAY,
    '27': 4 * DAY,
    '28': 6 * DAY,
    '29': 8 * DAY,
    '30': 10 * DAY,
  };
  const isReattempt = (i: number) => {
    const prev = a[i - 1];
    return i > 0 && prev?.outcome === 'declined' && [2, 3, 4].includes(prev.category ?? 4);
  };
  for (let i = 1; i < a.length; i++) {
    const now = a[i]!;
    const before = a.slice(0, i);
    const declined = before.filter((x) => x.outcome === 'declined');
    if (declined.some((x) => x.decline_code && declineRule(x.decline_code).doNotRetry))
      found.push(`${i}: after a do-not-retry decline`);
    if (network === 'visa') {
      if (declined.some((x) => x.category === 1)) found.push(`${i}: visa after category 1`);
      if (isReattempt(i)) {
        let earlier = 0;
        for (let k = 1; k < i; k++) if (isReattempt(k) && a[k]!.t > now.t - 30 * DAY) earlier++;
        if (earlier >= 15) found.push(`${i}: visa reattempt past the 15th in 30 days`);
      }
    } else if (network === 'mastercard') {
      if (declined.some((x) => x.advice_code === '03' || x.advice_code === '21'))
        found.push(`${i}: mastercard after MAC 03/21`);
      for (const x of declined) {
        const wait = x.advice_code ? macWait[x.advice_code] : undefined;
        if (wait !== undefined && now.t < x.t + wait) found.push(`${i}: mastercard before MAC ${x.advice_code} allows`);
      }
      if (declined.filter((x) => x.t > now.t - DAY).length >= 10) found.push(`${i}: mastercard 11th decline in 24 h`);
      if (declined.filter((x) => x.t > now.t - 30 * DAY).length >= 35)
        found.push(`${i}: mastercard 36th decline in 30 days`);
      const mac01 = [...declined].reverse().find((x) => x.advice_code === '01');
      if (mac01 && !lookups.some((l) => l >= mac01.t && l <= now.t)) found.push(`${i}: mastercard MAC 01 no updater`);
    } else if (before.filter((x) => x.t > now.t - 30 * DAY).length >= 15) {
      found.push(`${i}: other network 16th charge in 30 days`);
    }
  }
  return found;
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
    const good = JSON.parse(readFileSync(path.join(RULE_TABLES_DIR, `${table.version}.json`), 'utf8'));
    const write = (t: unknown) => writeFileSync(path.join(dir, '2030-01.json'), JSON.stringify(t));
    write({ ...good, version: '2030-01', rules: [{ ...good.rules[0], source: '' }] });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/2030-01\.json: rules\.0\.source/);
    write({ ...good, version: '2030-01', rules: [{ ...good.rules[4], after: 'soon' }] });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/rules\.0\.after: a duration/);
    write({ ...good, version: '2030-01', rules: [good.rules[0], good.rules[0]] });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/rules\.1\.id: visa-category-1-never twice/);
    write({ ...good, version: '2030-02' });
    expect(() => loadRuleTable('2030-01', dir)).toThrow(/version says 2030-02/);
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
      }),
      { minLength: 1, maxLength: 120, size: 'max' },
    ),
  }),
);

describe('the governor over any sequence of declines (fast-check)', () => {
  it('never lets a violation happen, and names the exact earliest retry time', () => {
    fc.assert(
      fc.property(life, ({ network, steps }) => {
        const h: CardHistory = { attempts: [], updater_lookups: [] };
        let t = T0;
        for (const step of steps) {
          t += step.gap;
          let v = decideRetry(table, network, h, new Date(t));
          if (v.verdict === 'never') break;
          if (v.verdict === 'updater_first') {
            h.updater_lookups.push(iso(t));
            v = decideRetry(table, network, h, new Date(t));
          }
          if (v.verdict === 'not_before') {
            const at = Date.parse(v.at);
            expect(at).toBeGreaterThan(t);
            // Exact: refused a millisecond before, allowed at the time named.
            expect(decideRetry(table, network, h, new Date(at - 1)).verdict).not.toBe('allowed');
            expect(decideRetry(table, network, h, new Date(at)).verdict).toBe('allowed');
            if (!step.waitsForEarliest) continue;
            t = at;
            v = decideRetry(table, network, h, new Date(t));
          }
          expect(v.verdict).toBe('allowed');
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
