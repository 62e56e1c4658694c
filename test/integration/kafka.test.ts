/**
 * Kafka on the real broker the stack starts (with the real Neo4j and Temporal): the publisher
 * puts a customer's events on the topic in order, each once after de-duplication by the
 * `event-id` header, through a produce whose checkpoint never moved and a publisher terminated
 * in the middle; the api's consumer turns a payment failure delivered twice, and handled by a
 * consumer that dies before committing, into one recovery and one charge; a routing outcome
 * delivered twice adds to LTV once; a malformed message goes to the dead-letter topic with its
 * reason and the next one is handled. Every test has topics and a consumer group of its own.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDeviceTrustScore } from '../../graph/fraud';
import { createKafkaProducer, ensureTopics, KAFKA_HEADERS, type KafkaProducer } from '../../clients/kafka';
import { loadSettings } from '../../config/env';
import {
  addAddress,
  addPaymentMethod,
  createCustomer,
  linkDevice,
  listCustomerEvents,
  setCustomerStatusTx,
  writeTx,
} from '../../graph';
import { eraseCustomer } from '../../graph/erasure';
import { recordInteractions } from '../../graph/interactions';
import { mergeCustomers } from '../../graph/identityMerge';
import { openEvent, type PublishedEvent } from '../../graph/eventCipher';
import { payloadProblem } from '../../graph/eventSchemas';
import type { PersonaEvent } from '../../graph/events';
import type { HistoryKeyStore } from '../../graph/historyKeys';
import { adoptRelayState } from '../../graph/relay';
import type { AgentConsumer } from '../../api/kafkaConsumer';
import { publisherGauges } from '../../api/services/relay';
import {
  kafkaCheckpointId,
  kafkaPublisherStatusQuery,
  reconfigurePublisherUpdate,
  type KafkaPublisherInput,
} from '../../temporal/kafkaPublisher';
import { recoveryWorkflowId, type RecoveryStatus } from '../../temporal/recovery';
import { fraudOutcomeStatusQuery, fraudOutcomeWorkflowId, type FraudOutcomeStatus } from '../../temporal/fraud';
import { reportFraudOutcome, resolveReview } from '../../api/services/fraud';
import type { kafkaPublisherWorkflow } from '../../workflows/kafkaPublisher';
import { startHarness, testEventKeys, type Harness } from '../support/api';
import { cardInput, feedCursorAtNow, uniqueEmail } from '../support/graph';
import { cardIdentity, customerWithCards, paymentId, simulatorCharges } from '../support/recovery';
import { until } from '../support/wait';
import { localKafkaBrokers } from '../../stack/install';
import {
  readEveryTopic,
  readTopic,
  startTestConsumer,
  topicsForTest as testTopics,
  type Msg,
  type TestTopics,
} from '../support/kafka';

const settings = loadSettings();
/** The stack's brokers: three in CI (PERSONA_KAFKA_NODES=3), so topics are replicated as in production. */
const brokers = localKafkaBrokers(settings);
const replication = Math.min(3, brokers.length);
/** A send that Kafka acknowledged, then "the worker died" before the checkpoint moved: once. */
let dieAfterNextSend = false;
let producer: KafkaProducer;
let h: Harness;
/** The customers' keys, as a consumer in the repo opens the topic's payloads with them. */
let keys: HistoryKeyStore;

beforeAll(async () => {
  const real = createKafkaProducer({ kafkaBrokers: brokers }, 'persona-test-worker');
  producer = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop !== 'send') {
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      }
      return async (...args: Parameters<KafkaProducer['send']>) => {
        const result = await target.send(...args);
        if (dieAfterNextSend) {
          dieAfterNextSend = false;
          throw new Error('test: the worker died after Kafka acknowledged the page, before the checkpoint moved');
        }
        return result;
      };
    },
  });
  h = await startHarness({ kafka: producer });
  keys = testEventKeys(h.graph);
});
afterAll(async () => {
  await h?.close();
  await producer?.close();
});

const topicsForTest = () => testTopics(brokers);

