/**
 * The shared-device benchmark (issue 17, item 4), on the local Neo4j:
 *
 *   npm run bench:shared-device -- [--customers 10000,100000] [--batch 5000] [--onboardings 5]
 *
 * For each size N, on a device of its own:
 *   1. seeds N customers logged in from the device (batched UNWIND writes, unique ids);
 *   2. applies a confirmed fraud of one of them through the graph function
 *      (graph/fraud.ts applyFraudOutcome: card compromised, device trust 0, customer suspended,
 *      in one transaction) and counts the trust events it wrote; and, first, the same on a
 *      customer whose device is its own (the floor);
 *   3. reads a first page of history of another customer on the device (which shows the change
 *      through the device);
 *   4. times onboarding (graph/onboarding.ts onboardCustomer, the activity's write) on the shared
 *      device against onboarding on fresh devices, median of --onboardings each;
 *   5. for comparison, the collect of every customer on the device that onboarding used to run.
 * Prints a table and removes everything it wrote (customers, their events, the devices).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/env';
import {
  addPaymentMethod,
  createCustomer,
  createDriver,
  linkDevice,
  migrate,
  onboardCustomer,
  prepareOnboarding,
} from '../graph';
import { readCustomerHistory } from '../graph/feed';
import { applyFraudOutcome } from '../graph/fraud';
import { graphFromConfig } from '../runtime/graph';
import { removeDeviceCustomers, seedDeviceCustomers } from '../test/support/sharedDevice';

const { values } = parseArgs({
  options: {
    customers: { type: 'string', default: '10000,100000' },
    batch: { type: 'string', default: '5000' },
    onboardings: { type: 'string', default: '5' },
  },
});
const sizes = values.customers.split(',').map(Number);
const batch = Number(values.batch);
const onboardings = Number(values.onboardings);

const config = loadConfig();
const driver = createDriver(config);
const graph = graphFromConfig(driver, config);
const db = { database: config.NEO4J_DATABASE };

const ms = async <T>(work: () => Promise<T>): Promise<[number, T]> => {
  const start = performance.now();
  const result = await work();
  return [Math.round(performance.now() - start), result];
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Onboards a customer with nothing but a device (no identifier, no card): the device is the point. */
async function onboardOn(fingerprint: string): Promise<[number, string]> {
  const plan = prepareOnboarding(graph, { customer: { segment: 'New', ltv: '0' }, device: { fingerprint } });
  const [took, result] = await ms(() =>
    onboardCustomer(graph, plan, { onboardingId: `bench-${randomUUID()}`, customerId: randomUUID() }),
  );
  return [took, result.customer_id];
}

/** Deletes customers the bench made with graph functions: their events, cards and devices too. */
async function removeCustomers(ids: string[]): Promise<void> {
  await driver.executeQuery(
    `UNWIND $ids AS id
     MATCH (c:Customer {id: id})
     OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD|HAS_DIGITAL_IDENTIFIER]->(x)
     DETACH DELETE x`,
    { ids },
    db,
  );
  await driver.executeQuery(
    `UNWIND $ids AS id
     MATCH (c:Customer {id: id})-[:LOGGED_IN_FROM]->(d:Device)
     WHERE NOT EXISTS { (d)<-[:LOGGED_IN_FROM]-(o:Customer) WHERE o.id <> id }
     WITH DISTINCT d
     CALL (d) { MATCH (e:Event {device_id: d.id}) DELETE e }
     DETACH DELETE d`,
    { ids },
    db,
  );
  await driver.executeQuery(
    `UNWIND $ids AS id
     MATCH (e:Event {customer_id: id}) WHERE e.occurred_at IS NOT NULL
     DETACH DELETE e`,
    { ids },
    db,
  );
  await driver.executeQuery('UNWIND $ids AS id MATCH (c:Customer {id: id}) DETACH DELETE c', { ids }, db);
}

interface Row {
  customers: number;
  seed_ms: number;
  fraud_ms: number;
  fraud_alone_ms: number;
  trust_events: number;
  history_ms: number;
  onboard_shared_ms: number;
  onboard_fresh_ms: number;
  old_collect_ms: number;
}

/** A customer with a card and a device (trust 0.9) of the given fingerprint. */
async function customerOn(fingerprint: string) {
  const customer = await createCustomer(graph, {});
  const card = await addPaymentMethod(graph, customer.id, {
    type: 'card',
    token: `tok_bench_${randomUUID()}`,
    brand: 'visa',
    last_four: '4242',
    expiry_month: 12,
    expiry_year: 2035,
  });
  const device = await linkDevice(graph, customer.id, { fingerprint, trust_score: 0.9 });
  return { customerId: customer.id, cardId: card.id, deviceId: device.id };
}

