/**
 * Customers and sign-ups as identity resolution reads them (resolution/record.ts), and how common
 * a sign-up's values are on file: what the onboarding's weighing (graph/proofCheck.ts) scores.
 *
 * Bounded: of each kind of fact (identifiers, addresses, devices, cards) a customer's first
 * READ_CAP are read, and holders are counted up to HOLDERS_CAP, so a customer with hundreds of
 * devices or a kiosk's thousands of customers cost what fifty do. Values read here never leave
 * the activity: scores are probabilities and parts in words.
 */
import type { ManagedTransaction, Record as Neo4jRecord } from 'neo4j-driver';
import type { PreparedRecord } from '../resolution/compare';
import type { Frequencies } from '../resolution/model';
import { normaliseEmail, normalisePhone } from '../resolution/normalise';
import { emptyRecord, type ResolutionRecord } from '../resolution/record';
import { addressMatchKey } from './addresses';
import { lockNode } from './graph';
import { nameKeys } from './matchKeys';
import type { OnboardingPlan } from './onboardingRequest';

/** Of each kind of fact, a customer's first this many are weighed. */
const READ_CAP = 50;

/** Holders counted up to this: a value held beyond is common, and weighs what one so held does. */
const HOLDERS_CAP = 51;

/** A customer `c` as a record: its person and its first READ_CAP facts of each kind. */
const RECORD = `
    c {.id, .given_name, .family_name, .birth_date} AS person,
    COLLECT { MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(d:DigitalIdentifier)
              RETURN d {.type, .value, .is_verified} LIMIT ${READ_CAP} } AS identifiers,
    COLLECT { MATCH (c)-[s:SHIPPED_TO]->(a:Address) WHERE s.disowned_at IS NULL
              RETURN a {.street1, .street2, .city, .state, .zip_code, .country} LIMIT ${READ_CAP} } AS addresses,
    COLLECT { MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device) WHERE r.disowned_at IS NULL
              RETURN {fingerprint: d.fingerprint, ip: r.last_seen_ip} LIMIT ${READ_CAP} } AS devices,
    COLLECT { MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
              RETURN p {.card_fingerprint, .brand, .last_four, .expiry_month, .expiry_year} LIMIT ${READ_CAP} }
      AS cards`;

const CYPHER = {
  // Locks the customer (changing nothing) before counting its recent auto-links, so a concurrent
  // link to it is counted or waits.
  locked: `
    MATCH (c:Customer {id: $customerId})
    ${lockNode('c')}
    RETURN size([t IN coalesce(c.auto_linked_at, []) WHERE t > datetime.transaction() - duration('P30D')]) AS recent,
           ${RECORD}`,
  records: `
    UNWIND $ids AS id
    MATCH (c:Customer {id: id})
    RETURN ${RECORD}`,
  holders: `
    CALL () {
      UNWIND $identifiers AS i
      CALL (i) {
        OPTIONAL MATCH (:DigitalIdentifier {type: i.type, value: i.value})<-[:HAS_DIGITAL_IDENTIFIER]-(c:Customer)
        WITH DISTINCT c LIMIT toInteger($cap)
        RETURN count(c) AS holders
      }
      RETURN collect({type: i.type, value: i.value, holders: holders}) AS identifiers
    }
    // The customers bearing each name: its key's degree (graph/matchKeys.ts), from the store, uncapped.
    CALL () {
      UNWIND $names AS n
      OPTIONAL MATCH (k:MatchKey {key: n.key})
      WITH n, CASE WHEN k IS NULL THEN 0 ELSE COUNT { (k)<-[:KEYED]-() } END AS holders
      RETURN collect({comparison: n.comparison, holders: holders}) AS names
    }
    CALL () {
      OPTIONAL MATCH (:Address {match_key: ${addressMatchKey('$address')}})<-[s:SHIPPED_TO]-(c:Customer)
      WHERE s.disowned_at IS NULL
      WITH DISTINCT c LIMIT toInteger($cap)
      RETURN count(c) AS address
    }
    // The customers who stand for someone: an erased or merged record is labelled Retired, and
    // both counts come from the count store (no scan, however many customers).
    CALL () {
      MATCH (c:Customer) RETURN count(c) AS customers
    }
    CALL () {
      MATCH (r:Retired) RETURN count(r) AS retired
    }
    RETURN identifiers, names, address, customers - retired AS population`,
} as const;

