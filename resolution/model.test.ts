import { describe, expect, it } from 'vitest';
import { COMPARISON_NAMES, COMPARISONS, compareRecords, prepare, type Agreement } from './compare';
import {
  anchorBits,
  calibrationFeatures,
  checkTable,
  scoreAgreements,
  UNCALIBRATED,
  type Frequencies,
  type LevelWeight,
  type ModelTable,
} from './model';
import { decide } from './policy';
import { emptyRecord, type ResolutionRecord } from './record';
import { MATCH_MODEL } from './weights';

/** A plausible table: agreeing levels likely for one person, `different` likely for two. */
function table(): ModelTable {
  const levels = Object.fromEntries(
    COMPARISON_NAMES.map((c) => {
      const all = COMPARISONS[c] as readonly string[];
      return [
        c,
        Object.fromEntries(
          all.map((l, i): [string, LevelWeight] => {
            const last = l.startsWith('different');
            const w: LevelWeight = last ? { m: 0.05, u: 0.9 } : { m: 0.9 / (i + 1), u: 0.01 / (all.length - i) };
            if (!last && (l === 'exact' || l === 'exact_verified' || l === 'fingerprint')) w.split = 0.5;
            return [l, w];
          }),
        ),
      ];
    }),
  ) as ModelTable['levels'];
  return { version: 'test', trainedOn: [], levels, returningRate: 0.5, calibration: UNCALIBRATED };
}

const record = (over: Partial<ResolutionRecord>): ResolutionRecord => emptyRecord('r', over);
const home = {
  street1: '12 Baker Street',
  street2: null,
  city: 'London',
  state: null,
  zip_code: 'NW1 6XE',
  country: 'GB',
};
const unknown: Frequencies = () => null;

function score(
  a: Partial<ResolutionRecord>,
  b: Partial<ResolutionRecord>,
  frequencies = unknown,
  population = 10_000,
  t = table(),
) {
  const agreements: Agreement[] = compareRecords(prepare(record(a), 'GB'), prepare(record(b), 'GB'));
  return scoreAgreements(agreements, t, frequencies, population);
}

/** Twins: one home, one family name, one date of birth, two given names. */
const twin = { family_name: 'Smith', birth_date: '2005-01-08', addresses: [home] };

