/**
 * What the fleet is asked to do while it is broken: paced onboardings, interactions each followed by
 * a read with its consistency token (through round robin, so most land on the other replica),
 * context reads by customer, payment recoveries and fraud outcomes, and a staleness probe that
 * writes on one replica and watches the other. Each keeps its own ledger of what it was answered,
 * which the checks (test/fleet/checks.ts) hold the fleet's records against.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { addPaymentMethod, createCustomer } from '../../graph';
import type { Graph } from '../../graph/graph';
import { cardIdentity } from '../support/recovery';
import type { FleetClient } from './client';
import type { Fleet } from './fleet';

export interface Population {
  /** Customers that record interactions and read them back, each with one good card. */
  payers: { id: string; card: string }[];
  /** One recovery each: a card the gateway declines, reported failed, and a good one to recover on. */
  debtors: { id: string; declined: string; good: string }[];
  /** Customers a fraud outcome is reported for. */
  flagged: string[];
}

export async function populate(graph: Graph, n: { payers: number; debtors: number; flagged: number }) {
  const card = (token: string, lastFour: string) =>
    ({ type: 'card', token, brand: 'visa', last_four: lastFour, expiry_month: 12, expiry_year: 2035 }) as const;
  const pop: Population = { payers: [], debtors: [], flagged: [] };
  for (let i = 0; i < n.payers; i++) {
    const c = await createCustomer(graph, { segment: 'Standard' });
    const pm = await addPaymentMethod(graph, c.id, card(`tok_visa_${cardIdentity()}`, '4242'));
    pop.payers.push({ id: c.id, card: pm.id });
  }
  for (let i = 0; i < n.debtors; i++) {
    const c = await createCustomer(graph, { segment: 'Subscriber' });
    const declined = await addPaymentMethod(graph, c.id, card('tok_decline_insufficient_funds_9', '0002'));
    const good = await addPaymentMethod(graph, c.id, card(`tok_visa_${cardIdentity()}`, '4444'));
    pop.debtors.push({ id: c.id, declined: declined.id, good: good.id });
  }
  for (let i = 0; i < n.flagged; i++) pop.flagged.push((await createCustomer(graph, { segment: 'Standard' })).id);
  return pop;
}

export interface Ledger {
  /** Interactions recorded per payer (each adds 1.00 to the LTV): what a read with a later token must show. */
  recorded: Map<string, number>;
  /** Reads that carried a token: answered at or past it, refused, or behind it (a violation). */
  ryw: {
    ok: number;
    unavailable: number;
    behind: { customer: string; token: string; ltv: string; want: number }[];
    /** Answers that are neither the read nor "unavailable" (a 409: the token refused). */
    refused: string[];
  };
  /** Workflows the fleet answered 202 for, by kind. */
  workflows: { kind: 'onboarding' | 'recovery' | 'fraud'; id: string; key: string }[];
  /**
   * What was never accepted, after the client's retries. A 503 (or no answer) to a start leaves it
   * in doubt: the start may have reached Temporal after the api gave up waiting (`key` says which).
   */
  refused: { kind: string; status: number; body: unknown; key?: string }[];
  /** Payments among `refused` whose recovery Temporal has all the same (added to `workflows`). */
  startedInDoubt: string[];
  /** Cross-replica staleness samples (ms): a write answered by one replica until the other reads it. */
  staleness: number[];
  /** Steps not taken, by kind, because the client had as many under way as it may. */
  shed: Map<string, number>;
}

export function newLedger(): Ledger {
  return {
    recorded: new Map(),
    ryw: { ok: 0, unavailable: 0, behind: [], refused: [] },
    workflows: [],
    refused: [],
    startedInDoubt: [],
    staleness: [],
    shed: new Map(),
  };
}

const cents = (ltv: unknown): number => Math.round(Number(ltv) * 100);

/** Steps a load's clients may have under way at once, as a caller's connection pool bounds them. */
const MAX_IN_FLIGHT = 8;

