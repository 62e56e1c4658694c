import { describe, expect, it } from 'vitest';
import { loadSettings } from '../config/env';
import { DEFAULT_MATCH_WEIGHTS, type MatchWeights } from '../config/matchWeights';
import {
  cardInWords,
  MAX_SCORE,
  rankMatches,
  scoreMatch,
  SHARED_FACT_LIMIT,
  type AddressEvidence,
  type CardEvidence,
  type DeviceEvidence,
  type MatchEvidence,
} from './matchScore';

const W: MatchWeights = { ...DEFAULT_MATCH_WEIGHTS };
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

describe('scoreMatch: each part, its points and its reason', () => {
  it('no evidence is a score of 0 with no parts', () => {
    expect(scoreMatch(none, W, LIMIT)).toEqual({ score: 0, parts: [] });
  });

  it('an identifier: verified on both records, on one only, on neither, or not known to be on both', () => {
    const part = (type: 'email' | 'phone_number', verified: 'both' | 'one_side' | 'neither' | 'unknown') =>
      scoreMatch(evidence({ identifiers: [{ type, verified }] }), W, LIMIT).parts[0];
    expect(part('email', 'both')).toEqual({
      signal: 'verified_email',
      points: W.verified_identifier,
      reason: 'the same email address, verified on both records',
      details: { type: 'email', verified: 'both' },
    });
    expect(part('email', 'one_side')).toMatchObject({
      signal: 'unverified_email',
      points: W.partly_verified_identifier,
      reason: 'the same email address, verified on one record only',
    });
    expect(part('phone_number', 'neither')).toMatchObject({
      signal: 'unverified_phone_number',
      points: W.unverified_identifier,
      reason: 'the same phone number, verified on neither record',
    });
    expect(part('phone_number', 'unknown')).toMatchObject({
      signal: 'unverified_phone_number',
      points: W.unverified_identifier,
      reason: 'the same phone number, unverified on at least one record',
    });
  });

  it('a card with the same processor fingerprint: brand, last four and expiry of both sides', () => {
    const same = scoreMatch(evidence({ cards: [card()] }), W, LIMIT);
    expect(same.score).toBe(W.card_fingerprint);
    expect(same.parts[0]).toMatchObject({
      signal: 'card_fingerprint',
      points: W.card_fingerprint,
      reason: 'card Visa •••• 4242 exp 12/2028 on both records (same card fingerprint)',
      details: {
        fingerprint_suffix: '5b4a',
        network: 'visa',
        this: { payment_method_id: 'pm-this', brand: 'visa', last_four: '4242', expiry_month: 12, expiry_year: 2028 },
        other: { payment_method_id: 'pm-other', expiry_month: 12, expiry_year: 2028 },
        shared_by: 2,
        shared_beyond_limit: false,
      },
    });
    // The card renewed on one record: the same fingerprint, another expiry, both said.
    expect(
      scoreMatch(evidence({ cards: [card({ expiry_month: 3, expiry_year: 2031 })] }), W, LIMIT).parts[0],
    ).toMatchObject({
      points: W.card_fingerprint,
      reason:
        'the same card (same card fingerprint): Visa •••• 4242 exp 12/2028 on this record, ' +
        'Visa •••• 4242 exp 03/2031 on the other',
    });
  });

  it('a card or address on more than SHARED_FACT_LIMIT customers’ records counts for nothing, and says so', () => {
    const common = scoreMatch(
      evidence({ cards: [card({}, SHARED_FACT_LIMIT + 1)], addresses: [address('shipping', SHARED_FACT_LIMIT + 1)] }),
      W,
      LIMIT,
    );
    expect(common.score).toBe(0);
    expect(common.parts.map((p) => [p.signal, p.points])).toEqual([
      ['card_fingerprint', 0],
      ['address', 0],
    ]);
    for (const p of common.parts) expect(p.reason).toMatch(/too widely shared to count$/);
    expect(scoreMatch(evidence({ cards: [card({}, SHARED_FACT_LIMIT)] }), W, LIMIT).score).toBe(W.card_fingerprint);
  });

  it('a device: full weight for two, less the more share it, nothing past the shared-device limit', () => {
    expect(scoreMatch(evidence({ devices: [device(2)] }), W, LIMIT).parts[0]).toEqual({
      signal: 'device',
      points: W.device,
      reason: 'both log in from device …3f2a, which only these 2 customers use',
      details: { device_id: 'dev-1', fingerprint_suffix: '3f2a', shared_by: 2, shared_beyond_limit: false, limit: 5 },
    });
    expect(scoreMatch(evidence({ devices: [device(4)] }), W, LIMIT).parts[0]).toMatchObject({
      points: Math.round((W.device * 2) / 4),
      reason: 'both log in from device …3f2a, which 4 customers use',
    });
    // At the limit it still counts; one more and it is no signal at all.
    expect(scoreMatch(evidence({ devices: [device(LIMIT)] }), W, LIMIT).score).toBe(Math.round((W.device * 2) / 5));
    const crowd = scoreMatch(evidence({ devices: [device(LIMIT + 1)] }), W, LIMIT);
    expect(crowd.score).toBe(0);
    expect(crowd.parts[0]).toMatchObject({
      points: 0,
      reason: 'both log in from device …3f2a, which more than 5 customers use: too widely shared to count',
      details: { shared_beyond_limit: true },
    });
    // The limit is the caller's: the same device under a limit of 10 counts.
    expect(scoreMatch(evidence({ devices: [device(LIMIT + 1)] }), W, 10).score).toBe(Math.round((W.device * 2) / 6));
  });

  it('never names a whole fingerprint, and names none of a short one', () => {
    const parts = scoreMatch(
      evidence({ devices: [device(2), { device_id: 'dev-2', fingerprint: 'tab1', shared_by: 2 }], cards: [card()] }),
      W,
      LIMIT,
    ).parts;
    const said = JSON.stringify(parts);
    expect(said).not.toContain('fp-0123456789abcdef3f2a');
    expect(said).not.toContain('card_fp_9f8e7d6c5b4a');
    expect(parts.find((p) => p.details && 'device_id' in p.details && p.details.device_id === 'dev-2')?.reason).toBe(
      'both log in from device, which only these 2 customers use',
    );
  });

  it('an address: the same after normalisation, and says when the two records file it under other types', () => {
    expect(scoreMatch(evidence({ addresses: [address()] }), W, LIMIT).parts[0]).toMatchObject({
      signal: 'address',
      points: W.address,
      reason: 'the same shipping address after normalisation',
      details: { compared: ['street1', 'street2', 'zip_code', 'country'], this: { city: 'London' } },
    });
    expect(scoreMatch(evidence({ addresses: [address('billing')] }), W, LIMIT).parts[0]?.reason).toBe(
      'the same address after normalisation: shipping on this record, billing on the other',
    );
  });

  it('conflicting verified identifiers are a part of 0 points that says why nothing was merged', () => {
    const r = scoreMatch(
      evidence({ conflicting_verified_identifiers: true, identifiers: [{ type: 'email', verified: 'both' }] }),
      W,
      LIMIT,
    );
    expect(r.parts.map((p) => [p.signal, p.points])).toEqual([
      ['verified_email', W.verified_identifier],
      ['conflicting_verified_identifiers', 0],
    ]);
    expect(r.parts[1]?.reason).toMatch(/never merged automatically/);
  });

  it('a link the policy refused is a part of 0 points that says why, in words', () => {
    const r = scoreMatch(
      evidence({
        identifiers: [{ type: 'email', verified: 'both' }],
        link_refused: { reason: 'proof_conflicts', conflicts: ['different dates of birth'] },
      }),
      W,
      LIMIT,
    );
    expect(r.parts.map((p) => [p.signal, p.points])).toEqual([
      ['verified_email', W.verified_identifier],
      ['link_refused', 0],
    ]);
    expect(r.parts[1]?.reason).toBe(
      "an onboarding's verified identifier pointed at this customer and the link was refused: " +
        'what both records say of the person conflicts; different dates of birth',
    );
  });

  it('a customer found by the person’s keys is a part of 0 points with the model’s probability', () => {
    const r = scoreMatch(evidence({ similar_person: { probability: 0.873 } }), W, LIMIT);
    expect(r).toMatchObject({ score: 0, parts: [{ signal: 'similar_person', points: 0, details: {} }] });
    expect(r.parts[0]?.reason).toMatch(
      /alike by name, date of birth or an email’s local part: the match model gave 0\.87$/,
    );
  });
});

