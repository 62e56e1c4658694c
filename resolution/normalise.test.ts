import { describe, expect, it } from 'vitest';
import { MAILBOX_RULES, normaliseEmail, normaliseName, normalisePhone, parseBirthDate } from './normalise';

describe('normaliseName', () => {
  it.each([
    ["O'Brien", 'obrien'],
    ['Jean-Luc', 'jean luc'],
    ['Zoë', 'zoe'],
    ['  MARY   ann ', 'mary ann'],
    ['Đorđević', 'dordevic'],
    ['Straße', 'strasse'],
    ['Łukasz', 'lukasz'],
    ['Müller–Schmidt', 'muller schmidt'],
    ['J.R.R.', 'jrr'],
    ['Ｊｏｈｎ', 'john'],
  ])('%s → %s', (value, expected) => expect(normaliseName(value)).toBe(expected));

  it.each([null, '', '   ', '---', "'."])('%j → null', (value) => expect(normaliseName(value)).toBeNull());
});

describe('parseBirthDate', () => {
  it.each([
    ['1980', { year: 1980, month: null, day: null }],
    ['1980-05', { year: 1980, month: 5, day: null }],
    ['1980-05-12', { year: 1980, month: 5, day: 12 }],
    ['19800512', { year: 1980, month: 5, day: 12 }],
    [' 1980-5-7 ', { year: 1980, month: 5, day: 7 }],
    ['1980/05/12', { year: 1980, month: 5, day: 12 }],
    ['1980-05-12T00:00:00Z', { year: 1980, month: 5, day: 12 }],
    ['2000-02-29', { year: 2000, month: 2, day: 29 }],
  ])('%s', (value, expected) => expect(parseBirthDate(value)).toEqual(expected));

  it.each(['1980-13-12', '1980-00', '1980-04-31', '2001-02-29', '19801340', '1940-97-16'])(
    'reads a date with a part out of range as unknown, as the api refuses it: %s',
    (value) => expect(parseBirthDate(value)).toBeNull(),
  );

  it.each([null, '', 'abc', '12/05/1980', '198005', '0000-01-01', '1980-05-12-01', 'x1980'])('%j → null', (value) =>
    expect(parseBirthDate(value)).toBeNull(),
  );
});

describe('normaliseEmail', () => {
  it('trims and lower-cases, and splits the address', () => {
    expect(normaliseEmail('  Ada.Lovelace@Example.COM ')).toEqual({
      address: 'ada.lovelace@example.com',
      local: 'ada.lovelace',
      domain: 'example.com',
      canonical: 'ada.lovelace@example.com',
    });
  });

  it.each([
    ['J.Doe+shop@GoogleMail.com', 'jdoe@gmail.com'],
    ['j.d.o.e@gmail.com', 'jdoe@gmail.com'],
    ['a.b+c@hotmail.co.uk', 'a.b@hotmail.co.uk'],
    ['a.b+c@hotmail.com', 'a.b@hotmail.com'],
    ['a.b+c@outlook.com', 'a.b@outlook.com'],
    ['a.b+c@outlook.fr', 'a.b@outlook.fr'],
    ['a+b@live.com.au', 'a@live.com.au'],
    ['a+b@msn.com', 'a@msn.com'],
    ['a.b+c@icloud.com', 'a.b@icloud.com'],
    ['a+c@me.com', 'a@me.com'],
    ['a+c@fastmail.fm', 'a@fastmail.fm'],
    ['a+c@proton.me', 'a@proton.me'],
    ['a+c@pm.me', 'a@pm.me'],
    // Yahoo and everyone else: as given.
    ['a.b+c@yahoo.com', 'a.b+c@yahoo.com'],
    ['a.b+c@example.com', 'a.b+c@example.com'],
    ['a+b@hotmail.evil.example', 'a+b@hotmail.evil.example'],
    // Nothing left once the rules are applied: as given.
    ['+x@gmail.com', '+x@gmail.com'],
    ['...@gmail.com', '...@gmail.com'],
  ])('%s reaches %s', (value, canonical) => expect(normaliseEmail(value)?.canonical).toBe(canonical));

  it.each(['nope', 'a@b', 'a b@c.de', 'a@b..c', 'a@@b.c', ''])('%j → null', (value) =>
    expect(normaliseEmail(value)).toBeNull(),
  );

  it('says for every provider how its mailboxes are read', () => {
    for (const rule of MAILBOX_RULES) expect(rule.domains.length).toBeGreaterThan(0);
    expect(MAILBOX_RULES.flatMap((r) => r.domains)).not.toContain('yahoo.com');
  });
});

