/**
 * Customers and sign-ups as identity resolution reads them (resolution/record.ts), and how common
 * a sign-up's or a customer's values are on file: what the onboarding's weighing
 * (graph/proofCheck.ts) and a customer's possible matches (graph/matchEvidence.ts) score.
 *
 * Bounded: of each kind of fact (identifiers, addresses, devices, cards) a customer's first
 * READ_CAP are read, and holders are counted up to HOLDERS_CAP, so a customer with hundreds of
 * devices or a kiosk's thousands of customers cost what fifty do. Values read here never leave
 * the activity: scores are probabilities and parts in words.
 */
import type { ManagedTransaction, Record as Neo4jRecord } from 'neo4j-driver';
import { COMPARISONS, compareRecords, prepare, type Agreement, type PreparedRecord } from '../resolution/compare';
import { scoreAgreements, type Frequencies, type MatchScore } from '../resolution/model';
import { normaliseEmail, normalisePhone } from '../resolution/normalise';
import { emptyRecord, type RecordAddress, type ResolutionRecord } from '../resolution/record';
import { MATCH_MODEL } from '../resolution/weights';
import { parseAddress } from '../resolution/address';
import { addressMatchKey } from './addresses';
import { lockNode } from './graph';
import { nameKeys } from './matchKeys';
import type { OnboardingPlan } from './onboardingRequest';

/** Of each kind of fact, a customer's first this many are weighed. */
const READ_CAP = 50;

/** Holders counted up to this: a value held beyond is common, and weighs what one so held does. */
const HOLDERS_CAP = 51;

/**
 * A customer `c` as a record: its person and its first READ_CAP facts of each kind. A device or
 * address the customer removed (disowned) is left out unless `$withDisowned`: onboarding's proof
 * stands on what the customer holds now, a possible match on what the two have shared
 * (docs/security.md: a removal keeps the evidence).
 */
const RECORD = `
    c {.id, .given_name, .family_name, .birth_date} AS person,
    COLLECT { MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(d:DigitalIdentifier)
              RETURN d {.type, .value, .is_verified} LIMIT ${READ_CAP} } AS identifiers,
    COLLECT { MATCH (c)-[s:SHIPPED_TO]->(a:Address) WHERE s.disowned_at IS NULL OR $withDisowned
              RETURN a {.street1, .street2, .city, .state, .zip_code, .country} LIMIT ${READ_CAP} } AS addresses,
    COLLECT { MATCH (c)-[r:LOGGED_IN_FROM]->(d:Device) WHERE r.disowned_at IS NULL OR $withDisowned
              RETURN {fingerprint: d.fingerprint, ip: r.last_seen_ip} LIMIT ${READ_CAP} } AS devices,
    COLLECT { MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
              RETURN p {.card_fingerprint, .brand, .last_four, .expiry_month, .expiry_year} LIMIT ${READ_CAP} }
      AS cards`;

/**
 * The holders of each of `$identifiers` (up to `$cap`), and the customers bearing each of `$names`:
 * its key's degree (graph/matchKeys.ts), from the store, however many.
 */
