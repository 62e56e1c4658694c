import type { CountryCode } from 'libphonenumber-js';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from './errors';
import { EMAIL_PATTERN, isJunkFingerprint, isJunkIdentifier, normaliseIdentifier, PHONE_PATTERN } from './identity';

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

describe('the api’s identifier patterns', () => {
  it('match a hostile 64 KB address in linear time (no backtracking blow-up)', () => {
    const hostile = `a@${'.'.repeat(65_000)}@`;
    const started = performance.now();
    expect(EMAIL_PATTERN.test(hostile)).toBe(false);
    expect(EMAIL_PATTERN.test(`${'a'.repeat(65_000)}@${'b.'.repeat(30_000)}`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it.each([
    ['ada@acme.io', true],
    [' Ada.Lovelace@Example.CO.UK ', true],
    ['a+tag@x.y', true],
    ['a@b', false],
    ['a@b..c', false],
    ['a b@c.d', false],
    ['\tada@acme.io', false],
    ['ada@acme\u00a0.io', false],
  ])('email %j → %s, and whatever the pattern takes, normaliseIdentifier takes', (value, ok) => {
    expect(EMAIL_PATTERN.test(value)).toBe(ok);
    if (ok) expect(() => normaliseIdentifier('email', value)).not.toThrow();
  });

  it.each([
    ['+14155550123', '+14155550123'],
    ['+1 (415) 555-0123', '+14155550123'],
    ['+44 7911 123456', '+447911123456'],
    // A number libphonenumber does not know to be possible is kept as its digits.
    ['+999 1234567', '+9991234567'],
  ])('phone %j matches the pattern and normalises to %s', (value, normalised) => {
    expect(PHONE_PATTERN.test(value)).toBe(true);
    expect(normaliseIdentifier('phone_number', value)).toBe(normalised);
  });

  it.each(['4155550123', '+0 415 555 0123', '+1 415', '+1--415-555-0123-', '+1 415 555 0123 x12'])(
    'phone %j is not in international form',
    (value) => expect(PHONE_PATTERN.test(value)).toBe(false),
  );
});
