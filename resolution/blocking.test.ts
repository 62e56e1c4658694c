import { describe, expect, it } from 'vitest';
import { BlockingIndex, blockingKeys, CANDIDATE_CAP, KEY_CAP } from './blocking';
import { prepare } from './compare';
import { emptyRecord, type ResolutionRecord } from './record';

const record = (id: string, over: Partial<ResolutionRecord>): ResolutionRecord => emptyRecord(id, over);
const p = (id: string, over: Partial<ResolutionRecord>) => prepare(record(id, over), 'GB');

describe('blocking', () => {
  it('finds one person typed differently: a swap, a new address, a new email', () => {
    const index = new BlockingIndex();
    index.add(p('f1', { given_name: 'Lee', family_name: 'Chen', birth_date: '1980-04-02' }));
    index.add(p('f2', { given_name: 'Ann', family_name: 'Jones', birth_date: '1990-01-01' }));
    expect(index.candidates(p('s1', { given_name: 'Chen', family_name: 'Lee', birth_date: '1980-04-02' }))).toEqual([
      'f1',
    ]);
    expect(index.candidates(p('s2', { given_name: 'Lea', family_name: 'Chen', birth_date: '1980' }))).toEqual(['f1']);
  });

  it('names no candidates through a value more than KEY_CAP records hold', () => {
    const index = new BlockingIndex();
    const kiosk = { devices: [{ fingerprint: 'kiosk', ip: null }] };
    for (let i = 0; i <= KEY_CAP; i++) index.add(p(`f${i}`, kiosk));
    expect(index.candidates(p('s', kiosk))).toEqual([]);
    const small = new BlockingIndex();
    for (let i = 0; i < KEY_CAP; i++) small.add(p(`f${i}`, kiosk));
    expect(small.candidates(p('s', kiosk))).toHaveLength(KEY_CAP);
  });

  it('reads at most CANDIDATE_CAP candidates, the most specific keys first', () => {
    const index = new BlockingIndex();
    index.add(p('mine', { phones: [{ value: '07700 900123', verified: true }] }));
    for (let k = 0; k < 6; k++)
      for (let i = 0; i < KEY_CAP; i++) index.add(p(`d${k}-${i}`, { devices: [{ fingerprint: `d${k}`, ip: null }] }));
    const signUp = p('s', {
      phones: [{ value: '+44 7700 900123', verified: true }],
      devices: Array.from({ length: 6 }, (_, k) => ({ fingerprint: `d${k}`, ip: null })),
    });
    const found = index.candidates(signUp);
    expect(found).toHaveLength(CANDIDATE_CAP);
    expect(found[0]).toBe('mine');
  });

  it('keys a record by every kind of value it has', () => {
    const keys = blockingKeys(
      p('r', {
        given_name: 'Ann',
        family_name: 'Lee',
        birth_date: '1980-04-02',
        emails: [{ value: 'ann.lee@gmail.com', verified: true }],
        phones: [{ value: '07700 900123', verified: true }],
        addresses: [{ street1: '1 A St', street2: null, city: null, state: null, zip_code: 'NW1 6XE', country: 'GB' }],
        devices: [{ fingerprint: 'fp', ip: null }],
        cards: [{ fingerprint: 'cf', brand: null, last_four: null, expiry_month: null, expiry_year: null }],
      }),
    );
    expect(new Set(keys.map((k) => k.split(':')[0]))).toEqual(
      new Set([
        'name',
        'name-formal',
        'name-letters',
        'email',
        'name-postcode',
        'name-year',
        'birth',
        'email-local',
        'phone',
        'card',
        'device',
        'address',
      ]),
    );
  });

  it('finds a record whose family name has two letters transposed, where the Soundex changed', () => {
    const index = new BlockingIndex();
    index.add(p('f1', { given_name: 'Nora', family_name: 'Singh', birth_date: '1978-01-08' }));
    index.add(p('f2', { given_name: 'Nora', family_name: 'Sing' }));
    const signUp = p('s1', { given_name: 'Nora', family_name: 'iSngh' });
    expect(
      blockingKeys(signUp).filter((k) =>
        blockingKeys(p('f1', { given_name: 'Nora', family_name: 'Singh' })).includes(k),
      ),
    ).toEqual([expect.stringMatching(/^name-letters:/)]);
    expect(index.candidates(signUp)).toEqual(['f1']);
    expect(index.candidates(p('s2', { given_name: 'Singh', family_name: 'Nroa' }))).toEqual(['f1']);
    // A part with no letters a–z to sort gives no letters key (it would be shared by every such name).
    const keysOf = (family: string) => blockingKeys(p('r', { given_name: 'Nora', family_name: family }));
    expect(keysOf('李').some((k) => k.startsWith('name-letters:'))).toBe(false);
  });

  it('finds a record under a nickname however the name sounds (Em and Emily, Bella and Isabella)', () => {
    const index = new BlockingIndex();
    index.add(p('f1', { given_name: 'Emily', family_name: 'Lane', birth_date: '1977-02-09' }));
    index.add(p('f2', { given_name: 'Bella', family_name: 'Roberts', birth_date: '1999-08-11' }));
    index.add(p('f3', { given_name: 'Emma', family_name: 'Lane', birth_date: '1980-01-01' }));
    expect(index.candidates(p('s1', { given_name: 'Em', family_name: 'Lane' }))).toEqual(
      expect.arrayContaining(['f1']),
    );
    expect(index.candidates(p('s2', { given_name: 'Isabella', family_name: 'Roberts' }))).toEqual(['f2']);
    // A name in no group gives no formal-name key.
    expect(
      blockingKeys(p('r', { given_name: 'Zxq', family_name: 'Lane' })).some((k) => k.startsWith('name-formal:')),
    ).toBe(false);
  });
});
