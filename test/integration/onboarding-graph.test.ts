import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addPaymentMethod,
  getDevicesByCustomer,
  getDigitalIdentifiersByCustomer,
  getPaymentMethodsByCustomer,
  listCustomerEvents,
  onboardCustomer,
  prepareOnboarding,
  removePaymentMethod,
  createCustomer,
  type OnboardingRequest,
} from '../../graph';
import { listMatchEvidence } from '../../graph/matchEvidence';
import { onboardingBody } from '../support/builders';
import { openTestGraph, uniqueEmail, uniquePerson, type TestGraph } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

const request = (overrides: Partial<OnboardingRequest> = {}): OnboardingRequest =>
  onboardingBody({
    customer: { segment: 'Subscriber', ltv: '0' },
    device: { fingerprint: `fp-${randomUUID()}`, ip: '198.51.100.4', user_agent: 'Firefox' },
    address: {
      street1: '1 Infinite Loop',
      city: 'Cupertino',
      state: 'CA',
      zip_code: '95014',
      country: 'US',
      type: 'billing',
    },
    ...overrides,
  });

/** The ids of an onboarding's possible matches, in its order. */
const ids = (matches: { customer_id: string }[]): string[] => matches.map((m) => m.customer_id);

const onboard = (req: OnboardingRequest, onboardingId = `onboarding-${randomUUID()}`) =>
  onboardCustomer(g, prepareOnboarding(g, req), { onboardingId, customerId: randomUUID() });

describe('onboarding in the graph', () => {
  it('creates a customer with everything linked, in one go', async () => {
    const result = await onboard(request());
    expect(result).toMatchObject({ outcome: 'created', possible_matches: [] });
    const wallet = await getPaymentMethodsByCustomer(g, result.customer_id);
    expect(wallet).toMatchObject([{ brand: 'visa', is_default: true, status: 'active' }]);
    expect(wallet[0]?.last_used).not.toBeNull();
    expect(await getDevicesByCustomer(g, result.customer_id)).toMatchObject([{ login_count: 1 }]);
    const types = (await listCustomerEvents(g, result.customer_id)).map((e) => e.type);
    expect(types).toContain('CustomerOnboarded');
    expect(types).toContain('CustomerCreated');
  });

  it('matches a verified email verified on file, links new facts and counts the login', async () => {
    const email = uniqueEmail();
    const fingerprint = `fp-${randomUUID()}`;
    const person = uniquePerson();
    const first = await onboard(
      request({
        digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
        device: { fingerprint },
        person,
      }),
    );
    const phone = `+1415555${String(Math.floor(Math.random() * 9000) + 1000)}`;
    const second = await onboard(
      request({
        digital_identifiers: [
          { type: 'email', value: email.toUpperCase(), is_verified: true },
          { type: 'phone_number', value: phone, is_verified: true },
        ],
        device: { fingerprint },
        person,
        payment_method: {
          type: 'card',
          token: `tok_${randomUUID()}`,
          brand: 'mastercard',
          last_four: '5454',
          expiry_month: 1,
          expiry_year: 2030,
        },
      }),
    );
    expect(second).toEqual({ customer_id: first.customer_id, outcome: 'matched', possible_matches: [] });
    expect((await getDigitalIdentifiersByCustomer(g, first.customer_id)).map((i) => i.type).sort()).toEqual([
      'email',
      'phone_number',
    ]);
    expect(await getDevicesByCustomer(g, first.customer_id)).toMatchObject([{ fingerprint, login_count: 2 }]);
    expect((await getPaymentMethodsByCustomer(g, first.customer_id)).map((p) => p.brand).sort()).toEqual([
      'mastercard',
      'visa',
    ]);
  });

  it('takes no new card past the wallet’s cap on a returning customer, and says so in the event', async () => {
    const capped = { ...g, policy: { ...g.policy, maxPaymentMethods: 1 } };
    const email = uniqueEmail();
    const person = uniquePerson();
    const again = (token: string, last_four: string) =>
      onboardCustomer(
        capped,
        prepareOnboarding(
          capped,
          request({
            digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
            person,
            payment_method: { ...request().payment_method!, token, last_four },
          }),
        ),
        { onboardingId: `onboarding-${randomUUID()}`, customerId: randomUUID() },
      );
    const first = await again(`tok_${randomUUID()}`, '4242');
    const second = await again(`tok_${randomUUID()}`, '1881');
    expect(second).toMatchObject({ customer_id: first.customer_id, outcome: 'matched' });
    expect(await getPaymentMethodsByCustomer(g, first.customer_id)).toHaveLength(1);
    const onboarded = await listCustomerEvents(g, first.customer_id, { type: 'CustomerOnboarded' });
    expect(onboarded.map((e) => e.payload)).toContainEqual(
      expect.objectContaining({
        payment_method_id: null,
        ignored: [{ field: 'payment_method', reason: 'wallet_full' }],
      }),
    );
  });

  it('never merges on an unverified email: a new customer and a possible match', async () => {
    const email = uniqueEmail();
    const first = await onboard(request({ digital_identifiers: [{ type: 'email', value: email, is_verified: true }] }));
    const second = await onboard(
      request({ digital_identifiers: [{ type: 'email', value: email, is_verified: false }] }),
    );
    expect(second.outcome).toBe('created');
    expect(second.customer_id).not.toBe(first.customer_id);
    expect(ids(second.possible_matches)).toEqual([first.customer_id]);
    // The strongest match (others may share the test's common address): the email, verified on one side.
    const [top] = (await listMatchEvidence(g, second.customer_id)) ?? [];
    expect(top).toMatchObject({ customer_id: first.customer_id, found_at: expect.any(String) });
    expect(top?.parts).toContainEqual(
      expect.objectContaining({ signal: 'unverified_email', details: { type: 'email', verified: 'one_side' } }),
    );
    expect(await getDigitalIdentifiersByCustomer(g, second.customer_id)).toEqual([]);
  });

  it('never merges on a device alone, and stops counting a device shared by too many', async () => {
    const fingerprint = `fp-${randomUUID()}`;
    const owners: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await onboard(request({ device: { fingerprint } }));
      expect(r.outcome).toBe('created');
      expect(ids(r.possible_matches).sort()).toEqual([...owners].sort());
      owners.push(r.customer_id);
    }
    // Six customers now share it: more than the limit of five, so it is no signal any more.
    const seventh = await onboard(request({ device: { fingerprint } }));
    expect(seventh).toMatchObject({ outcome: 'created', possible_matches: [] });
  });

  it('drops junk identifiers and fingerprints: they match nobody', async () => {
    const junk: OnboardingRequest = request({
      digital_identifiers: [
        { type: 'email', value: 'test@test.com', is_verified: true },
        { type: 'phone_number', value: '+1 000 000 0000', is_verified: true },
      ],
      device: { fingerprint: 'null' },
    });
    const a = await onboard(junk);
    const b = await onboard(junk);
    expect(a.outcome).toBe('created');
    expect(b).toMatchObject({ outcome: 'created', possible_matches: [] });
    expect(b.customer_id).not.toBe(a.customer_id);
    expect(await getDigitalIdentifiersByCustomer(g, b.customer_id)).toEqual([]);
    expect(await getDevicesByCustomer(g, b.customer_id)).toEqual([]);
  });

  it('is idempotent per onboarding id: a retry returns the first result and writes nothing more', async () => {
    const plan = prepareOnboarding(g, request());
    const onboardingId = `onboarding-${randomUUID()}`;
    const first = await onboardCustomer(g, plan, { onboardingId, customerId: randomUUID() });
    const retry = await onboardCustomer(g, plan, { onboardingId, customerId: randomUUID() });
    expect(retry).toEqual(first);
    const events = await listCustomerEvents(g, first.customer_id);
    expect(events.filter((e) => e.type === 'CustomerOnboarded')).toHaveLength(1);
    expect(await getDevicesByCustomer(g, first.customer_id)).toMatchObject([{ login_count: 1 }]);
  });

  it('ends 20 parallel onboardings of one verified email with the email on one customer', async () => {
    const email = uniqueEmail('race');
    const person = uniquePerson();
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        onboard(request({ digital_identifiers: [{ type: 'email', value: email, is_verified: true }], person })),
      ),
    );
    // One creates the email's customer, the policy's monthly few link to it (POLICY.autoLinksPerMonth),
    // the rest are new customers with it as a possible match (and, found by the person, each other).
    const owner = results.find((r) => r.outcome === 'matched')?.customer_id;
    expect(
      results
        .filter((r) => r.customer_id === owner)
        .map((r) => r.outcome)
        .sort(),
    ).toEqual(['created', 'matched', 'matched', 'matched']);
    for (const r of results.filter((x) => x.customer_id !== owner)) {
      expect(r.outcome).toBe('created');
      expect(ids(r.possible_matches)).toContain(owner);
    }
    const [row] = await g.query<{ n: number }>(
      "MATCH (c:Customer)-[:HAS_DIGITAL_IDENTIFIER]->(:DigitalIdentifier {type: 'email', value: $email}) " +
        'RETURN count(c) AS n',
      { email },
    );
    expect(row?.n).toBe(1);
  });

  it('never carries the plain token in the plan', () => {
    const token = `tok_${randomUUID()}`;
    const plan = prepareOnboarding(
      g,
      request({
        payment_method: { type: 'card', token, brand: 'visa', last_four: '4242', expiry_month: 2, expiry_year: 2032 },
      }),
    );
    expect(JSON.stringify(plan)).not.toContain(token);
  });
});

