/**
 * Erasure reaches the log: what leaves Persona on the Kafka events topic (the log of record,
 * retained for as long as the topic keeps it, beyond any erasure's reach) carries a customer's
 * payload sealed under that customer's history key (graph/historyKeys.ts), the key that already
 * seals their workflow histories. An erasure destroys the key, so every message of theirs on the
 * topic becomes unreadable at once: crypto-shredding, as for Temporal.
 *
 * What is sealed: the payload of every event of a customer (`customer_id` set). What is not: the
 * envelope (`id`, `type`, `customer_id`, `occurred_at`, the sequences, `epoch`: what a consumer
 * orders, de-duplicates and purges by), an event of no customer or a device's (nothing of a
 * person: a device's trust, a restore), and `CustomerErased` (the notice every consumer must read to
 * purge, with the records merged into the customer; counts and ids only). A customer whose key is
 * gone (erased) publishes an empty payload in clear: there is nothing left of theirs to seal.
 *
 * A sealed message is `{...envelope, sealed: {key_id, alg, iv, data}}` (no `payload`): AES-256-GCM
 * over the payload's JSON, bound to the event id and the key id (additional data), so a sealed
 * payload cannot be moved onto another event; its nonce is synthetic (an HMAC of the event id and
 * the payload under the key), so publishing an event again yields the same bytes.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import type { PersonaEvent } from './events';
import { customerKeyId, type HistoryKeyStore } from './historyKeys';

export const SEALED_ALG = 'A256GCM';

export interface SealedPayload {
  /** The key it is sealed under: `customer:<customer id>`. */
  key_id: string;
  alg: typeof SEALED_ALG;
  /** base64: the 12-byte nonce. */
  iv: string;
  /** base64: the ciphertext, then the 16-byte tag. */
  data: string;
}

/** An event as it is published: its payload in clear, or sealed. */
export type PublishedEvent = Omit<PersonaEvent, 'payload'> &
  ({ payload: Record<string, unknown>; sealed?: never } | { payload?: never; sealed: SealedPayload });

/** The key to seal under, or null when the event carries nothing of a person. */
function sealedUnder(event: Pick<PersonaEvent, 'type' | 'customer_id'>): string | null {
  if (!event.customer_id || event.type === 'CustomerErased') return null;
  return customerKeyId(event.customer_id);
}

const additionalData = (eventId: string, keyId: string): Buffer => Buffer.from(`persona-event:${eventId}:${keyId}`);

/** Seals the (already published-cut) payload of a customer's event under the customer's key. */
export async function sealEvent(
  keys: HistoryKeyStore,
  event: PersonaEvent,
  payload: Record<string, unknown>,
): Promise<PublishedEvent> {
  const { payload: _stored, ...envelope } = event;
  const keyId = sealedUnder(event);
  if (keyId === null || Object.keys(payload).length === 0) return { ...envelope, payload };
  const key = await keys.keyFor(keyId, { create: true });
  // Erased (the key destroyed with the customer): nothing of theirs is left to publish.
  if (!key) return { ...envelope, payload: {} };
  const plain = JSON.stringify(payload);
  // A synthetic nonce (HMAC of the event and its payload under the key): an event sent again is
  // the same message byte for byte, and two different plaintexts never share a nonce.
  const iv = createHmac('sha256', key).update(`persona-event-nonce:${event.id}:${plain}`).digest().subarray(0, 12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(additionalData(event.id, keyId));
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return {
    ...envelope,
    sealed: { key_id: keyId, alg: SEALED_ALG, iv: iv.toString('base64'), data: data.toString('base64') },
  };
}

/** The payload of a published event cannot be read: its key was destroyed by an erasure, or it was tampered with. */
export class SealedPayloadUnreadableError extends Error {
  constructor(
    readonly eventId: string,
    readonly reason: 'erased' | 'tampered',
  ) {
    super(
      reason === 'erased'
        ? `event ${eventId}'s payload is sealed under a key an erasure destroyed: it is gone for good`
        : `event ${eventId}'s sealed payload does not open under its key: it was altered or moved`,
    );
    this.name = 'SealedPayloadUnreadableError';
  }
}

/** A published event (a message value, parsed) with its payload opened, or SealedPayloadUnreadableError. */
export async function openEvent(keys: HistoryKeyStore, published: PublishedEvent): Promise<PersonaEvent> {
  if (!published.sealed) return published as PersonaEvent;
  const { sealed, ...envelope } = published;
  // Sealed under the key of the customer the envelope names, or moved from another customer's event.
  if (sealedUnder(published) !== sealed.key_id) throw new SealedPayloadUnreadableError(published.id, 'tampered');
  const key = await keys.keyFor(sealed.key_id, { create: false });
  if (!key) throw new SealedPayloadUnreadableError(published.id, 'erased');
  try {
    const data = Buffer.from(sealed.data, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(additionalData(published.id, sealed.key_id));
    decipher.setAuthTag(data.subarray(data.length - 16));
    const plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    return { ...envelope, payload: JSON.parse(plain.toString('utf8')) as PersonaEvent['payload'] };
  } catch {
    throw new SealedPayloadUnreadableError(published.id, 'tampered');
  }
}
