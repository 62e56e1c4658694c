import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiDepsFromConfig } from '../../api/deps';
import { createGrpcServer, listen } from '../../api/grpc/server';
import { createDriver } from '../../graph';
import { createLogger } from '../../runtime/logger';
import { graphFromConfig } from '../../runtime/graph';
import type { PersonaAgentClient } from '../../proto/generated/persona/v1/PersonaAgent';
import { startHarness, type Harness } from '../support/api';
import { onboardInGraph } from '../support/builders';
import { cardInput, uniqueEmail, uniquePerson } from '../support/graph';
import { bearer, call, personaClient } from '../support/grpc';
import { freePort } from '../support/processes';
import { cardIdentity, customerWithCards, paymentId, simulatorCharges } from '../support/recovery';
import { until } from '../support/wait';
import type { RecoveryStatus } from '../../temporal/recovery';

let h: Harness;
let server: grpc.Server;
let client: PersonaAgentClient;
let address: string;

beforeAll(async () => {
  h = await startHarness();
  const deps = apiDepsFromConfig(h.graph.config, {
    logger: createLogger('grpc-test', 'silent'),
    readiness: [],
    graph: h.graph,
    client: h.client,
    requests: h.requests,
    taskQueue: h.taskQueue,
  });
  server = createGrpcServer(deps).server;
  address = `127.0.0.1:${await listen(server, '127.0.0.1', 0)}`;
  client = personaClient(address);
});
afterAll(async () => {
  client?.close();
  await new Promise<void>((resolve) => server?.tryShutdown(() => resolve()));
  await h?.close();
});

/** A VIP with a default card and one device, which they earned `trust` on. */
const customer = (trust = 0.85) =>
  onboardInGraph(
    h.graph,
    {
      customer: { segment: 'VIP', ltv: '12.3' },
      payment_method: cardInput({ expiry_year: 2034 }),
      device: { fingerprint: `fp-${randomUUID()}` },
    },
    { trust },
  );

