import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../config/keyRing';
import { minimalPayload, openInvalidation, sealInvalidation, type InvalidationMessage } from './invalidationMessage';

const ring = (id: string, key = randomBytes(32)) => new KeyRing([{ id, key }]);
const message: InvalidationMessage = {
  epoch: 0,
  through: 12,
  drained_at: 1_700_000_000_000,
  events: [
    { log_seq: 11, type: 'CustomerSuspended', customer_id: 'c-1', customer_seq: 4, payload: null },
    {
      log_seq: 12,
      type: 'DeviceLinked',
      customer_id: 'c-1',
      customer_seq: 5,
      payload: { device_id: 'd-1' },
      cache: { device: { seq: 0, fingerprint: 'fp-secret', ceiling: 1, earned: 0.5 } },
    },
  ],
};

describe('the invalidation message', () => {
  it('opens what this deployment sealed, under any key of its ring, and reads as nothing in the clear', () => {
    const keys = ring('k1');
    const sealed = sealInvalidation(keys, message);
    expect(openInvalidation(keys, sealed)).toEqual(message);
    expect(sealed).not.toContain('c-1');
    expect(Buffer.from(sealed.split('.')[2] as string, 'base64url').toString('latin1')).not.toContain('fp-secret');
    // Rotated: the new key seals, the old one still opens what it sealed.
    const rotated = new KeyRing([
      { id: 'k2', key: randomBytes(32) },
      { id: 'k1', key: keys.get('k1') as Buffer },
    ]);
    expect(openInvalidation(rotated, sealed)).toEqual(message);
  });

  it('refuses a message another deployment sealed, one changed on the way, one in the clear, one malformed', () => {
    const keys = ring('k1');
    // Another deployment on the same Kafka, even with the same key id.
    expect(openInvalidation(keys, sealInvalidation(ring('k1'), message))).toBeNull();
    const sealed = sealInvalidation(keys, message);
    const i = sealed.length - 10; // inside the ciphertext: every bit of that character is used
    const flipped = `${sealed.slice(0, i)}${sealed[i] === 'A' ? 'B' : 'A'}${sealed.slice(i + 1)}`;
    expect(openInvalidation(keys, flipped)).toBeNull();
    expect(openInvalidation(keys, JSON.stringify({ ...message, through: 9e15 }))).toBeNull();
    for (const bad of [
      { ...message, through: '12' },
      { ...message, events: undefined },
      { ...message, epoch: -1 },
    ])
      expect(openInvalidation(keys, sealInvalidation(keys, bad as never))).toBeNull();
  });

  it('carries of a payload only what the cache applies: new values, never old ones or reasons', () => {
    const profile = {
      changes: {
        ltv_minor: { from: 100, to: 250 },
        ltv: { from: '1.00', to: '2.50' },
        segment: { from: 'Subscriber', to: 'VIP' },
        status: { from: 'active', to: 'suspended' },
      },
      reason: '3 succeeded payments',
      payment_methods_used: [{ payment_method_id: 'pm-1', last_used: '2026-11-27T10:00:00Z', amount: '2.50' }],
    };
    expect(minimalPayload('CustomerProfileUpdated', profile)).toEqual({
      changes: { ltv_minor: { to: 250 }, ltv: {}, segment: { to: 'VIP' }, status: {} },
      payment_methods_used: [{ payment_method_id: 'pm-1', last_used: '2026-11-27T10:00:00Z' }],
    });
    expect(minimalPayload('DeviceTrustScoreUpdated', { from: 0.5, to: 0.9, reason: 'x' })).toEqual({ to: 0.9 });
    expect(minimalPayload('DeviceLinked', { device_id: 'd-1', login_count: 7 })).toEqual({ device_id: 'd-1' });
    expect(minimalPayload('CustomerSuspended', { from: 'active', to: 'suspended', reason: 'fraud' })).toBeNull();
  });
});
