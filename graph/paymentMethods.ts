/**
 * Payment methods and the customer's wallet. Rules kept here, whoever writes:
 *   - the token is encrypted before it reaches Neo4j and no read returns it;
 *   - a customer has at most one default method, and only an active method can become it;
 *   - writes that touch a customer's defaults take the customer's write lock first, so
 *     concurrent writers on one customer serialise instead of leaving two defaults;
 *   - the default is always active: a status change that makes it unusable moves the default
 *     to the most recently used active method (or clears it) in the same transaction
 *     (graph/walletDefaults.ts: the default and the methods' status).
 */
import { randomUUID } from 'node:crypto';
import { toPlain } from './convert';
import type { ManagedTransaction } from 'neo4j-driver';
import { CustomerMergedError, InvalidInputError, InvalidStateError, NotFoundError } from './errors';
import { appendEvent } from './events';
import { readCustomerList, readTx, writeTx, type Graph } from './graph';
import {
  newPaymentMethodInput,
  parseInput,
  type CustomerStatus,
  type NewPaymentMethodInput,
  type PaymentMethodStatus,
  type WalletEntry,
} from './model';
import { assertIsToken, TokenCipher } from './tokens';

const PM_FIELDS = '.id, .type, .status, .brand, .last_four, .expiry_month, .expiry_year, .created_at, .updated_at';
/** A wallet entry: the method (never its token) with its edge's default flag and use times. */
export const WALLET_ENTRY = `p {${PM_FIELDS}, is_default: coalesce(r.is_default, false),
  first_used: r.first_used, last_used: r.last_used}`;

const CYPHER = {
  methodCount: `
    MATCH (:Customer {id: $customerId})-[:HAS_PAYMENT_METHOD]->(pm:PaymentMethod)
    RETURN toInteger(count(pm)) AS held`,
  add: `
    MATCH (c:Customer {id: $customerId})
    SET c.updated_at = datetime.transaction()
    WITH c
    OPTIONAL MATCH (c)-[cur:HAS_PAYMENT_METHOD {is_default: true}]->(curPm:PaymentMethod)
    WITH c, collect(cur) AS currents, collect(curPm.id) AS currentIds
    WITH c, currents, currentIds, $status = 'active' AND ($makeDefault OR size(currents) = 0) AS becomesDefault
    CREATE (p:PaymentMethod {
      id: $id, type: $type, status: $status, token: $encryptedToken,
      brand: $brand, last_four: $lastFour, expiry_month: $expiryMonth, expiry_year: $expiryYear,
      created_at: datetime.transaction(), updated_at: datetime.transaction()
    })
    CREATE (c)-[r:HAS_PAYMENT_METHOD {is_default: becomesDefault}]->(p)
    SET r.first_used = CASE WHEN $used THEN datetime.transaction() END,
        r.last_used = CASE WHEN $used THEN datetime.transaction() END
    FOREACH (old IN CASE WHEN becomesDefault THEN currents ELSE [] END | SET old.is_default = false)
    RETURN ${WALLET_ENTRY} AS entry, CASE WHEN becomesDefault THEN currentIds ELSE null END AS replacedDefaults`,
  listForCustomer: `
    MATCH (c:Customer {id: $customerId})
    OPTIONAL MATCH (c)-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod)
    WITH c, r, p
    ORDER BY coalesce(r.is_default, false) DESC, r.last_used IS NULL, r.last_used DESC, p.created_at DESC
    RETURN c.id AS customerId, collect(${WALLET_ENTRY}) AS entries`,
  removeCheck: `
    MATCH (c:Customer {id: $customerId})
    SET c.updated_at = datetime.transaction()
    WITH c
    OPTIONAL MATCH (c)-[r:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    RETURN p IS NOT NULL AS owned, coalesce(r.is_default, false) AS wasDefault`,
  // Deleting the method deletes its encrypted token with it. When it was the default, the most
  // recently used active method left takes its place (or none does).
  remove: `
    MATCH (c:Customer {id: $customerId})-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    DETACH DELETE p
    WITH DISTINCT c
    OPTIONAL MATCH (c)-[r:HAS_PAYMENT_METHOD]->(next:PaymentMethod {status: 'active'})
    WHERE $wasDefault
    WITH r, next ORDER BY r.last_used IS NULL, r.last_used DESC, next.created_at DESC LIMIT 1
    FOREACH (x IN CASE WHEN r IS NULL THEN [] ELSE [r] END | SET x.is_default = true)
    RETURN next.id AS promoted`,
  token: `
    MATCH (:Customer)-[:HAS_PAYMENT_METHOD]->(p:PaymentMethod {id: $paymentMethodId})
    RETURN p.token AS token`,
} as const;

