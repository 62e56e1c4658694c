/**
 * The invalidation topic's message (workers/eventSequencer.ts sends it, api/invalidations.ts reads
 * it): sealed and checked, because a read cache decides from it whether a suspension or an
 * erasure has happened.
 *
 * - **Sealed** with AES-256-GCM under a key derived from the payload key ring (PERSONA_PAYLOAD_KEYS,
 *   which the api and the worker hold and nothing else needs): a message anyone else wrote (a
 *   client with write access to the topic, another deployment on the same Kafka) fails to open and
 *   is dropped, and what a message says is unreadable to whoever reads the topic. The key id travels
 *   with it, so a rotated ring still opens what the previous key sealed.
 * - **Checked**: whole numbers where numbers are, at most MAX_EVENTS_PER_MESSAGE events.
 * - **Least data**: of a payload only what the cache applies in place (`minimalPayload`): the new
 *   value of a lifetime value or a segment and the methods a payment used, a device's new trust, the
 *   device a login was from; and an event's cache hint (graph/events.ts NewEvent.cache: a new link's
 *   device, with its fingerprint and trust), which no reader of the log gets. No old values, no
 *   reasons, no status.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { KeyRing } from '../config/keyRing';
import type { SequencedEvent } from './sequencer';

/** What a sequencer sends after each round on the invalidation topic. */
export interface InvalidationMessage {
  /** The log's epoch (a restore starts a new one, numbered again from the backup's). */
  epoch: number;
  /** The last number given when the round ended (a message of several carries its own last). */
  through: number;
  /** Neo4j's clock (ms) when nothing committed was waiting for a number; null if something was. */
  drained_at: number | null;
  /** Numbered events, in order. */
  events: SequencedEvent[];
}

/** Most events one message carries: a longer round goes out as several messages, in order. */
export const MAX_EVENTS_PER_MESSAGE = 500;

const whole = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const id = z.string().min(1).max(200);

const messageSchema = z.object({
  epoch: whole,
  through: whole,
  drained_at: whole.nullable(),
  events: z
    .array(
      z.object({
        log_seq: whole.min(1),
        type: z.string().min(1).max(64),
        customer_id: id.nullable(),
        customer_seq: whole.nullable(),
        device_id: id.optional(),
        device_seq: whole.optional(),
        payload: z.record(z.string(), z.unknown()).nullable(),
        cache: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .max(MAX_EVENTS_PER_MESSAGE),
});

const VERSION = 'v1';
const AAD = Buffer.from('persona.invalidations.v1');

function keyOf(ring: KeyRing, keyId: string): Buffer | undefined {
  const root = ring.get(keyId);
  return root ? Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), 'persona invalidations', 32)) : undefined;
}

/** The message as the topic carries it: `v1.<key id>.<base64url of iv, tag, ciphertext>`. */
export function sealInvalidation(ring: KeyRing, message: InvalidationMessage): string {
  const key = keyOf(ring, ring.active.id) as Buffer;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(AAD);
  const body = Buffer.concat([cipher.update(JSON.stringify(message), 'utf8'), cipher.final()]);
  return `${VERSION}.${ring.active.id}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
}

/** The message a value holds, or null: not sealed under a key of the ring, or not a message. */
export function openInvalidation(ring: KeyRing, value: string): InvalidationMessage | null {
  const [version, keyId, sealed, ...rest] = value.split('.');
  if (version !== VERSION || !keyId || !sealed || rest.length > 0) return null;
  const key = keyOf(ring, keyId);
  if (!key) return null;
  try {
    const raw = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAAD(AAD);
    decipher.setAuthTag(raw.subarray(12, 28));
    const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    const parsed = messageSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Of a payload, only what the read cache applies in place (api/readCache.ts); null for the rest. */
export function minimalPayload(type: string, payload: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!payload) return null;
  if (type === 'DeviceTrustScoreUpdated') return { to: payload.to };
  if (type === 'DeviceLinked') return { device_id: payload.device_id };
  if (type !== 'CustomerProfileUpdated') return null;
  const changes = (payload.changes ?? {}) as Record<string, { to?: unknown } | undefined>;
  const kept: Record<string, { to?: unknown }> = {};
  // Every changed field's name (one the cache does not hold drops the entry), the new value only
  // of those it applies.
  for (const key of Object.keys(changes))
    kept[key] = ['ltv_minor', 'predicted_ltv_minor', 'segment'].includes(key) ? { to: changes[key]?.to } : {};
  const used = Array.isArray(payload.payment_methods_used)
    ? (payload.payment_methods_used as { payment_method_id?: unknown; last_used?: unknown }[]).map((u) => ({
        payment_method_id: u?.payment_method_id,
        last_used: u?.last_used,
      }))
    : [];
  return { changes: kept, payment_methods_used: used };
}
