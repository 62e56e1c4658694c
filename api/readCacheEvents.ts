/**
 * How an event reaches a cached customer snapshot (api/readCache.ts): which events, next in the
 * customer's sequence, change it in place and how, and what a new link's device looks like in it.
 * Pure: the cache decides when an event is next in sequence, these decide what it changes.
 */
import { trustOnDevice, type CustomerSnapshot, type SnapshotDevice } from '../graph/context';
import type { CommittedEvent } from '../graph/graph';

/** A tailed or committed event, as much of it as the cache reads. */
export type CacheEvent = Pick<CommittedEvent, 'type' | 'customer_id' | 'customer_seq' | 'device_id' | 'device_seq'> & {
  /** Present on the types applied in place (CustomerProfileUpdated, DeviceTrustScoreUpdated, DeviceLinked). */
  payload?: Record<string, unknown> | null;
  /** The event's cache hint (graph/events.ts NewEvent.cache): a new link's device. */
  cache?: Record<string, unknown> | undefined;
};

/** Events that change nothing a snapshot holds: in sequence, they only move its number. */
const NEUTRAL = new Set([
  'CustomerCreated',
  'DigitalIdentifierAdded',
  'AddressAdded',
  'PaymentRecoveryFailed',
  'CustomerNotified',
  'PossibleMatchFound',
  'BehavioralProfileRequested',
  'TrustedDeviceReported',
  'PaymentMethodUsedOnDevice',
]);

/** The CustomerProfileUpdated changes applied in place (`to` is absolute); any other drops the entry. */
const PROFILE_FIELDS = new Set(['ltv', 'ltv_minor', 'segment', 'predicted_ltv', 'predicted_ltv_minor', 'is_vip']);

/**
 * Applies the customer's next event to its snapshot in place when it changes nothing the snapshot
 * holds but what can be set from the event: a neutral event, a profile change of held fields, or
 * another login from (or payment on) a device the snapshot holds (only its count moved). False
 * when the entry must go (or take a new device: `linkedDeviceOf`). The sequence is the caller's.
 */
export function applyInPlace(snap: CustomerSnapshot, ev: CacheEvent): boolean {
  return (
    NEUTRAL.has(ev.type) ||
    (ev.type === 'CustomerProfileUpdated' && applyProfile(snap, ev.payload)) ||
    (ev.type === 'DeviceLinked' && snap.devices.some((d) => d.device_id === ev.payload?.device_id))
  );
}

/** A trust score: a number in [0, 1]. */
const isTrust = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1;

/** DeviceLinked's cache hint as a snapshot's device, or null when the event has none or it is malformed. */
export function linkedDeviceOf(deviceId: unknown, hint: unknown): SnapshotDevice | null {
  if (typeof deviceId !== 'string' || typeof hint !== 'object' || hint === null) return null;
  const { seq, fingerprint, ceiling, earned } = hint as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0 || typeof fingerprint !== 'string') return null;
  if (!isTrust(ceiling) || !isTrust(earned)) return null;
  return {
    device_id: deviceId,
    fingerprint,
    trust_score: trustOnDevice(earned, ceiling),
    earned,
    ceiling,
    seq: seq as number,
  };
}

/**
 * Applies a CustomerProfileUpdated to a snapshot when everything it changes is held there as an
 * absolute value; false (the entry is then dropped) when it changes anything else.
 */
function applyProfile(snap: CustomerSnapshot, payload: Record<string, unknown> | null | undefined): boolean {
  if (!payload) return false;
  const changes = (payload.changes ?? {}) as Record<string, { to?: unknown } | undefined>;
  for (const key of Object.keys(changes)) if (!PROFILE_FIELDS.has(key)) return false;
  // The major-unit values ride beside the exact minor ones; one without the other is not applied.
  if ((changes.ltv && !changes.ltv_minor) || (changes.predicted_ltv && !changes.predicted_ltv_minor)) return false;
  const used = (payload.payment_methods_used ?? []) as { payment_method_id?: unknown; last_used?: unknown }[];
  if (!Array.isArray(used)) return false;
  const ltv = changes.ltv_minor?.to;
  const predicted = changes.predicted_ltv_minor?.to;
  const segment = changes.segment?.to;
  if (changes.ltv_minor && typeof ltv !== 'number') return false;
  if (changes.predicted_ltv_minor && predicted !== null && typeof predicted !== 'number') return false;
  if (changes.segment && typeof segment !== 'string') return false;
  if (typeof ltv === 'number') snap.ltvMinor = ltv;
  if (changes.predicted_ltv_minor) snap.predictedLtvMinor = predicted as number | null;
  if (typeof segment === 'string') snap.segment = segment;
  for (const u of used) {
    const method = snap.methods.find((m) => m.id === u.payment_method_id);
    // A method the snapshot does not hold is not active: its use changes nothing served.
    if (method && typeof u.last_used === 'string') method.last_used = u.last_used;
  }
  return true;
}