describe('scoreMatch: the sum', () => {
  it('adds the parts, lists the strongest first, and caps the score at 100', () => {
    const all = evidence({
      identifiers: [{ type: 'email', verified: 'neither' }],
      devices: [device(2)],
      cards: [card()],
      addresses: [address()],
    });
    const r = scoreMatch(all, W, LIMIT);
    expect(r.parts.map((p) => p.signal)).toEqual(['card_fingerprint', 'unverified_email', 'device', 'address']);
    expect(r.score).toBe(Math.min(MAX_SCORE, W.card_fingerprint + W.unverified_identifier + W.device + W.address));
    const strong = scoreMatch(
      evidence({
        ...all,
        identifiers: [
          { type: 'email', verified: 'both' },
          { type: 'phone_number', verified: 'both' },
        ],
      }),
      W,
      LIMIT,
    );
    expect(strong.parts.reduce((n, p) => n + p.points, 0)).toBeGreaterThan(MAX_SCORE);
    expect(strong.score).toBe(MAX_SCORE);
  });

  it('weighs by the weights it is given', () => {
    const all = evidence({ devices: [device(2)], addresses: [address()], cards: [card()] });
    const zeroDevice = { ...W, device: 0, address: 40, card_fingerprint: 1 };
    const r = scoreMatch(all, zeroDevice, LIMIT);
    expect(r.score).toBe(41);
    expect(r.parts.map((p) => [p.signal, p.points])).toEqual([
      ['address', 40],
      ['card_fingerprint', 1],
      ['device', 0],
    ]);
  });

  it('weighs by PERSONA_MATCH_WEIGHTS as configuration reads it', () => {
    const weights = loadSettings({
      PERSONA_MATCH_WEIGHTS: '{"device": 60, "unverified_identifier": 5}',
    }).PERSONA_MATCH_WEIGHTS;
    expect(weights).toEqual({ ...DEFAULT_MATCH_WEIGHTS, device: 60, unverified_identifier: 5 });
    const r = scoreMatch(
      evidence({ devices: [device(3)], identifiers: [{ type: 'email', verified: 'neither' }] }),
      weights,
      5,
    );
    expect(r.parts.map((p) => [p.signal, p.points])).toEqual([
      ['device', 40],
      ['unverified_email', 5],
    ]);
    expect(r.score).toBe(45);
  });
});

describe('rankMatches', () => {
  it('puts the highest score first and breaks ties by customer id', () => {
    const ranked = rankMatches([
      { customer_id: 'c', score: 20 },
      { customer_id: 'b', score: 75 },
      { customer_id: 'a', score: 20 },
      { customer_id: 'd', score: 0 },
    ]);
    expect(ranked.map((m) => m.customer_id)).toEqual(['b', 'a', 'c', 'd']);
  });

  it('ranks scored evidence: a shared card over a shared device over a crowded device', () => {
    const scored = [
      { customer_id: 'crowd', ...scoreMatch(evidence({ devices: [device(LIMIT + 1)] }), W, LIMIT) },
      { customer_id: 'tablet', ...scoreMatch(evidence({ devices: [device(2)] }), W, LIMIT) },
      { customer_id: 'card', ...scoreMatch(evidence({ cards: [card()] }), W, LIMIT) },
    ];
    expect(rankMatches(scored).map((m) => m.customer_id)).toEqual(['card', 'tablet', 'crowd']);
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