/** A wallet entry as a query returns it (`WALLET_ENTRY`), in plain values. */
export function toEntry(value: unknown): WalletEntry {
  return toPlain(value) as unknown as WalletEntry;
}

/** The public part of a wallet entry (what events may carry). */
function describe(entry: WalletEntry): Record<string, unknown> {
  return {
    payment_method_id: entry.id,
    type: entry.type,
    status: entry.status,
    brand: entry.brand,
    last_four: entry.last_four,
    expiry_month: entry.expiry_month,
    expiry_year: entry.expiry_year,
    is_default: entry.is_default,
  };
}

/** A payment method row ready for the graph: validated, and its token already encrypted. */
export interface PaymentMethodRow {
  id: string;
  type: NewPaymentMethodInput['type'];
  status: PaymentMethodStatus;
  encrypted_token: string;
  brand: string | null;
  last_four: string | null;
  expiry_month: number | null;
  expiry_year: number | null;
}

/** Validates input, refuses card numbers, and encrypts the token under the method's id. */
export function preparePaymentMethod(
  g: Pick<Graph, 'tokens'>,
  input: NewPaymentMethodInput,
  field = 'payment_method',
): PaymentMethodRow {
  const pm = parseInput(newPaymentMethodInput, input, field);
  assertIsToken(pm.token, `${field}.token`);
  const id = pm.id ?? randomUUID();
  return {
    id,
    type: pm.type,
    status: pm.status,
    encrypted_token: g.tokens.encrypt(pm.token, id),
    brand: pm.brand ?? null,
    last_four: pm.last_four ?? null,
    expiry_month: pm.expiry_month ?? null,
    expiry_year: pm.expiry_year ?? null,
  };
}

/**
 * Inserts a prepared payment method inside the caller's transaction, with PaymentMethodAdded
 * (and DefaultPaymentMethodChanged when the default moved). `used` stamps first and last use.
 */
export async function insertPaymentMethod(
  tx: ManagedTransaction,
  customerId: string,
  row: PaymentMethodRow,
  options: { makeDefault?: boolean; used?: boolean } = {},
): Promise<WalletEntry> {
  if (TokenCipher.keyIdOf(row.encrypted_token) === null)
    throw new InvalidInputError('payment_method.token', 'must be encrypted before it is stored');
  const res = await tx.run(CYPHER.add, {
    customerId,
    id: row.id,
    type: row.type,
    status: row.status,
    encryptedToken: row.encrypted_token,
    brand: row.brand,
    lastFour: row.last_four,
    expiryMonth: row.expiry_month,
    expiryYear: row.expiry_year,
    makeDefault: options.makeDefault ?? false,
    used: options.used ?? false,
  });
  const record = res.records[0];
  if (!record) throw new NotFoundError('Customer', customerId);
  const entry = toEntry(record.get('entry'));
  await appendEvent(tx, 'PaymentMethodAdded', customerId, describe(entry));
  const replaced = record.get('replacedDefaults') as string[] | null;
  if (replaced) {
    await appendEvent(tx, 'DefaultPaymentMethodChanged', customerId, { from: replaced[0] ?? null, to: entry.id });
  }
  return entry;
}

/**
 * Adds a payment method to a customer's wallet. It becomes the default when asked to, or when
 * the customer has none, provided it is active. Emits PaymentMethodAdded, and
 * DefaultPaymentMethodChanged when the default moved.
 */
export async function addPaymentMethod(
  g: Graph,
  customerId: string,
  input: NewPaymentMethodInput,
  options: { makeDefault?: boolean; allowStatuses?: readonly CustomerStatus[]; maxMethods?: number } = {},
): Promise<WalletEntry> {
  const row = preparePaymentMethod(g, input);
  return writeTx(g, async (tx) => {
    await lockWalletOwnerTx(tx, customerId, options.allowStatuses);
    // Counted under the customer's lock: two adds at once cannot both take the last place.
    if (options.maxMethods !== undefined) {
      const held = await countPaymentMethodsTx(tx, customerId);
      if (held >= options.maxMethods)
        throw new InvalidStateError(
          `the wallet holds ${held} payment methods, the most one customer may have (${options.maxMethods}): ` +
            'remove one before adding another',
        );
    }
    return insertPaymentMethod(tx, customerId, row, options);
  });
}