describe('publishing the change feed to Kafka', () => {
  it(
    "puts each customer's events on its partition in order, each once after de-duplication, through a " +
      'crash before the checkpoint and a publisher terminated mid-way',
    async () => {
      const s = await topicsForTest();
      const topic = s.PERSONA_KAFKA_EVENTS_TOPIC;
      // A checkpoint at the feed's present: this publisher publishes only what the test writes.
      await adoptRelayState(h.graph, kafkaCheckpointId(topic), {
        cursor: await feedCursorAtNow(h.graph),
        delivered: 0,
        parked: [],
      });
      // Three customers, written concurrently: a creation and four cards each.
      const customers = await Promise.all(
        [0, 1, 2].map(async () => {
          const c = await createCustomer(h.graph, {
            digital_identifiers: [{ type: 'email', value: uniqueEmail(), is_verified: true }],
          });
          for (let i = 0; i < 4; i++) await addPaymentMethod(h.graph, c.id, cardInput());
          return c.id;
        }),
      );
      const input: KafkaPublisherInput = {
        topic,
        page_size: 3,
        budget_ms: 1000,
        poll_interval: '200 milliseconds',
        batches_per_run: 3,
      };
      const start = () =>
        h.client.workflow.start<typeof kafkaPublisherWorkflow>('kafkaPublisherWorkflow', {
          taskQueue: h.taskQueue,
          workflowId: `test-kafka-publisher-${randomUUID()}`,
          args: [input],
        });
      // The lag gauges (the api's /metrics) before: everything the test wrote is behind.
      const writtenByTest = (await Promise.all(customers.map((id) => listCustomerEvents(h.graph, id)))).flat();
      // Read as a scrape reads them, with the time a busy machine needs (a scrape gives up at 2 s).
      const gauges = () => publisherGauges(h.graph, topic, 30_000);
      const before = await gauges();
      expect(before?.behind_events).toBe(writtenByTest.length);
      expect(before?.behind_seconds).toBeGreaterThan(0);
      const received: Msg[] = [];
      const reader = await readTopic({ kafkaBrokers: brokers }, topic, received);
      try {
        dieAfterNextSend = true; // the first page is sent, then sent again by the retry
        const first = await start();
        await until(async () => received.length >= 6);
        await first.terminate('test: the publisher is stopped mid-way');
        const second = await start();
        const ours = () => received.filter((m) => customers.includes(m.key));
        // What the log holds for these customers, in each one's order: every one of them must arrive.
        const logged = new Map<string, PersonaEvent[]>();
        for (const id of customers)
          logged.set(
            id,
            (await listCustomerEvents(h.graph, id)).sort((a, b) => (a.customer_seq ?? 0) - (b.customer_seq ?? 0)),
          );
        const expected = [...logged.values()].flat().map((e) => e.id);
        const missing = () => {
          const got = new Set(ours().map((m) => m.headers.get(KAFKA_HEADERS.eventId)));
          return expected.filter((id) => !got.has(id));
        };
        await until(async () => missing().length === 0, 45_000).catch(async (err: unknown) => {
          const status = await second.query(kafkaPublisherStatusQuery).catch((e: unknown) => String(e));
          throw new Error(
            `${String(err)}: ${missing().length} of ${expected.length} events not on the topic ` +
              `(${received.length} messages read); the publisher says ${JSON.stringify(status)}`,
          );
        });
        // The last page is on the topic before its checkpoint is saved: terminated in between, the
        // gauge would count that page as behind. Wait for the checkpoint, then stop the publisher.
        await until(async () => (await gauges())?.behind_events === 0, 30_000);
        await second.terminate('test over');
        // …and after: nothing behind.
        expect(await gauges()).toEqual({ behind_events: 0, behind_seconds: 0 });

        // At least once: the page sent before the "crash" came again.
        expect(ours().length).toBeGreaterThan(expected.length);
        const seen = new Set<string>();
        const byCustomer = new Map<string, PersonaEvent[]>();
        for (const m of ours()) {
          const id = m.headers.get(KAFKA_HEADERS.eventId) as string;
          const sealed = JSON.parse(m.value) as PublishedEvent;
          // A customer's payload crosses sealed under the customer's key (graph/eventCipher.ts).
          expect(sealed.sealed?.key_id).toBe(`customer:${m.key}`);
          const event = await openEvent(keys, sealed);
          expect(event.id).toBe(id);
          expect(m.key).toBe(event.customer_id);
          expect(m.headers.get(KAFKA_HEADERS.eventType)).toBe(event.type);
          expect(payloadProblem(event.type, event.payload)).toBeNull();
          if (seen.has(id)) continue;
          seen.add(id);
          byCustomer.set(m.key, [...(byCustomer.get(m.key) ?? []), event]);
        }
        for (const id of customers) {
          const events = byCustomer.get(id) ?? [];
          // Each once, in the customer's order, with nothing but what the log holds.
          expect(events.map((e) => e.id)).toEqual((logged.get(id) ?? []).map((e) => e.id));
          expect(events.map((e) => e.customer_seq)).toEqual(events.map((_, i) => i + 1));
          expect(events.filter((e) => e.type === 'PaymentMethodAdded')).toHaveLength(4);
          // One customer, one partition.
          expect(
            new Set(
              ours()
                .filter((m) => m.key === id)
                .map((m) => m.partition),
            ).size,
          ).toBe(1);
        }
      } finally {
        await reader.stop();
      }
    },
  );
});

