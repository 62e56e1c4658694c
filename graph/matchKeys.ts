/**
 * Identity resolution's blocking keys of the person (resolution/blocking.ts) in the graph: the
 * name as it sounds, the formal name, the name's letters, the name with a postcode or a birth year, the date of birth
 * with an initial, an email's local part. A customer an onboarding creates is linked to its keys
 * (`(:Customer)-[:KEYED]->(:MatchKey {key})`); a sign-up's keys name the customers who may be the
 * same person though they share no identifier or device (those the graph finds by its own nodes).
 * It holds two more keys, its given and its family name exactly (as resolution/compare.ts
 * normalises them): never asked for candidates, they count how many customers bear each name, so
 * the model weighs a common name less than a rare one (term frequency, graph/customerRecords.ts).
 *
 * A key is stored as the SHA-256 of its text (no name or date in it to read; so short a text can be
 * reversed by trying every value, so it is no protection from whoever holds the graph) and goes with
 * the customer at erasure. A key is only a way to a candidate: the candidate's record is read and
 * scored, so a key left stale (a later address, an email removed) costs a candidate, never a link.
 * Bounded: a key more than KEY_CAP customers hold names nobody (its holders are read up to
 * KEY_CAP + 1, so a common name in a busy postcode costs what a rare one does), and at most
 * CANDIDATE_CAP candidates are read, from the most specific keys first. Every new customer holds
 * all its keys, however many others do: a key crowded by fakes names nobody while they are there,
 * and finds its people again once they are erased.
 */
import { createHash } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { blockingKeys, CANDIDATE_CAP, KEY_CAP } from '../resolution/blocking';
import type { PreparedRecord } from '../resolution/compare';

/** The kinds of blocking key kept as MatchKey nodes (the others are the graph's identifier, device, address nodes). */
const PERSON_KEYS = [
  'name:',
  'name-formal:',
  'name-letters:',
  'name-postcode:',
  'name-year:',
  'birth:',
  'email-local:',
];

const CYPHER = {
  // Holders of each key up to KEY_CAP + 1: a record merged into another stands for the customer it
  // was merged into (graph/identityMerge.ts keeps the pointer one step deep); an erased one has no edge.
  holders: `
    UNWIND $keys AS key
    OPTIONAL MATCH (k:MatchKey {key: key})
    CALL (k) {
      OPTIONAL MATCH (k)<-[:KEYED]-(c:Customer) WHERE c.status IN ['active', 'suspended', 'merged']
      WITH DISTINCT CASE c.status WHEN 'merged' THEN c.merged_into ELSE c.id END AS id
      WITH id WHERE id IS NOT NULL LIMIT toInteger($cap)
      RETURN collect(id) AS holders
    }
    RETURN key, holders`,
  // In key order: two onboardings sharing keys lock them in one order.
  link: `
    MATCH (c:Customer {id: $customerId})
    UNWIND $keys AS key
    MERGE (k:MatchKey {key: key})
    MERGE (c)-[:KEYED]->(k)`,
} as const;

/** A key as a MatchKey holds it: the SHA-256 of its text. */
const hashed = (key: string): string => createHash('sha256').update(key).digest('base64url');

/** The record's person keys, hashed: those that name candidates. */
export function personKeys(r: PreparedRecord): string[] {
  return blockingKeys(r)
    .filter((k) => PERSON_KEYS.some((kind) => k.startsWith(kind)))
    .map(hashed)
    .sort();
}

/** The keys that count the record's names, hashed, by the comparison they weigh (absent for a name not given). */
export function nameKeys(r: PreparedRecord): { given_name?: string; family_name?: string } {
  return {
    ...(r.given ? { given_name: hashed(`given:${r.given}`) } : {}),
    ...(r.family ? { family_name: hashed(`family:${r.family}`) } : {}),
  };
}

/** Every key a customer with this record holds: its person keys and its name keys, in lock order. */
export function heldKeys(r: PreparedRecord): string[] {
  return [...new Set([...personKeys(r), ...Object.values(nameKeys(r))])].sort();
}

/**
 * The customers `keys` (person keys) name: those sharing a key no more than KEY_CAP hold, the most
 * specific keys first, at most CANDIDATE_CAP.
 */
export async function keyCandidatesTx(tx: ManagedTransaction, keys: string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const rows = (await tx.run(CYPHER.holders, { keys, cap: KEY_CAP + 1 })).records.map((r) => ({
    key: r.get('key') as string,
    holders: r.get('holders') as string[],
  }));
  const open = rows.filter((r) => r.holders.length <= KEY_CAP);
  const candidates = new Set<string>();
  for (const { holders } of [...open].sort((a, b) => a.holders.length - b.holders.length))
    for (const id of holders) if (candidates.size < CANDIDATE_CAP) candidates.add(id);
  return [...candidates];
}

/** Links a new customer to its keys (`heldKeys`). */
export async function linkMatchKeysTx(tx: ManagedTransaction, customerId: string, keys: string[]): Promise<void> {
  if (keys.length > 0) await tx.run(CYPHER.link, { customerId, keys });
}
