import { describe, expect, it } from 'vitest';
import {
  cardInWords,
  evidenceParts,
  rankMatches,
  SHARED_FACT_LIMIT,
  type AddressEvidence,
  type CardEvidence,
  type DeviceEvidence,
  type MatchEvidence,
} from './matchParts';

const LIMIT = 5;

const none: MatchEvidence = {
  identifiers: [],
  conflicting_verified_identifiers: false,
  link_refused: null,
  similar_person: null,
  devices: [],
  cards: [],
  addresses: [],
};
const evidence = (e: Partial<MatchEvidence>): MatchEvidence => ({ ...none, ...e });

const device = (shared_by: number): DeviceEvidence => ({
  device_id: 'dev-1',
  fingerprint: 'fp-0123456789abcdef3f2a',
  shared_by,
});
const visa = { brand: 'visa', last_four: '4242', expiry_month: 12, expiry_year: 2028 };
const card = (other: Partial<CardEvidence['other']> = {}, shared_by = 2): CardEvidence => ({
  fingerprint: 'card_fp_9f8e7d6c5b4a',
  network: 'visa',
  this: { payment_method_id: 'pm-this', ...visa },
  other: { payment_method_id: 'pm-other', ...visa, ...other },
  shared_by,
});
const address = (otherType = 'shipping', shared_by = 2): AddressEvidence => ({
  this: { address_id: 'a-this', type: 'shipping', city: 'London', country: 'GB' },
  other: { address_id: 'a-other', type: otherType, city: 'London', country: 'GB' },
  shared_by,
});

describe('evidenceParts: each part and its reason', () => {
  it('no evidence is no parts', () => {
    expect(evidenceParts(none, LIMIT)).toEqual([]);
  });

  it('an identifier: verified on both records, on one only, on neither, or not known to be on both', () => {
    const part = (type: 'email' | 'phone_number', verified: 'both' | 'one_side' | 'neither' | 'unknown') =>
      evidenceParts(evidence({ identifiers: [{ type, verified }] }), LIMIT)[0];
    expect(part('email', 'both')).toEqual({
      signal: 'verified_email',
      reason: 'the same email address, verified on both records',
      details: { type: 'email', verified: 'both' },
    });
    expect(part('email', 'one_side')).toMatchObject({
      signal: 'unverified_email',
      reason: 'the same email address, verified on one record only',
    });
    expect(part('phone_number', 'neither')).toMatchObject({
      signal: 'unverified_phone_number',
      reason: 'the same phone number, verified on neither record',
    });
    expect(part('phone_number', 'unknown')).toMatchObject({
      signal: 'unverified_phone_number',
      reason: 'the same phone number, unverified on at least one record',
    });
  });

  it('a card with the same processor fingerprint: brand, last four and expiry of both sides', () => {
    expect(evidenceParts(evidence({ cards: [card()] }), LIMIT)).toEqual([
      {
        signal: 'card_fingerprint',
        reason: 'card Visa •••• 4242 exp 12/2028 on both records (same card fingerprint)',
        details: {
          fingerprint_suffix: '5b4a',
          network: 'visa',
          this: { payment_method_id: 'pm-this', brand: 'visa', last_four: '4242', expiry_month: 12, expiry_year: 2028 },
          other: {
            payment_method_id: 'pm-other',
            brand: 'visa',
            last_four: '4242',
            expiry_month: 12,
            expiry_year: 2028,
          },
          shared_by: 2,
          shared_beyond_limit: false,
          limit: SHARED_FACT_LIMIT,
        },
      },
    ]);
    // The card renewed on one record: the same fingerprint, another expiry, both said.
    expect(evidenceParts(evidence({ cards: [card({ expiry_month: 3, expiry_year: 2031 })] }), LIMIT)[0]?.reason).toBe(
      'the same card (same card fingerprint): Visa •••• 4242 exp 12/2028 on this record, ' +
        'Visa •••• 4242 exp 03/2031 on the other',
    );
  });

  it('a card or address on more than SHARED_FACT_LIMIT customers’ records says it names no candidates', () => {
    const crowd = SHARED_FACT_LIMIT + 1;
    const common = evidenceParts(
      evidence({ cards: [card({}, crowd)], addresses: [address('shipping', crowd)] }),
      LIMIT,
    );
    expect(common.map((p) => [p.signal, p.details])).toEqual([
      ['card_fingerprint', expect.objectContaining({ shared_by: crowd, shared_beyond_limit: true })],
      ['address', expect.objectContaining({ shared_by: crowd, shared_beyond_limit: true })],
    ]);
    for (const p of common) expect(p.reason).toMatch(/too widely shared to name candidates$/);
    const atLimit = evidenceParts(evidence({ cards: [card({}, SHARED_FACT_LIMIT)] }), LIMIT)[0];
    expect(atLimit?.reason).not.toMatch(/too widely shared/);
  });

  it('a device: how many share it, and past the shared-device limit that it names no candidates', () => {
    expect(evidenceParts(evidence({ devices: [device(2)] }), LIMIT)[0]).toEqual({
      signal: 'device',
      reason: 'both log in from device …3f2a, which only these 2 customers use',
      details: { device_id: 'dev-1', fingerprint_suffix: '3f2a', shared_by: 2, shared_beyond_limit: false, limit: 5 },
    });
    expect(evidenceParts(evidence({ devices: [device(4)] }), LIMIT)[0]?.reason).toBe(
      'both log in from device …3f2a, which 4 customers use',
    );
    expect(evidenceParts(evidence({ devices: [device(LIMIT)] }), LIMIT)[0]?.details).toMatchObject({
      shared_beyond_limit: false,
    });
    expect(evidenceParts(evidence({ devices: [device(LIMIT + 1)] }), LIMIT)[0]).toMatchObject({
      reason: 'both log in from device …3f2a, which more than 5 customers use: too widely shared to name candidates',
      details: { shared_beyond_limit: true },
    });
    // The limit is the caller's: the same device under a limit of 10 is within it.
    expect(evidenceParts(evidence({ devices: [device(LIMIT + 1)] }), 10)[0]?.reason).toBe(
      'both log in from device …3f2a, which 6 customers use',
    );
  });

  it('never names a whole fingerprint, and names none of a short one', () => {
    const parts = evidenceParts(
      evidence({ devices: [device(2), { device_id: 'dev-2', fingerprint: 'tab1', shared_by: 2 }], cards: [card()] }),
      LIMIT,
    );
    const said = JSON.stringify(parts);
    expect(said).not.toContain('fp-0123456789abcdef3f2a');
    expect(said).not.toContain('card_fp_9f8e7d6c5b4a');
    expect(parts.find((p) => p.details && 'device_id' in p.details && p.details.device_id === 'dev-2')?.reason).toBe(
      'both log in from device, which only these 2 customers use',
    );
  });

  it('an address: the same after normalisation, and says when the two records file it under other types', () => {
    expect(evidenceParts(evidence({ addresses: [address()] }), LIMIT)[0]).toMatchObject({
      signal: 'address',
      reason: 'the same shipping address after normalisation',
      details: { compared: ['street1', 'street2', 'zip_code', 'country'], this: { city: 'London' } },
    });
    expect(evidenceParts(evidence({ addresses: [address('billing')] }), LIMIT)[0]?.reason).toBe(
      'the same address after normalisation: shipping on this record, billing on the other',
    );
  });

  it('conflicting verified identifiers are a part that says why nothing was merged', () => {
    const parts = evidenceParts(
      evidence({ conflicting_verified_identifiers: true, identifiers: [{ type: 'email', verified: 'both' }] }),
      LIMIT,
    );
    expect(parts.map((p) => p.signal)).toEqual(['verified_email', 'conflicting_verified_identifiers']);
    expect(parts[1]?.reason).toMatch(/never merged automatically/);
  });

  it('a link the policy refused is a part that says why, in words', () => {
    const parts = evidenceParts(
      evidence({
        identifiers: [{ type: 'email', verified: 'both' }],
        link_refused: { reason: 'proof_conflicts', conflicts: ['different dates of birth'] },
      }),
      LIMIT,
    );
    expect(parts.map((p) => p.signal)).toEqual(['verified_email', 'link_refused']);
    expect(parts[1]?.reason).toBe(
      "an onboarding's verified identifier pointed at this customer and the link was refused: " +
        'what both records say of the person conflicts; different dates of birth',
    );
  });

  it('a customer found by the person’s keys is a part with the model’s probability then', () => {
    const parts = evidenceParts(evidence({ similar_person: { probability: 0.873 } }), LIMIT);
    expect(parts).toMatchObject([{ signal: 'similar_person', details: {} }]);
    expect(parts[0]?.reason).toMatch(
      /alike by name, date of birth or an email’s local part: the match model gave 0\.87$/,
    );
  });
});

