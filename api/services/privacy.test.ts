import { describe, expect, it } from 'vitest';
import type { PersonaEvent } from '../../graph/events';
import { eventForCustomer } from './privacy';

/** The customer's own export, event by event: their data, never how fraud checks or ops decided. */
const event = (type: string, payload: Record<string, unknown>): PersonaEvent =>
  ({
    id: 'e1',
    type,
    customer_id: 'c1',
    occurred_at: '2026-11-26T00:00:00Z',
    customer_seq: 1,
    payload,
  }) as PersonaEvent;

describe('the export, as the customer reads it', () => {
  const applied = event('FraudOutcomeApplied', {
    outcome_id: 'chimera-77',
    outcome: 'account_takeover',
    changes: [{ entity: 'customer', id: 'c1', field: 'status', from: 'active', to: 'suspended' }],
    suspended: true,
  });
  const suspended = event('CustomerSuspended', {
    from: 'active',
    to: 'suspended',
    reason: 'fraud outcome chimera-77: account_takeover',
    fraud_outcome_id: 'chimera-77',
  });
  const notified = event('CustomerNotified', { kind: 'account_takeover', channel: 'email' });
  const ops = event('OpsActionRecorded', { action: 'export', reason: 'ticket 4411: suspected mule account' });

  it("leaves out an onboarding's possible matches and why a link to another customer was refused", () => {
    const onboarded = event('CustomerOnboarded', {
      onboarding_id: 'onboarding-1',
      outcome: 'created',
      result: {
        customer_id: 'c1',
        outcome: 'created',
        possible_matches: [{ customer_id: 'c2', probability: 0.4 }],
        link_refused: 'proof_conflicts',
      },
    });
    for (const audience of ['customer', 'staff'] as const)
      expect(eventForCustomer(onboarded, audience)?.payload.result).toEqual({ customer_id: 'c1', outcome: 'created' });
  });

  it('says what changed and leaves out the outcome, its id and the reasons', () => {
    const shown = [applied, suspended, notified, ops].map((e) => eventForCustomer(e, 'customer'));
    const text = JSON.stringify(shown);
    for (const secret of ['account_takeover', 'chimera-77', 'mule', 'ticket 4411', 'fraud outcome'])
      expect(text).not.toContain(secret);
    expect(shown[0]?.payload).toEqual({ summary: 'Our security checks changed your account' });
    expect(shown[1]?.payload).toEqual({ from: 'active', to: 'suspended' });
    expect(shown[2]?.payload).toEqual({ kind: 'security_notice', channel: 'email' });
  });

  it('gives staff the events as recorded', () => {
    for (const e of [applied, suspended, notified, ops]) expect(eventForCustomer(e, 'staff')).toBe(e);
  });

  it('never shows another customer: possible matches are left out for everyone', () => {
    const match = event('PossibleMatchFound', { matched_customer_id: 'c2' });
    expect(eventForCustomer(match, 'customer')).toBeNull();
    expect(eventForCustomer(match, 'staff')).toBeNull();
  });
});
