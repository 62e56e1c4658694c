/**
 * The synthetic household population: deterministic, its slices in proportion, its labels true
 * (returning people are on file, relatives, twins and strangers are not), households sharing a
 * family name and an address, twins a birth date, and the adversarial values shared by exactly as
 * many unrelated people on file as stated; fast enough for 20,000 households.
 */
import { describe, expect, it } from 'vitest';
import type { LabelledRecord, LabelledSet } from '../../resolution/record';
import { normalisePhone } from '../../resolution/normalise';
import { ADVERSARIAL, generateHouseholds, SLICE_SHARES } from './households';

const set = generateHouseholds({ seed: 11, households: 4000, signUps: 2000 });

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

const onFileByPerson = new Map(set.onFile.map((r) => [r.person, r]));
const onFileByHousehold = groupBy(set.onFile, (r) => r.household as string);
const slice = (name: string): LabelledRecord[] => set.signUps.filter((r) => r.slice === name);

/** A postcode as compared here: upper case, no spaces (a ZIP+4 starts with its ZIP). */
const zip = (z: string | null | undefined): string => (z ?? '').toUpperCase().replace(/\s/g, '');

/** An email as one mailbox (the way the generator keeps them unique). */
function mailbox(value: string): string {
  const at = value.lastIndexOf('@');
  const local = value.slice(0, at).toLowerCase().split('+')[0] as string;
  const domain = value.slice(at + 1).toLowerCase();
  return /^(gmail|googlemail)\.com$/.test(domain) ? `${local.replace(/\./g, '')}@gmail.com` : `${local}@${domain}`;
}

