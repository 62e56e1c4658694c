import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addAddress,
  addDigitalIdentifier,
  addPaymentMethod,
  ConflictError,
  createCustomer,
  findCustomerByDigitalId,
  getAddressesByCustomer,
  getCustomer,
  getDevicesByCustomer,
  getDigitalIdentifiersByCustomer,
  getPaymentMethodsByCustomer,
  InvalidInputError,
  InvalidStateError,
  linkDevice,
  listCustomerEvents,
  NotFoundError,
  revealPaymentToken,
  setDefaultPaymentMethod,
  updateCustomer,
  updatePaymentMethodStatus,
} from '../../graph';
import { eraseCustomer } from '../../graph/erasure';
import { openTestGraph, uniqueEmail, type TestGraph, cardInput } from '../support/graph';

let g: TestGraph;
beforeAll(() => {
  g = openTestGraph();
});
afterAll(() => g.close());

const card = cardInput;

async function eventTypes(customerId: string): Promise<string[]> {
  return (await listCustomerEvents(g, customerId)).map((e) => e.type).reverse();
}

describe('customers and digital identifiers', () => {
  it('creates a customer with identifiers in one write, each with its event', async () => {
    const email = uniqueEmail();
    const customer = await createCustomer(g, {
      segment: 'Subscriber',
      ltv_minor: 12050,
      acquisition_date: '2024-03-01',
      digital_identifiers: [{ type: 'email', value: `  ${email.toUpperCase()} `, is_verified: true }],
    });
    expect(customer).toMatchObject({
      status: 'active',
      segment: 'Subscriber',
      ltv_minor: 12050,
      acquisition_date: '2024-03-01',
    });
    expect(await getCustomer(g, customer.id)).toEqual(customer);
    expect(await getDigitalIdentifiersByCustomer(g, customer.id)).toMatchObject([
      { type: 'email', value: email, is_verified: true },
    ]);
    expect(await eventTypes(customer.id)).toEqual(['CustomerCreated', 'DigitalIdentifierAdded']);
  });

  it('finds a customer by a differently written form of the same email', async () => {
    const email = uniqueEmail();
    const customer = await createCustomer(g, { digital_identifiers: [{ type: 'email', value: email }] });
    expect((await findCustomerByDigitalId(g, 'email', ` ${email.toUpperCase()}`))?.id).toBe(customer.id);
    expect(await findCustomerByDigitalId(g, 'email', uniqueEmail())).toBeNull();
  });

  it('leaves exactly one Customer and one DigitalIdentifier after 50 parallel creations of one email', async () => {
    const email = uniqueEmail('race');
    const ids = Array.from({ length: 50 }, () => randomUUID());
    // Differently written forms of the one address: normalisation must make them collide.
    const spellings = [email, email.toUpperCase(), ` ${email}`, `${email}\t`];
    const results = await Promise.allSettled(
      ids.map((id, i) =>
        createCustomer(g, {
          id,
          digital_identifiers: [{ type: 'email', value: spellings[i % spellings.length] as string, is_verified: true }],
        }),
      ),
    );

    const created = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(created).toHaveLength(1);
    expect(refused).toHaveLength(49);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(ConflictError);
      expect((r.reason as ConflictError).label).toBe('DigitalIdentifier');
      expect((r.reason as Error).message).not.toContain(email);
    }

    const [counts] = await g.query<{ customers: number; identifiers: number; events: number }>(
      `MATCH (c:Customer) WHERE c.id IN $ids
       WITH count(c) AS customers
       OPTIONAL MATCH (d:DigitalIdentifier {type: 'email', value: $email})
       WITH customers, count(d) AS identifiers
       OPTIONAL MATCH (e:Event) WHERE e.customer_id IN $ids
       RETURN customers, identifiers, count(e) AS events`,
      { ids, email },
    );
    expect(counts).toEqual({ customers: 1, identifiers: 1, events: 2 });
    expect((await findCustomerByDigitalId(g, 'email', email))?.id).toBe(
      (created[0] as PromiseFulfilledResult<{ id: string }>).value.id,
    );
  });

  it('surfaces constraint violations as ConflictError and writes nothing', async () => {
    const email = uniqueEmail();
    const first = await createCustomer(g, { digital_identifiers: [{ type: 'email', value: email }] });

    const sameId = createCustomer(g, { id: first.id });
    await expect(sameId).rejects.toBeInstanceOf(ConflictError);
    await expect(sameId).rejects.toMatchObject({ label: 'Customer', properties: ['id'] });

    const other = await createCustomer(g, {});
    const taken = addDigitalIdentifier(g, other.id, { type: 'email', value: email });
    await expect(taken).rejects.toMatchObject({ code: 'conflict', label: 'DigitalIdentifier' });
    expect(await getDigitalIdentifiersByCustomer(g, other.id)).toEqual([]);
    expect(await eventTypes(other.id)).toEqual(['CustomerCreated']);
  });

  it('refuses malformed input naming the field, before writing', async () => {
    await expect(createCustomer(g, { ltv_minor: -1 })).rejects.toMatchObject({ field: 'customer.ltv_minor' });
    await expect(createCustomer(g, { ltv_minor: 1.5 })).rejects.toMatchObject({ field: 'customer.ltv_minor' });
    await expect(
      createCustomer(g, { digital_identifiers: [{ type: 'email', value: 'not-an-email' }] }),
    ).rejects.toMatchObject({
      field: 'digital_identifiers.0.value',
    });
    await expect(updateCustomer(g, randomUUID(), { segment: 'VIP' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('sets no customer erased but by the erasure, and changes nothing on an erased one', async () => {
    // `erased` without the erasure would keep the data and leave the record in the prior's population.
    await expect(createCustomer(g, { status: 'erased' } as never)).rejects.toMatchObject({ field: 'customer.status' });
    const kept = await createCustomer(g, { segment: 'New' });
    await expect(updateCustomer(g, kept.id, { status: 'erased' } as never)).rejects.toMatchObject({
      field: 'customer.status',
    });
    expect(await getCustomer(g, kept.id)).toMatchObject({ status: 'active' });
    const gone = await createCustomer(g, { segment: 'New' });
    await eraseCustomer(g, gone.id);
    await expect(updateCustomer(g, gone.id, { segment: 'VIP' })).rejects.toBeInstanceOf(NotFoundError);
    const tombstone = await g.driver.executeQuery('MATCH (c:Customer {id: $id}) RETURN c.segment AS segment', {
      id: gone.id,
    });
    expect(tombstone.records[0]?.get('segment')).toBeNull();
  });

  it('records each changed field of an update, and nothing for an update that changes nothing', async () => {
    const customer = await createCustomer(g, { segment: 'New', ltv_minor: 1000 });
    const updated = await updateCustomer(g, customer.id, { segment: 'VIP', ltv_minor: 1000 });
    expect(updated).toMatchObject({ segment: 'VIP', ltv_minor: 1000 });
    await updateCustomer(g, customer.id, { segment: 'VIP' });
    const events = await listCustomerEvents(g, customer.id);
    const updates = events.filter((e) => e.type === 'CustomerProfileUpdated');
    expect(updates).toHaveLength(1);
    expect(updates[0]?.payload).toEqual({ changes: { segment: { from: 'New', to: 'VIP' } } });
  });
});

describe('payment methods', () => {
  it('encrypts the token at rest and never returns it', async () => {
    const customer = await createCustomer(g, {});
    const token = `tok_visa_${randomUUID()}`;
    const entry = await addPaymentMethod(g, customer.id, card({ token }));

    const [stored] = await g.query<{ token: string }>('MATCH (p:PaymentMethod {id: $id}) RETURN p.token AS token', {
      id: entry.id,
    });
    expect(stored?.token).toMatch(/^t2\./);
    expect(stored?.token).not.toContain(token);

    const everythingReturned = JSON.stringify([
      entry,
      await getPaymentMethodsByCustomer(g, customer.id),
      await listCustomerEvents(g, customer.id),
    ]);
    expect(everythingReturned).not.toContain(token);
    expect(everythingReturned).not.toContain(stored?.token);
    expect(entry).not.toHaveProperty('token');

    expect(await revealPaymentToken(g, entry.id)).toBe(token);
  });

  it('refuses a full card number as a token and writes nothing', async () => {
    const customer = await createCustomer(g, {});
    const attempt = addPaymentMethod(g, customer.id, card({ token: '4242 4242 4242 4242' }));
    await expect(attempt).rejects.toBeInstanceOf(InvalidInputError);
    await expect(attempt).rejects.toMatchObject({ field: 'payment_method.token' });
    expect(await getPaymentMethodsByCustomer(g, customer.id)).toEqual([]);
    expect(await eventTypes(customer.id)).toEqual(['CustomerCreated']);
  });

  it('names the missing card field', async () => {
    const customer = await createCustomer(g, {});
    await expect(addPaymentMethod(g, customer.id, card({ expiry_month: undefined }))).rejects.toMatchObject({
      field: 'payment_method.expiry_month',
    });
    await expect(addPaymentMethod(g, randomUUID(), card())).rejects.toBeInstanceOf(NotFoundError);
  });

  it('makes the first active method the default and keeps exactly one default', async () => {
    const customer = await createCustomer(g, {});
    const first = await addPaymentMethod(g, customer.id, card());
    const second = await addPaymentMethod(g, customer.id, card({ last_four: '1111' }));
    const third = await addPaymentMethod(g, customer.id, card({ last_four: '0005' }), { makeDefault: true });
    expect(first.is_default).toBe(true);
    expect(second.is_default).toBe(false);
    expect(third.is_default).toBe(true);

    const wallet = await getPaymentMethodsByCustomer(g, customer.id);
    expect(wallet.filter((p) => p.is_default).map((p) => p.id)).toEqual([third.id]);
    expect(wallet[0]?.id).toBe(third.id);

    const changes = (await listCustomerEvents(g, customer.id)).filter((e) => e.type === 'DefaultPaymentMethodChanged');
    expect(changes.map((e) => e.payload).reverse()).toEqual([
      { from: null, to: first.id },
      { from: first.id, to: third.id },
    ]);
  });

  it('leaves exactly one default after 20 concurrent set-defaults', async () => {
    const customer = await createCustomer(g, {});
    const methods: { id: string }[] = [];
    for (let i = 0; i < 5; i++) methods.push(await addPaymentMethod(g, customer.id, card({ last_four: `000${i}` })));

    const targets = Array.from({ length: 20 }, (_, i) => (methods[(i * 3) % methods.length] as { id: string }).id);
    await Promise.all(targets.map((id) => setDefaultPaymentMethod(g, customer.id, id)));

    const [row] = await g.query<{ defaults: number }>(
      'MATCH (:Customer {id: $id})-[r:HAS_PAYMENT_METHOD {is_default: true}]->() RETURN count(r) AS defaults',
      { id: customer.id },
    );
    expect(row?.defaults).toBe(1);
    // The default history is a chain: each change starts where the previous one ended.
    const changes = (await listCustomerEvents(g, customer.id))
      .filter((e) => e.type === 'DefaultPaymentMethodChanged')
      .reverse();
    for (let i = 1; i < changes.length; i++) expect(changes[i]?.payload.from).toBe(changes[i - 1]?.payload.to);
    const current = (await getPaymentMethodsByCustomer(g, customer.id)).find((p) => p.is_default);
    expect(current?.id).toBe(changes.at(-1)?.payload.to);
  });

  it('refuses a default that is not active or not the customer’s', async () => {
    const customer = await createCustomer(g, {});
    const other = await createCustomer(g, {});
    const active = await addPaymentMethod(g, customer.id, card());
    const expired = await addPaymentMethod(g, customer.id, card({ status: 'expired' }));
    const foreign = await addPaymentMethod(g, other.id, card());
    await expect(setDefaultPaymentMethod(g, customer.id, expired.id)).rejects.toBeInstanceOf(InvalidStateError);
    await expect(setDefaultPaymentMethod(g, customer.id, foreign.id)).rejects.toBeInstanceOf(NotFoundError);
    const defaults = (await getPaymentMethodsByCustomer(g, customer.id)).filter((p) => p.is_default);
    expect(defaults.map((p) => p.id)).toEqual([active.id]);
  });

  it('changes status with an event carrying the reason, once', async () => {
    const customer = await createCustomer(g, {});
    const pm = await addPaymentMethod(g, customer.id, card());
    const updated = await updatePaymentMethodStatus(g, pm.id, 'inactive', { reason: 'customer request' });
    expect(updated).toMatchObject({ id: pm.id, status: 'inactive', customer_id: customer.id });
    await updatePaymentMethodStatus(g, pm.id, 'inactive');
    const changes = (await listCustomerEvents(g, customer.id)).filter((e) => e.type === 'PaymentMethodStatusChanged');
    expect(changes.map((e) => e.payload)).toEqual([
      { payment_method_id: pm.id, from: 'active', to: 'inactive', reason: 'customer request' },
    ]);
    await expect(updatePaymentMethodStatus(g, pm.id, 'bogus' as never)).rejects.toMatchObject({ field: 'status' });
  });
});

describe('devices and addresses', () => {
  it('counts logins on one device node per fingerprint, shared between customers', async () => {
    const fingerprint = `fp-${randomUUID()}`;
    const customers = await Promise.all(Array.from({ length: 5 }, () => createCustomer(g, {})));
    await Promise.all(
      customers.map((c) => linkDevice(g, c.id, { fingerprint, ip: '203.0.113.7', user_agent: 'Tablet' })),
    );
    const again = await linkDevice(g, (customers[0] as { id: string }).id, { fingerprint, ip: '203.0.113.8' });
    expect(again).toMatchObject({
      fingerprint,
      login_count: 2,
      last_seen_ip: '203.0.113.8',
      last_seen_user_agent: 'Tablet',
      trust_score: 0.5,
    });

    const [row] = await g.query<{ devices: number; edges: number }>(
      'MATCH (d:Device {fingerprint: $fingerprint}) OPTIONAL MATCH (c:Customer)-[r:LOGGED_IN_FROM]->(d) ' +
        'RETURN count(DISTINCT d) AS devices, count(r) AS edges',
      { fingerprint },
    );
    expect(row).toEqual({ devices: 1, edges: 5 });
    const devices = await getDevicesByCustomer(g, (customers[1] as { id: string }).id);
    expect(devices).toMatchObject([{ fingerprint, login_count: 1 }]);
  });

  it('adds addresses with one default per type', async () => {
    const customer = await createCustomer(g, {});
    const base = { street1: '1 Main St', city: 'Springfield', zip_code: '12345', country: 'US' } as const;
    const first = await addAddress(g, customer.id, { ...base, is_default: true });
    const second = await addAddress(g, customer.id, { ...base, street1: '2 Main St', is_default: true });
    const addresses = await getAddressesByCustomer(g, customer.id);
    expect(addresses.filter((a) => a.is_default).map((a) => a.id)).toEqual([second.id]);
    expect(addresses.map((a) => a.id).sort()).toEqual([first.id, second.id].sort());
    await expect(addAddress(g, customer.id, { ...base, country: 'usa' })).rejects.toMatchObject({
      field: 'address.country',
    });
  });
});