describe('evidenceParts: the order', () => {
  it('lists identifiers, cards, devices, addresses, then what an onboarding noted', () => {
    const all = evidence({
      identifiers: [{ type: 'email', verified: 'neither' }],
      devices: [device(2)],
      cards: [card()],
      addresses: [address()],
      link_refused: { reason: 'too_many_recent_links', conflicts: [] },
    });
    expect(evidenceParts(all, LIMIT).map((p) => p.signal)).toEqual([
      'card_fingerprint',
      'unverified_email',
      'device',
      'address',
      'link_refused',
    ]);
  });
});

describe('rankMatches', () => {
  it('puts the most likely first and breaks ties by customer id', () => {
    const ranked = rankMatches(
      [
        { customer_id: 'c', logOdds: -1 },
        { customer_id: 'b', logOdds: 3 },
        { customer_id: 'a', logOdds: -1 },
        { customer_id: 'd', logOdds: -9 },
      ],
      (m) => m.logOdds,
    );
    expect(ranked.map((m) => m.customer_id)).toEqual(['b', 'a', 'c', 'd']);
  });

  it('tells apart two matches whose probabilities both round to 1', () => {
    const sure = [
      { customer_id: 'a', logOdds: 40 },
      { customer_id: 'b', logOdds: 60 },
    ];
    expect(1 / (1 + Math.exp(-40))).toBe(1 / (1 + Math.exp(-60)));
    expect(rankMatches(sure, (m) => m.logOdds).map((m) => m.customer_id)).toEqual(['b', 'a']);
  });
});

describe('cardInWords', () => {
  it('says what is known of a card', () => {
    expect(cardInWords({ brand: 'mastercard', last_four: '4444', expiry_month: 6, expiry_year: 2030 })).toBe(
      'Mastercard •••• 4444 exp 06/2030',
    );
    expect(cardInWords({ brand: 'elo', last_four: null, expiry_month: null, expiry_year: null })).toBe('Elo');
    const partly = { brand: null, last_four: '0005', expiry_month: 1, expiry_year: null };
    expect(cardInWords(partly)).toBe('card •••• 0005');
  });
});
