/**
 * Erasing a customer: everything personal goes, a tombstone stays. In one transaction:
 * identifiers, addresses, payment methods (and their encrypted tokens), the behavioural profile
 * and devices no other customer uses are deleted; shared devices only lose the customer's edge;
 * the customer keeps its id with status `erased` and nothing else; the customer's events keep
 * their id, type and time but their payloads are emptied; a CustomerErased event records it.
 * Erasing an erased customer changes nothing.
 */
import { appendEvent } from './events';
import { NotFoundError } from './errors';
import { writeTx, type Graph } from './graph';

export interface ErasureResult {
  customer_id: string;
  /** False when the customer was erased already. */
  erased: boolean;
  deleted: {
    identifiers: number;
    addresses: number;
    payment_methods: number;
    devices: number;
    events_stripped: number;
  };
}

/** Who asked for the erasure and why (ops, for a customer who is not active, or overriding a review). */
export interface ErasureAudit {
  reason: string;
  requested_by: string | null;
  override_fraud_review: boolean;
}

const CYPHER = {
  // The customer's lock first: no write for it can interleave.
  lock: `
    MATCH (c:Customer {id: $id})
    SET c.updated_at = datetime.transaction()
    RETURN c.status AS status`,
  erase: `
    MATCH (c:Customer {id: $id})
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_DIGITAL_IDENTIFIER]->(i:DigitalIdentifier)
      DETACH DELETE i
      RETURN count(i) AS identifiers
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:SHIPPED_TO]->(a:Address)
      WHERE NOT EXISTS { MATCH (a)<-[:SHIPPED_TO]-(other:Customer) WHERE other <> c }
      DETACH DELETE a
      RETURN count(a) AS addresses
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
      DETACH DELETE p
      RETURN count(p) AS paymentMethods
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:HAS_BEHAVIORAL_PROFILE]->(b:BehavioralProfile)
      DETACH DELETE b
      RETURN count(b) AS profiles
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[:LOGGED_IN_FROM]->(d:Device)
      WHERE NOT EXISTS { MATCH (d)<-[:LOGGED_IN_FROM]-(other:Customer) WHERE other <> c }
      DETACH DELETE d
      RETURN count(d) AS devices
    }
    CALL (c) {
      OPTIONAL MATCH (c)-[r]-()
      DELETE r
      RETURN count(r) AS edges
    }
    CALL (c) {
      OPTIONAL MATCH (n:Notification {customer_id: c.id})
      DETACH DELETE n
      RETURN count(n) AS claims
    }
    CALL (c) {
      MATCH (e:Event {customer_id: c.id}) WHERE e.occurred_at IS NOT NULL
      SET e.payload = '{}', e.erased = true
      RETURN count(e) AS events
    }
    SET c = {id: c.id, status: 'erased', created_at: c.created_at, updated_at: datetime.transaction(),
             erased_at: datetime.transaction()}
    RETURN identifiers, addresses, paymentMethods, devices, events`,
} as const;

export async function eraseCustomer(g: Graph, customerId: string, audit?: ErasureAudit): Promise<ErasureResult> {
  return writeTx(g, async (tx) => {
    const lock = (await tx.run(CYPHER.lock, { id: customerId })).records[0];
    if (!lock) throw new NotFoundError('Customer', customerId);
    const none = { identifiers: 0, addresses: 0, payment_methods: 0, devices: 0, events_stripped: 0 };
    if (lock.get('status') === 'erased') return { customer_id: customerId, erased: false, deleted: none };
    const r = (await tx.run(CYPHER.erase, { id: customerId })).records[0];
    const n = (k: string): number => Number(r?.get(k) ?? 0);
    const deleted = {
      identifiers: n('identifiers'),
      addresses: n('addresses'),
      payment_methods: n('paymentMethods'),
      devices: n('devices'),
      events_stripped: n('events'),
    };
    await appendEvent(tx, 'CustomerErased', customerId, { deleted, ...(audit ? { request: audit } : {}) });
    return { customer_id: customerId, erased: true, deleted };
  });
}