/** What the sign-up says, as identity resolution reads a record. */
export function signUpRecord(plan: OnboardingPlan): ResolutionRecord {
  const of = (type: string) =>
    plan.digital_identifiers.filter((i) => i.type === type).map((i) => ({ value: i.value, verified: i.is_verified }));
  const pm = plan.payment_method;
  return emptyRecord('sign-up', {
    given_name: plan.person?.given_name ?? null,
    family_name: plan.person?.family_name ?? null,
    birth_date: plan.person?.birth_date ?? null,
    emails: of('email'),
    phones: of('phone_number'),
    addresses: plan.address
      ? [{ ...plan.address, street2: plan.address.street2 ?? null, state: plan.address.state ?? null }]
      : [],
    devices: plan.device ? [{ fingerprint: plan.device.fingerprint, ip: plan.device.ip ?? null }] : [],
    cards: pm
      ? [
          {
            fingerprint: null,
            brand: pm.brand,
            last_four: pm.last_four,
            expiry_month: pm.expiry_month,
            expiry_year: pm.expiry_year,
          },
        ]
      : [],
  });
}

interface CardRow {
  card_fingerprint?: string;
  brand?: string;
  last_four?: string;
  expiry_month?: unknown;
  expiry_year?: unknown;
}

const number = (x: unknown): number | null => (x === null || x === undefined ? null : Number(x));

/** A row RECORD returned, as a record. */
function recordOf(row: Neo4jRecord): ResolutionRecord {
  const person = row.get('person') as { id: string; given_name?: string; family_name?: string; birth_date?: string };
  const identifiers = row.get('identifiers') as { type: string; value: string; is_verified: boolean }[];
  const of = (type: string) =>
    identifiers.filter((i) => i.type === type).map((i) => ({ value: i.value, verified: i.is_verified }));
  return emptyRecord(person.id, {
    given_name: person.given_name ?? null,
    family_name: person.family_name ?? null,
    birth_date: person.birth_date ?? null,
    emails: of('email'),
    phones: of('phone_number'),
    addresses: row.get('addresses') as ResolutionRecord['addresses'],
    devices: row.get('devices') as ResolutionRecord['devices'],
    cards: (row.get('cards') as CardRow[]).map((c) => ({
      fingerprint: c.card_fingerprint ?? null,
      brand: c.brand ?? null,
      last_four: c.last_four ?? null,
      expiry_month: number(c.expiry_month),
      expiry_year: number(c.expiry_year),
    })),
  });
}

/** A customer's record, the customer locked, with its auto-links of the last 30 days; null if none. */
export async function lockedRecordTx(
  tx: ManagedTransaction,
  customerId: string,
): Promise<{ record: ResolutionRecord; recent: number } | null> {
  const row = (await tx.run(CYPHER.locked, { customerId })).records[0];
  return row ? { record: recordOf(row), recent: Number(row.get('recent')) } : null;
}

/** The records of the customers `ids` (those that exist), unlocked. */
export async function recordsTx(tx: ManagedTransaction, ids: string[]): Promise<ResolutionRecord[]> {
  if (ids.length === 0) return [];
  return (await tx.run(CYPHER.records, { ids })).records.map(recordOf);
}

/**
 * How common the sign-up's values are among the customers on file, as the model weighs them: the
 * holders of each identifier, of each name (its name key's holders), of its address and of its
 * device (`deviceHolders`, read by the onboarding), over the population: the customers neither
 * erased nor merged.
 */
export async function frequenciesTx(
  tx: ManagedTransaction,
  plan: OnboardingPlan,
  signUp: PreparedRecord,
  deviceHolders: number,
  region: string,
): Promise<{ frequencies: Frequencies; population: number }> {
  const res = await tx.run(CYPHER.holders, {
    identifiers: plan.digital_identifiers.map(({ type, value }) => ({ type, value })),
    names: Object.entries(nameKeys(signUp)).map(([comparison, key]) => ({ comparison, key })),
    address: plan.address ?? {},
    cap: HOLDERS_CAP,
  });
  const row = res.records[0];
  const population = Math.max(1, Number(row?.get('population') ?? 1));
  const counts = new Map<string, number>();
  const held = (row?.get('identifiers') ?? []) as { type: string; value: string; holders: unknown }[];
  for (const h of held) {
    // Keyed as the model asks: by the value as resolution/compare.ts normalises it.
    const key =
      h.type === 'email' ? `email:${normaliseEmail(h.value)?.canonical}` : `phone:${normalisePhone(h.value, region)}`;
    counts.set(key, Math.max(counts.get(key) ?? 0, Number(h.holders)));
  }
  const named = (row?.get('names') ?? []) as { comparison: 'given_name' | 'family_name'; holders: unknown }[];
  const nameOf = { given_name: signUp.given, family_name: signUp.family };
  // A name no key counts (no customer bears it, or only customers older than the keys): the table's u.
  for (const n of named)
    if (Number(n.holders) > 0) counts.set(`${n.comparison}:${nameOf[n.comparison]}`, Number(n.holders));
  for (const a of signUp.addresses) counts.set(`address:${a.key}`, Number(row?.get('address') ?? 0));
  for (const d of signUp.devices) counts.set(`device:${d.fingerprint}`, deviceHolders);
  const frequencies: Frequencies = (comparison, value) => {
    const n = counts.get(`${comparison}:${value}`);
    return n === undefined ? null : Math.max(1, n) / population;
  };
  return { frequencies, population };
}
