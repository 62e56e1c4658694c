import { describe, expect, it } from 'vitest';
import { compareRecords, prepare, type Agreement } from './compare';
import { emptyRecord, type ResolutionRecord } from './record';

const record = (over: Partial<ResolutionRecord>): ResolutionRecord => emptyRecord('r', over);
const levels = (a: Partial<ResolutionRecord>, b: Partial<ResolutionRecord>): Record<string, string> =>
  Object.fromEntries(
    compareRecords(prepare(record(a), 'GB'), prepare(record(b), 'GB')).map((x: Agreement) => [x.comparison, x.level]),
  );
const at = (street1: string, zip_code = 'NW1 6XE') => ({
  street1,
  street2: null,
  city: 'London',
  state: null,
  zip_code,
  country: 'GB',
});

describe('comparing two records', () => {
  it('reads names as nicknames, typos, initials and swaps', () => {
    expect(
      levels({ given_name: 'Bill', family_name: 'Jones' }, { given_name: 'William', family_name: 'Jones' }),
    ).toEqual({ given_name: 'nickname', family_name: 'exact' });
    expect(levels({ given_name: 'Jonathon' }, { given_name: 'Jonathan' })).toEqual({ given_name: 'close' });
    expect(levels({ given_name: 'J' }, { given_name: 'Jane' })).toEqual({ given_name: 'initial' });
    expect(levels({ given_name: 'Mary' }, { given_name: 'Susan' })).toEqual({ given_name: 'different' });
    const swapped = compareRecords(
      prepare(record({ given_name: 'Lee', family_name: 'Chen' }), 'GB'),
      prepare(record({ given_name: 'Chen', family_name: 'Lee' }), 'GB'),
    );
    expect(swapped.map((x) => [x.level, x.swapped])).toEqual([
      ['exact', true],
      ['exact', true],
    ]);
    expect(levels({ family_name: 'Smith-Jones' }, { family_name: 'Smith' })).toEqual({ family_name: 'close' });
  });

  it('reads a swap with a typo in it as a swap, and a relative sharing one name as no swap', () => {
    const read = (a: Partial<ResolutionRecord>, b: Partial<ResolutionRecord>): [string, boolean | undefined][] =>
      compareRecords(prepare(record(a), 'GB'), prepare(record(b), 'GB')).map((x) => [x.level, x.swapped]);
    expect(
      read({ given_name: 'Desllva', family_name: 'Jasper' }, { given_name: 'Jasper', family_name: 'Desilva' }),
    ).toEqual([
      ['close', true],
      ['exact', true],
    ]);
    expect(
      read({ given_name: 'Campblel', family_name: 'Joshua' }, { given_name: 'Joshua', family_name: 'Campbell' }),
    ).toEqual([
      ['close', true],
      ['exact', true],
    ]);
    // The given name read across agrees, the family name does not: two people, not one swapped.
    expect(
      read({ given_name: 'Weller', family_name: 'Ebony' }, { given_name: 'Flynn', family_name: 'Weller' }),
    ).toEqual([
      ['different', false],
      ['different', false],
    ]);
  });

  it('reads dates of birth as exact, partial, swapped, one digit apart or different', () => {
    expect(levels({ birth_date: '1980-04-02' }, { birth_date: '19800402' })).toEqual({ birth_date: 'exact' });
    expect(levels({ birth_date: '1980-04' }, { birth_date: '1980-04-02' })).toEqual({ birth_date: 'partial' });
    expect(levels({ birth_date: '1980' }, { birth_date: '1980-04-02' })).toEqual({ birth_date: 'partial' });
    expect(levels({ birth_date: '1980-04-02' }, { birth_date: '1980-02-04' })).toEqual({ birth_date: 'swap' });
    expect(levels({ birth_date: '1980-04-02' }, { birth_date: '1981-04-02' })).toEqual({ birth_date: 'typo' });
    expect(levels({ birth_date: '1980-04-02' }, { birth_date: '1975-11-30' })).toEqual({ birth_date: 'different' });
    expect(levels({ birth_date: '1980-05' }, { birth_date: '1980-04-02' })).toEqual({ birth_date: 'different' });
  });

  it('reads a date of birth with two of its three parts the same as near', () => {
    // A wrong month, a day a few off (two digits), a wrong year: one part mistyped.
    expect(levels({ birth_date: '1966-12-21' }, { birth_date: '1966-01-21' })).toEqual({ birth_date: 'near' });
    expect(levels({ birth_date: '1980-11-20' }, { birth_date: '1980-11-18' })).toEqual({ birth_date: 'near' });
    expect(levels({ birth_date: '1954-03-08' }, { birth_date: '1962-03-08' })).toEqual({ birth_date: 'near' });
    // One digit apart stays a typo; one part the same is still different.
    expect(levels({ birth_date: '1980-04-02' }, { birth_date: '1980-04-03' })).toEqual({ birth_date: 'typo' });
    expect(levels({ birth_date: '1980-04-02' }, { birth_date: '1980-09-17' })).toEqual({ birth_date: 'different' });
  });

  it('reads emails by the mailbox they reach, and by their names', () => {
    const v = (value: string, verified = true) => ({ emails: [{ value, verified }] });
    expect(levels(v('Ann.Lee+shop@gmail.com'), v('annlee@googlemail.com'))).toEqual({ email: 'exact_verified' });
    expect(levels(v('ann.lee@gmail.com'), v('annlee@gmail.com', false))).toEqual({ email: 'exact' });
    expect(levels(v('annlee1980@gmail.com'), v('annlee1981@outlook.com'))).toEqual({ email: 'local_close' });
    expect(levels(v('a.lee@gmail.com'), v('zed@example.com'))).toEqual({ email: 'different' });
    // Short local parts are never "nearly the same", whichever side is which.
    expect(levels(v('abcd@example.com'), v('abc@example.com'))).toEqual({ email: 'different' });
    expect(levels(v('abc@example.com'), v('abcd@example.com'))).toEqual({ email: 'different' });
  });

  it('reads phones in E.164, one digit apart, and different verified numbers apart', () => {
    const p = (value: string, verified = true) => ({ phones: [{ value, verified }] });
    expect(levels(p('07700 900123'), p('+44 7700 900123'))).toEqual({ phone: 'exact_verified' });
    expect(levels(p('07700 900123'), p('07700 900124'))).toEqual({ phone: 'typo' });
    expect(levels(p('07700 900123'), p('07911 123456'))).toEqual({ phone: 'different_verified' });
    expect(levels(p('07700 900123'), p('07911 123456', false))).toEqual({ phone: 'different' });
  });

  it('reads a number both hold, or one a digit off, as a mobile or a landline, and neither where unsure', () => {
    const lineOf = (a: string, b: string, region = 'GB') =>
      compareRecords(
        prepare(emptyRecord('a', { phones: [{ value: a, verified: false }] }), region),
        prepare(emptyRecord('b', { phones: [{ value: b, verified: false }] }), region),
      ).find((x) => x.comparison === 'phone')?.line;
    expect(lineOf('07911 123456', '+44 7911 123456')).toBe('mobile');
    expect(lineOf('0412 345 678', '+61 412 345 678', 'AU')).toBe('mobile');
    expect(lineOf('(020) 7946 0000', '+44 20 7946 0000')).toBe('landline');
    expect(lineOf('(02) 9876 5432', '+61 2 9876 5432', 'AU')).toBe('landline');
    // North America's plan does not tell a mobile from a fixed line.
    expect(lineOf('(202) 555-0123', '+1 202 555 0123', 'US')).toBeUndefined();
    // One digit off: the line both numbers are, or nothing where they differ.
    expect(lineOf('07911 123456', '07911 123457')).toBe('mobile');
    expect(lineOf('(020) 7946 0000', '(020) 7946 0001')).toBe('landline');
    expect(lineOf('(0412) 345 678', '(0212) 345 678', 'AU')).toBeUndefined();
    // Both hold the home's landline and one's mobile: the mobile is what says who.
    const both = (order: string[]) =>
      compareRecords(
        prepare(emptyRecord('a', { phones: order.map((value) => ({ value, verified: false })) }), 'GB'),
        prepare(emptyRecord('b', { phones: order.map((value) => ({ value, verified: false })).reverse() }), 'GB'),
      ).find((x) => x.comparison === 'phone')?.line;
    expect(both(['(020) 7946 0000', '07911 123456'])).toBe('mobile');
    expect(both(['07911 123456', '(020) 7946 0000'])).toBe('mobile');
  });

  it('reads addresses by number and street, street, or postcode', () => {
    const a = (street1: string, zip?: string) => ({ addresses: [at(street1, zip)] });
    expect(levels(a('12 Baker Street'), a('12, baker st.'))).toEqual({ address: 'exact' });
    expect(levels(a('12 Baker Street'), a('12 Bakker Street'))).toEqual({ address: 'close' });
    expect(levels(a('12 Baker Street'), a('14 Baker Street'))).toEqual({ address: 'street' });
    expect(levels(a('12 Baker Street'), a('3 Park Road'))).toEqual({ address: 'postcode' });
    expect(levels(a('12 Baker Street'), a('12 Baker Street', 'SW1A 2AA'))).toEqual({ address: 'different' });
    // A postcode missing on one side: the same number and street is close, anything else unknown.
    expect(levels(a('12 Baker Street'), a('12 Baker St', ''))).toEqual({ address: 'close' });
    expect(levels(a('12 Baker Street'), a('3 Park Road', ''))).toEqual({});
  });

  it('reads devices by fingerprint or network, and cards by fingerprint or details', () => {
    const d = (fingerprint: string, ip: string) => ({ devices: [{ fingerprint, ip }] });
    expect(levels(d('fp-1', '10.1.2.3'), d('fp-1', '192.0.2.1'))).toEqual({ device: 'exact' });
    expect(levels(d('fp-1', '10.1.2.3'), d('fp-2', '10.1.2.99'))).toEqual({ device: 'network' });
    expect(levels(d('fp-1', '10.1.2.3'), d('fp-2', '10.1.3.3'))).toEqual({ device: 'different' });
    const c = (fingerprint: string | null, last_four = '4242') => ({
      cards: [{ fingerprint, brand: 'Visa', last_four, expiry_month: 4, expiry_year: 2030 }],
    });
    expect(levels(c('cf-1'), c('cf-1'))).toEqual({ card: 'fingerprint' });
    expect(levels(c('cf-1'), c(null))).toEqual({ card: 'details' });
    expect(levels(c('cf-1'), c('cf-2', '1111'))).toEqual({ card: 'different' });
  });

  it('says nothing of a field only one side has', () => {
    expect(
      levels({ given_name: 'Ann', phones: [{ value: '07700 900123', verified: true }] }, { given_name: 'Ann' }),
    ).toEqual({ given_name: 'exact' });
  });
});
