/**
 * The Customer aggregate: create (with its digital identifiers, in one transaction), read,
 * update, and find by digital identifier.
 */
import { randomUUID } from 'node:crypto';
import neo4j, { type ManagedTransaction } from 'neo4j-driver';
import { currencyExponent, fromMinorUnits, maxMinorUnits } from '../payments/money';
import type { z } from 'zod';
import { toPlain } from './convert';
import { ConflictError, CustomerMergedError, InvalidStateError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { lockNode, readTx, writeTx, type Graph } from './graph';
import { attachIdentifiers } from './identifiers';
import { normaliseIdentifier } from './identity';
import {
  customerPatch,
  newCustomerInput,
  parseInput,
  type Customer,
  type CustomerPatch,
  type CustomerStatus,
  type IdentifierType,
  type NewCustomerInput,
  type Person,
} from './model';

/** The map projection every customer read returns. */
export const CUSTOMER_PROJECTION =
  'c {.id, .status, .segment, ltv_minor: c.ltv, predicted_ltv_minor: c.predicted_ltv, .acquisition_date, ' +
  '.created_at, .updated_at}';

const CYPHER = {
  create: `
    CREATE (c:Customer {
      id: $id, status: $status, segment: $segment, ltv: $ltvMinor,
      acquisition_date: coalesce(date($acquisitionDate), date(datetime.transaction())),
      created_at: datetime.transaction(), updated_at: datetime.transaction()
    })
    RETURN ${CUSTOMER_PROJECTION} AS customer`,
  get: `
    MATCH (c:Customer {id: $id})
    RETURN ${CUSTOMER_PROJECTION} AS customer`,
  // Bumping updated_at first takes the customer's write lock, so `before` is read under it.
  update: `
    MATCH (c:Customer {id: $id})
    SET c.updated_at = datetime.transaction()
    WITH c, c {.segment, ltv_minor: c.ltv, .status, .merged_into} AS before
    SET c += $patch
    RETURN before, ${CUSTOMER_PROJECTION} AS customer`,
  setStatus: `
    MATCH (c:Customer {id: $id})
    SET c.updated_at = datetime.transaction()
    WITH c, c.status AS from
    SET c.status = $status
    RETURN from`,
  // The write locks without a change (the counter and updated_at stay as they are).
  lock: `
    UNWIND $ids AS id
    MATCH (c:Customer {id: id})
    ${lockNode('c')}
    RETURN c.id AS id`,
  // The write lock without a change, then the status read under it.
  lockForChange: `
    MATCH (c:Customer {id: $id})
    ${lockNode('c')}
    RETURN c.status AS status, c.merged_into AS mergedInto`,
  person: `
    MATCH (c:Customer {id: $id})
    RETURN c {.given_name, .family_name, .birth_date} AS person`,
  findByDigitalId: `
    MATCH (c:Customer)-[:HAS_DIGITAL_IDENTIFIER]->(:DigitalIdentifier {type: $type, value: $value})
    RETURN ${CUSTOMER_PROJECTION} AS customer`,
} as const;

export function toCustomer(value: unknown, currency: string): Customer {
  const customer = toPlain(value) as unknown as Customer;
  const raw = value as { ltv_minor?: unknown; predicted_ltv_minor?: unknown };
  return {
    ...customer,
    ltv_minor: ltvMinorFromGraph(raw.ltv_minor, currency),
    predicted_ltv_minor: predictedLtvMinorFromGraph(raw.predicted_ltv_minor, currency),
  };
}

/** The Oracle's `predicted_ltv` property as minor units, or null when it has predicted none. */
export function predictedLtvMinorFromGraph(raw: unknown, currency: string): number | null {
  return raw === null || raw === undefined ? null : ltvMinorFromGraph(raw, currency);
}

/**
 * A customer's `ltv` property as minor units, never throwing on what the graph holds: none (an
 * erased customer) is 0; an integer is minor units; a float is major units, as the graph kept
 * LTV before it became exact (written by a process from before the migration); both capped at
 * the largest amount the api takes.
 */
export function ltvMinorFromGraph(raw: unknown, currency: string): number {
  const max = maxMinorUnits(currency);
  let minor = 0;
  if (neo4j.isInt(raw)) minor = raw.greaterThan(max) ? max : raw.toNumber();
  else if (typeof raw === 'number' && Number.isFinite(raw)) minor = Math.round(raw * 10 ** currencyExponent(currency));
  return Math.min(Math.max(minor, 0), max);
}

/** Inserts a customer inside the caller's transaction, with CustomerCreated. */
export async function insertCustomer(
  tx: ManagedTransaction,
  id: string,
  c: Pick<z.output<typeof newCustomerInput>, 'status' | 'segment' | 'ltv_minor' | 'acquisition_date'>,
  reportingCurrency: string,
): Promise<Customer> {
  const res = await tx.run(CYPHER.create, {
    id,
    status: c.status,
    segment: c.segment,
    ltvMinor: neo4j.int(c.ltv_minor),
    // A date-time names its day in its own offset: its first ten characters.
    acquisitionDate: c.acquisition_date?.slice(0, 10) ?? null,
  });
  const customer = toCustomer(res.records[0]?.get('customer'), reportingCurrency);
  await appendEvent(tx, 'CustomerCreated', id, {
    segment: customer.segment,
    status: customer.status,
    ...ltvFields(customer.ltv_minor, reportingCurrency),
    acquisition_date: customer.acquisition_date,
  });
  return customer;
}

/**
 * Lifetime value as events carry it: `ltv_minor` (exact, minor units of `ltv_currency`) and, for
 * readers of the feed from before, `ltv` as the number of major units it always was.
 */
export function ltvFields(minor: number, currency: string) {
  return { ltv: Number(fromMinorUnits(minor, currency)), ltv_minor: minor, ltv_currency: currency };
}

/**
 * Creates a customer and its digital identifiers in one transaction, with a CustomerCreated
 * event. An identifier that already exists makes the whole write fail with a ConflictError
 * (label DigitalIdentifier) and leaves nothing behind.
 */
export async function createCustomer(g: Graph, input: NewCustomerInput): Promise<Customer> {
  const c = parseInput(newCustomerInput, input, 'customer');
  const id = c.id ?? randomUUID();
  return writeTx(g, async (tx) => {
    const customer = await insertCustomer(tx, id, c, g.policy.reportingCurrency);
    await attachIdentifiers(tx, id, c.digital_identifiers, g.policy.defaultPhoneRegion);
    return customer;
  });
}

export async function getCustomer(g: Graph, id: string): Promise<Customer | null> {
  return readTx(g, async (tx) => {
    const res = await tx.run(CYPHER.get, { id });
    const record = res.records[0];
    return record ? toCustomer(record.get('customer'), g.policy.reportingCurrency) : null;
  });
}

/** What the customer's record knows of the person (graph/model.ts `Person`); null when there is no such customer. */
export async function getPerson(g: Graph, id: string): Promise<Person | null> {
  return readTx(g, async (tx) => {
    const record = (await tx.run(CYPHER.person, { id })).records[0];
    if (!record) return null;
    const p = toPlain(record.get('person')) as Partial<Person>;
    return { given_name: p.given_name ?? null, family_name: p.family_name ?? null, birth_date: p.birth_date ?? null };
  });
}

/**
 * Updates a customer's segment, LTV or status. Emits CustomerProfileUpdated with each changed
 * field's old and new value; an update that changes nothing emits nothing. The tombstone of a
 * merge (graph/identityMerge.ts) is refused under its lock, writing nothing: CustomerMergedError;
 * an erasure's is not found. `erased` is no status a patch may set (only the erasure sets it).
 */
export async function updateCustomer(g: Graph, id: string, patch: CustomerPatch): Promise<Customer> {
  const p = parseInput(customerPatch, patch, 'customer');
  return writeTx(g, async (tx) => {
    const { ltv_minor, ...rest } = p;
    const properties = { ...rest, ...(ltv_minor !== undefined ? { ltv: neo4j.int(ltv_minor) } : {}) };
    const res = await tx.run(CYPHER.update, { id, patch: properties });
    const record = res.records[0];
    if (!record) throw new NotFoundError('Customer', id);
    const currency = g.policy.reportingCurrency;
    const raw = record.get('before') as { ltv_minor?: unknown; status?: unknown; merged_into?: unknown };
    // Thrown inside the transaction function: the patch just set is rolled back with it.
    if (raw.status === 'merged') throw new CustomerMergedError(id, String(raw.merged_into));
    // An erased customer is gone: its tombstone takes nothing.
    if (raw.status === 'erased') throw new NotFoundError('Customer', id);
    const before: Record<string, unknown> = {
      ...(toPlain(raw) as Record<string, unknown>),
      ltv_minor: ltvMinorFromGraph(raw.ltv_minor, currency),
    };
    const customer = toCustomer(record.get('customer'), currency);
    const changes: Record<string, { from: unknown; to: unknown }> = Object.fromEntries(
      Object.entries(p)
        .filter(([field, to]) => before[field] !== to)
        .map(([field, to]) => [field, { from: before[field] ?? null, to }]),
    );
    // The feed has always said `ltv` in major units: it still does, beside the exact `ltv_minor`.
    if (changes.ltv_minor) {
      const major = (minor: unknown) => (typeof minor === 'number' ? ltvFields(minor, currency).ltv : null);
      changes.ltv = { from: major(changes.ltv_minor.from), to: major(changes.ltv_minor.to) };
    }
    if (Object.keys(changes).length > 0)
      await appendEvent(tx, 'CustomerProfileUpdated', id, {
        changes,
        ...(changes.ltv_minor ? { ltv_currency: currency } : {}),
      });
    return customer;
  });
}

/**
 * Sets a customer's status inside the caller's transaction; when it changed, appends `event`
 * (CustomerSuspended, CustomerReinstated) with `{from, to, ...payload}`. Returns the old status.
 */
export async function setCustomerStatusTx(
  tx: ManagedTransaction,
  id: string,
  to: CustomerStatus,
  event: 'CustomerSuspended' | 'CustomerReinstated',
  payload: Record<string, unknown>,
): Promise<CustomerStatus> {
  const record = (await tx.run(CYPHER.setStatus, { id, status: to })).records[0];
  if (!record) throw new NotFoundError('Customer', id);
  const from = record.get('from') as CustomerStatus;
  // A tombstone of a merge keeps its status (rolled back here): the writer follows the merge on a retry.
  if ((from as string) === 'merged') throw new ConflictError(`customer ${id} was merged into another: retry`);
  // An erased customer is gone: its tombstone's status is the erasure's (rolled back here).
  if (from === 'erased') throw new NotFoundError('Customer', id);
  if (from !== to) await appendEvent(tx, event, id, { from, to, ...payload });
  return from;
}

/**
 * Takes the write locks of these customers inside the caller's transaction, in id order (the
 * lock order: graph/graph.ts), before the writer touches anything of theirs. Returns the ids
 * that exist.
 */
export async function lockCustomersTx(tx: ManagedTransaction, ids: Iterable<string>): Promise<Set<string>> {
  const sorted = [...new Set(ids)].sort();
  if (sorted.length === 0) return new Set();
  const res = await tx.run(CYPHER.lock, { ids: sorted });
  return new Set(res.records.map((r) => r.get('id') as string));
}

/**
 * Takes the customer's write lock inside the caller's transaction (before anything of its own is
 * touched: the lock order, graph/graph.ts) and checks, under it, that `what` of the customer may
 * change now: never for a merge's tombstone (CustomerMergedError, naming the survivor), never for an
 * erased customer, and only in `allowStatuses`. A status that changed since a check made outside
 * the transaction (the api's guard) is caught here: InvalidStateError (409). NotFoundError when
 * there is no such customer. Returns the status.
 */
export async function lockCustomerForChangeTx(
  tx: ManagedTransaction,
  id: string,
  allowStatuses: readonly CustomerStatus[],
  what: string,
): Promise<CustomerStatus> {
  const record = (await tx.run(CYPHER.lockForChange, { id })).records[0];
  if (!record) throw new NotFoundError('Customer', id);
  const status = record.get('status') as CustomerStatus;
  if ((status as string) === 'merged') throw new CustomerMergedError(id, String(record.get('mergedInto')));
  if (status === 'erased' || !allowStatuses.includes(status))
    throw new InvalidStateError(`the customer is ${status}: ${what} cannot change now`);
  return status;
}

/** The customer holding this (normalised) identifier, or null. */
export async function findCustomerByDigitalId(g: Graph, type: IdentifierType, value: string): Promise<Customer | null> {
  return readTx(g, async (tx) => {
    const res = await tx.run(CYPHER.findByDigitalId, {
      type,
      value: normaliseIdentifier(type, value, g.policy.defaultPhoneRegion, 'value'),
    });
    const record = res.records[0];
    return record ? toCustomer(record.get('customer'), g.policy.reportingCurrency) : null;
  });
}
