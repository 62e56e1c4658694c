import { describe, expect, it } from 'vitest';
import { maskEmail, maskIdentifier, maskOpaque, maskPhone, maskStreet } from './mask';

describe('masking identifiers for console pages', () => {
  it('keeps an email’s first letter and its domain', () => {
    expect(maskEmail('alice@acme.io')).toBe('a***@acme.io');
    expect(maskEmail('not-an-email')).toBe('***');
  });

  it('keeps a phone’s country code and last four digits', () => {
    expect(maskPhone('+14155550142')).toBe('+1 *** *** 0142');
    expect(maskPhone('+447911123456')).toBe('+44 *** *** 3456');
  });

  it('keeps only the ends of an opaque value, and nothing of a short one', () => {
    expect(maskOpaque('fp_8f14e45fceea167a')).toBe('…167a');
    expect(maskOpaque('fp_12345678')).toBe('****');
    expect(maskOpaque('abcd1234')).toBe('****');
    expect(maskIdentifier('email', 'bob@example.org')).toBe('b***@example.org');
  });

  it('masks a phone number by the type the graph gives it (phone_number)', () => {
    expect(maskIdentifier('phone_number', '+14155550142')).toBe('+1 *** *** 0142');
    expect(maskIdentifier('phone', '+14155550142')).toBe('+1 *** *** 0142');
  });

  it('keeps only the first letter of each word of a street, and no digit', () => {
    expect(maskStreet('10 Downing St')).toBe('** D****** S*');
    expect(maskStreet('  Flat 3b,  221B Baker Street ')).toBe('F*** *** **** B**** S*****');
    expect(maskStreet('')).toBe('');
  });
});
