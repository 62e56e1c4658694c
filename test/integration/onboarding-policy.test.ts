/**
 * The resolution policy at onboarding (graph/proofCheck.ts): a verified identifier held by one
 * customer links only when nothing known of the two people conflicts, the match model finds them
 * one person with the policy's probability and that customer has not been linked to too often this
 * month; a refused link creates a new customer and leaves the proof's
 * customer as a possible match that says why, in words.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  getDigitalIdentifiersByCustomer,
  listCustomerEvents,
  onboardCustomer,
  prepareOnboarding,
  type OnboardingRequest,
} from '../../graph';
import { resetAutoLinks } from '../../graph/audit';
import { listMatchEvidence } from '../../graph/matchEvidence';
import { POLICY } from '../../resolution/policy';
import { MATCH_MODEL } from '../../resolution/weights';
import { onboardingBody } from '../support/builders';
import { openTestGraph, uniqueEmail, uniquePerson, type TestGraph } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

type Person = NonNullable<OnboardingRequest['person']>;

/** An onboarding of `email`, verified, saying `person` when given. */
const request = (email: string, person?: Person): OnboardingRequest =>
  onboardingBody({
    customer: { segment: 'Subscriber', ltv: '0' },
    digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
    ...(person ? { person } : {}),
  });

const onboard = (req: OnboardingRequest) =>
  onboardCustomer(g, prepareOnboarding(g, req), {
    onboardingId: `onboarding-${randomUUID()}`,
    customerId: randomUUID(),
  });

interface MatchPayload {
  matched_customer_id: string;
  signals: string[];
  probability: number;
  model_version: string;
  link_refused?: { reason: string; conflicts: string[] };
}

async function possibleMatchEvents(customerId: string): Promise<MatchPayload[]> {
  const events = await listCustomerEvents(g, customerId);
  return events.filter((e) => e.type === 'PossibleMatchFound').map((e) => e.payload as unknown as MatchPayload);
}

/** Each test's own person (identity resolution finds customers by name and birth date). */
let ann: ReturnType<typeof uniquePerson>;
beforeEach(() => {
  ann = uniquePerson();
});