describe('persona.v1.PersonaAgent over gRPC', () => {
  it('GetCustomerContext answers the context', async () => {
    const { customerId, deviceId } = await customer();
    const { res, code } = await call(
      client,
      'GetCustomerContext',
      { customer_id: customerId },
      bearer(await h.token('context:read')),
    );
    expect(code).toBe(grpc.status.OK);
    expect(res).toMatchObject({
      customer_id: customerId,
      status: 'active',
      segment: 'VIP',
      is_vip: true,
      ltv: '12.30',
    });
    expect(res?.trusted_devices).toEqual([
      { device_id: deviceId, fingerprint: expect.stringMatching(/^fp-/), trust_score: 0.85 },
    ]);
    expect(res?.active_payment_methods).toEqual([res?.default_payment_method_id]);
  });

  it('maps failures to status codes, naming the field', async () => {
    const ctx = bearer(await h.token('context:read'));
    expect(await call(client, 'GetCustomerContext', { customer_id: randomUUID() }, ctx)).toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    expect(await call(client, 'GetCustomerContext', { customer_id: 'nope' }, ctx)).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: 'customer_id',
      details: 'customer_id: must be a UUID',
    });
    expect(await call(client, 'GetCustomerContext', { customer_id: randomUUID() }, new grpc.Metadata())).toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    });
    expect(
      await call(client, 'GetCustomerContext', { customer_id: randomUUID() }, bearer(await h.token('customers:read'))),
    ).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    expect(await call(client, 'ReportFraudOutcome', { outcome_id: 'o' }, ctx)).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    expect(
      await call(
        client,
        'ReportFraudOutcome',
        { outcome_id: 'o', customer_id: randomUUID(), outcome: 'stolen_cookie' },
        bearer(await h.token('fraud:report')),
      ),
    ).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: 'outcome',
    });
    expect(
      await call(client, 'ReportPaymentFailure', { payment_id: 'p' }, bearer(await h.token('payments:report'))),
    ).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: 'customer_id',
    });
  });

  it('UpdateDeviceTrustScore and MarkPaymentMethodInactive show in the next context read', async () => {
    // The customer earned 0.9 there; a device-level signal caps everyone on the device.
    const { customerId, deviceId } = await customer(0.9);
    const ops = bearer(await h.token('ops'));
    expect((await call(client, 'GetCustomerContext', { customer_id: customerId }, ops)).res?.trusted_devices).toEqual([
      { device_id: deviceId, fingerprint: expect.stringMatching(/^fp-/), trust_score: 0.9 },
    ]);
    const updated = await call(
      client,
      'UpdateDeviceTrustScore',
      { device_id: deviceId, trust_score: 0.3, reason: 'chargeback' },
      bearer(await h.token('devices:write')),
    );
    // The token names the device's change (api/consistency.ts): its first numbered event.
    expect(updated.res).toEqual({
      device_id: deviceId,
      trust_score: 0.3,
      previous_trust_score: 1,
      consistency_token: `d:${deviceId}:1`,
    });
    const ctx = (await call(client, 'GetCustomerContext', { customer_id: customerId }, ops)).res;
    expect(ctx?.trusted_devices).toEqual([]);

    const off = await call(
      client,
      'MarkPaymentMethodInactive',
      { payment_method_id: ctx?.default_payment_method_id, reason: 'lost' },
      bearer(await h.token('fraud:report')),
    );
    const [seq] = await h.graph.query<{ seq: number }>('MATCH (c:Customer {id: $id}) RETURN c.event_seq AS seq', {
      id: customerId,
    });
    expect(off.res).toMatchObject({
      status: 'inactive',
      customer_id: customerId,
      consistency_token: `c:${customerId}:${seq?.seq}`,
    });
    expect((await call(client, 'GetCustomerContext', { customer_id: customerId }, ops)).res).toMatchObject({
      default_payment_method_id: '',
      active_payment_methods: [],
    });
    expect(await call(client, 'UpdateDeviceTrustScore', { device_id: deviceId, trust_score: 2 }, ops)).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: 'trust_score',
    });
    expect(await call(client, 'MarkPaymentMethodInactive', { payment_method_id: randomUUID() }, ops)).toMatchObject({
      field: 'reason',
    });
  });

  it('GetCheckoutOptions: a customer token for itself only', async () => {
    const a = await customer(0.9);
    const b = await customer();
    const self = bearer(await h.token('self', a.customerId));
    const mine = await call(client, 'GetCheckoutOptions', { customer_id: a.customerId, device_id: a.deviceId }, self);
    expect(mine.res).toMatchObject({ trusted_device: true });
    expect(mine.res?.data).toMatchObject([{ is_default: true, brand: 'visa', last_four: '4242' }]);
    expect(await call(client, 'GetCheckoutOptions', { customer_id: b.customerId }, self)).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
  });

  it('OnboardCustomer starts the onboarding workflow', async () => {
    const email = uniqueEmail();
    const req = {
      idempotency_key: randomUUID(),
      wait: true,
      customer: { segment: 'New' },
      payment_method: {
        type: 'card',
        token: `tok_${randomUUID()}`,
        brand: 'visa',
        last_four: '1881',
        expiry_month: 2,
        expiry_year: 2031,
      },
      digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
      // A verified email alone is not enough to link (families share one): the person says who.
      person: uniquePerson(),
    };
    const onboarder = bearer(await h.token('onboarding:write identity:verify'));
    const created = await call(client, 'OnboardCustomer', req, onboarder);
    expect(created.res).toMatchObject({ outcome: 'created', workflow_id: `onboarding-${req.idempotency_key}` });
    // A caller that may not vouch for verification is no match on the verified email, over gRPC as over REST.
    const unverifying = bearer(await h.token('onboarding:write'));
    const claimed = await call(client, 'OnboardCustomer', { ...req, idempotency_key: randomUUID() }, unverifying);
    // It learns that there is a possible match, not whose id (it has no identity:merge).
    expect(claimed.res).toMatchObject({ outcome: 'created', possible_match_count: 1, possible_matches: [] });
    const reviewer = bearer(await h.token('onboarding:write identity:merge'));
    const reviewed = await call(client, 'OnboardCustomer', { ...req, idempotency_key: randomUUID() }, reviewer);
    const ranked = (reviewed.res?.possible_matches ?? []) as { customer_id: string; probability: number }[];
    expect(ranked.map((m) => m.customer_id)).toContain(created.res?.customer_id);
    for (const m of ranked) expect(m.probability).toBeGreaterThan(0);
    // A segment needs customers:write: PERMISSION_DENIED naming the field, nothing started.
    const vipKey = randomUUID();
    const vip = await call(
      client,
      'OnboardCustomer',
      { ...req, idempotency_key: vipKey, customer: { segment: 'VIP' } },
      unverifying,
    );
    expect(vip.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(String(vip.details)).toContain('customer.segment');
    await expect(h.client.workflow.getHandle(`onboarding-${vipKey}`).describe()).rejects.toThrow(/not found/i);
    const matched = await call(client, 'OnboardCustomer', { ...req, idempotency_key: randomUUID() }, onboarder);
    expect(matched.res).toMatchObject({ outcome: 'matched', customer_id: created.res?.customer_id });

    const pan = await call(
      client,
      'OnboardCustomer',
      { ...req, idempotency_key: randomUUID(), payment_method: { ...req.payment_method, token: '4111111111111111' } },
      onboarder,
    );
    expect(pan).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: 'payment_method.token' });
    const month = await call(
      client,
      'OnboardCustomer',
      { ...req, idempotency_key: randomUUID(), payment_method: { ...req.payment_method, expiry_month: 13 } },
      onboarder,
    );
    expect(month).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: 'payment_method.expiry_month' });
  });

  it('OnboardCustomer takes who the person is, and refuses a birth date that is not one', async () => {
    const onboarder = bearer(await h.token('onboarding:write'));
    const req = {
      idempotency_key: randomUUID(),
      wait: true,
      digital_identifiers: [{ type: 'email', value: uniqueEmail() }],
      person: { given_name: 'Grace', family_name: 'Hopper', birth_date: '1906-12-09' },
    };
    const created = await call(client, 'OnboardCustomer', req, onboarder);
    expect(created.res).toMatchObject({ outcome: 'created' });
    const [stored] = await h.graph.query<Record<string, unknown>>(
      'MATCH (c:Customer {id: $id}) RETURN c.given_name AS given, c.family_name AS family, c.birth_date AS born',
      { id: created.res?.customer_id },
    );
    expect(stored).toEqual({ given: 'Grace', family: 'Hopper', born: '1906-12-09' });
    const key = randomUUID();
    const bad = await call(
      client,
      'OnboardCustomer',
      { ...req, idempotency_key: key, person: { birth_date: '9 December 1906' } },
      onboarder,
    );
    expect(bad).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: 'person.birth_date' });
    await expect(h.client.workflow.getHandle(`onboarding-${key}`).describe()).rejects.toThrow(/not found/i);
  });

  it('ReportPaymentFailure starts the recovery', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      'tok_decline_insufficient_funds_5',
      `tok_visa_${randomUUID()}`,
    ]);
    const payment = paymentId();
    const req = {
      payment_id: payment,
      customer_id: customerId,
      payment_method_id: cards[0],
      amount: '1500',
      currency: 'GBP',
      decline_code: 'insufficient_funds',
    };
    const started = await call(client, 'ReportPaymentFailure', req, bearer(await h.token('payments:report')));
    expect(started.res).toEqual({ workflow_id: `payment-recovery-${payment}` });
    expect(await h.client.workflow.getHandle(`payment-recovery-${payment}`).result()).toMatchObject({
      state: 'recovered',
      recovered_with: cards[1],
    });
  });

  it('ReportPaymentNoLongerOwed stops a dunning recovery for the owner only, naming a wrong field', async () => {
    const { customerId, cards } = await customerWithCards(h.graph, [
      `tok_decline_generic_decline_card-${cardIdentity()}`,
      `tok_decline_do_not_honor_card-${cardIdentity()}`,
    ]);
    const payment = paymentId();
    const owner = bearer(await h.token('payments:report'));
    const failure = {
      payment_id: payment,
      customer_id: customerId,
      payment_method_id: cards[0],
      amount: '1500',
      currency: 'GBP',
      decline_code: 'generic_decline',
    };
    expect((await call(client, 'ReportPaymentFailure', failure, owner)).res).toBeDefined();
    const handle = h.client.workflow.getHandle(`payment-recovery-${payment}`);
    await until(async () => (await handle.query<RecoveryStatus>('recoveryStatus')).state === 'dunning');
    const word = { payment_id: payment, reason: 'settled_elsewhere', wait: true };
    expect(await call(client, 'ReportPaymentNoLongerOwed', { ...word, reason: 'paid' }, owner)).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      field: 'reason',
    });
    expect(
      await call(client, 'ReportPaymentNoLongerOwed', word, bearer(await h.token('self', customerId))),
    ).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await call(client, 'ReportPaymentNoLongerOwed', { ...word, payment_id: paymentId() }, owner)).toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    expect((await call(client, 'ReportPaymentNoLongerOwed', word, owner)).res).toEqual({
      payment_id: payment,
      outcome: 'stopped',
      charge: null,
      unknown_charge: '',
      state: 'stopped',
      stop_reason: expect.any(String),
      status_url: `/api/v1/payment-recoveries/${payment}`,
    });
    expect(((await handle.result()) as RecoveryStatus).state).toBe('stopped');
    const charged = (await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId)).filter(
      (c) => c.status === 'succeeded',
    );
    expect(charged).toEqual([]);
  });

  it(
    'ReportFraudOutcome starts the fraud-outcome workflow, ' + 'and refuses a device that is not the customer’s',
    async () => {
      const a = await customer(0.5);
      const b = await customer(0.5);
      const token = bearer(await h.token('fraud:report'));
      const outcomeId = `grpc-${randomUUID()}`;
      const refused = await call(
        client,
        'ReportFraudOutcome',
        { outcome_id: outcomeId, customer_id: a.customerId, outcome: 'challenge_passed', device_id: b.deviceId },
        token,
      );
      expect(refused).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, field: 'device_id' });
      const started = await call(
        client,
        'ReportFraudOutcome',
        { outcome_id: outcomeId, customer_id: a.customerId, outcome: 'challenge_passed', device_id: a.deviceId },
        token,
      );
      expect(started.res).toEqual({ workflow_id: `fraud-outcome-${outcomeId}` });
      expect(await h.client.workflow.getHandle(`fraud-outcome-${outcomeId}`).result()).toMatchObject({
        state: 'done',
        applied: { changes: [{ from: 0.5, to: 0.6 }] },
      });
    },
  );

  it('answers UNAVAILABLE when Neo4j is down', async () => {
    const config = h.graph.config;
    const dead = createDriver({ ...config, NEO4J_URI: `bolt://127.0.0.1:${await freePort()}` });
    const deps = apiDepsFromConfig(config, {
      logger: createLogger('grpc-test', 'silent'),
      readiness: [],
      graph: graphFromConfig(dead, config),
      client: h.client,
      requests: h.requests,
    });
    const down = createGrpcServer(deps).server;
    const port = await listen(down, '127.0.0.1', 0);
    const downClient = personaClient(`127.0.0.1:${port}`);
    try {
      expect(
        await call(downClient, 'GetCustomerContext', { customer_id: randomUUID() }, bearer(await h.token('ops'))),
      ).toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
    } finally {
      downClient.close();
      await new Promise<void>((resolve) => down.tryShutdown(() => resolve()));
      await dead.close();
    }
  });

  it('serves the standard health service and reflection', async () => {
    const require = createRequire(import.meta.url);
    const healthProto = path.join(
      path.dirname(require.resolve('grpc-health-check/package.json')),
      'proto/health/v1/health.proto',
    );
    const reflectionProto = path.join(
      path.dirname(require.resolve('@grpc/reflection/package.json')),
      'build/proto/grpc/reflection/v1alpha/reflection.proto',
    );
    const loaded = grpc.loadPackageDefinition(
      protoLoader.loadSync([healthProto, reflectionProto], { keepCase: true, enums: String }),
    ) as unknown as {
      grpc: {
        health: { v1: { Health: grpc.ServiceClientConstructor } };
        reflection: { v1alpha: { ServerReflection: grpc.ServiceClientConstructor } };
      };
    };
    const health = new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as {
      Check(req: { service: string }, cb: (err: Error | null, res: { status: string }) => void): void;
      close(): void;
    };
    const status = await new Promise<string>((resolve, reject) =>
      health.Check({ service: 'persona.v1.PersonaAgent' }, (err, res) => (err ? reject(err) : resolve(res.status))),
    );
    expect(status).toBe('SERVING');
    health.close();

    const reflection = new loaded.grpc.reflection.v1alpha.ServerReflection(
      address,
      grpc.credentials.createInsecure(),
    ) as unknown as {
      ServerReflectionInfo(): grpc.ClientDuplexStream<
        { list_services: string },
        { list_services_response?: { service: { name: string }[] } }
      >;
      close(): void;
    };
    const stream = reflection.ServerReflectionInfo();
    const services = await new Promise<string[]>((resolve, reject) => {
      stream.on('data', (msg: { list_services_response?: { service: { name: string }[] } }) => {
        const names = (msg.list_services_response?.service ?? []).map((s) => s.name);
        resolve(names);
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
    expect(services).toEqual(expect.arrayContaining(['grpc.health.v1.Health', 'persona.v1.PersonaAgent']));
    reflection.close();
  });
});
