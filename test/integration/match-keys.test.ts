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
import { listMatchEvidence } from '../../graph/matchEvidence';
import { KEY_CAP } from '../../resolution/blocking';
import { POLICY } from '../../resolution/policy';
import { onboardingBody } from '../support/builders';
import { openTestGraph, uniqueEmail, uniquePerson, type TestGraph } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

type Person = NonNullable<OnboardingRequest['person']>;

/** A sign-up with its own verified email and device and no card (the builder's is everyone's), saying `person`. */
const onboard = (person: Person | undefined, tag = 'keys') =>
  onboardCustomer(
    g,
    prepareOnboarding(
      g,
      onboardingBody({
        customer: { segment: 'Subscriber', ltv: '0' },
        digital_identifiers: [{ type: 'email', value: uniqueEmail(tag), is_verified: true }],
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
    const ann = uniquePerson('Ann');
    const onFile = await onboard(ann);
    // The keys are hashes: no name, birth date or email in them.
    const keys = await keysOf(onFile.customer_id);
    expect(keys.length).toBeGreaterThan(3);
    for (const value of [ann.family_name, ann.family_name.toLowerCase(), ann.birth_date])
      expect(keys.join(' ')).not.toContain(value);

    const signUp = await onboard({ ...ann, given_name: 'Anne' });
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

  it('does not suggest a namesake with another date of birth', async () => {
    const ann = uniquePerson('Ann');
    const onFile = await onboard(ann);
    // Another year, month and day: no typo or swap of the first.
    const [year, month, day] = ann.birth_date.split('-').map(Number) as [number, number, number];
    const pad = (n: number) => String(n).padStart(2, '0');
    const other = `${year - 37}-${pad((month % 12) + 1)}-${pad((day % 28) + 1)}`;
    const namesake = await onboard({ ...ann, birth_date: other });
    expect(namesake.possible_matches.map((m) => m.customer_id)).not.toContain(onFile.customer_id);
  });

  it('a key more than 50 customers hold names nobody and takes no more holders', async () => {
    const twin = uniquePerson('Ann');
    const many: string[] = [];
    for (let i = 0; i < KEY_CAP + 2; i++) many.push((await onboard(twin, 'crowd')).customer_id);
    const [held] = await g.query<{ holders: number }>(
      'MATCH (:Customer {id: $id})-[:KEYED]->(k:MatchKey) ' +
        'RETURN max(COUNT { MATCH (k)<-[:KEYED]-(:Customer) }) AS holders',
      { id: many[0] },
    );
    expect(held?.holders).toBe(KEY_CAP + 1);
    // The last one's person keys were all taken: it holds only its email's own.
    expect(await keysOf(many[many.length - 1] as string)).toHaveLength(1);
    const signUp = await onboard(twin);
    expect(signUp.possible_matches.filter((m) => many.includes(m.customer_id))).toEqual([]);
  });

  it('an erasure takes the customer’s keys with it', async () => {
    const onFile = await onboard(uniquePerson('Ann'));
    const keys = await keysOf(onFile.customer_id);
    expect(keys.length).toBeGreaterThan(0);
    expect(await eraseCustomer(g, onFile.customer_id)).toMatchObject({ erased: true });
    const [left] = await g.query<{ n: number }>('MATCH (k:MatchKey) WHERE k.key IN $keys RETURN count(k) AS n', {
      keys,
    });
    expect(left?.n).toBe(0);
  });
});
