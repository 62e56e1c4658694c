import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openEvent, sealEvent, SealedPayloadUnreadableError, type PublishedEvent } from './eventCipher';
import type { PersonaEvent } from './events';
import type { HistoryKeyStore } from './historyKeys';

/** Customers' keys in memory: made on first use, destroyed by `erase`. */
function keyStore() {
  const keys = new Map<string, Buffer | null>();
  const store: HistoryKeyStore = {
    async keyFor(keyId, { create }) {
      if (!keys.has(keyId) && create) keys.set(keyId, randomBytes(32));
      return keys.get(keyId) ?? null;
    },
    customerOf: async () => null,
    learn: () => true,
  };
  return { store, erase: (customerId: string) => keys.set(`customer:${customerId}`, null) };
}

const event = (over: Partial<PersonaEvent> = {}): PersonaEvent => ({
  id: randomUUID(),
  type: 'PaymentMethodAdded',
  customer_id: randomUUID(),
  occurred_at: '2026-11-27T02:00:00.000000000Z',
  customer_seq: 3,
  epoch: 0,
  payload: { payment_method_id: 'pm-1', brand: 'visa', last_four: '4242' },
  ...over,
});

describe('sealing what goes on the Kafka events topic', () => {
  it('seals a customer’s payload under their key, leaving the envelope readable, and opens it again', async () => {
    const { store } = keyStore();
    const e = event();
    const published = await sealEvent(store, e, e.payload);
    const wire = JSON.stringify(published);
    // Quoted, as JSON writes them: a quote is in neither the ciphertext's base64 nor an id's hex, so
    // these cannot match by chance (unquoted, '4242' is in about one random UUID of a thousand).
    for (const clear of ['"4242"', '"visa"', '"last_four"', '"brand"']) expect(wire).not.toContain(clear);
    expect(published).toMatchObject({ id: e.id, type: e.type, customer_id: e.customer_id, customer_seq: 3 });
    expect(published.sealed).toMatchObject({ key_id: `customer:${e.customer_id}`, alg: 'A256GCM' });
    expect(published).not.toHaveProperty('payload');
    expect(await openEvent(store, JSON.parse(wire) as PublishedEvent)).toEqual(e);
    // Sent again (at least once): the same bytes, so a consumer de-duplicates it like any resend.
    expect(JSON.stringify(await sealEvent(store, e, e.payload))).toBe(wire);
    // Another event of the same customer and payload: another nonce.
    const other = await sealEvent(store, { ...e, id: randomUUID() }, e.payload);
    expect(other.sealed?.iv).not.toBe(published.sealed?.iv);
  });

  it('makes every message of an erased customer unreadable, and publishes nothing of theirs after', async () => {
    const { store, erase } = keyStore();
    const e = event();
    const before = await sealEvent(store, e, e.payload);
    erase(e.customer_id as string);
    await expect(openEvent(store, before)).rejects.toThrow(SealedPayloadUnreadableError);
    await expect(openEvent(store, before)).rejects.toMatchObject({ reason: 'erased' });
    // Published after the erasure (a publisher behind): an empty payload in clear.
    expect(await sealEvent(store, e, e.payload)).toEqual({ ...e, payload: {} });
  });

  it('refuses a sealed payload moved onto another event or another customer', async () => {
    const { store } = keyStore();
    const a = event();
    const sealed = await sealEvent(store, a, a.payload);
    await expect(openEvent(store, { ...sealed, id: randomUUID() })).rejects.toMatchObject({ reason: 'tampered' });
    const b = event();
    await sealEvent(store, b, b.payload);
    await expect(openEvent(store, { ...sealed, customer_id: b.customer_id })).rejects.toMatchObject({
      reason: 'tampered',
    });
  });

  it('leaves in clear what is no one’s: a device’s event, an event of no customer, the erasure notice', async () => {
    const { store } = keyStore();
    const device = event({
      type: 'DeviceTrustScoreUpdated',
      customer_id: null,
      device_id: 'd-1',
      payload: { device_id: 'd-1', from: 0.9, to: 0 },
    });
    expect(await sealEvent(store, device, device.payload)).toEqual(device);
    const erased = event({ type: 'CustomerErased', payload: { deleted: { identifiers: 1 }, merged_records: ['m-1'] } });
    expect(await sealEvent(store, erased, erased.payload)).toEqual(erased);
    expect(await openEvent(store, erased as PublishedEvent)).toEqual(erased);
  });
});
