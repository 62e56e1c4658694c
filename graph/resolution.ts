/**
 * Identity resolution, decided as a pure function of what the graph holds for the incoming
 * identifiers and device (read inside the onboarding transaction, under the identifiers'
 * locks). Safe, not greedy:
 *   - a verified identifier that is verified on file too is the same customer;
 *   - an unverified identifier (on either side) or a shared device never merges: it is
 *     recorded as a possible match for review;
 *   - junk values were dropped before this point and never reach it;
 *   - a device linked to more customers than the shared-device limit is no signal at all.
 */
import type { IdentifierType } from './model';

export interface IdentifierObservation {
  type: IdentifierType;
  value: string;
  /** What the request says. */
  incomingVerified: boolean;
  /** The identifier already in the graph, if any (null when this request is the first to claim it). */
  onFile: { verified: boolean; ownerId: string | null } | null;
}

export interface DeviceObservation {
  /**
   * Customers already linked to the fingerprint: all of them up to the shared-device limit, and
   * limit + 1 of them on a device shared beyond it (the count is all that matters then).
   */
  customerIds: string[];
}

export type MatchSignal =
  | 'verified_email'
  | 'verified_phone_number'
  | 'unverified_email'
  | 'unverified_phone_number'
  | 'device'
  | 'conflicting_verified_identifiers'
  /** The proof's customer, not linked: the policy refused (graph/proofCheck.ts). */
  | 'link_refused'
  /** Found by the sign-up's name, birth date or email's local part and likely by the model (graph/matchKeys.ts). */
  | 'similar_person';

export interface PossibleMatch {
  customer_id: string;
  signals: MatchSignal[];
}

export interface Resolution {
  outcome: 'created' | 'matched';
  /** The matched customer, when outcome is matched. */
  matchedCustomerId: string | null;
  /** Incoming identifiers to link to the resulting customer (new to the graph, or verified-new). */
  attach: { type: IdentifierType; value: string }[];
  possibleMatches: PossibleMatch[];
}

const signal = (kind: 'verified' | 'unverified', type: IdentifierType): MatchSignal => `${kind}_${type}`;

export function resolveIdentity(
  identifiers: IdentifierObservation[],
  device: DeviceObservation | null,
  sharedDeviceLimit: number,
): Resolution {
  // Customers a verified-on-both-sides identifier points at.
  const verifiedOwners = new Set<string>();
  for (const i of identifiers) {
    if (i.incomingVerified && i.onFile?.verified && i.onFile.ownerId) verifiedOwners.add(i.onFile.ownerId);
  }
  const matchedCustomerId = verifiedOwners.size === 1 ? ([...verifiedOwners][0] as string) : null;

  const possible = new Map<string, Set<MatchSignal>>();
  const note = (customerId: string, s: MatchSignal): void => {
    if (customerId === matchedCustomerId) return;
    if (!possible.has(customerId)) possible.set(customerId, new Set());
    possible.get(customerId)?.add(s);
  };

  if (verifiedOwners.size > 1) {
    // Two verified identifiers that belong to two different customers: never guess.
    for (const owner of verifiedOwners) note(owner, 'conflicting_verified_identifiers');
  }
  const attach: Resolution['attach'] = [];
  for (const i of identifiers) {
    if (!i.onFile) {
      attach.push({ type: i.type, value: i.value });
      continue;
    }
    if (!i.onFile.ownerId) {
      attach.push({ type: i.type, value: i.value });
    } else if (!(i.incomingVerified && i.onFile.verified)) {
      note(i.onFile.ownerId, signal('unverified', i.type));
    } else if (verifiedOwners.size > 1) {
      note(i.onFile.ownerId, signal('verified', i.type));
    }
  }

  if (device && device.customerIds.length <= sharedDeviceLimit) {
    for (const id of device.customerIds) note(id, 'device');
  }

  return {
    outcome: matchedCustomerId ? 'matched' : 'created',
    matchedCustomerId,
    attach,
    possibleMatches: [...possible.entries()]
      .map(([customer_id, s]) => ({ customer_id, signals: [...s].sort() }))
      .sort((a, b) => a.customer_id.localeCompare(b.customer_id)),
  };
}
