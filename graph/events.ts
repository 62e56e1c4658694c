/**
 * The immutable change-event log. Every graph write appends its Event inside the same
 * transaction as the change (the audit trail and the outbox are one thing), so no change is
 * ever without its event and no event describes a change that rolled back.
 *
 * Payloads never hold a payment token, and hold identifier values only where the event is
 * about that identifier.
 */
import { randomUUID } from 'node:crypto';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { toPlain, type Plain } from './convert';
import { payloadProblem, type EventType } from './eventSchemas';
import type { DeviceTrustReason } from './model';
import { readTx, recordAppended, type CommittedEvent, type Graph } from './graph';

export interface PersonaEvent {
  id: string;
  type: EventType;
  /** The customer the event is about; null on a device-level event (see `device_id`). */
  customer_id: string | null;
  /**
   * Only on a device-level event (a device's trust change, shared by every customer on the
   * device): the device it is about. Absent on a customer's own events.
   */
  device_id?: string;
  occurred_at: string;
  /**
   * The event's place in its customer's own sequence (1, 2, 3, … with no gap), or null for an
   * event of no existing customer (none named, or a customer never created).
   */
  customer_seq: number | null;
  /**
   * Only on a device-level event: its place in its device's own sequence (1, 2, 3, … with no gap;
   * 0 on an event from before devices were numbered).
   */
  device_seq?: number;
  /**
   * The log's epoch when the event was appended: 0 until the graph is first restored from a
   * backup, then the restore's time in seconds since 1970 (backup/restore.ts). Sequences are
   * numbered within an epoch: (epoch, customer_seq) is never reused, even when a restore brings
   * back a graph from before events a consumer already received.
   */
  epoch: number;
  payload: Record<string, Plain>;
}

/** The map projection of an Event node every read returns (PersonaEvent, payload still JSON). */
export const EVENT_PROJECTION =
  'e {.id, .type, .customer_id, .device_id, .device_seq, .occurred_at, .customer_seq, .epoch, .payload}';

/** The log's node: its epoch (0 until the first restore) and how far it was pruned (graph/eventPrune.ts). */
export const EVENT_LOG_ID = 'persona';
const EPOCH = `OPTIONAL MATCH (log:EventLog {id: '${EVENT_LOG_ID}'}) WITH coalesce(log.epoch, 0) AS epoch`;