describe('removing a payment method', () => {
  it('promotes the most recently used active method when the default goes, or leaves none', async () => {
    const customer = await createCustomer(g, {});
    const card = { type: 'card', brand: 'visa', last_four: '4242', expiry_month: 12, expiry_year: 2030 } as const;
    const a = await addPaymentMethod(g, customer.id, { ...card, token: `tok_${randomUUID()}` });
    const b = await addPaymentMethod(g, customer.id, { ...card, token: `tok_${randomUUID()}` });
    const c = await addPaymentMethod(g, customer.id, { ...card, token: `tok_${randomUUID()}`, status: 'expired' });
    await g.query(
      'MATCH (:Customer {id: $customer})-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod) ' +
        'SET r.last_used = CASE p.id WHEN $b THEN datetime() - duration("P1D") WHEN $c THEN datetime() END',
      { customer: customer.id, b: b.id, c: c.id },
    );
    expect(await removePaymentMethod(g, customer.id, a.id)).toEqual({ promoted: b.id });
    expect((await getPaymentMethodsByCustomer(g, customer.id)).filter((p) => p.is_default).map((p) => p.id)).toEqual([
      b.id,
    ]);
    expect(await removePaymentMethod(g, customer.id, b.id)).toEqual({ promoted: null });
    expect((await getPaymentMethodsByCustomer(g, customer.id)).map((p) => [p.id, p.is_default])).toEqual([
      [c.id, false],
    ]);
    await expect(removePaymentMethod(g, customer.id, a.id)).rejects.toMatchObject({ code: 'not_found' });
  });
});
