/**
 * The static summaries ops read in the Temporal UI say what a workflow does in words and hold no
 * personal data — at most masked values (a card's brand and last four, a country). Payloads,
 * summaries included, are encrypted anyway (temporal/payloadCodec.ts): this is the second line.
 */
import { describe, expect, it } from 'vitest';
import type { OnboardingPlan } from '../graph/onboardingRequest';
import { onboardingSummary } from './onboarding';

describe('workflow summaries', () => {
  it('describe an onboarding without the person in it', () => {
    const plan: OnboardingPlan = {
      customer: { segment: 'Subscriber', ltv_minor: 0 },
      payment_method: {
        type: 'card',
        brand: 'visa',
        last_four: '4242',
        expiry_month: 12,
        expiry_year: 2031,
        encrypted_token: 't2.k1.encrypted-token-bytes',
      } as unknown as OnboardingPlan['payment_method'],
      device: { fingerprint: 'fp-ada-laptop', ip: '203.0.113.7', user_agent: 'Safari' },
      address: {
        street1: '10 Downing St',
        city: 'London',
        zip_code: 'SW1A 2AA',
        country: 'GB',
        type: 'billing',
      } as OnboardingPlan['address'],
      digital_identifiers: [
        { type: 'email', value: 'ada@acme.io', is_verified: true },
        { type: 'phone_number', value: '+14155550142', is_verified: false },
      ],
      person: { given_name: 'Augusta', family_name: 'Lovelace', birth_date: '1815-12-10' },
      ignored: [],
    };
    const summary = onboardingSummary(plan);
    expect(summary).toBe(
      'Onboard a Subscriber customer with verified email and unverified phone number, visa card ending 4242, ' +
        'a device, a billing address in GB',
    );
    for (const personal of [
      'ada@acme.io',
      '4155550142',
      'fp-ada',
      '203.0.113.7',
      'Safari',
      'Downing',
      'London',
      'SW1A',
      't2.',
      'Augusta',
      'Lovelace',
      '1815',
    ])
      expect(summary).not.toContain(personal);
  });
});
