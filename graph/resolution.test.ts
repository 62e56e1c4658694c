import { describe, expect, it } from 'vitest';
import { resolveIdentity, type IdentifierObservation } from './resolution';

const email = (incomingVerified: boolean, onFile: IdentifierObservation['onFile']): IdentifierObservation => ({
  type: 'email',
  value: 'ada@acme.io',
  incomingVerified,
  onFile,
});
const phone = (incomingVerified: boolean, onFile: IdentifierObservation['onFile']): IdentifierObservation => ({
  type: 'phone_number',
  value: '+14155550123',
  incomingVerified,
  onFile,
});

describe('resolveIdentity', () => {
  it('creates a customer and attaches identifiers nobody holds', () => {
    expect(resolveIdentity([email(true, null), phone(false, null)], null, 5)).toEqual({
      outcome: 'created',
      matchedCustomerId: null,
      attach: [
        { type: 'email', value: 'ada@acme.io' },
        { type: 'phone_number', value: '+14155550123' },
      ],
      possibleMatches: [],
    });
  });

  it('matches on an email verified on both sides, and links the new phone to that customer', () => {
    const r = resolveIdentity(
      [email(true, { verified: true, ownerId: 'A' }), phone(true, null)],
      { customerIds: ['A'] },
      5,
    );
    expect(r).toMatchObject({
      outcome: 'matched',
      matchedCustomerId: 'A',
      attach: [{ type: 'phone_number' }],
      possibleMatches: [],
    });
  });

  it('matches on a verified phone alone', () => {
    expect(resolveIdentity([phone(true, { verified: true, ownerId: 'B' })], null, 5)).toMatchObject({
      outcome: 'matched',
      matchedCustomerId: 'B',
    });
  });

  it.each([
    ['the request does not verify it', false, true],
    ['the customer on file never verified it', true, false],
    ['neither side verified it', false, false],
  ])('never merges on an email when %s: new customer, possible match', (_case, incoming, onFile) => {
    const r = resolveIdentity([email(incoming, { verified: onFile, ownerId: 'A' })], null, 5);
    expect(r).toEqual({
      outcome: 'created',
      matchedCustomerId: null,
      attach: [],
      possibleMatches: [{ customer_id: 'A', signals: ['unverified_email'] }],
    });
  });

  it('never merges on a device alone', () => {
    const r = resolveIdentity([email(true, null)], { customerIds: ['A', 'B'] }, 5);
    expect(r.outcome).toBe('created');
    expect(r.possibleMatches).toEqual([
      { customer_id: 'A', signals: ['device'] },
      { customer_id: 'B', signals: ['device'] },
    ]);
  });

  it('ignores a device shared by more customers than the limit', () => {
    const crowd = { customerIds: ['A', 'B', 'C', 'D', 'E', 'F'] };
    expect(resolveIdentity([], crowd, 5).possibleMatches).toEqual([]);
    expect(resolveIdentity([], { customerIds: crowd.customerIds.slice(0, 5) }, 5).possibleMatches).toHaveLength(5);
  });

  it('does not list the matched customer as a possible match of itself', () => {
    const r = resolveIdentity(
      [email(true, { verified: true, ownerId: 'A' }), phone(false, { verified: false, ownerId: 'A' })],
      { customerIds: ['A', 'B'] },
      5,
    );
    expect(r.possibleMatches).toEqual([{ customer_id: 'B', signals: ['device'] }]);
  });

  it('never guesses between two customers that verified identifiers point at', () => {
    const r = resolveIdentity(
      [email(true, { verified: true, ownerId: 'A' }), phone(true, { verified: true, ownerId: 'B' })],
      null,
      5,
    );
    expect(r).toEqual({
      outcome: 'created',
      matchedCustomerId: null,
      attach: [],
      possibleMatches: [
        { customer_id: 'A', signals: ['conflicting_verified_identifiers', 'verified_email'] },
        { customer_id: 'B', signals: ['conflicting_verified_identifiers', 'verified_phone_number'] },
      ],
    });
  });
});