describe('the resolution policy at onboarding', () => {
  it('links on proof when nothing known conflicts, a nickname and a partial birth date included', async () => {
    const email = uniqueEmail('proof');
    const born = ann.birth_date;
    const first = await onboard(request(email, { given_name: 'William', birth_date: born }));
    const again = await onboard(
      request(email, { given_name: 'Bill', family_name: ann.family_name, birth_date: born.slice(0, 7) }),
    );
    expect(again).toMatchObject({ customer_id: first.customer_id, outcome: 'matched' });
    const dated = await onboard(request(email, { birth_date: born }));
    expect(dated).toMatchObject({ customer_id: first.customer_id, outcome: 'matched' });
    // A link never writes who the person is; its event gives the model's probability, by version.
    const [person] = await g.query<Record<string, unknown>>(
      'MATCH (c:Customer {id: $id}) RETURN c.given_name AS given_name, c.family_name AS family_name',
      { id: first.customer_id },
    );
    expect(person).toEqual({ given_name: 'William', family_name: null });
    const onboarded = (await listCustomerEvents(g, first.customer_id)).filter((e) => e.type === 'CustomerOnboarded');
    const versions = onboarded.map((e) => (e.payload as { link?: { model_version: string } }).link?.model_version);
    // Newest first: the two links, then the onboarding that created the customer (no link).
    expect(versions).toEqual([MATCH_MODEL.version, MATCH_MODEL.version, undefined]);
  });

  it('refuses to link on a verified email alone: families share one, and the model says so', async () => {
    const email = uniqueEmail('alone');
    const first = await onboard(request(email, ann));
    const unsaid = await onboard(request(email));
    expect(unsaid.outcome).toBe('created');
    // Why, for the workflow to count (it never returns it).
    expect(unsaid.link_refused).toBe('probability_below_threshold');
    expect(unsaid.possible_matches).toEqual([{ customer_id: first.customer_id, probability: expect.any(Number) }]);
    const probability = unsaid.possible_matches[0]?.probability ?? 1;
    expect(probability).toBeLessThan(POLICY.autoLinkProbability);
    expect(probability).toBeGreaterThanOrEqual(POLICY.reviewProbability);
    const [match] = await possibleMatchEvents(unsaid.customer_id);
    expect(match).toMatchObject({
      matched_customer_id: first.customer_id,
      signals: ['link_refused', 'verified_email'],
      probability,
      link_refused: { reason: 'probability_below_threshold', conflicts: [] },
    });
    // The email stays its owner's: the new customer holds nothing of it.
    expect(await getDigitalIdentifiersByCustomer(g, unsaid.customer_id)).toEqual([]);
  });

  it('refuses to link on proof when the dates of birth differ, and says why in a possible match', async () => {
    const email = uniqueEmail('family');
    const parent = await onboard(request(email, ann));
    // The child's own date, no typo or swap of the parent's (and no other run's child's: a birth date
    // is a key of the person).
    const [year, month, day] = ann.birth_date.split('-').map(Number) as [number, number, number];
    const pad = (n: number) => String(n).padStart(2, '0');
    const born = `${year - 37}-${pad((month % 12) + 1)}-${pad((day % 28) + 1)}`;
    const child = await onboard(request(email, { ...ann, birth_date: born }));
    expect(child.outcome).toBe('created');
    expect(child.link_refused).toBe('proof_conflicts');
    expect(child.customer_id).not.toBe(parent.customer_id);
    expect(child.possible_matches.map((m) => m.customer_id)).toEqual([parent.customer_id]);
    const [match] = await possibleMatchEvents(child.customer_id);
    expect(match).toMatchObject({
      matched_customer_id: parent.customer_id,
      signals: ['link_refused', 'verified_email'],
      model_version: MATCH_MODEL.version,
      link_refused: { reason: 'proof_conflicts', conflicts: ['different dates of birth'] },
    });
    expect(match?.probability).toBe(child.possible_matches[0]?.probability);
    // Nothing of the parent's went to the child, and the event holds no value of either.
    expect(await getDigitalIdentifiersByCustomer(g, child.customer_id)).toEqual([]);
    expect((await getDigitalIdentifiersByCustomer(g, parent.customer_id)).map((i) => i.value)).toEqual([email]);
    for (const value of [...Object.values(ann), born, 'example.com'])
      expect(JSON.stringify(match)).not.toContain(value);
    // Ops reviewing the possible match see the refusal and why, and the conflict the model weighs.
    const [evidence] = (await listMatchEvidence(g, child.customer_id)) ?? [];
    expect(evidence?.parts).toContainEqual(
      expect.objectContaining({
        signal: 'link_refused',
        reason: expect.stringMatching(/different dates of birth$/),
      }),
    );
    expect(evidence?.conflicts).toEqual(['different dates of birth']);
  });

  it('refuses to link on proof when the given names differ (twins sharing an email)', async () => {
    const email = uniqueEmail('twins');
    const first = await onboard(request(email, ann));
    const twin = await onboard(request(email, { ...ann, given_name: 'Beth' }));
    expect(twin.outcome).toBe('created');
    const [match] = await possibleMatchEvents(twin.customer_id);
    expect(match?.link_refused).toMatchObject({ reason: 'proof_conflicts', conflicts: ['different given names'] });
    expect(match?.matched_customer_id).toBe(first.customer_id);
  });

  it('sends the next link to review once a customer had the policy’s auto-links this month', async () => {
    const email = uniqueEmail('squatted');
    const owner = await onboard(request(email, ann));
    for (let i = 0; i < POLICY.autoLinksPerMonth; i++)
      expect(await onboard(request(email, ann))).toMatchObject({ customer_id: owner.customer_id, outcome: 'matched' });
    const next = await onboard(request(email, ann));
    expect(next.outcome).toBe('created');
    const [match] = await possibleMatchEvents(next.customer_id);
    expect(match?.link_refused?.reason).toBe('too_many_recent_links');
    expect(next.link_refused).toBe('too_many_recent_links');

    // Ops who find the links spent by someone else give them back; the owner's sign-up links again.
    const reason = 'spent by sign-ups the owner did not make';
    expect(await resetAutoLinks(g, owner.customer_id, { reason, actor: 'ops-1' })).toEqual({
      cleared: POLICY.autoLinksPerMonth,
    });
    expect(await onboard(request(email, ann))).toMatchObject({ customer_id: owner.customer_id, outcome: 'matched' });
    const resets = async () =>
      (await listCustomerEvents(g, owner.customer_id)).filter((e) => e.type === 'OpsActionRecorded');
    expect((await resets()).map((e) => e.payload)).toEqual([
      { action: 'reset_auto_links', reason, actor: 'ops-1', customer_status: 'active', cleared: 3 },
    ]);
    // A repeat clears only what was linked since, and records only when it cleared something.
    expect(await resetAutoLinks(g, owner.customer_id, { reason, actor: 'ops-1' })).toEqual({ cleared: 1 });
    expect(await resetAutoLinks(g, owner.customer_id, { reason, actor: 'ops-1' })).toEqual({ cleared: 0 });
    expect(await resets()).toHaveLength(2);
  });

  it('links nobody when its verified email and phone are two customers’ proof, and says so', async () => {
    const email = uniqueEmail('two-owners');
    const phone = `+4479${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
    const byEmail = await onboard(request(email, ann));
    const byPhone = await onboard(
      onboardingBody({ digital_identifiers: [{ type: 'phone_number', value: phone, is_verified: true }], person: ann }),
    );
    const both = await onboard(
      onboardingBody({
        digital_identifiers: [
          { type: 'email', value: email, is_verified: true },
          { type: 'phone_number', value: phone, is_verified: true },
        ],
        person: ann,
      }),
    );
    expect(both.outcome).toBe('created');
    expect(both.link_refused).toBe('proof_on_two_customers');
    expect(both.possible_matches.map((m) => m.customer_id).sort()).toEqual(
      [byEmail.customer_id, byPhone.customer_id].sort(),
    );
  });

  it('ranks the possible matches by the model’s probability, the person who agrees first', async () => {
    const device = { fingerprint: `fp-${randomUUID()}`, ip: '198.51.100.7', user_agent: 'Safari' };
    const email = { type: 'email' as const, value: uniqueEmail('unverified'), is_verified: false };
    const zed = uniquePerson();
    const stranger = await onboard(onboardingBody({ device, person: zed }));
    const same = await onboard(onboardingBody({ device, digital_identifiers: [email], person: ann }));
    const signUp = await onboard(onboardingBody({ device, digital_identifiers: [email], person: ann }));
    expect(signUp.outcome).toBe('created');
    expect(signUp.possible_matches.map((m) => m.customer_id)).toEqual([same.customer_id, stranger.customer_id]);
    const [first, second] = signUp.possible_matches;
    expect(first?.probability).toBeGreaterThan(second?.probability ?? 1);
    // Each possible match's event carries its probability and the table it came from, and no value.
    const events = await possibleMatchEvents(signUp.customer_id);
    for (const m of signUp.possible_matches)
      expect(events.find((e) => e.matched_customer_id === m.customer_id)).toMatchObject({
        probability: m.probability,
        model_version: MATCH_MODEL.version,
      });
    for (const value of [...Object.values(ann), ...Object.values(zed), 'example.com'])
      expect(JSON.stringify(events)).not.toContain(value);
  });

  it('counts concurrent links to one customer: of 12 at once, exactly the policy’s limit link', async () => {
    const email = uniqueEmail('race');
    const owner = await onboard(request(email, ann));
    const results = await Promise.all(Array.from({ length: 12 }, () => onboard(request(email, ann))));
    const linked = results.filter((r) => r.outcome === 'matched');
    expect(linked).toHaveLength(POLICY.autoLinksPerMonth);
    expect(new Set(linked.map((r) => r.customer_id))).toEqual(new Set([owner.customer_id]));
    for (const r of results.filter((x) => x.outcome === 'created'))
      // The owner, and perhaps others of the 12 found by the email's local part.
      expect(r.possible_matches.map((m) => m.customer_id)).toContain(owner.customer_id);
    // The verified email is still the owner's alone.
    const [row] = await g.query<{ n: number }>(
      "MATCH (c:Customer)-[:HAS_DIGITAL_IDENTIFIER]->(:DigitalIdentifier {type: 'email', value: $email}) " +
        'RETURN count(c) AS n',
      { email },
    );
    expect(row?.n).toBe(1);
  });
});
