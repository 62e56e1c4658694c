/**
 * Customers for integration tests, each with identifiers of its own (an email from uniqueEmail, a
 * fresh card token and device fingerprint), so tests never see each other's data:
 *
 * - `seedCustomer`: written straight into the graph, with (as asked) a verified email, cards, a device;
 * - `customerWithTrustedDevice`: recovery.ts's customer with a card per token, and a trusted device;
 * - `onboardingBody`: an onboarding request (what POST /api/v1/onboarding and prepareOnboarding take);
 * - `onboardInGraph`: such a request onboarded straight in the graph (no workflow);
 * - `onboardThroughApi`: such a request posted to the api, with an idempotency key;
 * - `takenOverCustomer`: a customer Chimera reported taken over: suspended, its review pending.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import {
  addPaymentMethod,
  createCustomer,
  getDevicesByCustomer,
  linkDevice,
  onboardCustomer,
  prepareOnboarding,
  type DeviceInput,
  type Graph,
  type NewPaymentMethodInput,
  type OnboardingRequest,
} from '../../graph';
import { mergeCustomers } from '../../graph/identityMerge';
import { fraudOutcomeWorkflowId, type FraudOutcomeStatus } from '../../temporal/fraud';
import type { Harness } from './api';
import { cardInput, uniqueEmail, type TestGraph } from './graph';
import { send, type Reply, type Requestable } from './http';
import { customerWithCards } from './recovery';
import { until } from './wait';

export interface SeedCustomerOptions {
  /** The customer's id (a fresh one by default). */
  id?: string;
  /** The segment (createCustomer's default, New, when absent). */
  segment?: string;
  /** The LTV in minor units of the reporting currency (0 when absent). */
  ltvMinor?: number;
  /** A verified email made by uniqueEmail(emailTag); no identifier at all when absent. */
  emailTag?: string;
  /**
   * The customer's cards, the first the default: how many cardInput() cards, or each card's fields
   * over cardInput() (a fresh token, visa 4242, 12/2035). None when absent.
   */
  cards?: number | Partial<NewPaymentMethodInput>[];
  /** A device the customer logs in from, with these fields (a fresh fingerprint unless given). */
  device?: Partial<DeviceInput>;
}

export interface SeededCustomer {
  customerId: string;
  /** The verified email ('' without one). */
  email: string;
  /** The cards' ids, in the order given. */
  cards: string[];
  /** The first (default) card's id ('' without cards). */
  cardId: string;
  /** The device's id ('' without one). */
  deviceId: string;
}

/** A customer written straight into the graph (createCustomer, addPaymentMethod, linkDevice), as `options` say. */
export async function seedCustomer(g: Graph, options: SeedCustomerOptions = {}): Promise<SeededCustomer> {
  const email = options.emailTag === undefined ? '' : uniqueEmail(options.emailTag);
  const c = await createCustomer(g, {
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.segment === undefined ? {} : { segment: options.segment }),
    ...(options.ltvMinor === undefined ? {} : { ltv_minor: options.ltvMinor }),
    ...(email ? { digital_identifiers: [{ type: 'email', value: email, is_verified: true }] } : {}),
  });
  const cardFields =
    typeof options.cards === 'number' ? Array.from({ length: options.cards }, () => ({})) : (options.cards ?? []);
  const cards: string[] = [];
  for (const fields of cardFields) cards.push((await addPaymentMethod(g, c.id, cardInput(fields))).id);
  const device = options.device
    ? await linkDevice(g, c.id, { fingerprint: `fp-${randomUUID()}`, ...options.device })
    : undefined;
  return { customerId: c.id, email, cards, cardId: cards[0] ?? '', deviceId: device?.id ?? '' };
}

/**
 * recovery.ts's customer (a verified email, a card per token, the first the default) who logs in
 * from a device of their own, trusted (0.9) unless `device` says otherwise.
 */
