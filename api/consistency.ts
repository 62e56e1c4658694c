/**
 * Consistency tokens: what a write's answer names so that a later read can ask to see at least that
 * write. `c:<customer_id>:<customer_seq>` is the highest customer_seq the write committed for the
 * customer the answer is about; `d:<device_id>:<device_seq>` the device_seq a device's trust write
 * committed. Each names what it belongs to: a read refuses a token of another customer, or of a
 * device the customer does not use (api/readCache.ts), rather than compare unrelated numbers.
 * REST answers carry one in the `x-persona-consistency` header (interactions: per item), gRPC in
 * the answer's `consistency_token` field. docs/api.md
 */
import type { Context } from 'hono';
import type { CustomerSnapshot } from '../graph/context';
import { InvalidStateError } from '../graph/errors';
import type { CommittedEvent } from '../graph/graph';

/** The REST header a write's token is answered in. */
export const CONSISTENCY_HEADER = 'x-persona-consistency';

export type ConsistencyToken =
  { kind: 'c'; customerId: string; seq: number } | { kind: 'd'; deviceId: string; seq: number };

export function formatCustomerToken(customerId: string, seq: number): string {
  return `c:${customerId}:${seq}`;
}

export function formatDeviceToken(deviceId: string, seq: number): string {
  return `d:${deviceId}:${seq}`;
}

const SEQ = /^(0|[1-9][0-9]{0,15})$/;
const ID = /^[0-9A-Za-z-]{1,64}$/;

/** A token as `format*Token` writes it, or null for anything else (never throws). */
export function parseToken(s: string | null | undefined): ConsistencyToken | null {
  if (typeof s !== 'string' || s.length > 100) return null;
  const parts = s.split(':');
  const seqOf = (text: string | undefined) => {
    if (text === undefined || !SEQ.test(text)) return null;
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : null;
  };
  if (parts.length === 3 && parts[0] === 'c' && ID.test(parts[1] ?? '')) {
    const seq = seqOf(parts[2]);
    return seq === null ? null : { kind: 'c', customerId: parts[1] as string, seq };
  }
  if (parts.length === 3 && parts[0] === 'd' && ID.test(parts[1] ?? '')) {
    const seq = seqOf(parts[2]);
    return seq === null ? null : { kind: 'd', deviceId: parts[1] as string, seq };
  }
  return null;
}

/** The highest customer_seq each customer got among committed events. */
export function customerSeqs(events: readonly CommittedEvent[]): Map<string, number> {
  const seqs = new Map<string, number>();
  for (const e of events)
    if (e.customer_id !== null && e.customer_seq !== null)
      seqs.set(e.customer_id, Math.max(seqs.get(e.customer_id) ?? 0, e.customer_seq));
  return seqs;
}

/** The token of a write's answer about one customer, or undefined when it committed no event of it. */
export function customerTokenOf(events: readonly CommittedEvent[], customerId: string): string | undefined {
  const seq = customerSeqs(events).get(customerId);
  return seq === undefined ? undefined : formatCustomerToken(customerId, seq);
}

/** The token of a device trust write's answer, or undefined when it changed nothing (no event). */
export function deviceTokenOf(events: readonly CommittedEvent[], deviceId: string): string | undefined {
  let seq: number | undefined;
  for (const e of events)
    if (e.device_id === deviceId && e.device_seq !== undefined) seq = Math.max(seq ?? 0, e.device_seq);
  return seq === undefined ? undefined : formatDeviceToken(deviceId, seq);
}

/** Sets the REST answer's token header when the write has one. */
export function answerToken(c: Context, token: string | undefined): void {
  if (token !== undefined) c.header(CONSISTENCY_HEADER, token);
}

/**
 * Whether a snapshot answering `askedId` reflects the write a token names. A customer's token is
 * compared with the snapshot's sequence only when it names the customer the snapshot is of; one
 * naming the id asked for when that id is a merge's tombstone is reached (its write came before
 * the merge, which the survivor's snapshot holds); any other customer's is never reached.
 */
export function snapshotReaches(askedId: string, snap: CustomerSnapshot, token: ConsistencyToken | null): boolean {
  if (token === null) return true;
  if (token.kind === 'c') {
    if (token.customerId === snap.customer_id) return snap.seq >= token.seq;
    // The merged id's own token: checked against the tombstone's own sequence, which only a
    // read of Neo4j that followed the merge brings (never a kept entry, never an alias).
    return token.customerId === askedId && snap.merged_seq !== undefined && snap.merged_seq >= token.seq;
  }
  // The device's own sequence, whether the customer uses it or not: the answer is the same
  // either way, so a token tells nothing of which devices a customer uses.
  const seq =
    snap.devices.find((d) => d.device_id === token.deviceId)?.seq ??
    (snap.token_device?.device_id === token.deviceId ? snap.token_device.seq : undefined);
  return seq !== undefined && seq >= token.seq;
}

/**
 * A read's consistency token that even the leader's answer does not reach: a token of another
 * customer, ahead of every write of this one, or made up (409, FAILED_PRECONDITION). One text for
 * every case, so that a token tells nothing about the customer; `mergedInto` lets the route refuse
 * a merged record's own caller first, as it refuses any answer about its survivor.
 */
export class TokenNotMetError extends InvalidStateError {
  constructor(readonly mergedInto: string | undefined) {
    super(
      'x-persona-consistency (min_version): the data does not reach this consistency token; pass the ' +
        'token a write about this customer answered',
    );
    this.name = 'TokenNotMetError';
  }
}
