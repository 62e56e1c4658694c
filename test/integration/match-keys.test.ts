/**
 * Candidates by the person (graph/matchKeys.ts): a customer an onboarding creates holds its
 * person's blocking keys, hashed; a later sign-up sharing no identifier or device with it finds it
 * by them, and the model decides whether it is suggested. A key of more than 50 holders names
 * nobody and takes no more; an erasure takes the customer's keys with it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onboardCustomer, prepareOnboarding, type OnboardingRequest } from '../../graph';
import { eraseCustomer } from '../../graph/erasure';
import { unmergeCustomers } from '../../graph/identityUnmerge';
import { readTx } from '../../graph/graph';
import { frequenciesTx, signUpRecord } from '../../graph/customerRecords';
import { keyCandidatesTx, personKeys } from '../../graph/matchKeys';
import { listMatchEvidence } from '../../graph/matchEvidence';
import { KEY_CAP } from '../../resolution/blocking';
import { prepare } from '../../resolution/compare';
import { POLICY } from '../../resolution/policy';
import { emptyRecord } from '../../resolution/record';
import { mergeInGraph, onboardingBody } from '../support/builders';
import { openTestGraph, uniqueEmail, uniquePerson, type TestGraph } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

type Person = NonNullable<OnboardingRequest['person']>;

/**
 * A sign-up with its own verified email and device (no IP) and no card (the builder's card and
 * network are every test's), saying `person`.
 */
const onboard = (person: Person | undefined, tag = 'keys') =>
  onboardCustomer(
    g,
    prepareOnboarding(
      g,
      onboardingBody({
        customer: { segment: 'Subscriber', ltv: '0' },
        digital_identifiers: [{ type: 'email', value: uniqueEmail(tag), is_verified: true }],
        device: { fingerprint: `fp-${randomUUID()}` },
        payment_method: undefined,
        ...(person ? { person } : {}),
      }),
    ),
    { onboardingId: `onboarding-${randomUUID()}`, customerId: randomUUID() },
  );

const keysOf = async (customerId: string): Promise<string[]> =>
  (
    await g.query<{ key: string }>('MATCH (:Customer {id: $customerId})-[:KEYED]->(k:MatchKey) RETURN k.key AS key', {
      customerId,
    })
  ).map((r) => r.key);

interface MatchPayload {
  matched_customer_id: string;
  signals: string[];
  probability: number;
}

const possibleMatchEvents = async (customerId: string): Promise<MatchPayload[]> =>
  (
    await g.query<{ payload: string }>(
      "MATCH (e:Event {customer_id: $customerId, type: 'PossibleMatchFound'}) RETURN e.payload AS payload",
      { customerId },
    )
  ).map((r) => JSON.parse(r.payload) as MatchPayload);