describe("Persona's producer", () => {
  it('takes sends made at once to one partition one at a time: each acknowledged, in the order asked', async () => {
    // The client numbers a request's messages when it builds it: two sends in flight to one
    // partition carried the same numbers, and every send after was refused as out of order.
    const topic = `test.${randomUUID().slice(0, 8)}.in-turn`;
    await ensureTopics({ ...settings, kafkaBrokers: brokers, PERSONA_KAFKA_REPLICATION: replication }, [
      { name: topic, partitions: 1 },
    ]);
    const one = createKafkaProducer({ kafkaBrokers: brokers }, 'persona-test-in-turn');
    const asked = Array.from({ length: 24 }, (_, i) => `m${i}`);
    try {
      await Promise.all(asked.map((value) => one.send({ messages: [{ topic, key: 'one-customer', value }] })));
    } finally {
      await one.close();
    }
    const read: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers }, topic, read);
    try {
      await until(async () => read.length >= asked.length);
    } finally {
      await reader.stop();
    }
    expect(read.map((m) => m.value)).toEqual(asked);
  });
});

describe("the publisher's topic", () => {
  it("publishes nothing to a topic not the worker's, and goes on once its settings are the worker's", async () => {
    const s = await topicsForTest();
    const topic = s.PERSONA_KAFKA_EVENTS_TOPIC;
    // Not a topic this worker publishes to (its configuration takes `test.…` ones only).
    const elsewhere = `elsewhere.${randomUUID().slice(0, 8)}.persona.events`;
    await ensureTopics({ ...s, PERSONA_KAFKA_EVENTS_TOPIC: elsewhere });
    for (const t of [topic, elsewhere])
      await adoptRelayState(h.graph, kafkaCheckpointId(t), {
        cursor: await feedCursorAtNow(h.graph),
        delivered: 0,
        parked: [],
      });
    const settings = { page_size: 10, budget_ms: 1000, poll_interval: '200 milliseconds' };
    const handle = await h.client.workflow.start<typeof kafkaPublisherWorkflow>('kafkaPublisherWorkflow', {
      taskQueue: h.taskQueue,
      workflowId: `test-kafka-publisher-${randomUUID()}`,
      args: [{ topic: elsewhere, ...settings, batches_per_run: 50 }],
    });
    const [elsewhereRead, ownRead]: [Msg[], Msg[]] = [[], []];
    const readers = [
      await readTopic({ kafkaBrokers: brokers }, elsewhere, elsewhereRead),
      await readTopic({ kafkaBrokers: brokers }, topic, ownRead),
    ];
    try {
      const customer = await createCustomer(h.graph, {
        digital_identifiers: [{ type: 'email', value: uniqueEmail('kafka-topic'), is_verified: true }],
      });
      // The batch is refused: ops see why in the publisher's status (its details in the UI too).
      await until(
        async () =>
          /only to its own PERSONA_KAFKA_EVENTS_TOPIC/.test(
            (await handle.query(kafkaPublisherStatusQuery)).last_error ?? '',
          ),
        60_000,
      );
      // A worker's start brings the settings to its configuration: the feed goes to its topic.
      await handle.executeUpdate(reconfigurePublisherUpdate, { args: [{ topic, ...settings, batches_per_run: 50 }] });
      await until(async () => ownRead.some((m) => m.key === customer.id), 60_000);
      expect(elsewhereRead).toEqual([]);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
      for (const r of readers) await r.stop();
    }
  });
});

/** A topic's reader, and a publisher of the feed to it (from its checkpoint) on the harness's worker. */
async function publishToTopic(topic: string) {
  const received: Msg[] = [];
  const reader = await readTopic({ kafkaBrokers: brokers }, topic, received);
  const handle = await h.client.workflow.start<typeof kafkaPublisherWorkflow>('kafkaPublisherWorkflow', {
    taskQueue: h.taskQueue,
    workflowId: `test-kafka-publisher-${randomUUID()}`,
    args: [{ topic, page_size: 50, budget_ms: 1000, poll_interval: '200 milliseconds', batches_per_run: 20 }],
  });
  return { received, reader, handle };
}

const typeOf = (m: Msg) => m.headers.get(KAFKA_HEADERS.eventType);