export async function customerWithTrustedDevice(
  g: TestGraph,
  tokens: string[] = [`tok_visa_${randomUUID()}`],
  device: Partial<DeviceInput> = {},
) {
  const { customerId, cards } = await customerWithCards(g, tokens);
  const fingerprint = device.fingerprint ?? `fp-${randomUUID()}`;
  const linked = await linkDevice(g, customerId, { fingerprint, trust_score: 0.9, ...device });
  return { customerId, cards, deviceId: linked.id, fingerprint };
}

/**
 * An onboarding request: a New customer with a card (a fresh token, visa 4242, 12/2031), a device
 * (a fresh fingerprint, 198.51.100.7, Safari) and a verified email; `overrides` replace whole fields.
 */
export function onboardingBody(overrides: Partial<OnboardingRequest> = {}): OnboardingRequest {
  return {
    customer: { segment: 'New', ltv: '0' },
    payment_method: cardInput({ expiry_year: 2031 }),
    device: { fingerprint: `fp-${randomUUID()}`, ip: '198.51.100.7', user_agent: 'Safari' },
    digital_identifiers: [{ type: 'email', value: uniqueEmail(), is_verified: true }],
    ...overrides,
  };
}

/**
 * `onboardingBody(overrides)` onboarded straight in the graph, as the onboarding workflow's
 * activity does; with `trust`, what the customer earned on its device (its login edge: trust is
 * per customer).
 */
export async function onboardInGraph(
  g: TestGraph,
  overrides: Partial<OnboardingRequest> = {},
  options: { trust?: number } = {},
) {
  const result = await onboardCustomer(g, prepareOnboarding(g, onboardingBody(overrides)), {
    onboardingId: `seed-${randomUUID()}`,
    customerId: randomUUID(),
  });
  const [device] = await getDevicesByCustomer(g, result.customer_id);
  if (options.trust !== undefined)
    await g.query(
      'MATCH (:Customer {id: $customerId})-[l:LOGGED_IN_FROM]->(d:Device {id: $id}) SET l.trust_score = $trust',
      { customerId: result.customer_id, id: device?.id, trust: options.trust },
    );
  return { customerId: result.customer_id, deviceId: device?.id as string, result };
}

/**
 * POST /api/v1/onboarding with `body`, a fresh idempotency key unless one is given, waiting for
 * the answer unless `wait` is false.
 */
export function onboardThroughApi<T = Record<string, unknown>>(
  to: Requestable,
  token: string,
  body: unknown,
  options: { key?: string; wait?: boolean } = {},
): Promise<Reply<T>> {
  return send<T>(to, 'POST', `/api/v1/onboarding${options.wait === false ? '' : '?wait=true'}`, {
    token,
    body,
    headers: { 'idempotency-key': options.key ?? randomUUID() },
  });
}

/**
 * A customer with a card and a trusted device, taken over: Chimera reported account_takeover on
 * the device (answered 202), which suspends the customer; returns once the outcome awaits review.
 */
export async function takenOverCustomer(h: Harness) {
  const { customerId, cards, deviceId } = await customerWithTrustedDevice(h.graph);
  const outcomeId = `ato-${randomUUID()}`;
  const reported = await send(h.app, 'POST', '/api/v1/fraud-outcomes', {
    token: await h.token('fraud:report'),
    body: { outcome_id: outcomeId, customer_id: customerId, outcome: 'account_takeover', device_id: deviceId },
  });
  expect(reported.status).toBe(202);
  const review = h.client.workflow.getHandle(fraudOutcomeWorkflowId(outcomeId));
  await until(async () => (await review.query<FraudOutcomeStatus>('fraudOutcomeStatus')).state === 'awaiting_review');
  return { customerId, cards, deviceId, outcomeId, review };
}

/** `mergedId` merged into `survivorId` straight in the graph, as ops decide it: no workflow, no signal. */
export function mergeInGraph(g: Graph, survivorId: string, mergedId: string, mergeId = `test-${randomUUID()}`) {
  return mergeCustomers(g, {
    merge_id: mergeId,
    survivor_id: survivorId,
    merged_id: mergedId,
    decided_by: 'ops',
    requested_by: null,
    reason: 'test',
  });
}
