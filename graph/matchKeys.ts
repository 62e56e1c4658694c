/**
 * Identity resolution's blocking keys of the person (resolution/blocking.ts) in the graph: the
 * name as it sounds, the formal name, the name with a postcode or a birth year, the date of birth
 * with an initial, an email's local part. A customer an onboarding creates is linked to its keys
 * (`(:Customer)-[:KEYED]->(:MatchKey {key})`); a sign-up's keys name the customers who may be the
 * same person though they share no identifier or device (those the graph finds by its own nodes).
 *
 * Keys are stored hashed (a key is personal data: a name's sound, a birth date) and go with the
 * customer at erasure. A key is only a way to a candidate: the candidate's record is read and
 * scored, so a key left stale (a later address, an email removed) costs a candidate, never a link.
 * Bounded: a key more than KEY_CAP customers hold names nobody and takes no more holders (a
 * common name in a busy postcode locks and costs nothing), and at most CANDIDATE_CAP candidates
 * are read, from the most specific keys first.
 */
import { createHash } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { blockingKeys, CANDIDATE_CAP, KEY_CAP } from '../resolution/blocking';
import type { PreparedRecord } from '../resolution/compare';

/** The kinds of blocking key kept as MatchKey nodes (the others are the graph's identifier, device, address nodes). */
const PERSON_KEYS = ['name:', 'name-formal:', 'name-postcode:', 'name-year:', 'birth:', 'email-local:'];

const CYPHER = {
  // Holders of each key up to KEY_CAP + 1, those merged or erased left out (an erased one has no edge).
  holders: `
    UNWIND $keys AS key
    OPTIONAL MATCH (k:MatchKey {key: key})
    CALL (k) {
      OPTIONAL MATCH (k)<-[:KEYED]-(c:Customer) WHERE c.status IN ['active', 'suspended']
      WITH c LIMIT toInteger($cap)
      RETURN collect(c.id) AS holders
    }
    RETURN key, holders`,
  // In key order: two onboardings sharing keys lock them in one order.
  link: `
    MATCH (c:Customer {id: $customerId})
    UNWIND $keys AS key
    MERGE (k:MatchKey {key: key})
    MERGE (c)-[:KEYED]->(k)`,
} as const;

/** The record's person keys, hashed: what a MatchKey holds. */
export function personKeys(r: PreparedRecord): string[] {
  return blockingKeys(r)
    .filter((k) => PERSON_KEYS.some((kind) => k.startsWith(kind)))
    .map((k) => createHash('sha256').update(k).digest('base64url'))
    .sort();
}

/** A sign-up's candidates by its person keys, and the keys a customer it creates should hold. */
export interface KeyCandidates {
  /** Customers sharing a key no more than KEY_CAP hold, the most specific keys first, at most CANDIDATE_CAP. */
  candidates: string[];
  /** The keys not yet held by more than KEY_CAP customers. */
  open: string[];
}

/** The customers `keys` name, and which keys still take holders. */
export async function keyCandidatesTx(tx: ManagedTransaction, keys: string[]): Promise<KeyCandidates> {
  if (keys.length === 0) return { candidates: [], open: [] };
  const rows = (await tx.run(CYPHER.holders, { keys, cap: KEY_CAP + 1 })).records.map((r) => ({
    key: r.get('key') as string,
    holders: r.get('holders') as string[],
  }));
  const open = rows.filter((r) => r.holders.length <= KEY_CAP);
  const candidates = new Set<string>();
  for (const { holders } of [...open].sort((a, b) => a.holders.length - b.holders.length))
    for (const id of holders) if (candidates.size < CANDIDATE_CAP) candidates.add(id);
  return { candidates: [...candidates], open: open.map((r) => r.key).sort() };
}

/** Links a customer to its keys (those `keyCandidatesTx` found open). */
export async function linkMatchKeysTx(tx: ManagedTransaction, customerId: string, keys: string[]): Promise<void> {
  if (keys.length > 0) await tx.run(CYPHER.link, { customerId, keys });
}
