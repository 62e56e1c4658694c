import type { CountryCode } from 'libphonenumber-js';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors';
import { isJunkFingerprint, isJunkIdentifier, normaliseIdentifier } from './identity';

describe('normaliseIdentifier', () => {
  it('trims and lower-cases emails', () => {
    expect(normaliseIdentifier('email', '  Ada.Lovelace@Example.COM ')).toBe('ada.lovelace@example.com');
  });

  it.each([
    ['+1 (415) 555-0123', '+14155550123'],
    ['415.555.0123', '+14155550123'],
    ['+44 20 7946 0958', '+442079460958'],
    ['020 7946 0958', '+442079460958', 'GB'],
  ] as [string, string, CountryCode?][])('puts %s in E.164', (input, expected, region) => {
    expect(normaliseIdentifier('phone_number', input, region ?? 'US')).toBe(expected);
  });

  it('refuses values that are not an email or a phone, naming the field', () => {
    expect(() => normaliseIdentifier('email', 'nope')).toThrow(InvalidInputError);
    expect(() => normaliseIdentifier('phone_number', 'call me', 'US', 'digital_identifiers.1.value')).toThrow(
      /^digital_identifiers\.1\.value: /,
    );
  });
});

describe('junk', () => {
  it.each([
    'null',
    'anonymous',
    'test@test.com',
    'noreply@shop.io',
    'null@gmail.com',
    'x@acme.io',
    'aaaa@acme.io',
    'jane@domain.com',
  ])('email %s is junk', (v) => expect(isJunkIdentifier('email', v)).toBe(true));
  it.each(['jane.doe@acme.io', 'a.b@example.org', 'testerman.j@acme.io'])('email %s is not junk', (v) =>
    expect(isJunkIdentifier('email', v)).toBe(false),
  );
  it.each(['+10000000000', '+15555555555', '+11234567890', '+442000000000'])('phone %s is junk', (v) =>
    expect(isJunkIdentifier('phone_number', v)).toBe(true),
  );
  it.each(['+14155550123', '+442079460958'])('phone %s is not junk', (v) =>
    expect(isJunkIdentifier('phone_number', v)).toBe(false),
  );
  it.each(['', '   ', 'null', 'unknown', '00000000', 'ffffffffffff', 'abc'])('fingerprint "%s" is junk', (v) =>
    expect(isJunkFingerprint(v)).toBe(true),
  );
  it('a real fingerprint is not junk', () => expect(isJunkFingerprint('fp_9f8e7d6c5b4a3f2e')).toBe(false));
});