describe('normalisePhone', () => {
  // The cases of graph/identity.test.ts, and more that libphonenumber (which graph/identity.ts
  // uses) puts in E.164: the same numbers here.
  it.each([
    ['+1 (415) 555-0123', 'US', '+14155550123'],
    ['415.555.0123', 'US', '+14155550123'],
    ['+44 20 7946 0958', 'US', '+442079460958'],
    ['020 7946 0958', 'GB', '+442079460958'],
    ['+44 7911 123456', 'US', '+447911123456'],
    ['(415) 555-2671', 'US', '+14155552671'],
    ['1 415 555 2671', 'US', '+14155552671'],
    ['4155552671', 'CA', '+14155552671'],
    ['0412 345 678', 'AU', '+61412345678'],
    ['412345678', 'AU', '+61412345678'],
    ['0011 44 20 7946 0958', 'AU', '+442079460958'],
    ['011 44 20 7946 0958', 'US', '+442079460958'],
    ['0044 20 7946 0958', 'GB', '+442079460958'],
    ['00 1 415 555 2671', 'GB', '+14155552671'],
    ['+44 (0)20 7946 0958', 'GB', '+442079460958'],
    ['+44 020 7946 0958', 'US', '+442079460958'],
    ['+61 (0) 412 345 678', 'AU', '+61412345678'],
    ['+353 (0)87 123 4567', 'GB', '+353871234567'],
    ['44 20 7946 0958', 'GB', '+442079460958'],
    ['61 412 345 678', 'AU', '+61412345678'],
    ['07911 123456', 'GB', '+447911123456'],
    ['0131 496 0000', 'GB', '+441314960000'],
    ['06 1234 5678', 'IT', '+390612345678'],
    ['+39 06 1234 5678', 'IT', '+390612345678'],
    ['333 123 4567', 'IT', '+393331234567'],
    ['030 1234567', 'DE', '+49301234567'],
    ['+49 (0)30 1234567', 'DE', '+49301234567'],
    ['06 12 34 56 78', 'FR', '+33612345678'],
    ['612 345 678', 'ES', '+34612345678'],
    ['06 12345678', 'NL', '+31612345678'],
    ['0470 12 34 56', 'BE', '+32470123456'],
    ['0664 1234567', 'AT', '+436641234567'],
    ['044 668 18 00', 'CH', '+41446681800'],
    ['070-123 45 67', 'SE', '+46701234567'],
    ['912 34 567', 'NO', '+4791234567'],
    ['20 12 34 56', 'DK', '+4520123456'],
    ['040 1234567', 'FI', '+358401234567'],
    ['512 345 678', 'PL', '+48512345678'],
    ['912 345 678', 'PT', '+351912345678'],
    ['087 123 4567', 'IE', '+353871234567'],
    ['021 123 4567', 'NZ', '+64211234567'],
    ['09876543210', 'IN', '+919876543210'],
    ['9123 4567', 'SG', '+6591234567'],
    ['9123 4567', 'HK', '+85291234567'],
    ['090-1234-5678', 'JP', '+819012345678'],
    ['(11) 91234-5678', 'BR', '+5511912345678'],
    ['0 21 11 91234 5678', 'BR', '+5511912345678'],
    ['55 1234 5678', 'MX', '+525512345678'],
    ['082 123 4567', 'ZA', '+27821234567'],
    ['8 (495) 123-45-67', 'RU', '+74951234567'],
    ['06 30 123 4567', 'HU', '+36301234567'],
    ['010-1234-5678', 'KR', '+821012345678'],
    ['139 1234 5678', 'CN', '+8613912345678'],
    ['+1 415 555 2671 ext. 12', 'US', '+14155552671'],
    ['415-555-2671 x12', 'US', '+14155552671'],
    ['+999 1234 5678', 'US', '+99912345678'],
  ])('%s in %s → %s', (value, region, expected) => expect(normalisePhone(value, region)).toBe(expected));

  it.each([
    ['', 'US'],
    ['call me', 'US'],
    ['+1 800 FLOWERS', 'US'],
    ['555-2671', 'US'],
    ['(415) 555-267', 'US'],
    ['+0 123 4567 890', 'US'],
    ['+1 2345 6789 0123 4567', 'US'],
    ['020 7946 0958', 'XX'],
    ['01 55 1234 5678', 'MX'],
  ])('%j in %s → null', (value, region) => expect(normalisePhone(value, region)).toBeNull());

  it('reads the region in any case, and refuses one it does not know', () => {
    expect(normalisePhone('020 7946 0958', 'gb')).toBe('+442079460958');
    expect(normalisePhone('020 7946 0958', 'XX')).toBeNull();
  });
});
