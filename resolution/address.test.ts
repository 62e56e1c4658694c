import { describe, expect, it } from 'vitest';
import { parseAddress, postcodeOf } from './address';
import type { RecordAddress } from './record';

describe('parseAddress', () => {
  const address = (street1: string, street2: string | null = null, country = 'GB'): RecordAddress => ({
    street1,
    street2,
    city: 'London',
    state: null,
    zip_code: 'SW1A 2AA',
    country,
  });
  const parts = (a: RecordAddress): [string | null, string | null, string] => {
    const p = parseAddress(a);
    return [p.number, p.unit, p.street];
  };

  it.each([
    ['10 Downing Street', null, ['10', null, 'downing st']],
    ['10A Downing St.', null, ['10a', null, 'downing st']],
    ['221B Baker Street', null, ['221b', null, 'baker st']],
    ['Flat 3, 10 Downing Street', null, ['10', '3', 'downing st']],
    ['3/10 Smith St', null, ['10', '3', 'smith st']],
    ['4b / 22 Main Road', null, ['22', '4b', 'main rd']],
    ['Unit 4 22 Main Rd', null, ['22', '4', 'main rd']],
    ['Downing Street 10', null, ['10', null, 'downing st']],
    ['Rue de Rivoli 10', null, ['10', null, 'rue de rivoli']],
    ['Hauptstraße 5a', null, ['5a', null, 'hauptstr']],
    ['Hauptstr. 5a', null, ['5a', null, 'hauptstr']],
    ['Berliner Straße 12', null, ['12', null, 'berliner st']],
    ['ul. Długa 10/3', null, ['10', '3', 'ul dluga']],
    ['10-12 Smith Street', null, ['10-12', null, 'smith st']],
    ['No. 10 Downing Street', null, ['10', null, 'downing st']],
    ['Harbour House, 10 Quay Street', null, ['10', null, 'quay st']],
    ['123 Main St #4', null, ['123', '4', 'main st']],
    ['123 Main St Apt. 4', null, ['123', '4', 'main st']],
    ['22 Main St 4', null, ['22', '4', 'main st']],
    ['Level 2, 100 George Street', null, ['100', 'fl 2', 'george st']],
    ['3rd Floor, 100 George St', null, ['100', 'fl 3', 'george st']],
    ['5th Avenue', null, [null, null, '5th ave']],
    ["12 St. John's Road", null, ['12', null, 'st johns rd']],
    ['1600 Pennsylvania Avenue Northwest', null, ['1600', null, 'pennsylvania ave nw']],
    ['7 Wattle Circuit', null, ['7', null, 'wattle cct']],
    ['7 Ocean Parade', null, ['7', null, 'ocean pde']],
    ['7 Rose Crescent', null, ['7', null, 'rose cres']],
    ['7 High Terrace', null, ['7', null, 'high tce']],
    ['7 Pacific Highway', null, ['7', null, 'pacific hwy']],
    ['7 Elm Close', null, ['7', null, 'elm cl']],
    ['7 Oak Grove', null, ['7', null, 'oak gr']],
    // street2: the flat, the street (street1 only a flat), or a locality.
    ['10 Downing Street', 'Apt 4B', ['10', '4b', 'downing st']],
    ['10 Downing Street', '4B', ['10', '4b', 'downing st']],
    ['Flat 3', '10 Downing Street', ['10', '3', 'downing st']],
    ['10 Downing Street', 'Westminster', ['10', null, 'downing st']],
  ] as [string, string | null, [string | null, string | null, string]][])('%s / %s', (street1, street2, expected) => {
    expect(parts(address(street1, street2))).toEqual(expected);
  });

  it('keys one place however it was typed', () => {
    const a = parseAddress(address('10 Downing Street'));
    expect(a).toEqual({
      number: '10',
      unit: null,
      street: 'downing st',
      postcode: 'sw1a2aa',
      city: 'london',
      country: 'GB',
      key: 'GB|sw1a2aa|10|downing st',
    });
    const b = parseAddress({ ...address('10, DOWNING ST.'), zip_code: 'sw1a-2aa', country: ' gb ', city: null });
    expect(b.key).toBe(a.key);
    expect(parseAddress(address('Flat 3, 10 Downing Street')).key).toBe(a.key);
  });

  it("reads a US ZIP+4 as its ZIP, and leaves other countries' codes whole", () => {
    const us = { street1: '8778 Forest St', street2: null, city: 'San Francisco', state: 'CA', country: 'US' };
    const zip = parseAddress({ ...us, zip_code: '94134' });
    expect(parseAddress({ ...us, street1: '8778 FOREST ST', zip_code: '94134-8618' }).key).toBe(zip.key);
    expect(parseAddress({ ...us, zip_code: '94134 8618' }).postcode).toBe('94134');
    expect(parseAddress({ ...us, zip_code: '94135-8618' }).key).not.toBe(zip.key);
    expect(postcodeOf('1234-56789', 'AU')).toBe('123456789');
  });

  it('takes the locality as the city when there is none, and leaves out what is missing', () => {
    const p = parseAddress({
      street1: '10 High St',
      street2: 'Little Snoring',
      city: null,
      state: null,
      zip_code: null,
      country: 'GB',
    });
    expect(p.city).toBe('little snoring');
    expect(p.postcode).toBeNull();
    expect(p.key).toBe('GB||10|high st');
    expect(parseAddress({ ...address('  '), zip_code: '  ' }).key).toBe('GB|||');
  });
});