describe('the match model', () => {
  it('counts a common surname for less than a rare one', () => {
    const a = { given_name: 'Ann', family_name: 'Smith', addresses: [home] };
    const b = { given_name: 'Ann', family_name: 'Smith', addresses: [home] };
    const common = score(a, b, (c) => (c === 'family_name' ? 0.02 : null));
    const rare = score(a, b, (c) => (c === 'family_name' ? 0.0001 : null));
    const part = (s: typeof common) => s.parts.find((p) => p.comparison === 'family_name');
    expect(part(common)!.bits).toBeLessThan(part(rare)!.bits);
    expect(part(common)!.reason).toContain('1 in 50 records');
    expect(common.probability).toBeLessThan(rare.probability);
  });

  it('counts a device 200 customers use for far less than one person’s own', () => {
    const d = { devices: [{ fingerprint: 'fp-kiosk', ip: '10.0.0.1' }] };
    const kiosk = score(d, d, (c) => (c === 'device' ? 200 / 10_000 : null));
    const own = score(d, d, (c) => (c === 'device' ? 1 / 10_000 : null));
    expect(kiosk.bits).toBeLessThan(own.bits - 7);
  });

  it('lowers the score on a different date of birth and lists it as a conflict', () => {
    const a = { given_name: 'Ann', family_name: 'Smith', birth_date: '1980-04-02', addresses: [home] };
    const same = score(a, { ...a });
    const other = score(a, { ...a, birth_date: '2011-09-17' });
    expect(other.probability).toBeLessThan(same.probability);
    expect(other.parts.find((p) => p.comparison === 'birth_date')!.bits).toBeLessThan(0);
    expect(other.conflicts.map((p) => `${p.comparison}.${p.level}`)).toEqual(['birth_date.different']);
    expect(same.conflicts).toEqual([]);
  });

  it('lowers the score on different verified phone numbers', () => {
    const a = { given_name: 'Ann', family_name: 'Smith', addresses: [home] };
    const none = score(a, a);
    const different = score(
      { ...a, phones: [{ value: '+447700900001', verified: true }] },
      { ...a, phones: [{ value: '+447700900777', verified: true }] },
    );
    expect(different.parts.find((p) => p.comparison === 'phone')!.level).toBe('different_verified');
    expect(different.probability).toBeLessThan(none.probability);
  });

  it('says nothing about a field only one record has', () => {
    const s = score({ given_name: 'Ann', birth_date: '1980-04-02' }, { given_name: 'Ann' });
    expect(s.parts.map((p) => p.comparison)).toEqual(['given_name']);
  });

  it('explains each part in words that hold no value', () => {
    const a = {
      given_name: 'Bill',
      family_name: 'Hartnell',
      birth_date: '1908-01-08',
      emails: [{ value: 'w.hartnell@gmail.com', verified: true }],
      phones: [{ value: '07700 900123', verified: true }],
      addresses: [home],
      cards: [{ fingerprint: 'card-fp-123', brand: 'visa', last_four: '4242', expiry_month: 4, expiry_year: 2030 }],
    };
    const b = { ...a, given_name: 'William', emails: [{ value: 'whartnell+shop@gmail.com', verified: true }] };
    const s = score(a, b, () => 1 / 10_000);
    const words = s.parts.map((p) => p.reason).join(' | ');
    expect(words).toContain('given names are forms of one name');
    expect(words).toContain('same email, verified on both');
    for (const secret of ['bill', 'william', 'hartnell', 'gmail', '900123', 'baker', 'nw1', 'card-fp', '4242'])
      expect(words.toLowerCase()).not.toContain(secret);
    expect(s.probability).toBeGreaterThan(0.99);
  });

  it('refuses a table missing a level', () => {
    const t = table();
    delete (t.levels.birth_date as Record<string, unknown>).swap;
    expect(() => checkTable(t)).toThrow('birth_date.swap');
    expect(() => checkTable(table())).not.toThrow();
  });

  it('gives the household’s evidence as an interaction when the person’s conflicts, twice, or is unknown', () => {
    const twins = score({ ...twin, given_name: 'Ann' }, { ...twin, given_name: 'Beth' });
    const household = twins.parts.filter((p) => ['family_name', 'address'].includes(p.comparison));
    const f = calibrationFeatures(twins.parts);
    expect(f.household_conflict).toBeCloseTo(
      household.reduce((s, p) => s + p.bits, 0),
      9,
    );
    expect(f.household_conflict).toBeGreaterThan(0);
    expect(f.household_unattested).toBe(0);
    expect(f.household_both_conflict).toBe(0);
    const siblings = score({ ...twin, given_name: 'Ann' }, { ...twin, given_name: 'Beth', birth_date: '1990-07-19' });
    expect(siblings.conflicts.map((p) => p.comparison).sort()).toEqual(['birth_date', 'given_name']);
    const both = calibrationFeatures(siblings.parts);
    expect(both.household_both_conflict).toBeCloseTo(both.household_conflict, 9);
    expect(both.household_both_conflict).toBeGreaterThan(0);
    const same = calibrationFeatures(score({ ...twin, given_name: 'Ann' }, { ...twin, given_name: 'Ann' }).parts);
    expect(same.household_conflict).toBe(0);
    const nobody = score({ family_name: 'Smith', addresses: [home] }, { family_name: 'Smith', addresses: [home] });
    expect(calibrationFeatures(nobody.parts).household_unattested).toBeGreaterThan(0);
    expect(calibrationFeatures(nobody.parts).household_conflict).toBe(0);
  });

  it('lets a shared mobile stand against the home explaining a conflict away, and not a landline', () => {
    const own = { ...twin, phones: [{ value: '07911 123456', verified: true }] };
    const rare: Frequencies = () => 0.0001;
    const retyped = score(
      { ...own, given_name: 'Ann' },
      { ...own, given_name: 'Beth', birth_date: '1990-07-19' },
      rare,
    );
    expect(retyped.parts.find((p) => p.comparison === 'phone')?.line).toBe('mobile');
    expect(retyped.conflicts.map((p) => p.comparison).sort()).toEqual(['birth_date', 'given_name']);
    const f = calibrationFeatures(retyped.parts);
    expect(f.household_conflict).toBe(0);
    expect(f.household_both_conflict).toBe(0);
    expect(anchorBits(retyped.parts)).toBeGreaterThan(0);
    // With the committed table, a parent's verified mobile on a child's sign-up is still refused a link.
    const child = score({ ...own, given_name: 'Ann' }, { ...own, given_name: 'Beth' }, rare, 10_000, MATCH_MODEL);
    expect(decide([{ customerId: 'parent', score: child, proof: 'phone', recentAutoLinks: 0 }])).toMatchObject({
      outcome: 'created',
      reason: 'proof_conflicts',
    });

    const home = { ...twin, phones: [{ value: '(020) 7946 0000', verified: true }] };
    const siblings = score(
      { ...home, given_name: 'Ann' },
      { ...home, given_name: 'Beth', birth_date: '1990-07-19' },
      rare,
    );
    const landline = siblings.parts.find((p) => p.comparison === 'phone');
    expect(landline?.line).toBe('landline');
    // A landline is the home's: the conflict is the home's to explain.
    expect(calibrationFeatures(siblings.parts).household_both_conflict).toBeGreaterThan(0);
  });

  it('gives an identifier only one record holds the same probability however many records are on file', () => {
    const damped = table();
    damped.calibration = { weights: { ...UNCALIBRATED.weights, accounts: 0.6 }, intercept: 0 };
    const a = { emails: [{ value: 'ann.smith@example.org', verified: true }] };
    const once = (population: number) =>
      score(a, a, (c) => (c === 'email' ? 1 / population : null), population, damped).probability;
    expect(once(1_000_000)).toBeCloseTo(once(1_000), 3);
    expect(once(1_000)).toBeGreaterThan(0.4);
    // An identifier many hold is no anchor: its evidence is calibrated with its group's.
    const shared = (population: number) =>
      score(a, a, (c) => (c === 'email' ? 0.01 : null), population, damped).probability;
    expect(shared(1_000_000)).toBeLessThan(shared(1_000));
  });

  it('weighs the interactions the table gives', () => {
    const interacting = table();
    interacting.calibration = { weights: { ...UNCALIBRATED.weights, household_conflict: -0.5 }, intercept: 0 };
    const a = { ...twin, given_name: 'Ann' };
    const b = { ...twin, given_name: 'Beth' };
    expect(score(a, b, unknown, 10_000, interacting).probability).toBeLessThan(score(a, b).probability);
    // No conflict: the interaction is 0, the probability the same as with its weight 0.
    expect(score(a, { ...a }, unknown, 10_000, interacting).probability).toBeCloseTo(
      score(a, { ...a }).probability,
      12,
    );
  });
});