const IDENTIFIER_AND_NAME_HOLDERS = `
    CALL () {
      UNWIND $identifiers AS i
      CALL (i) {
        OPTIONAL MATCH (:DigitalIdentifier {type: i.type, value: i.value})<-[:HAS_DIGITAL_IDENTIFIER]-(c:Customer)
        WITH DISTINCT c LIMIT toInteger($cap)
        RETURN count(c) AS holders
      }
      RETURN collect({type: i.type, value: i.value, holders: holders}) AS identifiers
    }
    CALL () {
      UNWIND $names AS n
      OPTIONAL MATCH (k:MatchKey {key: n.key})
      WITH n, CASE WHEN k IS NULL THEN 0 ELSE COUNT { (k)<-[:KEYED]-() } END AS holders
      RETURN collect({comparison: n.comparison, holders: holders}) AS names
    }`;

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
    ${IDENTIFIER_AND_NAME_HOLDERS}
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
  // A customer's values' holders, each counted up to $cap: its identifiers, addresses (by their
  // match key), devices and cards (the processor's fingerprint), a removal counting as a holding (as
  // the possible matches' evidence counts it); its names as above, by their key's degree.
  customerHolders: `
    ${IDENTIFIER_AND_NAME_HOLDERS}
    CALL () {
      UNWIND range(0, size($addresses) - 1) AS at
      WITH at, $addresses[at] AS address
      CALL (address) {
        OPTIONAL MATCH (:Address {match_key: ${addressMatchKey('address')}})<-[s:SHIPPED_TO]-(c:Customer)
        WITH DISTINCT c LIMIT toInteger($cap)
        RETURN count(c) AS holders
      }
      RETURN collect({at: at, holders: holders}) AS addresses
    }
    CALL () {
      UNWIND $devices AS fp
      CALL (fp) {
        OPTIONAL MATCH (:Device {fingerprint: fp})<-[r:LOGGED_IN_FROM]-(c:Customer)
        WITH DISTINCT c LIMIT toInteger($cap)
        RETURN count(c) AS holders
      }
      RETURN collect({value: fp, holders: holders}) AS devices
    }
    CALL () {
      UNWIND $cards AS fp
      CALL (fp) {
        OPTIONAL MATCH (:PaymentMethod {card_fingerprint: fp})<-[:HAS_PAYMENT_METHOD]-(c:Customer)
        WITH DISTINCT c LIMIT toInteger($cap)
        RETURN count(c) AS holders
      }
      RETURN collect({value: fp, holders: holders}) AS cards
    }
    CALL () {
      MATCH (c:Customer) RETURN count(c) AS customers
    }
    CALL () {
      MATCH (r:Retired) RETURN count(r) AS retired
    }
    RETURN identifiers, names, addresses, devices, cards, customers - retired AS population`,
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
  const row = (await tx.run(CYPHER.locked, { customerId, withDisowned: false })).records[0];
  return row ? { record: recordOf(row), recent: Number(row.get('recent')) } : null;
}