const CYPHER = {
  // occurred_at is the clock when the event is appended, not when its transaction began:
  // writers on one customer hold its lock by then, so their events are stamped in commit order.
  // seq orders the events of one transaction among themselves.
  // customer_seq numbers each customer's events 1, 2, 3, …: the counter lives on the Customer
  // node, so incrementing it takes the customer's write lock (held to commit) and two writers on
  // one customer append one after the other. The SET reads the counter it writes, so Neo4j takes
  // the lock before the read. One group per customer, so a batch is still one statement; a group
  // without an existing customer gets no number. Each event's number is returned (Graph.changes).
  // An event that records a fact the code reads back (a keyed decision, a possible match, a
  // merge: ev.fact) writes its Fact node in the same statement (graph/facts.ts): the fact outlives
  // the event, which is pruned from the graph once every consumer has it (graph/eventPrune.ts).
  // A transient event (ev.transient: not in the customer's history; its writer says so) is
  // marked so, and the prune finds it by the (transient, occurred_at) index.
  append: `
    ${EPOCH}
    UNWIND $groups AS grp
    OPTIONAL MATCH (c:Customer {id: grp.customerId})
    FOREACH (x IN CASE WHEN c IS NULL THEN [] ELSE [c] END |
      SET x.event_seq = coalesce(x.event_seq, 0) + size(grp.events))
    WITH epoch, grp, CASE WHEN c IS NULL THEN null ELSE c.event_seq - size(grp.events) END AS base
    UNWIND range(0, size(grp.events) - 1) AS i
    WITH epoch, grp.events[i] AS ev, base + i + 1 AS customerSeq
    CREATE (e:Event:Unsequenced {id: ev.id, type: ev.type, customer_id: ev.customerId, occurred_at: datetime.realtime(),
                     seq: ev.seq, customer_seq: customerSeq, epoch: epoch, payload: ev.payload,
                     transient: ev.transient, txn_prev: ev.txnPrev, cache: ev.cache})
    FOREACH (f IN CASE WHEN ev.fact IS NULL THEN [] ELSE [ev.fact] END |
      CREATE (:Fact {key: f.key, type: ev.type, customer_id: ev.customerId, about: f.about, event_id: ev.id,
                     at: e.occurred_at, customer_seq: customerSeq, epoch: epoch, result: ev.payload}))
    RETURN ev.id AS id, customerSeq`,
  // The customer's own events, and the device-level events of every device the customer logged
  // in from, stamped from the customer's first login on it (a change from before the customer
  // came is not the customer's history). Each branch is an index seek ((customer_id,
  // occurred_at) and (device_id, occurred_at)) cut at $limit before the two are merged.
  listForCustomer: `
    CALL () {
      MATCH (e:Event {customer_id: $customerId})
      // Naming occurred_at lets the planner seek the (customer_id, occurred_at) index; without
      // it a composite index is not considered and the whole log is scanned.
      WHERE e.occurred_at IS NOT NULL AND ($type IS NULL OR e.type = $type)
      RETURN e ORDER BY e.occurred_at DESC, e.seq DESC LIMIT $limit
      UNION
      MATCH (:Customer {id: $customerId})-[r:LOGGED_IN_FROM]->(d:Device)
      MATCH (e:Event {device_id: d.id})
      WHERE e.occurred_at >= coalesce(r.first_login, datetime({epochMillis: 0})) AND ($type IS NULL OR e.type = $type)
      RETURN e ORDER BY e.occurred_at DESC, e.seq DESC LIMIT $limit
    }
    RETURN ${EVENT_PROJECTION} AS event
    ORDER BY e.occurred_at DESC, e.seq DESC
    LIMIT $limit`,
  // A device-level event: no customer, one device (every customer on it reads it through the
  // device; see listForCustomer). device_seq numbers each device's events 1, 2, 3, … from the
  // counter on the Device node, as customer_seq does from the customer's: its writer holds the
  // device's lock already (setDeviceTrustTx sets the device first), so no new lock is taken.
  appendForDevice: `
    ${EPOCH}
    OPTIONAL MATCH (d:Device {id: $deviceId})
    FOREACH (x IN CASE WHEN d IS NULL THEN [] ELSE [d] END | SET x.event_seq = coalesce(x.event_seq, 0) + 1)
    CREATE (e:Event:Unsequenced {id: $id, type: $type, device_id: $deviceId, occurred_at: datetime.realtime(),
                     seq: $seq, device_seq: d.event_seq, epoch: epoch, payload: $payload})
    RETURN e.device_seq AS deviceSeq`,
} as const;

const appendedInTx = new WeakMap<ManagedTransaction, number>();
/** The customers each transaction has appended events of so far (`txn_prev`, below). */
const customersInTx = new WeakMap<ManagedTransaction, Set<string>>();

/**
 * Appends an event to the log inside the caller's transaction. An idempotency key makes the
 * event (and so the whole transaction) happen at most once: its Fact (graph/facts.ts) is unique
 * by key, so a second append with the same key violates a uniqueness constraint, and
 * `findFact` finds the first — after the event itself is pruned too.
 */
export async function appendEvent(
  tx: ManagedTransaction,
  type: EventType,
  customerId: string | null,
  payload: Record<string, unknown>,
  options: { idempotencyKey?: string; cache?: Record<string, unknown> } = {},
): Promise<void> {
  await appendEvents(tx, [{ type, customerId, payload, ...options }]);
}

export interface NewEvent {
  type: EventType;
  /** null for an event of no customer (it gets no customer_seq). */
  customerId: string | null;
  payload: Record<string, unknown>;
  idempotencyKey?: string;
  /**
   * In the feed and on Kafka, not in the customer's history or export, and pruned as soon as every
   * consumer has it: only a recorded interaction's change of nothing but the lifetime value
   * (graph/profileChanges.ts, `isTransient`). Never inferred from a payload's shape.
   */
  transient?: boolean;
  /**
   * What read caches apply in place beside the payload (api/readCache.ts: DeviceLinked's `device`,
   * the device as the customer's context reads it). Kept on the event apart from the payload, so
   * that no reader of the log gets it (the feed, a history, an export, the relay, Kafka): only the
   * event sequencer (graph/sequencer.ts), for the sealed invalidation topic. Erasure removes it.
   */
  cache?: Record<string, unknown>;
}