/** An events topic of the test's own, its publisher's checkpoint at Neo4j's now: only what the test writes goes. */
async function eventsTopicFromNow(): Promise<string> {
  const topic = (await topicsForTest()).PERSONA_KAFKA_EVENTS_TOPIC;
  await adoptRelayState(h.graph, kafkaCheckpointId(topic), {
    cursor: await feedCursorAtNow(h.graph),
    delivered: 0,
    parked: [],
  });
  return topic;
}

describe('what reaches the events topic', () => {
  // An event is stamped when it is appended; its transaction commits later. Going by the stamp, a
  // publisher past the stamp passes it for good; going by number, it is numbered at its commit. The
  // suspension here commits after a later-stamped event was published, stamped as a transaction
  // open for a minute would have stamped it (holding one that long here would hold its locks too).
  // test/integration/read-cache.test.ts holds a real one past the feed's lag.
  it('publishes an event committed after later-stamped ones were published', async () => {
    const topic = await eventsTopicFromNow();
    const late = await createCustomer(h.graph, { segment: 'KafkaLate' });
    const { received, reader, handle } = await publishToTopic(topic);
    try {
      await until(async () => received.some((m) => m.key === late.id), 60_000);
      const later = await createCustomer(h.graph, { segment: 'KafkaLater' });
      await until(async () => received.some((m) => m.key === later.id), 60_000);
      await writeTx(h.graph, async (tx) => {
        await setCustomerStatusTx(tx, late.id, 'suspended', 'CustomerSuspended', { reason: 'late commit test' });
        await tx.run(
          `MATCH (e:Event {customer_id: $id, type: 'CustomerSuspended'})
           SET e.occurred_at = datetime.realtime() - duration({minutes: 1})`,
          { id: late.id },
        );
      });
      await until(async () => received.some((m) => m.key === late.id && typeOf(m) === 'CustomerSuspended'), 60_000);
      // In each customer's order: its suspension after its creation.
      // (At least once: a page sent again is in the topic twice; consumers drop it by event id.)
      const once = new Map(
        received.filter((m) => m.key === late.id).map((m) => [m.headers.get(KAFKA_HEADERS.eventId), m]),
      );
      expect([...once.values()].map(typeOf)).toEqual(['CustomerCreated', 'CustomerSuspended']);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
      await reader.stop();
    }
  });

  it('seals each customer’s payload under their key: an erasure makes what the topic keeps unreadable', async () => {
    const topic = await eventsTopicFromNow();
    const c = await createCustomer(h.graph, {
      digital_identifiers: [{ type: 'email', value: uniqueEmail(), is_verified: true }],
    });
    const card = await addPaymentMethod(h.graph, c.id, cardInput({ last_four: '4817', brand: 'amex' }));
    const { received, reader, handle } = await publishToTopic(topic);
    try {
      await until(async () => received.some((m) => m.key === c.id && typeOf(m) === 'PaymentMethodAdded'), 45_000);
      const added = received.find((m) => m.key === c.id && typeOf(m) === 'PaymentMethodAdded') as Msg;
      // On the wire: the envelope, no card detail; opened with the customer's key: the payload.
      expect(added.value).not.toMatch(/4817|amex|last_four/);
      const opened = await openEvent(keys, JSON.parse(added.value) as PublishedEvent);
      expect(opened).toMatchObject({ customer_id: c.id, payload: { payment_method_id: card.id } });
      expect(payloadProblem(opened.type, opened.payload)).toBeNull();
      // Erased: the key goes with the customer, and every message of theirs the topic keeps is unreadable.
      await eraseCustomer(h.graph, c.id);
      await expect(openEvent(keys, JSON.parse(added.value) as PublishedEvent)).rejects.toMatchObject({
        reason: 'erased',
      });
    } finally {
      await handle.terminate('test over');
      await reader.stop();
    }
  });

  it('has a device-level event once, keyed by its device, and an erasure, with no data of the erased', async () => {
    const topic = await eventsTopicFromNow();
    const email = uniqueEmail();
    const fingerprint = `fp-${randomUUID()}`;
    const erased = await createCustomer(h.graph, {
      digital_identifiers: [{ type: 'email', value: email, is_verified: true }],
    });
    const device = await linkDevice(h.graph, erased.id, { fingerprint, trust_score: 0.9 });
    await setDeviceTrustScore(h.graph, device.id, 0.2, {
      reason: 'test: a chargeback on this device',
      reportedBy: 'agent',
    });
    await eraseCustomer(h.graph, erased.id);

    const { received, reader, handle } = await publishToTopic(topic);
    try {
      await until(async () => received.some((m) => m.key === erased.id && typeOf(m) === 'CustomerErased'), 45_000);
      await until(async () => received.some((m) => typeOf(m) === 'DeviceTrustScoreUpdated' && m.key === device.id));
      // The device's trust change: one message, keyed by the device, no customer in it.
      const trust = received.filter((m) => typeOf(m) === 'DeviceTrustScoreUpdated' && m.key === device.id);
      expect(trust).toHaveLength(1);
      const event = JSON.parse((trust[0] as Msg).value) as PersonaEvent;
      expect(event).toMatchObject({
        customer_id: null,
        device_id: device.id,
        payload: { device_id: device.id, to: 0.2 },
      });
      // The erasure reached the topic: consumers purge on it. What was published of the customer
      // holds neither the email nor the device's fingerprint (published after the erasure: emptied).
      const theirs = received.filter((m) => m.key === erased.id);
      expect(theirs.map(typeOf)).toContain('CustomerErased');
      for (const m of received) {
        expect(m.value).not.toContain(email);
        expect(m.value).not.toContain(fingerprint);
      }
      for (const m of theirs.filter((x) => typeOf(x) !== 'CustomerErased'))
        expect((JSON.parse(m.value) as PersonaEvent).payload).toEqual({});
    } finally {
      await handle.terminate('test over');
      await reader.stop();
    }
  });

  it('keeps nothing of an erased customer in clear: no words of ops or agents, no record linking theirs', async () => {
    const topic = await eventsTopicFromNow();
    const [email, phone, fingerprint] = [
      uniqueEmail(),
      `+1415555${String(Date.now()).slice(-4)}`,
      `fp-${randomUUID()}`,
    ];
    const street = `${Math.floor(Math.random() * 900) + 100} Larkin Street`;
    const person = await createCustomer(h.graph, {
      digital_identifiers: [
        { type: 'email', value: email, is_verified: true },
        { type: 'phone_number', value: phone, is_verified: true },
      ],
    });
    const other = await createCustomer(h.graph, { digital_identifiers: [{ type: 'email', value: uniqueEmail() }] });
    const card = await addPaymentMethod(h.graph, person.id, cardInput({ last_four: '4817' }));
    await addAddress(h.graph, person.id, {
      street1: street,
      city: 'San Francisco',
      zip_code: '94109',
      country: 'US',
      type: 'billing',
    });
    const device = await linkDevice(h.graph, person.id, { fingerprint, trust_score: 0.9 });
    // An agent's words about the device, and ops' about the person: neither may outlive the erasure.
    const agentWords = `chargeback filed by Jane Roe ${randomUUID()}`;
    await setDeviceTrustScore(h.graph, device.id, 0.3, { reason: agentWords, reportedBy: 'agent' });
    await mergeCustomers(h.graph, {
      merge_id: `merge-${randomUUID()}`,
      survivor_id: person.id,
      merged_id: other.id,
      decided_by: 'ops',
      requested_by: 'ops-7',
      reason: 'the same person',
    });
    // A suspension and its reversal with ops' words, and a payment an agent reported with the
    // device it was made on and where it shipped.
    const suspendWords = `call from Mrs Doe about ${email}`;
    await writeTx(h.graph, async (tx) => {
      await setCustomerStatusTx(tx, person.id, 'suspended', 'CustomerSuspended', { reason: suspendWords });
    });
    await writeTx(h.graph, async (tx) => {
      await setCustomerStatusTx(tx, person.id, 'active', 'CustomerReinstated', { reason: suspendWords });
    });
    const shipTo = `${Math.floor(Math.random() * 900) + 100} Polk Street`;
    const seenIp = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
    const paid = await recordInteractions(
      h.graph,
      [
        {
          id: `pay-${randomUUID()}`,
          type: 'payment',
          customer_id: person.id,
          occurred_at: new Date().toISOString(),
          payment_method_id: card.id,
          amount: 1250,
          currency: h.graph.policy.reportingCurrency,
          outcome: 'succeeded',
          device: { fingerprint: `fp-${randomUUID()}`, ip: seenIp, user_agent: 'Mozilla/5.0 (Jane)' },
          shipping_address: {
            street1: shipTo,
            city: 'San Francisco',
            zip_code: '94109',
            country: 'US',
            type: 'shipping',
          },
        },
      ],
      { vipLtvMinor: Number.MAX_SAFE_INTEGER, vipBasis: 'measured', subscriberAfterPayments: 1 },
    );
    expect(paid).toEqual([{ result: 'recorded' }]);
    const opsWords = `asked by her sister on ${phone}, ticket ${randomUUID()}`;
    await eraseCustomer(h.graph, person.id, {
      audit: { reason: opsWords, requested_by: 'ops-7', override_fraud_review: false },
    });

    const secrets = [email, phone, fingerprint, street, agentWords, opsWords, suspendWords, shipTo, seenIp, 'Jane'];
    const { received, reader, handle } = await publishToTopic(topic);
    try {
      const erasedOf = (id: string) => received.find((m) => m.key === id && typeOf(m) === 'CustomerErased');
      await until(async () => !!erasedOf(person.id) && !!erasedOf(other.id), 45_000);
      await until(async () => received.some((m) => typeOf(m) === 'DeviceTrustScoreUpdated' && m.key === device.id));
      for (const m of received) {
        for (const secret of secrets) expect(m.value, `${typeOf(m)} keyed ${m.key}`).not.toContain(secret);
        // No message of one record names the other: nothing links them once both are erased.
        if (m.key === person.id) expect(m.value).not.toContain(other.id);
        if (m.key === other.id) expect(m.value).not.toContain(person.id);
      }
      const notice = JSON.parse((erasedOf(person.id) as Msg).value) as PersonaEvent;
      expect(notice.payload.request).toEqual({
        reason_code: 'ops_request',
        requested_by: 'ops-7',
        override_fraud_review: false,
      });
      const trust = JSON.parse(
        (received.find((m) => typeOf(m) === 'DeviceTrustScoreUpdated' && m.key === device.id) as Msg).value,
      ) as PersonaEvent;
      expect(trust.payload).toMatchObject({ to: 0.3, reason: 'set by an agent' });
      // Every other message of either record: sealed under a destroyed key, or published empty.
      for (const m of received.filter((x) => [person.id, other.id].includes(String(x.key)))) {
        if (typeOf(m) === 'CustomerErased') continue;
        const published = JSON.parse(m.value) as PublishedEvent;
        if (published.sealed) await expect(openEvent(keys, published)).rejects.toMatchObject({ reason: 'erased' });
        else expect(published.payload).toEqual({});
      }
      // Every topic of the broker, Persona's and everyone's, read whole: nothing of theirs in clear.
      const everything = await readEveryTopic({ kafkaBrokers: brokers });
      expect(everything.filter((m) => m.topic === topic).length).toBeGreaterThanOrEqual(received.length);
      for (const m of everything) {
        const text = [m.key, m.value, ...m.headers.values()].join(' ');
        for (const secret of secrets) expect(text, `${m.topic}: ${typeOf(m)} keyed ${m.key}`).not.toContain(secret);
      }
    } finally {
      await handle.terminate('test over');
      await reader.stop();
    }
  });
});