/**
 * Runs `step` every `everyMs` (open loop: a step is not waited for before the next one starts) until
 * `until`; a step due while MAX_IN_FLIGHT are under way is not taken (`shed`), as a caller whose
 * pool is full sheds rather than piles retries onto a fleet that is healing.
 */
async function paced(
  everyMs: number,
  until: () => boolean,
  step: (i: number) => Promise<void>,
  shed: () => void,
): Promise<void> {
  const running = new Set<Promise<void>>();
  const t0 = Date.now();
  for (let i = 0; !until(); i++) {
    if (running.size >= MAX_IN_FLIGHT) shed();
    else {
      const p = step(i).finally(() => running.delete(p));
      running.add(p);
    }
    const due = t0 + (i + 1) * everyMs;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await Promise.all(running);
}

export interface Rates {
  /** Operations a second of each kind. */
  interactions: number;
  reads: number;
  recoveries: number;
  onboardings: number;
  fraud: number;
}

/** Drives every kind of load at once until `done()`; resolves when the last request is answered. */
export async function drive(
  fleet: Fleet,
  client: FleetClient,
  pop: Population,
  ledger: Ledger,
  rates: Rates,
  rand: () => number,
  done: () => boolean,
): Promise<void> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const currency = fleet.config.PERSONA_REPORTING_CURRENCY;
  const payment = (customer: { id: string; card: string }) => ({
    id: `fleet-${randomUUID()}`,
    type: 'payment',
    customer_id: customer.id,
    occurred_at: new Date().toISOString(),
    payment_method_id: customer.card,
    amount: 100,
    currency,
    outcome: 'succeeded',
  });
  /** Records one payment through `base`; its token, and what the customer's LTV is at least then. */
  const record = async (base: string, route: 'round robin' | 'direct', customer: { id: string; card: string }) => {
    const item = payment(customer);
    // What was answered before this was sent committed before it: its token covers those, and itself.
    const before = ledger.recorded.get(customer.id) ?? 0;
    const a = await client.retried('interaction', route, base, 'POST', '/api/v1/interactions', {
      customerId: customer.id,
      body: { data: [item] },
    });
    const result = (a.body.data as { result: string; consistency_token?: string }[] | undefined)?.[0];
    if (a.status !== 200 || !result || !['recorded', 'duplicate'].includes(result.result)) {
      ledger.refused.push({ kind: 'interaction', status: a.status, body: a.body });
      return null;
    }
    // A retry after a lost answer finds the item recorded already: counted once either way.
    ledger.recorded.set(customer.id, (ledger.recorded.get(customer.id) ?? 0) + 1);
    return { token: result.consistency_token ?? null, atLeast: before + 1 };
  };

  const shed = (kind: string) => () => ledger.shed.set(kind, (ledger.shed.get(kind) ?? 0) + 1);
  const interactions = paced(
    1000 / rates.interactions,
    done,
    async () => {
      const customer = pick(pop.payers);
      const w = await record(fleet.roundRobin, 'round robin', customer);
      if (!w?.token) return;
      const r = await client.retried(
        'read with token',
        'round robin',
        fleet.roundRobin,
        'GET',
        contextPath(customer.id),
        {
          customerId: customer.id,
          headers: { 'x-persona-consistency': w.token },
          withinMs: 30_000,
        },
      );
      if (r.status === 200 && cents(r.body.ltv) >= w.atLeast * 100) ledger.ryw.ok++;
      else if (r.status === 200)
        ledger.ryw.behind.push({ customer: customer.id, token: w.token, ltv: String(r.body.ltv), want: w.atLeast });
      else if (r.status === 503 || r.status === 0) ledger.ryw.unavailable++;
      else
        ledger.ryw.refused.push(`read with token ${w.token}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    },
    shed('interaction'),
  );

  const reads = paced(
    1000 / rates.reads,
    done,
    async () => {
      const customer = pick(pop.payers);
      // Every other read as the agents make most of theirs: gRPC, through the balancer's h2c listener.
      if (rand() < 0.5)
        await client.grpcOnce('read (gRPC)', 'by customer', fleet.grpcByCustomer, 'GetCustomerContext', customer.id);
      else
        await client.retried('read', 'by customer', fleet.byCustomer, 'GET', contextPath(customer.id), {
          customerId: customer.id,
          withinMs: 10_000,
        });
    },
    shed('read'),
  );

  const debtors = [...pop.debtors];
  const recoveries = paced(
    1000 / rates.recoveries,
    () => done() || debtors.length === 0,
    async () => {
      const d = debtors.shift();
      if (!d) return;
      const paymentId = `pay_${randomUUID().replace(/-/g, '')}`;
      const a = await client.retried('recovery', 'by customer', fleet.byCustomer, 'POST', '/api/v1/payment-failures', {
        customerId: d.id,
        body: {
          payment_id: paymentId,
          customer_id: d.id,
          payment_method_id: d.declined,
          amount: 4200,
          currency,
          decline_code: 'insufficient_funds',
        },
      });
      if (a.status === 202) ledger.workflows.push({ kind: 'recovery', id: String(a.body.workflow_id), key: paymentId });
      else ledger.refused.push({ kind: 'recovery', status: a.status, body: a.body, key: paymentId });
    },
    shed('recovery'),
  );

  const onboardings = paced(
    1000 / rates.onboardings,
    done,
    async () => {
      const key = `fleet-${randomUUID()}`;
      const a = await client.retried('onboarding', 'round robin', fleet.roundRobin, 'POST', '/api/v1/onboarding', {
        headers: { 'idempotency-key': key },
        body: {
          customer: { segment: 'Standard', ltv: '0.00', acquisition_date: new Date().toISOString().slice(0, 10) },
          payment_method: {
            type: 'card',
            token: `tok_visa_${cardIdentity()}`,
            brand: 'visa',
            last_four: '4242',
            expiry_month: 12,
            expiry_year: 2035,
          },
          digital_identifiers: [{ type: 'email', value: `${key}@fleet.example.com`, is_verified: false }],
        },
      });
      if (a.status === 202) ledger.workflows.push({ kind: 'onboarding', id: String(a.body.workflow_id), key });
      else ledger.refused.push({ kind: 'onboarding', status: a.status, body: a.body });
    },
    shed('onboarding'),
  );

  const flagged = [...pop.flagged];
  const fraud = paced(
    1000 / rates.fraud,
    () => done() || flagged.length === 0,
    async () => {
      const customer = flagged.shift();
      if (!customer) return;
      const outcomeId = `fleet-${randomUUID()}`;
      const a = await client.retried(
        'fraud outcome',
        'by customer',
        fleet.byCustomer,
        'POST',
        '/api/v1/fraud-outcomes',
        {
          customerId: customer,
          body: { outcome_id: outcomeId, customer_id: customer, outcome: 'false_positive' },
        },
      );
      if (a.status === 202) ledger.workflows.push({ kind: 'fraud', id: String(a.body.workflow_id), key: outcomeId });
      else ledger.refused.push({ kind: 'fraud outcome', status: a.status, body: a.body });
    },
    shed('fraud outcome'),
  );

  // Staleness: a write answered by api 0, then api 1 read (no token) until it shows it.
  const probe = pop.payers[0] as { id: string; card: string };
  const staleness = (async () => {
    while (!done()) {
      const [writer, reader] = fleet.apis;
      const w = writer && reader ? await record(writer.url, 'direct', probe) : null;
      if (w) {
        const t0 = performance.now();
        for (let polls = 0; polls < 500 && !done(); polls++) {
          const r = await client.once('staleness read', 'direct', reader?.url ?? '', 'GET', contextPath(probe.id));
          if (r.status !== 200) break;
          if (cents(r.body.ltv) >= w.atLeast * 100) {
            ledger.staleness.push(performance.now() - t0);
            break;
          }
          await sleep(5);
        }
      }
      await sleep(250);
    }
  })();

  await Promise.all([interactions, reads, recoveries, onboardings, fraud, staleness]);
}

const contextPath = (id: string) => `/api/v1/customers/${id}/context`;
