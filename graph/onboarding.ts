/**
 * Onboarding in the graph: identity resolution and the write of the customer with everything
 * linked to it, in ONE transaction (no half-onboarded customer can exist).
 *
 * Two steps, so that nothing secret or unnormalised ever reaches a workflow's history:
 *   1. `prepareOnboarding` (api, before the workflow starts; graph/onboardingRequest.ts): validate
 *      the request, normalise identifiers, drop junk, encrypt the payment token under a new
 *      payment-method id.
 *   2. `onboardCustomer` (the worker's activity): resolve and write, atomically and idempotently
 *      per onboarding id: a retry after a crash returns the first result and writes nothing.
 *
 * Races: verified identifiers are MERGEd first, in a fixed order; MERGE on the (type, value)
 * constraint locks the identifier until commit, so two onboardings of one verified email
 * serialise and the second sees the first's customer — one customer, whatever the interleaving.
 */
import { randomUUID } from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import { insertAddress } from './addresses';
import { insertCustomer } from './customers';
import { linkDeviceTx } from './devices';
import { ConflictError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { findFact } from './facts';
import { writeTx, type Graph } from './graph';
import { linkHistoryKeyTx } from './historyKeys';
import { registerOpenProcessTx } from './openProcesses';
import { attachIdentifiers } from './identifiers';
import type { IdentifierType, Person } from './model';
import { countPaymentMethodsTx, insertPaymentMethod } from './paymentMethods';
import { resolveIdentity, type IdentifierObservation, type Resolution } from './resolution';
import type { OnboardingPlan } from './onboardingRequest';
import { linkMatchKeysTx } from './matchKeys';
import { weighProofTx, type RankedMatch, type Refusal } from './proofCheck';
import type { LinkRefusal } from '../resolution/policy';

/** What an onboarding came to: the customer, created or matched, and its possible matches, the most likely first. */
export interface OnboardingResult {
  customer_id: string;
  outcome: 'created' | 'matched';
  /** `by_person`: found by the person's keys alone (graph/matchKeys.ts), not a shared identifier or device. */
  possible_matches: { customer_id: string; probability: number; by_person?: true }[];
  /**
   * Why the customer a verified identifier pointed at was not linked, when it was not: the workflow
   * counts it (`persona_onboarding_links_refused_total`) and never returns it (the caller would learn
   * what the other customer's record holds).
   */
  link_refused?: LinkRefusal;
}

// ---- the write ------------------------------------------------------------------------

/**
 * Customers already on a device, at most $cap of them (the shared-device limit + 1: enough to
 * tell a device shared beyond the limit, which is no match signal, without reading the thousands
 * a public terminal or a family tablet may have). DISTINCT and LIMIT stream: the read stops
 * after $cap customers, so it costs the same on a device shared by 100,000 as on a fresh one.
 */
export const DEVICE_CUSTOMERS = `
    MATCH (:Device {fingerprint: $fingerprint})<-[:LOGGED_IN_FROM]-(c:Customer)
    WITH DISTINCT c.id AS id LIMIT toInteger($cap)
    RETURN collect(id) AS customerIds`;

const CYPHER = {
  person: `
    MATCH (c:Customer {id: $customerId})
    WITH c, [k IN $parts WHERE $person[k] IS NOT NULL AND c[k] IS NULL] AS missing,
         [k IN $parts WHERE $person[k] IS NOT NULL AND c[k] IS NOT NULL AND c[k] <> $person[k]] AS differs
    FOREACH (_ IN CASE WHEN $created THEN [1] ELSE [] END |
      SET c.given_name = $person.given_name, c.family_name = $person.family_name, c.birth_date = $person.birth_date)
    RETURN CASE WHEN $created THEN missing ELSE [] END AS filled,
           CASE WHEN $created THEN [] ELSE missing END AS unfilled, differs`,
  mergeVerified: `
    UNWIND $identifiers AS i
    MERGE (d:DigitalIdentifier {type: i.type, value: i.value})
    ON CREATE SET d.id = i.id, d.is_verified = true, d.created_at = datetime.transaction(),
                  d.updated_at = datetime.transaction()
    WITH i, d
    OPTIONAL MATCH (owner:Customer)-[:HAS_DIGITAL_IDENTIFIER]->(d)
    RETURN i.type AS type, i.value AS value, d.id = i.id AS created, d.is_verified AS verified, owner.id AS ownerId`,
  lookupUnverified: `
    UNWIND $identifiers AS i
    OPTIONAL MATCH (d:DigitalIdentifier {type: i.type, value: i.value})
    OPTIONAL MATCH (owner:Customer)-[:HAS_DIGITAL_IDENTIFIER]->(d)
    RETURN i.type AS type, i.value AS value, d IS NOT NULL AS exists, d.is_verified AS verified, owner.id AS ownerId`,
  deviceCustomers: DEVICE_CUSTOMERS,
  lockCustomer: `
    MATCH (c:Customer {id: $customerId})
    SET c.updated_at = datetime.transaction()
    RETURN c.id AS id`,
  linkMerged: `
    MATCH (c:Customer {id: $customerId})
    UNWIND $identifiers AS i
    MATCH (d:DigitalIdentifier {type: i.type, value: i.value})
    MERGE (c)-[:HAS_DIGITAL_IDENTIFIER]->(d)`,
  reuseCard: `
    MATCH (c:Customer {id: $customerId})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
    WHERE p.type = $pm.type AND p.brand = $pm.brand AND p.last_four = $pm.last_four
      AND p.expiry_month = $pm.expiry_month AND p.expiry_year = $pm.expiry_year
    WITH r, p ORDER BY p.created_at LIMIT 1
    SET r.last_used = datetime.transaction(), r.first_used = coalesce(r.first_used, datetime.transaction())
    RETURN p.id AS id`,
  usedOn: `
    MATCH (p:PaymentMethod {id: $paymentMethodId}), (d:Device {id: $deviceId})
    MERGE (p)-[u:USED_ON]->(d)
    ON CREATE SET u.first_use = datetime.transaction()
    SET u.last_use = datetime.transaction()`,
  // The matched customer's own address, shipped to again: one they had disowned is theirs again.
  reuseAddress: `
    MATCH (c:Customer {id: $customerId})-[s:SHIPPED_TO]->(a:Address)
    WHERE toLower(a.street1) = toLower($a.street1) AND toLower(a.zip_code) = toLower($a.zip_code)
      AND a.country = $a.country
    WITH s, a ORDER BY a.created_at LIMIT 1
    SET s.last_shipped = datetime.transaction(), s.first_shipped = coalesce(s.first_shipped, datetime.transaction())
    REMOVE s.disowned_at
    RETURN a.id AS id`,
} as const;

const byKey = (a: { type: string; value: string }, b: { type: string; value: string }): number =>
  `${a.type}:${a.value}`.localeCompare(`${b.type}:${b.value}`);

async function observeIdentifiers(tx: ManagedTransaction, plan: OnboardingPlan): Promise<IdentifierObservation[]> {
  const verified = plan.digital_identifiers.filter((i) => i.is_verified).sort(byKey);
  const unverified = plan.digital_identifiers.filter((i) => !i.is_verified).sort(byKey);
  const observations: IdentifierObservation[] = [];
  if (verified.length > 0) {
    const res = await tx.run(CYPHER.mergeVerified, { identifiers: verified.map((i) => ({ ...i, id: randomUUID() })) });
    for (const r of res.records) {
      observations.push({
        type: r.get('type') as IdentifierType,
        value: r.get('value') as string,
        incomingVerified: true,
        onFile: r.get('created')
          ? null
          : { verified: r.get('verified') === true, ownerId: r.get('ownerId') as string | null },
      });
    }
  }
  if (unverified.length > 0) {
    const res = await tx.run(CYPHER.lookupUnverified, { identifiers: unverified });
    for (const r of res.records) {
      observations.push({
        type: r.get('type') as IdentifierType,
        value: r.get('value') as string,
        incomingVerified: false,
        onFile: r.get('exists')
          ? { verified: r.get('verified') === true, ownerId: r.get('ownerId') as string | null }
          : null,
      });
    }
  }
  return observations;
}

/** The customers already on a device, at most the shared-device limit + 1 (DEVICE_CUSTOMERS). */
async function deviceCustomersTx(tx: ManagedTransaction, g: Graph, fingerprint: string): Promise<string[]> {
  const res = await tx.run(CYPHER.deviceCustomers, { fingerprint, cap: g.policy.sharedDeviceLimit + 1 });
  return res.records[0]?.get('customerIds') as string[];
}

/** Identifiers: verified ones this transaction MERGEd are linked; new unverified ones created. */
async function linkIdentifiersTx(tx: ManagedTransaction, g: Graph, customerId: string, obs: IdentifierObservation[]) {
  const toLink = obs.filter((o) => o.incomingVerified);
  const toCreate = obs.filter((o) => !o.incomingVerified);
  if (toLink.length > 0) {
    await tx.run(CYPHER.linkMerged, { customerId, identifiers: toLink.map(({ type, value }) => ({ type, value })) });
    for (const o of toLink)
      await appendEvent(tx, 'DigitalIdentifierAdded', customerId, { type: o.type, is_verified: true });
  }
  const unverified = toCreate.map(({ type, value }) => ({ type, value, is_verified: false }));
  await attachIdentifiers(tx, customerId, unverified, g.policy.defaultPhoneRegion);
}

/** The plan's address, if any: a matched customer's own one shipped to again, else a new one. */
async function addressTx(tx: ManagedTransaction, plan: OnboardingPlan, customerId: string, matchedId: string | null) {
  if (!plan.address) return null;
  const reused = matchedId
    ? ((await tx.run(CYPHER.reuseAddress, { customerId, a: plan.address })).records[0]?.get('id') as string | undefined)
    : undefined;
  return reused ?? (await insertAddress(tx, customerId, plan.address, { used: true })).id;
}

/** The PossibleMatchFound event of one possible match of the onboarding (with the refusal, when it is its). */
function possibleMatchFound(
  match: RankedMatch,
  ids: { onboardingId: string },
  observations: IdentifierObservation[],
  refusal: Refusal | null,
) {
  const { customerId: refused, ...why } = refusal ?? { customerId: null };
  return {
    matched_customer_id: match.customer_id,
    signals: match.signals,
    onboarding_id: ids.onboardingId,
    probability: match.probability,
    model_version: match.model_version,
    ...(refused === match.customer_id ? { link_refused: why } : {}),
    // On which side each identifier the other customer holds was verified (types only, never values):
    // what the match's evidence says of it later (graph/matchEvidence.ts).
    identifiers: observations.flatMap((o) =>
      o.onFile?.ownerId === match.customer_id
        ? [{ type: o.type, incoming_verified: o.incomingVerified, on_file_verified: o.onFile.verified }]
        : [],
    ),
  };
}

/** A possible match as the result lists it: whether the person's keys alone found it, never why else. */
const resultMatch = (m: RankedMatch): OnboardingResult['possible_matches'][number] => ({
  customer_id: m.customer_id,
  probability: m.probability,
  ...(m.signals.includes('similar_person') ? { by_person: true as const } : {}),
});

/** Why the customer a verified identifier pointed at was not linked, if one was not (or two were proven). */
function linkRefusal(resolution: Resolution, refusal: Refusal | null): { link_refused?: LinkRefusal } {
  if (refusal && refusal.reason !== 'no_proof') return { link_refused: refusal.reason };
  // Two customers each proven by one of the sign-up's verified identifiers: never guessed between.
  const onTwo = resolution.possibleMatches.some((m) => m.signals.includes('conflicting_verified_identifiers'));
  return onTwo ? { link_refused: 'proof_on_two_customers' } : {};
}

/** Which parts of the person an onboarding set, left unset and said otherwise: kinds, never values. */
interface PersonFill {
  filled: (keyof Person)[];
  unfilled: (keyof Person)[];
  differs: (keyof Person)[];
}

/**
 * What the request says of the person is set on a customer it creates; a match never writes it: a
 * value written by a link would make the customer's own later sign-ups conflict (a child linking
 * with a family email would fill in their birth date, and the parent be refused from then on). The
 * event says, by kind, what was set, what the record lacks, and what the request said otherwise.
 */
async function fillPersonTx(tx: ManagedTransaction, plan: OnboardingPlan, customerId: string, created: boolean) {
  if (!plan.person) return {};
  const parts: (keyof Person)[] = ['given_name', 'family_name', 'birth_date'];
  const record = (await tx.run(CYPHER.person, { customerId, person: plan.person, parts, created })).records[0];
  const kinds = (key: string) => (record?.get(key) as (keyof Person)[] | undefined) ?? [];
  const person: PersonFill = { filled: kinds('filled'), unfilled: kinds('unfilled'), differs: kinds('differs') };
  return { person };
}

/** The matched customer, locked; or, with no match, the new customer `newId`, created. */
async function customerForTx(
  tx: ManagedTransaction,
  g: Graph,
  plan: OnboardingPlan,
  matchedCustomerId: string | null,
  newId: string,
): Promise<string> {
  if (!matchedCustomerId) {
    await insertCustomer(tx, newId, { status: 'active', ...plan.customer }, g.policy.reportingCurrency);
    return newId;
  }
  const locked = await tx.run(CYPHER.lockCustomer, { customerId: matchedCustomerId });
  if (locked.records.length === 0) throw new NotFoundError('Customer', matchedCustomerId);
  return matchedCustomerId;
}

async function onboardTx(
  tx: ManagedTransaction,
  g: Graph,
  plan: OnboardingPlan,
  ids: { onboardingId: string; customerId: string },
): Promise<OnboardingResult> {
  const idempotencyKey = `onboarding:${ids.onboardingId}`;
  const prior = await findFact(tx, idempotencyKey);
  if (prior) return prior.payload.result as unknown as OnboardingResult;

  const observations = await observeIdentifiers(tx, plan);
  const device = plan.device ? { customerIds: await deviceCustomersTx(tx, g, plan.device.fingerprint) } : null;
  const resolved = resolveIdentity(observations, device, g.policy.sharedDeviceLimit);
  const holders = device?.customerIds.length ?? 0;
  const { resolution, refusal, link, ranked, keys } = await weighProofTx(tx, g, plan, resolved, observations, holders);

  const customerId = await customerForTx(tx, g, plan, resolution.matchedCustomerId, ids.customerId);

  const attachKeys = new Set(resolution.attach.map((a) => `${a.type}:${a.value}`));
  const attached = observations.filter((o) => attachKeys.has(`${o.type}:${o.value}`));
  await linkIdentifiersTx(tx, g, customerId, attached);
  const linkedDevice = plan.device ? await linkDeviceTx(tx, customerId, plan.device) : null;

  let paymentMethodId: string | null = null;
  const ignored = [...plan.ignored];
  if (plan.payment_method) {
    const reused = resolution.matchedCustomerId
      ? ((await tx.run(CYPHER.reuseCard, { customerId, pm: plan.payment_method })).records[0]?.get('id') as
          string | undefined)
      : undefined;
    // A returning customer's wallet at its cap takes no new card from an onboarding either (as
    // adding one is refused): the customer is onboarded, the card left out, and the event says so.
    const full =
      !reused &&
      Boolean(resolution.matchedCustomerId) &&
      (await countPaymentMethodsTx(tx, customerId)) >= g.policy.maxPaymentMethods;
    if (full) ignored.push({ field: 'payment_method', reason: 'wallet_full' });
    else {
      paymentMethodId = reused ?? (await insertPaymentMethod(tx, customerId, plan.payment_method, { used: true })).id;
      if (linkedDevice) await tx.run(CYPHER.usedOn, { paymentMethodId, deviceId: linkedDevice.id });
    }
  }

  const addressId = await addressTx(tx, plan, customerId, resolution.matchedCustomerId);
  const person = await fillPersonTx(tx, plan, customerId, resolution.outcome === 'created');
  // The person's keys are the sign-up's: a link writes no person, so only a new customer holds them.
  if (resolution.outcome === 'created') await linkMatchKeysTx(tx, customerId, keys);

  // The onboarding's history key (graph/historyKeys.ts) is now the customer's: erasing the customer
  // destroys it. Until the onboarding closes it is an open process of the customer's: erasure waits.
  await linkHistoryKeyTx(tx, ids.onboardingId, customerId);
  await registerOpenProcessTx(tx, ids.onboardingId, customerId);

  for (const match of ranked)
    await appendEvent(tx, 'PossibleMatchFound', customerId, possibleMatchFound(match, ids, observations, refusal));
  const result: OnboardingResult = {
    customer_id: customerId,
    outcome: resolution.outcome,
    possible_matches: ranked.map(resultMatch),
    ...linkRefusal(resolution, refusal),
  };
  const onboarded = {
    onboarding_id: ids.onboardingId,
    outcome: resolution.outcome,
    result,
    payment_method_id: paymentMethodId,
    device_id: linkedDevice?.id ?? null,
    address_id: addressId,
    identifiers: observations.map((o) => ({
      type: o.type,
      is_verified: o.incomingVerified,
      linked: attachKeys.has(`${o.type}:${o.value}`),
    })),
    ignored,
    ...person,
    ...(link ? { link } : {}),
  };
  await appendEvent(tx, 'CustomerOnboarded', customerId, onboarded, { idempotencyKey });
  return result;
}

/**
 * Resolves the identity and writes the onboarding in one transaction. Idempotent per
 * onboarding id. A race lost on a new unverified identifier (or on the onboarding itself)
 * re-runs the resolution, which then sees the winner's write.
 */
export async function onboardCustomer(
  g: Graph,
  plan: OnboardingPlan,
  ids: { onboardingId: string; customerId: string },
): Promise<OnboardingResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeTx(g, (tx) => onboardTx(tx, g, plan, ids));
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 5) throw err;
    }
  }
}