describe("consuming the agents' topics", () => {
  let consumers: AgentConsumer[] = [];
  afterAll(async () => {
    for (const c of consumers) await c.close({ abandon: true }).catch(() => undefined);
  });
  const consume = (settings: TestTopics, beforeCommit?: (m: Msg[]) => Promise<void>) =>
    startTestConsumer({ settings, deps: h.deps, producer, ...(beforeCommit ? { beforeCommit } : {}) }, consumers);
  /** Keyed by customer as an agent keys them: one customer's messages on one partition, in order. */
  const send = (topic: string, key: string, value: unknown, headers: Record<string, string> = {}) =>
    producer.send({
      messages: [{ topic, key, value: typeof value === 'string' ? value : JSON.stringify(value), headers }],
    });

  it('recovers with one charge a payment failure sent twice to a consumer that dies before its commit', async () => {
    const s = await topicsForTest();
    const { customerId, cards } = await customerWithCards(h.graph, [
      'tok_decline_insufficient_funds_1',
      `tok_visa_${randomUUID()}`,
    ]);
    const failure = {
      payment_id: paymentId(),
      customer_id: customerId,
      payment_method_id: cards[0],
      amount: 2599,
      currency: 'EUR',
      decline_code: 'insufficient_funds',
    };
    const requestId = `kafka-${randomUUID()}`;
    await send(s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC, customerId, failure, { [KAFKA_HEADERS.requestId]: requestId });
    await send(s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC, customerId, failure, { [KAFKA_HEADERS.requestId]: requestId });

    // The first consumer starts the recovery, then dies before it commits the offset.
    let handledBeforeCrash = 0;
    const first = await consume(s, async (done) => {
      handledBeforeCrash += done.length;
      await new Promise(() => undefined); // never commits
    });
    await until(async () => handledBeforeCrash > 0);
    await first.close({ abandon: true });
    consumers = consumers.filter((c) => c !== first);

    // Its successor in the group gets both messages again: the workflow id makes them no-ops.
    const second = await consume(s);
    await until(async () => second.handled >= 2, 60_000);
    const handle = h.client.workflow.getHandle(recoveryWorkflowId(failure.payment_id));
    const result = (await handle.result()) as RecoveryStatus;
    expect(result).toMatchObject({ state: 'recovered', recovered_with: cards[1] });
    const charges = await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId);
    expect(charges.filter((c) => c.status === 'succeeded')).toHaveLength(1);
    // The request id travelled from the Kafka header into the workflow's start.
    const history = await handle.fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(JSON.stringify(started?.header ?? {})).toContain(Buffer.from(JSON.stringify(requestId)).toString('base64'));
    await second.close();
    consumers = consumers.filter((c) => c !== second);
  });

  it('records a false positive from Chimera after ops confirmed the review, and changes nothing', async () => {
    const s = await topicsForTest();
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const fraudId = `cf-${randomUUID()}`;
    await reportFraudOutcome(
      h.deps,
      { outcome_id: fraudId, customer_id: customerId, outcome: 'confirmed_fraud', payment_method_id: cards[0] },
      'agent',
    );
    const review = h.client.workflow.getHandle(fraudOutcomeWorkflowId(fraudId));
    await until(async () => (await review.query(fraudOutcomeStatusQuery)).state === 'awaiting_review');
    await resolveReview(h.deps, fraudId, { decision: 'confirm' }, 'kafka.test');
    expect(((await review.result()) as FraudOutcomeStatus).state).toBe('confirmed');

    const consumer = await consume(s);
    const fpId = `fp-${randomUUID()}`;
    await send(s.PERSONA_KAFKA_FRAUD_OUTCOMES_TOPIC, customerId, {
      outcome_id: fpId,
      customer_id: customerId,
      outcome: 'false_positive',
    });
    await until(async () => consumer.handled >= 1, 60_000);
    const fp = (await h.client.workflow.getHandle(fraudOutcomeWorkflowId(fpId)).result()) as FraudOutcomeStatus;
    expect(fp).toMatchObject({
      state: 'not_applied',
      reversal: { refused: { outcome_id: fraudId, decision: 'confirm' } },
    });
    const [customer] = await h.graph.query<{ status: string }>(
      'MATCH (c:Customer {id: $id}) RETURN c.status AS status',
      {
        id: customerId,
      },
    );
    expect(customer?.status).toBe('suspended');
    await consumer.close();
    consumers = consumers.filter((c) => c !== consumer);
  });

  it('adds a routing outcome delivered twice to LTV once; dead-letters malformed ones and goes on', async () => {
    const s = await topicsForTest();
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const currency = h.graph.policy.reportingCurrency;
    const payment = {
      id: `route-${randomUUID()}`,
      type: 'payment',
      customer_id: customerId,
      occurred_at: new Date().toISOString(),
      payment_method_id: cards[0],
      amount: 4200,
      currency,
      outcome: 'succeeded',
    };
    await send(s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, customerId, payment);
    await send(s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, customerId, '{"not json');
    await send(s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, customerId, {
      ...payment,
      id: `route-${randomUUID()}`,
      amount: -1,
    });
    await send(s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, customerId, payment);
    const second = { ...payment, id: `route-${randomUUID()}`, amount: 100 };
    await send(s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, customerId, second);

    const dead: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers }, s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, dead);
    try {
      const c = await consume(s);
      await until(async () => c.handled >= 5, 60_000);
      const [row] = await h.graph.query<{ ltv: number }>('MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv', {
        id: customerId,
      });
      expect(Number(row?.ltv)).toBe(4300);
      await until(async () => dead.length >= 2);
      const reasons = dead.map((m) => m.headers.get(KAFKA_HEADERS.deadLetterReason));
      expect(reasons[0]).toBe('the message is not JSON');
      expect(reasons[1]).toMatch(/^amount: /);
      expect(dead[1]?.headers.get(KAFKA_HEADERS.deadLetterSource)).toMatch(
        new RegExp(`^${s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC.replace(/\./g, '\\.')}/\\d+/2$`),
      );
      await c.close();
      consumers = consumers.filter((x) => x !== c);
    } finally {
      await reader.stop();
    }
  });

  it('gives the routing topic an agent’s scope only: no prediction, no id Persona reserves for itself', async () => {
    const s = await topicsForTest();
    const { customerId, cards } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const occurred_at = new Date().toISOString();
    // A writer of the topic sends what only The Oracle (ltv:write) or ops may: a prediction that
    // could make the customer VIP, and a payment under an id Persona keeps for its own charges.
    await send(s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, customerId, {
      id: `oracle-${randomUUID()}`,
      type: 'ltv_feedback',
      customer_id: customerId,
      occurred_at,
      predicted_ltv: '90000.00',
    });
    await send(s.PERSONA_KAFKA_ROUTING_OUTCOMES_TOPIC, customerId, {
      id: `recovery:pay_${randomUUID()}`,
      type: 'payment',
      customer_id: customerId,
      occurred_at,
      payment_method_id: cards[0],
      amount: 5000,
      currency: h.graph.policy.reportingCurrency,
      outcome: 'succeeded',
    });
    const dead: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers }, s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, dead);
    try {
      const c = await consume(s);
      await until(async () => c.handled >= 2 && dead.length >= 2, 60_000);
      const reasons = dead.map((m) => m.headers.get(KAFKA_HEADERS.deadLetterReason));
      expect(reasons[0]).toMatch(/^type: /);
      expect(reasons[1]).toMatch(/^id: /);
      const [row] = await h.graph.query<{ ltv: number; predicted: number | null }>(
        'MATCH (c:Customer {id: $id}) RETURN c.ltv AS ltv, c.predicted_ltv AS predicted',
        { id: customerId },
      );
      expect([Number(row?.ltv), row?.predicted ?? null]).toEqual([0, null]);
      await c.close();
      consumers = consumers.filter((x) => x !== c);
    } finally {
      await reader.stop();
    }
  });

  it('stops a recovery when the owner says so on the failures topic; wrong words go to the dead letters', async () => {
    const s = await topicsForTest();
    const { customerId, cards } = await customerWithCards(h.graph, [
      `tok_decline_generic_decline_card-${cardIdentity()}`,
      `tok_decline_do_not_honor_card-${cardIdentity()}`,
    ]);
    const payment = paymentId();
    const topic = s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC;
    await send(topic, customerId, {
      payment_id: payment,
      customer_id: customerId,
      payment_method_id: cards[0],
      amount: 2599,
      currency: 'EUR',
      decline_code: 'generic_decline',
    });
    const dead: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers }, s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, dead);
    try {
      const c = await consume(s);
      const handle = h.client.workflow.getHandle(recoveryWorkflowId(payment));
      await until(
        async () => (await handle.query<RecoveryStatus>('recoveryStatus').catch(() => null))?.state === 'dunning',
      );
      const word = { kind: 'payment_no_longer_owed', payment_id: payment, reason: 'settled_elsewhere' };
      await send(topic, customerId, { ...word, reason: 'paid' });
      await send(topic, customerId, { ...word, kind: 'payment_refunded' });
      await send(topic, customerId, { ...word, payment_id: paymentId() });
      await send(topic, customerId, { ...word, note: 'paid by bank transfer' });
      expect(((await handle.result()) as RecoveryStatus).state).toBe('stopped');
      await until(async () => dead.length >= 3, 60_000);
      expect(dead.map((m) => m.headers.get(KAFKA_HEADERS.deadLetterReason))).toEqual([
        expect.stringMatching(/^reason: /),
        'kind: must be payment_no_longer_owed, or absent for a payment failure',
        expect.stringMatching(/PaymentRecovery/),
      ]);
      const charges = await simulatorCharges(h.graph.config.PERSONA_GATEWAY_URL, customerId);
      expect(charges.filter((ch) => ch.status === 'succeeded')).toEqual([]);
      await c.close();
      consumers = consumers.filter((x) => x !== c);
    } finally {
      await reader.stop();
    }
  });

  it('refuses a payment failure whose method is not the customer’s: dead-lettered, nothing started', async () => {
    const s = await topicsForTest();
    const { customerId } = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const other = await customerWithCards(h.graph, [`tok_visa_${randomUUID()}`]);
    const failure = {
      payment_id: paymentId(),
      customer_id: customerId,
      payment_method_id: other.cards[0],
      amount: 100,
      currency: 'EUR',
      decline_code: 'insufficient_funds',
    };
    await send(s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC, customerId, failure);
    await send(s.PERSONA_KAFKA_PAYMENT_FAILURES_TOPIC, customerId, { ...failure, unknown_field: 1 });
    const dead: Msg[] = [];
    const reader = await readTopic({ kafkaBrokers: brokers }, s.PERSONA_KAFKA_DEAD_LETTER_TOPIC, dead);
    try {
      const c = await consume(s);
      await until(async () => dead.length >= 2, 60_000);
      expect(dead.map((m) => m.headers.get(KAFKA_HEADERS.deadLetterReason))).toEqual([
        expect.stringMatching(/PaymentMethod/),
        'unknown_field: unknown field',
      ]);
      await expect(h.client.workflow.getHandle(recoveryWorkflowId(failure.payment_id)).describe()).rejects.toThrow(
        /not found/,
      );
      await c.close();
      consumers = consumers.filter((x) => x !== c);
    } finally {
      await reader.stop();
    }
  });
});