/**
 * Appends several events in one statement (batch writers such as the expiry scan), each
 * customer's in the order given, numbered in that customer's sequence under its lock.
 */
export async function appendEvents(tx: ManagedTransaction, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  // A test aid (the test runner sets it): every payload must keep its type's contract.
  if (process.env.PERSONA_VERIFY_EVENT_PAYLOADS === '1') {
    for (const e of events) {
      const problem = payloadProblem(e.type, e.payload);
      if (problem) throw new Error(`${e.type} payload breaks its contract (graph/eventSchemas.ts): ${problem}`);
    }
  }
  const first = appendedInTx.get(tx) ?? 0;
  appendedInTx.set(tx, first + events.length);
  const customers = customersInTx.get(tx) ?? new Set<string>();
  customersInTx.set(tx, customers);
  const groups = new Map<string | null, Record<string, unknown>[]>();
  const appended = new Map<string, CommittedEvent>();
  events.forEach((e, i) => {
    const row = {
      id: randomUUID(),
      type: e.type,
      customerId: e.customerId,
      seq: first + i,
      payload: JSON.stringify(e.payload),
      transient: e.transient === true ? true : null,
      cache: e.cache ? JSON.stringify(e.cache) : null,
      // Whether this transaction appended an event of the same customer before this one: the event
      // sequencer (graph/sequencer.ts) numbers it only with, or after, that one.
      txnPrev: e.customerId !== null && customers.has(e.customerId) ? true : null,
      fact: null as { key: string; about: string | null } | null,
    };
    if (e.customerId !== null) customers.add(e.customerId);
    row.fact = factOf(e, row.id);
    // The payload as stored (what a reader of the log gets), not the caller's object.
    const payload = JSON.parse(row.payload) as Record<string, unknown>;
    appended.set(row.id, {
      id: row.id,
      type: e.type,
      customer_id: e.customerId,
      customer_seq: null,
      payload,
      ...(e.cache ? { cache: e.cache } : {}),
    });
    const group = groups.get(e.customerId);
    if (group) group.push(row);
    else groups.set(e.customerId, [row]);
  });
  // Customers in id order: two batches over the same customers take their locks in one order.
  const ordered = [...groups.entries()].sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : 1));
  const res = await tx.run(CYPHER.append, {
    groups: ordered.map(([customerId, rows]) => ({ customerId, events: rows })),
  });
  for (const r of res.records) {
    const e = appended.get(r.get('id') as string);
    const seq = r.get('customerSeq') as unknown;
    if (e) e.customer_seq = seq === null ? null : neo4j.integer.toNumber(seq as number);
  }
  // In the order the events were given (each customer's numbered in that order).
  recordAppended(tx, [...appended.values()]);
}

/** Event types whose every event is a fact, keyed or not; any event with an idempotency key is one too. */
const FACT_TYPES: ReadonlySet<EventType> = new Set<EventType>([
  'PossibleMatchFound',
  'CustomersMerged',
  'CustomersUnmerged',
]);

/**
 * The fact an event records (its key, and the other party it is about), or null when it records
 * none. A fact without an idempotency key is keyed by its type and event id.
 */
function factOf(e: NewEvent, eventId: string): { key: string; about: string | null } | null {
  if (!e.idempotencyKey && !FACT_TYPES.has(e.type)) return null;
  return { key: e.idempotencyKey ?? `${e.type}:${eventId}`, about: aboutOf(e) };
}

/**
 * The other party a fact names: the customer a possible match names, the other customer of a
 * merge or its undoing (so an erasure of either finds it), the outcome a reversal undid.
 */
