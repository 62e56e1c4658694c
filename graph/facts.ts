/**
 * Facts: what the code reads back of what happened — a decision made once under an idempotency
 * key (a fraud outcome applied, reversed or reviewed; an erasure; a recovery's end; a contest; an
 * onboarding; a notification), a possible match, a merge and its undoing. Each is a `Fact` node
 * written in the same statement as its event (graph/events.ts), with the event's id, type, time,
 * sequence and payload (`result`), and indexed by key, by (customer, type, time), by the other
 * party it is `about`, and by (type, time). So no reader filters a customer's history by event
 * type, and the events themselves can be pruned from the graph once every consumer has them
 * (graph/eventPrune.ts): the facts stay, as state. An erasure empties the customer's facts as it
 * empties their events (graph/erasure.ts).
 */
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import type { EventType } from './eventSchemas';
import { eventFromRow, type PersonaEvent } from './events';
import { readTx, type Graph } from './graph';

/** A Fact node read as the event that recorded it (its payload as the event had it). */
export const FACT_PROJECTION =
  'f {id: f.event_id, .type, .customer_id, occurred_at: f.at, .customer_seq, .epoch, payload: f.result}';

const CYPHER = {
  byKey: `MATCH (f:Fact {key: $key}) RETURN ${FACT_PROJECTION} AS fact`,
  // A seek of the (customer_id, type, at) index, newest first.
  ofCustomer: `
    MATCH (f:Fact {customer_id: $customerId, type: $type})
    WHERE f.at IS NOT NULL
    RETURN ${FACT_PROJECTION} AS fact
    ORDER BY f.at DESC
    LIMIT $limit`,
  // A seek of the (about, type, at) index.
  about: `
    MATCH (f:Fact {about: $about, type: $type})
    WHERE f.at IS NOT NULL AND f.customer_id = $customerId
    RETURN ${FACT_PROJECTION} AS fact
    ORDER BY f.at DESC`,
  // The customer's facts whose event the prune took (graph/eventPrune.ts): a seek of the
  // (customer_id, type, at) index, then a lookup of each event by id.
  kept: `
    MATCH (f:Fact {customer_id: $customerId})
    WHERE f.type IS NOT NULL AND f.at IS NOT NULL AND NOT EXISTS { MATCH (:Event {id: f.event_id}) }
    RETURN ${FACT_PROJECTION} AS fact
    ORDER BY f.at DESC
    LIMIT $limit`,
} as const;

/**
 * What Persona keeps of a customer beyond their history: the facts whose events were pruned from
 * the graph (read as their events), newest first. The export lists them, so it holds everything
 * the graph keeps of the customer.
 */
export async function listKeptFacts(g: Graph, customerId: string, limit = 10_000): Promise<PersonaEvent[]> {
  return readTx(g, async (tx) =>
    (await tx.run(CYPHER.kept, { customerId, limit: neo4j.int(limit) })).records.map((r) =>
      eventFromRow(r.get('fact')),
    ),
  );
}

/** The fact recorded under this idempotency key (read as its event), inside the caller's transaction. */
export async function findFact(tx: ManagedTransaction, key: string): Promise<PersonaEvent | null> {
  const record = (await tx.run(CYPHER.byKey, { key })).records[0];
  return record ? eventFromRow(record.get('fact')) : null;
}

/** A customer's facts of one type, newest first (read as their events), inside the caller's transaction. */
export async function listFactsTx(
  tx: ManagedTransaction,
  customerId: string,
  type: EventType,
  limit = 100,
): Promise<PersonaEvent[]> {
  const res = await tx.run(CYPHER.ofCustomer, { customerId, type, limit: neo4j.int(limit) });
  return res.records.map((r) => eventFromRow(r.get('fact')));
}

/** A customer's facts of one type about `about` (the outcome a reversal undid), newest first. */
export async function listFactsAboutTx(
  tx: ManagedTransaction,
  customerId: string,
  type: EventType,
  about: string,
): Promise<PersonaEvent[]> {
  const res = await tx.run(CYPHER.about, { customerId, type, about });
  return res.records.map((r) => eventFromRow(r.get('fact')));
}