const confirmedFraud = (c: { customerId: string; cardId: string; deviceId: string }) =>
  applyFraudOutcome(
    graph,
    {
      outcome_id: `bench-${randomUUID()}`,
      customer_id: c.customerId,
      outcome: 'confirmed_fraud',
      device_id: c.deviceId,
      payment_method_id: c.cardId,
    },
    { trustStep: config.PERSONA_FRAUD_TRUST_STEP },
  );

async function run(size: number): Promise<Row> {
  const fingerprint = `fp-bench-shared-${randomUUID()}`;
  const caught = await customerOn(fingerprint);
  const [warm, alone] = [
    await customerOn(`fp-bench-own-${randomUUID()}`),
    await customerOn(`fp-bench-own-${randomUUID()}`),
  ];
  const device = { id: caught.deviceId };
  let seeded: string[] = [];
  const made: string[] = [caught.customerId, warm.customerId, alone.customerId];
  try {
    const [seedMs, ids] = await ms(() => seedDeviceCustomers(graph, device.id, size, batch));
    seeded = ids;
    const cursor = await driver.executeQuery('RETURN datetime.realtime() AS now', {}, db);
    const before = cursor.records[0]?.get('now') as unknown;

    await confirmedFraud(warm); // plans the transaction's queries
    const [aloneMs] = await ms(() => confirmedFraud(alone));
    const [fraudMs] = await ms(() => confirmedFraud(caught));
    const [written] = (
      await driver.executeQuery(
        `MATCH (e:Event) WHERE e.occurred_at >= $before AND e.type = 'DeviceTrustScoreUpdated'
           AND (e.device_id = $deviceId OR e.payload CONTAINS $deviceId)
         RETURN count(e) AS n`,
        { before, deviceId: device.id },
        db,
      )
    ).records;

    // The second read: the first also plans the query.
    const reader = seeded[Math.floor(size / 2)] as string;
    await readCustomerHistory(graph, reader, { limit: 50 });
    const [historyMs, history] = await ms(() => readCustomerHistory(graph, reader, { limit: 50 }));
    if (!history.data.some((e) => e.type === 'DeviceTrustScoreUpdated'))
      throw new Error('the history of a customer on the device does not show the trust change');

    // Warm both paths once, then alternate shared and fresh.
    made.push((await onboardOn(fingerprint))[1], (await onboardOn(`fp-bench-fresh-${randomUUID()}`))[1]);
    const shared: number[] = [];
    const fresh: number[] = [];
    for (let i = 0; i < onboardings; i++) {
      const [s, a] = await onboardOn(fingerprint);
      const [f, b] = await onboardOn(`fp-bench-fresh-${randomUUID()}`);
      shared.push(s);
      fresh.push(f);
      made.push(a, b);
    }

    const [oldCollectMs] = await ms(() =>
      driver.executeQuery(
        `OPTIONAL MATCH (d:Device {fingerprint: $fingerprint})
         OPTIONAL MATCH (c:Customer)-[:LOGGED_IN_FROM]->(d)
         RETURN collect(DISTINCT c.id) AS customerIds`,
        { fingerprint },
        db,
      ),
    );
    return {
      customers: size,
      seed_ms: seedMs,
      fraud_ms: fraudMs,
      fraud_alone_ms: aloneMs,
      trust_events: (written?.get('n') as { toNumber(): number }).toNumber(),
      history_ms: historyMs,
      onboard_shared_ms: median(shared),
      onboard_fresh_ms: median(fresh),
      old_collect_ms: oldCollectMs,
    };
  } finally {
    await removeDeviceCustomers(graph, device.id, seeded, batch);
    await removeCustomers(made);
    await driver.executeQuery('MATCH (d:Device {id: $id}) DETACH DELETE d', { id: device.id }, db);
  }
}

async function main(): Promise<void> {
  await driver.verifyConnectivity(db);
  await migrate(driver, config.NEO4J_DATABASE, { reportingCurrency: config.PERSONA_REPORTING_CURRENCY });
  const rows: Row[] = [];
  for (const size of sizes) {
    console.log(`device shared by ${size.toLocaleString('en')} customers…`);
    rows.push(await run(size));
  }
  console.table(
    rows.map((r) => ({
      'customers on the device': r.customers.toLocaleString('en'),
      'seed (ms)': r.seed_ms,
      'confirmed fraud applied (ms)': r.fraud_ms,
      'same, on a device of its own (ms)': r.fraud_alone_ms,
      'trust events written': r.trust_events,
      'a customer’s history page (ms)': r.history_ms,
      'onboarding, shared device (ms, median)': r.onboard_shared_ms,
      'onboarding, fresh device (ms, median)': r.onboard_fresh_ms,
      'old collect of all its customers (ms)': r.old_collect_ms,
    })),
  );
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => driver.close());