function aboutOf(e: NewEvent): string | null {
  const p = e.payload;
  const named =
    e.type === 'PossibleMatchFound'
      ? p.matched_customer_id
      : e.type === 'FraudOutcomeReversed'
        ? p.reversed_outcome_id
        : e.type === 'CustomersMerged' || e.type === 'CustomersUnmerged'
          ? e.customerId === p.survivor_id
            ? p.merged_id
            : p.survivor_id
          : null;
  return typeof named === 'string' ? named : null;
}

/** What a device-level trust change says of why when a fraud outcome caused it. */
export const FRAUD_SIGNAL_REASON = 'fraud signal' satisfies DeviceTrustReason;

/**
 * An Event node's map (EVENT_PROJECTION) as the event it records; `device_id` only on a
 * device-level event (customer_id null).
 *
 * Before trust changes became device-level, a DeviceTrustScoreUpdated event was copied to every
 * customer on the device with the caught customer's `fraud_outcome_id` and reason: read back,
 * such an event says only "fraud signal", like a device-level one (that customer's own
 * FraudOutcomeApplied keeps the details), wherever it is read — history, export, feed.
 */
export function eventFromRow(value: unknown): PersonaEvent {
  const { device_id, device_seq, epoch, ...e } = toPlain(value) as Record<string, Plain>;
  let payload = JSON.parse(e.payload as string) as Record<string, Plain>;
  if (e.type === 'DeviceTrustScoreUpdated' && 'fraud_outcome_id' in payload) {
    const { fraud_outcome_id: _outcome, ...rest } = payload;
    payload = { ...rest, reason: FRAUD_SIGNAL_REASON };
  }
  // A device-level event from before devices were numbered has no device_seq: 0.
  const device =
    typeof device_id === 'string' ? { device_id, device_seq: typeof device_seq === 'number' ? device_seq : 0 } : {};
  return { ...e, ...device, epoch: typeof epoch === 'number' ? epoch : 0, payload } as PersonaEvent;
}

/**
 * A customer's events (optionally of one type), newest first: its own, and the device-level
 * events of the devices it logged in from, from its first login on each.
 */
export async function listCustomerEvents(
  g: Graph,
  customerId: string,
  options: { type?: EventType; limit?: number } = {},
): Promise<PersonaEvent[]> {
  return readTx(g, (tx) => listCustomerEventsTx(tx, customerId, options));
}

/**
 * A customer's events (optionally of one type), newest first, inside the caller's transaction:
 * a writer that holds the customer's lock reads them knowing no other writer can add one.
 */
export async function listCustomerEventsTx(
  tx: ManagedTransaction,
  customerId: string,
  options: { type?: EventType; limit?: number } = {},
): Promise<PersonaEvent[]> {
  const res = await tx.run(CYPHER.listForCustomer, {
    customerId,
    type: options.type ?? null,
    limit: neo4j.int(options.limit ?? 100),
  });
  return res.records.map((r) => eventFromRow(r.get('event')));
}

/**
 * Appends a device-level event inside the caller's transaction: one event about the device,
 * whoever and however many customers use it (a customer's history shows it through the device,
 * see listCustomerEvents). Its payload must say nothing of any one customer.
 */
export async function appendDeviceEvent(
  tx: ManagedTransaction,
  type: EventType,
  deviceId: string,
  payload: Record<string, unknown>,
): Promise<void> {
  if (process.env.PERSONA_VERIFY_EVENT_PAYLOADS === '1') {
    const problem = payloadProblem(type, payload);
    if (problem) throw new Error(`${type} payload breaks its contract (graph/eventSchemas.ts): ${problem}`);
  }
  const seq = appendedInTx.get(tx) ?? 0;
  appendedInTx.set(tx, seq + 1);
  const id = randomUUID();
  const stored = JSON.stringify(payload);
  const res = await tx.run(CYPHER.appendForDevice, { id, type, deviceId, seq, payload: stored });
  const deviceSeq = res.records[0]?.get('deviceSeq') as unknown;
  recordAppended(tx, [
    {
      id,
      type,
      customer_id: null,
      customer_seq: null,
      device_id: deviceId,
      ...(deviceSeq === null || deviceSeq === undefined
        ? {}
        : { device_seq: neo4j.integer.toNumber(deviceSeq as number) }),
      payload: JSON.parse(stored) as Record<string, unknown>,
    },
  ]);
}