/** How many payment methods the customer's wallet holds (read under the customer's lock by the caller). */
export async function countPaymentMethodsTx(tx: ManagedTransaction, customerId: string): Promise<number> {
  return Number(toPlain((await tx.run(CYPHER.methodCount, { customerId })).records[0]?.get('held')));
}

const LOCK_OWNER = `
  MATCH (c:Customer {id: $customerId})
  SET c.updated_at = datetime.transaction()
  RETURN c.status AS status, c.merged_into AS mergedInto`;

/**
 * Takes the customer's lock and checks, under it, that its wallet may change: never for an erased
 * customer (a tombstone holds no wallet), and only in `allowStatuses` (default: active or
 * suspended; a customer's own token passes `['active']`); never for a merge's tombstone
 * (CustomerMergedError, naming the survivor). A status that changed since a check outside the
 * transaction is caught here: InvalidStateError (409).
 */
export async function lockWalletOwnerTx(
  tx: ManagedTransaction,
  customerId: string,
  allowStatuses: readonly CustomerStatus[] = ['active', 'suspended'],
): Promise<void> {
  const owner = (await tx.run(LOCK_OWNER, { customerId })).records[0];
  const status = owner?.get('status') as CustomerStatus | undefined;
  if (status === undefined) throw new NotFoundError('Customer', customerId);
  // A merge's tombstone (graph/identityMerge.ts): its wallet is the survivor's now.
  if ((status as string) === 'merged') throw new CustomerMergedError(customerId, String(owner?.get('mergedInto')));
  if (status === 'erased' || !allowStatuses.includes(status))
    throw new InvalidStateError(`the customer is ${status}: its wallet cannot change now`);
}

/** The customer's wallet: the default first, then the most recently used. Never a token. */
export async function getPaymentMethodsByCustomer(g: Graph, customerId: string): Promise<WalletEntry[]> {
  return readCustomerList<WalletEntry>(g, CYPHER.listForCustomer, customerId, 'entries');
}

/**
 * Removes a payment method (and its token) from the customer's wallet, with
 * PaymentMethodRemoved; removing the default promotes the most recently used active method, or
 * leaves none, with DefaultPaymentMethodChanged.
 */
export async function removePaymentMethod(
  g: Graph,
  customerId: string,
  paymentMethodId: string,
  options: { allowStatuses?: readonly CustomerStatus[] } = {},
): Promise<{ promoted: string | null }> {
  return writeTx(g, async (tx) => {
    await lockWalletOwnerTx(tx, customerId, options.allowStatuses);
    const check = (await tx.run(CYPHER.removeCheck, { customerId, paymentMethodId })).records[0];
    if (!check) throw new NotFoundError('Customer', customerId);
    if (!check.get('owned')) throw new NotFoundError('PaymentMethod', paymentMethodId);
    const wasDefault = check.get('wasDefault') as boolean;
    const res = await tx.run(CYPHER.remove, { customerId, paymentMethodId, wasDefault });
    const promoted = wasDefault ? ((res.records[0]?.get('promoted') as string | null | undefined) ?? null) : null;
    await appendEvent(tx, 'PaymentMethodRemoved', customerId, {
      payment_method_id: paymentMethodId,
      was_default: wasDefault,
    });
    if (wasDefault)
      await appendEvent(tx, 'DefaultPaymentMethodChanged', customerId, { from: paymentMethodId, to: promoted });
    return { promoted };
  });
}

/**
 * The decrypted gateway token of a payment method. Only the activity that charges the gateway
 * calls this; the token goes straight into the gateway request and is never logged or returned.
 */
export async function revealPaymentToken(g: Graph, paymentMethodId: string): Promise<string> {
  const stored = await readTx(g, async (tx) => {
    const res = await tx.run(CYPHER.token, { paymentMethodId });
    return res.records[0]?.get('token') as string | undefined;
  });
  if (!stored) throw new NotFoundError('PaymentMethod', paymentMethodId);
  return g.tokens.decrypt(stored, paymentMethodId);
}