describe('generateHouseholds', () => {
  it('is deterministic: the same options, the same set; another seed, another set', () => {
    const opts = { seed: 5, households: 300, signUps: 150 };
    expect(generateHouseholds(opts)).toEqual(generateHouseholds(opts));
    expect(generateHouseholds({ ...opts, seed: 6 })).not.toEqual(generateHouseholds(opts));
  });

  it('numbers people, households and records, and keeps record ids unique', () => {
    expect(set.name).toBe('households');
    expect(set.onFile.every((r, i) => r.id === `f-${i + 1}` && r.slice === 'on-file')).toBe(true);
    expect(set.signUps.every((r, i) => r.id === `s-${i + 1}`)).toBe(true);
    const all = [...set.onFile, ...set.signUps];
    expect(all.every((r) => /^p-\d+$/.test(r.person) && /^h-\d+$/.test(r.household ?? ''))).toBe(true);
    expect(new Set(set.onFile.map((r) => r.person)).size).toBe(set.onFile.length); // one record each
  });

  it('deals the slices in their shares', () => {
    const n = set.signUps.length;
    expect(n).toBe(2000);
    const share = (...names: string[]): number => set.signUps.filter((r) => names.includes(r.slice)).length / n;
    expect(share('returning')).toBeCloseTo(SLICE_SHARES.returning, 1);
    expect(share('relative', 'twin')).toBeCloseTo(SLICE_SHARES.relative, 1);
    expect(share('stranger')).toBeCloseTo(SLICE_SHARES.stranger, 1);
    expect(share('adversarial')).toBeCloseTo(SLICE_SHARES.adversarial, 1);
    expect(slice('twin').length).toBeGreaterThan(20);
    // Dealt in a seeded order, not slice by slice.
    expect(new Set(set.signUps.slice(0, 100).map((r) => r.slice)).size).toBeGreaterThanOrEqual(4);
  });

  it('labels truly: returning people are on file; relatives, twins and strangers are not', () => {
    for (const r of slice('returning')) expect(onFileByPerson.has(r.person), r.id).toBe(true);
    for (const r of [...slice('relative'), ...slice('twin'), ...slice('stranger')]) {
      expect(onFileByPerson.has(r.person), r.id).toBe(false);
    }
    // A relative's household has someone on file; a stranger's has nobody.
    for (const r of [...slice('relative'), ...slice('twin')])
      expect(onFileByHousehold.has(r.household!), r.id).toBe(true);
    for (const r of slice('stranger')) expect(onFileByHousehold.has(r.household!), r.id).toBe(false);
  });

  it('puts a household at one address, mostly under one family name', () => {
    const multi = [...onFileByHousehold.values()].filter((rs) => rs.length > 1);
    expect(multi.length).toBeGreaterThan(500);
    for (const rs of multi) {
      const homes = rs.map((r) => r.addresses[0]!);
      expect(new Set(homes.map((a) => `${a.zip_code}|${a.city}|${a.country}`)).size).toBe(1);
      // The same house number and street name, however the street type is written.
      expect(
        new Set(
          homes.map((a) =>
            a.street1
              .replace(/^\d+\//, '')
              .split(' ')
              .slice(0, 2)
              .join(' '),
          ),
        ).size,
      ).toBe(1);
    }
    const oneName = multi.filter((rs) => new Set(rs.map((r) => r.family_name).filter(Boolean)).size === 1);
    expect(oneName.length / multi.length).toBeGreaterThan(0.75);
    // Relatives sign up from the household's address, under its family name, mostly.
    const relatives = slice('relative');
    const atHome = relatives.filter((r) => {
      const home = onFileByHousehold.get(r.household!)![0]!.addresses[0]!;
      return r.addresses.length === 0 || zip(r.addresses[0]!.zip_code).startsWith(zip(home.zip_code));
    });
    expect(atHome.length).toBe(relatives.length);
    const named = relatives.filter((r) =>
      onFileByHousehold.get(r.household!)!.some((f) => f.family_name?.toUpperCase() === r.family_name?.toUpperCase()),
    );
    expect(named.length / relatives.length).toBeGreaterThan(0.75);
  });

  it('writes every national phone number in the region it names, with or without an address', () => {
    const records = [...set.onFile, ...set.signUps];
    // A household's own address is in its region (a forwarding address of the adversarial slice need not be).
    for (const r of records)
      if (r.addresses[0] && r.slice !== 'adversarial') expect(r.region).toBe(r.addresses[0].country);
    const unread = records.flatMap((r) => r.phones.filter((p) => normalisePhone(p.value, r.region) === null));
    expect(unread).toEqual([]);
    expect(records.some((r) => r.addresses.length === 0 && r.phones.length > 0 && r.region !== 'GB')).toBe(true);
  });

  it('gives twins one birth date, one family name, one address and two given names', () => {
    const twins = slice('twin');
    let named = 0;
    for (const r of twins) {
      expect(r.birth_date, r.id).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      const twin = onFileByHousehold
        .get(r.household!)!
        .find((f) => f.person !== r.person && f.birth_date === r.birth_date);
      expect(twin, r.id).toBeDefined();
      if (twin!.family_name && r.family_name) expect(twin!.family_name.toUpperCase()).toBe(r.family_name.toUpperCase());
      const home = zip(twin!.addresses[0]!.zip_code);
      if (r.addresses.length > 0) expect(zip(r.addresses[0]!.zip_code).startsWith(home), r.id).toBe(true);
      if (twin!.given_name?.toUpperCase() !== r.given_name?.toUpperCase()) named++;
    }
    // Distinct given names (a nickname may now and then make two look alike).
    expect(named / twins.length).toBeGreaterThan(0.9);
  });

  it('shares emails, devices and cards only on purpose', () => {
    const sharedAcrossHouseholds = (values: [string, LabelledRecord][]): string[] =>
      [...groupBy(values, ([v]) => v)]
        .filter(([, rs]) => new Set(rs.map(([, r]) => r.household)).size > 1)
        .map(([v]) => v);
    const emails = set.onFile.flatMap((r) => r.emails.map((e) => [mailbox(e.value), r] as [string, LabelledRecord]));
    expect(sharedAcrossHouseholds(emails)).toEqual([]);
    const devices = set.onFile.flatMap((r) => r.devices.map((d) => [d.fingerprint, r] as [string, LabelledRecord]));
    expect(sharedAcrossHouseholds(devices)).toEqual([ADVERSARIAL.kioskDevice.fingerprint]);
    const cards = set.onFile.flatMap((r) =>
      r.cards.filter((c) => c.fingerprint).map((c) => [c.fingerprint, r] as [string, LabelledRecord]),
    );
    expect(sharedAcrossHouseholds(cards)).toEqual([ADVERSARIAL.companyCard.fingerprint]);
  });
});

describe('the adversarial slice', () => {
  let big: LabelledSet;
  it('generates 20,000 households in a few seconds', () => {
    const started = performance.now();
    big = generateHouseholds({ seed: 3, households: 20_000, signUps: 5_000 });
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(big.onFile.length).toBeGreaterThan(30_000);
  });

  it('shares each value among exactly the stated number of unrelated people on file', () => {
    for (const s of [set, big]) {
      const carriers = {
        kioskDevice: s.onFile.filter((r) =>
          r.devices.some((d) => d.fingerprint === ADVERSARIAL.kioskDevice.fingerprint),
        ),
        companyCard: s.onFile.filter((r) => r.cards.some((c) => c.fingerprint === ADVERSARIAL.companyCard.fingerprint)),
        forwardingAddress: s.onFile.filter((r) =>
          r.addresses.some((a) => JSON.stringify(a) === JSON.stringify(ADVERSARIAL.forwardingAddress)),
        ),
      };
      for (const [hazard, rs] of Object.entries(carriers)) {
        const stated = ADVERSARIAL.sharedBy[hazard as keyof typeof carriers];
        expect(rs.length, hazard).toBe(stated);
        expect(new Set(rs.map((r) => r.person)).size, hazard).toBe(stated);
        expect(new Set(rs.map((r) => r.household)).size, hazard).toBe(stated);
      }
    }
  });

  it('carries the shared values, squatted emails and family emails into its sign-ups', () => {
    const adversarial = slice('adversarial');
    expect(adversarial.length).toBe(100);
    const kiosk = adversarial.filter((r) =>
      r.devices.some((d) => d.fingerprint === ADVERSARIAL.kioskDevice.fingerprint),
    );
    const card = adversarial.filter((r) => r.cards.some((c) => c.fingerprint === ADVERSARIAL.companyCard.fingerprint));
    const forwarded = adversarial.filter((r) =>
      r.addresses.some((a) => a.street1 === ADVERSARIAL.forwardingAddress.street1),
    );
    // The owner of each email on file, by mailbox.
    const owners = groupBy(
      set.onFile.flatMap((r) => r.emails.map((e) => [mailbox(e.value), r] as [string, LabelledRecord])),
      ([m]) => m,
    );
    const others = (r: LabelledRecord, verified: boolean): LabelledRecord[] =>
      r.emails
        .filter((e) => e.verified === verified)
        .flatMap((e) => (owners.get(mailbox(e.value)) ?? []).map(([, f]) => f))
        .filter((f) => f.person !== r.person);
    const squatted = adversarial.filter((r) => others(r, false).some((f) => f.household !== r.household));
    const family = adversarial.filter((r) => others(r, true).some((f) => f.household === r.household));
    for (const group of [kiosk, card, forwarded, squatted, family]) expect(group.length).toBeGreaterThanOrEqual(15);
    // A squatter is never the owner.
    for (const r of squatted) {
      expect(onFileByPerson.get(r.person)?.emails.map((e) => e.value) ?? []).not.toContain(r.emails[0]!.value);
    }
  });
});