describe('candidates by the person', () => {
  it('suggests a customer who shares nothing but the person, with the model’s probability', async () => {
    const ann = uniquePerson();
    const onFile = await onboard(ann);
    // The keys are hashes: no name, birth date or email in them.
    const keys = await keysOf(onFile.customer_id);
    expect(keys.length).toBeGreaterThan(3);
    for (const value of [ann.given_name, ann.family_name, ann.family_name.toLowerCase(), ann.birth_date])
      expect(keys.join(' ')).not.toContain(value);

    const signUp = await onboard(ann);
    expect(signUp.outcome).toBe('created');
    const found = signUp.possible_matches.find((m) => m.customer_id === onFile.customer_id);
    expect(found?.probability).toBeGreaterThanOrEqual(POLICY.suggestProbability);
    const [event] = (await possibleMatchEvents(signUp.customer_id)).filter(
      (e) => e.matched_customer_id === onFile.customer_id,
    );
    expect(event).toMatchObject({ signals: ['similar_person'], probability: found?.probability });
    // Ops see why, in words, with the probability the model gave.
    const evidence = (await listMatchEvidence(g, signUp.customer_id))?.find(
      (m) => m.customer_id === onFile.customer_id,
    );
    expect(evidence?.parts).toContainEqual(
      expect.objectContaining({
        signal: 'similar_person',
        reason: expect.stringMatching(/the match model gave [01]\.\d\d$/),
      }),
    );
  });

  it('ranks the person above a namesake with another date of birth, who is not worth a review', async () => {
    const ann = uniquePerson();
    const [year, month, day] = ann.birth_date.split('-').map(Number) as [number, number, number];
    const pad = (n: number) => String(n).padStart(2, '0');
    // Another year, month and day: no typo or swap of the first.
    const namesake = await onboard({
      ...ann,
      birth_date: `${year - 37}-${pad((month % 12) + 1)}-${pad((day % 28) + 1)}`,
    });
    const onFile = await onboard(ann);
    const signUp = await onboard(ann);
    expect(signUp.possible_matches[0]?.customer_id).toBe(onFile.customer_id);
    const other = signUp.possible_matches.find((m) => m.customer_id === namesake.customer_id);
    expect(other?.probability ?? 0).toBeLessThan(POLICY.reviewProbability);
  });

  it('finds a record merged into another as the customer it was merged into', async () => {
    const bill = uniquePerson();
    const merged = await onboard(bill);
    const survivor = await onboard(uniquePerson());
    await mergeInGraph(g, survivor.customer_id, merged.customer_id);
    // The merged record keeps its keys; a sign-up of its person is led to the survivor.
    const signUp = prepare(emptyRecord('sign-up', bill), g.policy.defaultPhoneRegion);
    const candidates = await readTx(g, (tx) => keyCandidatesTx(tx, personKeys(signUp)));
    expect(candidates).toEqual([survivor.customer_id]);
  });

  it('a key more than 50 customers hold names nobody', async () => {
    const twin = uniquePerson();
    const many: string[] = [];
    for (let i = 0; i < KEY_CAP + 2; i++) many.push((await onboard(twin, 'crowd')).customer_id);
    // Of its person keys (its name keys count how many bear each name, and name nobody).
    const keys = personKeys(prepare(emptyRecord('sign-up', twin), g.policy.defaultPhoneRegion));
    const [held] = await g.query<{ holders: number }>(
      'MATCH (:Customer {id: $id})-[:KEYED]->(k:MatchKey) WHERE k.key IN $keys ' +
        'RETURN max(COUNT { MATCH (k)<-[:KEYED]-(:Customer) }) AS holders',
      { id: many[0], keys },
    );
    expect(held?.holders).toBe(KEY_CAP + 2);
    const signUp = await onboard(twin);
    expect(signUp.possible_matches.filter((m) => many.includes(m.customer_id))).toEqual([]);
  });

  it('counts neither an erased nor a merged customer (until unmerged) in the prior’s population', async () => {
    const region = g.policy.defaultPhoneRegion;
    const population = async (): Promise<number> => {
      const plan = prepareOnboarding(g, onboardingBody({ payment_method: undefined }));
      const signUp = prepare(signUpRecord(plan), region);
      return (await readTx(g, (tx) => frequenciesTx(tx, plan, signUp, 0, region))).population;
    };
    const [erased, survivor, merged] = [
      await onboard(uniquePerson()),
      await onboard(uniquePerson()),
      await onboard(uniquePerson()),
    ];
    const before = await population();
    await eraseCustomer(g, erased.customer_id);
    const merge = {
      merge_id: `test-${randomUUID()}`,
      survivor_id: survivor.customer_id,
      merged_id: merged.customer_id,
    };
    await mergeInGraph(g, merge.survivor_id, merge.merged_id, merge.merge_id);
    // Erased and merged records stay (an id, a tombstone) but stand for nobody: the prior forgets them.
    expect(await population()).toBe(before - 2);
    // A merge undone gives the merged customer back to the population.
    await unmergeCustomers(g, { ...merge, requested_by: null, reason: 'two people' });
    expect(await population()).toBe(before - 1);
  });

  it('counts the customers bearing a name, so that a common one weighs less than a rare one', async () => {
    const region = g.policy.defaultPhoneRegion;
    const common = uniquePerson();
    // Five bear the family name, in different families (their given names and birth dates differ).
    for (let i = 0; i < 5; i++) await onboard({ ...uniquePerson(), family_name: common.family_name });
    // Family names of twelve made-up letters: nobody else's in the test graph, given names too.
    const rare = uniquePerson(uniquePerson().family_name);
    await onboard(rare);
    const weigh = async (person: Person) => {
      const plan = prepareOnboarding(g, onboardingBody({ payment_method: undefined, person }));
      const signUp = prepare(signUpRecord(plan), region);
      const { frequencies, population } = await readTx(g, (tx) => frequenciesTx(tx, plan, signUp, 0, region));
      return {
        family: Math.round((frequencies('family_name', signUp.family as string) ?? 0) * population),
        given: Math.round((frequencies('given_name', signUp.given as string) ?? 0) * population),
      };
    };
    // Counted by the name as the model compares it (upper case, accents folded), not as sent.
    expect(await weigh({ ...common, family_name: common.family_name.toLowerCase() })).toMatchObject({ family: 5 });
    expect(await weigh(rare)).toEqual({ family: 1, given: 1 });
    // A name nobody bears is not counted: the table's u weighs it, as offline.
    expect(await weigh(uniquePerson())).toEqual({ family: 0, given: 0 });
  });

  it('an erasure takes the customer’s keys with it', async () => {
    const onFile = await onboard(uniquePerson());
    const keys = await keysOf(onFile.customer_id);
    expect(keys.length).toBeGreaterThan(0);
    expect(await eraseCustomer(g, onFile.customer_id)).toMatchObject({ erased: true });
    expect(await keysOf(onFile.customer_id)).toEqual([]);
    // None is left without a holder (a key another customer holds stays theirs).
    const [left] = await g.query<{ n: number }>(
      'MATCH (k:MatchKey) WHERE k.key IN $keys AND NOT EXISTS { MATCH (k)<-[:KEYED]-(:Customer) } RETURN count(k) AS n',
      { keys },
    );
    expect(left?.n).toBe(0);
  });
});
