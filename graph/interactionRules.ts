/**
 * What graph/interactions.ts decides per item before it writes anything, as pure functions over
 * what it read: the item's own validity, which customers to lock and with which methods, whether
 * the customer's status or the method refuses it, and which items of the batch claim their id.
 */
import { decimalProblem } from '../payments/money';
import type { Interaction, InteractionResult } from './interactionModel';

export const invalid = (field: string, problem: string): InteractionResult => ({ result: 'invalid', field, problem });

/** An item refused whatever the graph holds (no customer read yet); `undefined` if none. */
export function refusalOf(item: Interaction, currency: string): InteractionResult | undefined {
  if (item.type === 'payment' && item.currency !== currency)
    return invalid(
      'currency',
      `must be ${currency}, the reporting currency: no exchange rate to it is configured, so an amount in ` +
        'another currency cannot be counted exactly',
    );
  const problem = item.type === 'ltv_feedback' ? decimalProblem(item.predicted_ltv, currency) : null;
  return problem ? invalid('predicted_ltv', `${problem} (in ${currency})`) : undefined;
}

/** Per customer the items name (in the order first named), the payment methods its payments name. */
export function methodsNamed(items: Interaction[]): Map<string, Set<string>> {
  const methods = new Map<string, Set<string>>();
  for (const item of items) {
    const named = methods.get(item.customer_id) ?? new Set<string>();
    if (item.type === 'payment') named.add(item.payment_method_id);
    methods.set(item.customer_id, named);
  }
  return methods;
}

/** A customer to lock, with the methods whose ownership is read under its lock. */
export interface LockRow {
  id: string;
  methods: string[];
}

/** The lock statement's rows: the customers in id order. */
export const lockRowsOf = (methods: Map<string, Set<string>>): LockRow[] =>
  [...methods.keys()].sort().map((id) => ({ id, methods: [...(methods.get(id) ?? [])] }));

/**
 * The survivors of the merged customers the batch named (`survivorFor`: tombstone → survivor),
 * as lock rows in id order, each with the methods its tombstones' items name.
 */
export function survivorLockRows(survivorFor: Map<string, string>, methods: Map<string, Set<string>>): LockRow[] {
  const named = new Map<string, Set<string>>();
  for (const [tombstone, survivor] of survivorFor)
    named.set(survivor, new Set([...(named.get(survivor) ?? []), ...(methods.get(tombstone) ?? [])]));
  return lockRowsOf(named);
}

/**
 * The refusal a customer's status (read under its lock; `undefined`: no such customer) gives an
 * item naming `customerId`; `undefined` if it is recorded.
 */
export function statusRefusal(status: string | undefined, customerId: string): InteractionResult | undefined {
  if (status === undefined) return invalid('customer_id', 'no such customer');
  if (status === 'erased') return invalid('customer_id', 'the customer was erased: nothing is recorded');
  if (status === 'merged')
    return {
      result: 'invalid',
      field: 'customer_id',
      problem: `customer ${customerId} is being merged: send the item again`,
      retry: true,
    };
  return undefined;
}

/**
 * The refusal of a payment naming a method its owner does not hold (`owned`: `owner|method`);
 * `undefined` for anything else.
 */
export const methodRefusal = (item: Interaction, owner: string, owned: Set<string>): InteractionResult | undefined =>
  item.type === 'payment' && !owned.has(`${owner}|${item.payment_method_id}`)
    ? invalid('payment_method_id', 'not a payment method of this customer')
    : undefined;

/**
 * The key an item's id is claimed by: the customer the sender named (a merged one's too), so
 * that an item recorded before its customer was merged is a duplicate when it is sent again after.
 */
export const claimKey = (item: Interaction): string => `${item.customer_id}:${item.id}`;

/** An item of the batch with its index in it. */
export interface Indexed {
  item: Interaction;
  i: number;
}

export interface ClaimRow {
  key: string;
  customerId: string;
  type: string;
}

/** The claims to make: the first item of a key in the batch claims it (`firstOf`: key → index). */
export function claimsOf(open: Indexed[]): { firstOf: Map<string, number>; rows: ClaimRow[] } {
  const firstOf = new Map<string, number>();
  const rows: ClaimRow[] = [];
  for (const { item, i } of open) {
    const key = claimKey(item);
    if (firstOf.has(key)) continue;
    firstOf.set(key, i);
    rows.push({ key, customerId: item.customer_id, type: item.type });
  }
  return { firstOf, rows };
}

/**
 * Each item's answer once the claims are made (`created`: the keys this transaction claimed):
 * the first of its key, claimed now, is recorded — on its owner (`ownerOf`: the customer or that
 * customer's survivor) — and any other a duplicate. `recorded`: the items to apply, as owned.
 */
export function settleClaims(
  open: Indexed[],
  firstOf: Map<string, number>,
  created: Set<string>,
  ownerOf: (item: Interaction) => string,
): { settled: { i: number; result: InteractionResult }[]; recorded: Interaction[] } {
  const settled: { i: number; result: InteractionResult }[] = [];
  const recorded: Interaction[] = [];
  for (const { item, i } of open) {
    const key = claimKey(item);
    if (firstOf.get(key) === i && created.has(key)) {
      const owner = ownerOf(item);
      settled.push({
        i,
        result: owner === item.customer_id ? { result: 'recorded' } : { result: 'recorded', merged_into: owner },
      });
      recorded.push(owner === item.customer_id ? item : { ...item, customer_id: owner });
    } else settled.push({ i, result: { result: 'duplicate' } });
  }
  return { settled, recorded };
}
