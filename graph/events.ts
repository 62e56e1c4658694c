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
import { readTx, type Graph } from './graph';

export interface PersonaEvent {
  id: string;
  type: EventType;
  customer_id: string;
  occurred_at: string;
  /**
   * The event's place in its customer's own sequence (1, 2, 3, … with no gap), or null for an
   * event of no existing customer (none named, or a customer never created).
   */
  customer_seq: number | null;
  payload: Record<string, Plain>;
}

/** The map projection of an Event node every read returns (PersonaEvent, payload still JSON). */
export const EVENT_PROJECTION = 'e {.id, .type, .customer_id, .occurred_at, .customer_seq, .payload}';

const CYPHER = {
  // occurred_at is the clock when the event is appended, not when its transaction began:
  // writers on one customer hold its lock by then, so their events are stamped in commit order.
  // seq orders the events of one transaction among themselves.
  // customer_seq numbers each customer's events 1, 2, 3, …: the counter lives on the Customer
  // node, so incrementing it takes the customer's write lock (held to commit) and two writers on
  // one customer append one after the other. The SET reads the counter it writes, so Neo4j takes
  // the lock before the read. One group per customer, so a batch is still one statement; a group
  // without an existing customer gets no number.
  append: `
    UNWIND $groups AS grp
    OPTIONAL MATCH (c:Customer {id: grp.customerId})
    FOREACH (x IN CASE WHEN c IS NULL THEN [] ELSE [c] END |
      SET x.event_seq = coalesce(x.event_seq, 0) + size(grp.events))
    WITH grp, CASE WHEN c IS NULL THEN null ELSE c.event_seq - size(grp.events) END AS base
    UNWIND range(0, size(grp.events) - 1) AS i
    WITH grp.events[i] AS ev, base + i + 1 AS customerSeq
    CREATE (e:Event {id: ev.id, type: ev.type, customer_id: ev.customerId, occurred_at: datetime.realtime(),
                     seq: ev.seq, customer_seq: customerSeq, payload: ev.payload,
                     idempotency_key: ev.idempotencyKey})`,
  byIdempotencyKey: `
    MATCH (e:Event {idempotency_key: $key})
    RETURN ${EVENT_PROJECTION} AS event`,
  listForCustomer: `
    MATCH (e:Event {customer_id: $customerId})
    // Naming occurred_at lets the planner seek the (customer_id, occurred_at) index; without
    // it a composite index is not considered and the whole log is scanned.
    WHERE e.occurred_at IS NOT NULL AND ($type IS NULL OR e.type = $type)
    RETURN ${EVENT_PROJECTION} AS event
    ORDER BY e.occurred_at DESC, e.seq DESC
    LIMIT $limit`,
} as const;

const appendedInTx = new WeakMap<ManagedTransaction, number>();

/**
 * Appends an event to the log inside the caller's transaction. An idempotency key makes the
 * event (and so the whole transaction) happen at most once: a second append with the same key
 * violates a uniqueness constraint, and `findEventByIdempotencyKey` finds the first.
 */
export async function appendEvent(
  tx: ManagedTransaction,
  type: EventType,
  customerId: string | null,
  payload: Record<string, unknown>,
  options: { idempotencyKey?: string } = {},
): Promise<void> {
  await appendEvents(tx, [{ type, customerId, payload, ...options }]);
}

export interface NewEvent {
  type: EventType;
  /** null for an event of no customer (it gets no customer_seq). */
  customerId: string | null;
  payload: Record<string, unknown>;
  idempotencyKey?: string;
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
  const groups = new Map<string | null, Record<string, unknown>[]>();
  events.forEach((e, i) => {
    const row = {
      id: randomUUID(),
      type: e.type,
      customerId: e.customerId,
      seq: first + i,
      payload: JSON.stringify(e.payload),
      idempotencyKey: e.idempotencyKey ?? null,
    };
    const group = groups.get(e.customerId);
    if (group) group.push(row);
    else groups.set(e.customerId, [row]);
  });
  // Customers in id order: two batches over the same customers take their locks in one order.
  const ordered = [...groups.entries()].sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : 1));
  await tx.run(CYPHER.append, {
    groups: ordered.map(([customerId, rows]) => ({ customerId, events: rows })),
  });
}

function toEvent(value: unknown): PersonaEvent {
  const e = toPlain(value) as Record<string, Plain>;
  return { ...e, payload: JSON.parse(e.payload as string) as Record<string, Plain> } as PersonaEvent;
}

/** The event written with this idempotency key, inside the caller's transaction. */
export async function findEventByIdempotencyKey(tx: ManagedTransaction, key: string): Promise<PersonaEvent | null> {
  const record = (await tx.run(CYPHER.byIdempotencyKey, { key })).records[0];
  return record ? toEvent(record.get('event')) : null;
}

/** A customer's events (optionally of one type), newest first. */
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
  return res.records.map((r) => toEvent(r.get('event')));
}
