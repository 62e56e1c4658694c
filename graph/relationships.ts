/**
 * Generic edges of the identity graph (the blueprint's addRelationship and
 * getRelationshipAttributes), kept to the graph model: only the edge types DESIGN.md defines,
 * only between the labels it defines, only with the attributes it defines. Labels and types
 * come from this allow-list before they reach Cypher; values are always parameters.
 *
 * `is_default` on HAS_PAYMENT_METHOD is not settable here: setDefaultPaymentMethod owns the
 * one-default rule.
 */
import { z } from 'zod';
import { toDateTime, toPlain, type Plain } from './convert';
import { lockCustomersTx } from './customers';
import { ConflictError, InvalidInputError, InvalidStateError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { parseInput } from './model';

export type NodeLabel = 'Customer' | 'PaymentMethod' | 'Device' | 'Address' | 'DigitalIdentifier' | 'BehavioralProfile';

const time = z.iso.datetime({ offset: true });
const count = z.number().int().min(0);

const EDGES = {
  HAS_PAYMENT_METHOD: {
    from: 'Customer',
    to: 'PaymentMethod',
    exclusive: true,
    attributes: { first_used: time, last_used: time },
  },
  LOGGED_IN_FROM: {
    from: 'Customer',
    to: 'Device',
    exclusive: false,
    attributes: { login_count: count, first_login: time, last_login: time },
  },
  USED_ON: { from: 'PaymentMethod', to: 'Device', exclusive: false, attributes: { first_use: time, last_use: time } },
  SHIPPED_TO: {
    from: 'Customer',
    to: 'Address',
    exclusive: false,
    attributes: { first_shipped: time, last_shipped: time },
  },
  HAS_DIGITAL_IDENTIFIER: { from: 'Customer', to: 'DigitalIdentifier', exclusive: true, attributes: {} },
  HAS_BEHAVIORAL_PROFILE: { from: 'Customer', to: 'BehavioralProfile', exclusive: true, attributes: {} },
} as const satisfies Record<
  string,
  { from: NodeLabel; to: NodeLabel; exclusive: boolean; attributes: Record<string, z.ZodType> }
>;

export type RelationshipType = keyof typeof EDGES;
export const RELATIONSHIP_TYPES = Object.keys(EDGES) as RelationshipType[];

export interface NodeRef {
  label: NodeLabel;
  id: string;
}

function edgeSpec(from: NodeRef, type: RelationshipType, to: NodeRef): (typeof EDGES)[RelationshipType] {
  const spec = (EDGES as Record<string, (typeof EDGES)[RelationshipType]>)[type];
  if (!spec) throw new InvalidInputError('type', `unknown relationship type; one of ${RELATIONSHIP_TYPES.join(', ')}`);
  if (from.label !== spec.from || to.label !== spec.to) {
    throw new InvalidInputError(
      'type',
      `${type} goes from ${spec.from} to ${spec.to}, not from ${from.label} to ${to.label}`,
    );
  }
  return spec;
}

const cypher = {
  // The customer the edge belongs to (the `from` customer, or the owner of the `from` method):
  // its lock is taken before anything else (the lock order, graph/graph.ts).
  owner: (s: (typeof EDGES)[RelationshipType]) => `
    OPTIONAL MATCH (a:${s.from} {id: $fromId})
    OPTIONAL MATCH (owner:Customer)-[:HAS_PAYMENT_METHOD]->(a)
    RETURN CASE WHEN a:Customer THEN a.id ELSE owner.id END AS customerId`,
  // Locks the target next, so two writers cannot both claim an exclusively owned node.
  check: (s: (typeof EDGES)[RelationshipType], type: string) => `
    MATCH (b:${s.to} {id: $toId})
    ${lockNode('b')}
    WITH b
    OPTIONAL MATCH (a:${s.from} {id: $fromId})
    OPTIONAL MATCH (other)-[:${type}]->(b) WHERE other <> a
    RETURN a IS NOT NULL AS fromExists, count(other) AS otherOwners`,
  merge: (s: (typeof EDGES)[RelationshipType], type: string) => `
    MATCH (a:${s.from} {id: $fromId}), (b:${s.to} {id: $toId})
    MERGE (a)-[r:${type}]->(b)
    SET r += $attributes
    WITH a, r
    OPTIONAL MATCH (owner:Customer)-[:HAS_PAYMENT_METHOD]->(a)
    RETURN properties(r) AS attributes, CASE WHEN a:Customer THEN a.id ELSE owner.id END AS customerId`,
  read: (s: (typeof EDGES)[RelationshipType], type: string) => `
    MATCH (:${s.from} {id: $fromId})-[r:${type}]->(:${s.to} {id: $toId})
    RETURN properties(r) AS attributes`,
};

/**
 * Adds (or updates) the edge `from -[type]-> to` with the given attributes, in one transaction
 * with a RelationshipAdded event for the customer the edge belongs to. Timestamps are RFC 3339.
 */
export async function addRelationship(
  g: Graph,
  from: NodeRef,
  to: NodeRef,
  type: RelationshipType,
  attributes: Record<string, unknown> = {},
): Promise<Record<string, Plain>> {
  const spec = edgeSpec(from, type, to);
  const attrs = parseInput(z.object(spec.attributes).partial().strict(), attributes, 'attributes') as Record<
    string,
    unknown
  >;
  const params = Object.fromEntries(
    Object.entries(attrs).map(([k, v]) => [k, typeof v === 'string' ? toDateTime(v) : v]),
  );
  return writeTx(g, async (tx) => {
    const owner = (await tx.run(cypher.owner(spec), { fromId: from.id })).records[0]?.get('customerId') as
      string | null | undefined;
    if (owner) await lockCustomersTx(tx, [owner]);
    const check = (await tx.run(cypher.check(spec, type), { fromId: from.id, toId: to.id })).records[0];
    if (!check) throw new NotFoundError(to.label, to.id);
    if (!check.get('fromExists')) throw new NotFoundError(from.label, from.id);
    if (spec.exclusive && (toPlain(check.get('otherOwners')) as number) > 0) {
      throw new ConflictError(`${to.label} ${to.id} already belongs to another ${from.label}`, to.label, ['id']);
    }
    const record = (await tx.run(cypher.merge(spec, type), { fromId: from.id, toId: to.id, attributes: params }))
      .records[0];
    const customerId = record?.get('customerId') as string | null | undefined;
    if (!record || !customerId) throw new InvalidStateError(`${from.label} ${from.id} belongs to no customer`);
    const saved = toPlain(record.get('attributes')) as Record<string, Plain>;
    await appendEvent(tx, 'RelationshipAdded', customerId, { type, from, to, attributes: saved });
    return saved;
  });
}

/** The attributes of the edge `from -[type]-> to`, or null when there is no such edge. */
export async function getRelationshipAttributes(
  g: Graph,
  from: NodeRef,
  type: RelationshipType,
  to: NodeRef,
): Promise<Record<string, Plain> | null> {
  const spec = edgeSpec(from, type, to);
  return readTx(g, async (tx) => {
    const record = (await tx.run(cypher.read(spec, type), { fromId: from.id, toId: to.id })).records[0];
    return record ? (toPlain(record.get('attributes')) as Record<string, Plain>) : null;
  });
}