/** The records of the customers `ids` (those that exist), unlocked; with removed devices and addresses if asked. */
export async function recordsTx(
  tx: ManagedTransaction,
  ids: string[],
  withDisowned = false,
): Promise<ResolutionRecord[]> {
  if (ids.length === 0) return [];
  return (await tx.run(CYPHER.records, { ids, withDisowned })).records.map(recordOf);
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

/** The statement counting a customer's values' holders (exported for the bounded-read test). */
export const CUSTOMER_HOLDERS = CYPHER.customerHolders;

interface Held {
  value?: string;
  holders: unknown;
}

/**
 * How common a customer's own values are among the customers on file, as the model weighs them:
 * the holders of each identifier, name (its key's holders), address, device and card, the customer
 * included, over the population.
 */
async function customerFrequenciesTx(
  tx: ManagedTransaction,
  record: ResolutionRecord,
  prepared: PreparedRecord,
  region: string,
): Promise<{ frequencies: Frequencies; population: number }> {
  const identifiers = [
    ...record.emails.map((e) => ({ type: 'email', value: e.value })),
    ...record.phones.map((p) => ({ type: 'phone_number', value: p.value })),
  ];
  const res = await tx.run(CUSTOMER_HOLDERS, {
    identifiers,
    names: Object.entries(nameKeys(prepared)).map(([comparison, key]) => ({ comparison, key })),
    addresses: record.addresses,
    devices: record.devices.map((d) => d.fingerprint),
    cards: record.cards.flatMap((c) => (c.fingerprint ? [c.fingerprint] : [])),
    cap: HOLDERS_CAP,
  });
  const row = res.records[0];
  const population = Math.max(1, Number(row?.get('population') ?? 1));
  const counts = new Map<string, number>();
  const count = (key: string, holders: unknown): void => {
    counts.set(key, Math.max(counts.get(key) ?? 0, Number(holders)));
  };
  for (const h of (row?.get('identifiers') ?? []) as (Held & { type: string })[])
    count(
      h.type === 'email'
        ? `email:${normaliseEmail(h.value ?? '')?.canonical}`
        : `phone:${normalisePhone(h.value ?? '', region)}`,
      h.holders,
    );
  const nameOf = { given_name: prepared.given, family_name: prepared.family };
  for (const n of (row?.get('names') ?? []) as { comparison: keyof typeof nameOf; holders: unknown }[])
    if (Number(n.holders) > 0) count(`${n.comparison}:${nameOf[n.comparison]}`, n.holders);
  for (const a of (row?.get('addresses') ?? []) as { at: unknown; holders: unknown }[]) {
    const address = record.addresses[Number(a.at)] as RecordAddress;
    count(`address:${parseAddress(address).key}`, a.holders);
  }
  for (const d of (row?.get('devices') ?? []) as Held[]) count(`device:${d.value}`, d.holders);
  for (const c of (row?.get('cards') ?? []) as Held[]) count(`card:${c.value}`, c.holders);
  const frequencies: Frequencies = (comparison, value) => {
    const n = counts.get(`${comparison}:${value}`);
    return n === undefined ? null : Math.max(1, n) / population;
  };
  return { frequencies, population };
}

/**
 * An email or phone number two customers both gave, known only from what an onboarding recorded:
 * the graph links an identifier to its first holder alone, so the other's record does not hold it.
 */
export interface SharedIdentifier {
  type: 'email' | 'phone_number';
  verifiedOnBoth: boolean;
}

/** Stands for a shared identifier's value: one customer holds it, so its frequency is one in the population. */
const SHARED_VALUE = '\u0000shared';

/** The records' agreements, with each identifier an onboarding recorded them sharing where the records say less. */
function withShared(agreements: Agreement[], shared: SharedIdentifier[]): Agreement[] {
  let out = agreements;
  for (const s of shared) {
    const comparison = s.type === 'email' ? 'email' : 'phone';
    const level = s.verifiedOnBoth ? 'exact_verified' : 'exact';
    const levels = COMPARISONS[comparison] as readonly string[];
    const current = out.find((a) => a.comparison === comparison);
    if (current && levels.indexOf(current.level) <= levels.indexOf(level)) continue;
    out = [...out.filter((a) => a.comparison !== comparison), { comparison, level, value: SHARED_VALUE }];
  }
  return out;
}

/**
 * The match model's score of each of `others` as the customer `customerId`'s person, weighed by how
 * common the customer's values are, with the identifiers `sharedWith` says the two gave; empty when
 * the customer does not exist. Both records keep the devices and addresses their customers removed,
 * as the evidence does. Read in the caller's transaction, nothing locked.
 */
export async function scoreAgainstTx(
  tx: ManagedTransaction,
  customerId: string,
  others: string[],
  region: string,
  sharedWith: (otherId: string) => SharedIdentifier[] = () => [],
): Promise<Map<string, MatchScore>> {
  const records = await recordsTx(tx, [customerId, ...others.filter((id) => id !== customerId)], true);
  const own = records.find((r) => r.id === customerId);
  const scores = new Map<string, MatchScore>();
  if (!own) return scores;
  const self = prepare(own, region);
  const { frequencies, population } = await customerFrequenciesTx(tx, own, self, region);
  const weigh: Frequencies = (c, v) => (v === SHARED_VALUE ? 1 / population : frequencies(c, v));
  for (const r of records) {
    if (r.id === customerId) continue;
    const agreements = withShared(compareRecords(self, prepare(r, region)), sharedWith(r.id));
    scores.set(r.id, scoreAgreements(agreements, MATCH_MODEL, weigh, population));
  }
  return scores;
}
