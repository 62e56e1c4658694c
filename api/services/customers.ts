/** Customer self-service reads and writes: one graph call each, shaped for the API contract. */
import { removeAddressFromCustomer } from '../../graph/addresses';
import { getCustomer, getPerson, updateCustomer } from '../../graph/customers';
import { removeDeviceFromCustomer } from '../../graph/devices';
import { NotFoundError } from '../../graph/errors';
import type { Graph } from '../../graph/graph';
import { getDigitalIdentifiersByCustomer } from '../../graph/identifiers';
import type { CustomerPatch, CustomerStatus, NewPaymentMethodInput, WalletEntry } from '../../graph/model';
import { listMatchEvidence } from '../../graph/matchEvidence';
import { addPaymentMethod, getPaymentMethodsByCustomer, removePaymentMethod } from '../../graph/paymentMethods';
import { setDefaultPaymentMethod } from '../../graph/walletDefaults';
import { fromMinorUnits, toMinorUnits } from '../../payments/money';
import { actsAsSelf } from '../auth';
import type { ApiDeps } from '../deps';
import { guardAndRecord, type Actor } from './guards';
import { followMerge, isMergedStatus, mergedInto } from './mergedIds';
import { offerNewPaymentMethod, type RecoveryOffer } from './recovery';

/**
 * The profile; for a merged customer's id, its survivor's with `merged_into` (the status read says
 * so: any other id costs no more reads).
 */
export async function getProfile(g: Graph, id: string) {
  let customer = await getCustomer(g, id);
  let survivor: string | undefined;
  // A second round only when the survivor was itself merged in between (a chain is shortened at once).
  for (let round = 0; customer && isMergedStatus(customer.status) && round < 2; round++) {
    survivor = (await followMerge(g, id)).id;
    customer = await getCustomer(g, survivor);
  }
  if (!customer || isMergedStatus(customer.status)) throw new NotFoundError('Customer', id);
  const [identifiers, person] = await Promise.all([
    getDigitalIdentifiersByCustomer(g, customer.id),
    getPerson(g, customer.id),
  ]);
  return {
    customer_id: customer.id,
    status: customer.status,
    segment: customer.segment,
    ltv: fromMinorUnits(customer.ltv_minor, g.policy.reportingCurrency),
    ltv_currency: g.policy.reportingCurrency,
    predicted_ltv:
      customer.predicted_ltv_minor === null
        ? null
        : fromMinorUnits(customer.predicted_ltv_minor, g.policy.reportingCurrency),
    acquisition_date: customer.acquisition_date,
    digital_identifiers: identifiers.map((i) => ({ type: i.type, value: i.value, is_verified: i.is_verified })),
    person: person ?? { given_name: null, family_name: null, birth_date: null },
    created_at: customer.created_at,
    updated_at: customer.updated_at,
    ...mergedInto(survivor),
  };
}

/** Segment and/or LTV; the LTV arrives as a decimal string and is kept in minor units. */
export async function updateProfile(
  g: Graph,
  id: string,
  patch: { segment?: string | undefined; ltv?: string | undefined },
) {
  const { ltv, ...rest } = patch;
  const change: CustomerPatch = {
    ...rest,
    ...(ltv !== undefined ? { ltv_minor: toMinorUnits(ltv, g.policy.reportingCurrency) } : {}),
  };
  await updateCustomer(g, id, change);
  return getProfile(g, id);
}

/** The wallet item of the API contract (never the token). */
export function walletItem(e: WalletEntry) {
  return {
    id: e.id,
    type: e.type,
    status: e.status,
    brand: e.brand,
    last_four: e.last_four,
    expiry_month: e.expiry_month,
    expiry_year: e.expiry_year,
    is_default: e.is_default,
    last_used: e.last_used,
  };
}

/**
 * The wallet; for a merged customer's id, its survivor's with `merged_into`. A merged customer's
 * own wallet is empty (its methods moved to the survivor, and no wallet write reaches a tombstone),
 * so only an empty wallet asks where the id leads: a wallet with methods costs no more reads.
 */
export async function listWallet(g: Graph, id: string) {
  const entries = await getPaymentMethodsByCustomer(g, id);
  if (entries.length > 0) return { data: entries.map(walletItem), next_cursor: null };
  const target = await followMerge(g, id);
  if (target.merged_into === undefined) return { data: [], next_cursor: null };
  const survivors = await getPaymentMethodsByCustomer(g, target.id);
  return { data: survivors.map(walletItem), next_cursor: null, ...mergedInto(target.merged_into) };
}

/**
 * Who may change a wallet (or remove a device or an address) besides the customer: the platform
 * (`customers:write`) and ops.
 */
const WALLET_SCOPES = ['customers:write'] as const;

/**
 * The customer statuses a wallet write may commit under, checked again under the customer's lock
 * (the guard reads outside the write): a customer's own token only while active; others while
 * active or suspended (with the reason the guard asked for); nobody once erased.
 */
function walletStatusesFor(actor: Omit<Actor, 'routeScopes'>): readonly CustomerStatus[] {
  return actsAsSelf(actor.principal, WALLET_SCOPES) ? ['active'] : ['active', 'suspended'];
}

/**
 * Adds a payment method. A customer who is not active cannot with its own token; anyone else
 * needs a reason then, recorded (api/services/guards.ts).
 */
export async function addToWallet(
  deps: ApiDeps,
  id: string,
  input: NewPaymentMethodInput & { make_default?: boolean | undefined },
  actor: Omit<Actor, 'routeScopes'>,
  options: { wait?: boolean } = {},
): Promise<ReturnType<typeof walletItem> & { recoveries?: RecoveryOffer[] }> {
  await guardAndRecord(deps, id, 'add_payment_method', { ...actor, routeScopes: WALLET_SCOPES });
  const { make_default, ...pm } = input;
  const entry = await addPaymentMethod(deps.graph, id, pm, {
    makeDefault: make_default ?? false,
    allowStatuses: walletStatusesFor(actor),
    maxMethods: deps.limits.maxPaymentMethods,
  });
  const item = walletItem(entry);
  if (entry.status !== 'active') return item;
  // The customer's running recoveries are offered the card, which each charges at once; with a
  // wait, their answers come back here. The card is added (committed) whatever Temporal does.
  try {
    const offers = await offerNewPaymentMethod(deps, id, entry.id, options.wait ? deps.limits.waitTimeoutMs : 0);
    // The customer learns whether the card paid, not the issuer's reason: a live decline code
    // for every card added would be a card tester's oracle.
    const recoveries = actsAsSelf(actor.principal, WALLET_SCOPES)
      ? offers.map((o) => ({ ...o, decline_code: null }))
      : offers;
    return recoveries.length > 0 ? { ...item, recoveries } : item;
  } catch (err) {
    deps.logger.warn({ err, customerId: id }, 'could not offer the new payment method to running recoveries');
    return item;
  }
}

/**
 * Removes a payment method, under the same rule as adding one. Removing the default promotes the
 * most recently used active method (graph/paymentMethods.ts): `promoted` names it (null: none, or
 * the method was not the default).
 */
export async function removeFromWallet(
  deps: ApiDeps,
  id: string,
  paymentMethodId: string,
  actor: Omit<Actor, 'routeScopes'>,
): Promise<{ promoted: string | null }> {
  await guardAndRecord(deps, id, 'remove_payment_method', { ...actor, routeScopes: WALLET_SCOPES });
  return removePaymentMethod(deps.graph, id, paymentMethodId, { allowStatuses: walletStatusesFor(actor) });
}

/** Makes an active method of the wallet its default, under the same rule as any wallet write. */
export async function chooseDefaultInWallet(
  deps: ApiDeps,
  id: string,
  paymentMethodId: string,
  actor: Omit<Actor, 'routeScopes'>,
): Promise<void> {
  await guardAndRecord(deps, id, 'set_default_payment_method', { ...actor, routeScopes: WALLET_SCOPES });
  await setDefaultPaymentMethod(deps.graph, id, paymentMethodId, { allowStatuses: walletStatusesFor(actor) });
}

/**
 * The customer disowns a device that is not theirs any more (graph/devices.ts: their login edge is
 * marked, nothing deleted — fraud checks, trust and ops keep it; their page and context drop it),
 * under the wallet's rule: a customer who is not active cannot with its own token, anyone else
 * needs a reason then. Again for a device already disowned: the same answer, nothing new.
 */
export async function removeDevice(
  deps: ApiDeps,
  id: string,
  deviceId: string,
  actor: Omit<Actor, 'routeScopes'>,
): Promise<{ device_id: string; disowned_at: string; recorded: boolean }> {
  await guardAndRecord(deps, id, 'remove_device', { ...actor, routeScopes: WALLET_SCOPES });
  return removeDeviceFromCustomer(deps.graph, id, deviceId, { allowStatuses: walletStatusesFor(actor) });
}

/** As removeDevice, for an address (graph/addresses.ts). */
export async function removeAddress(
  deps: ApiDeps,
  id: string,
  addressId: string,
  actor: Omit<Actor, 'routeScopes'>,
): Promise<{ address_id: string; disowned_at: string; recorded: boolean }> {
  await guardAndRecord(deps, id, 'remove_address', { ...actor, routeScopes: WALLET_SCOPES });
  return removeAddressFromCustomer(deps.graph, id, addressId, { allowStatuses: walletStatusesFor(actor) });
}

/**
 * The customers this one may be, each with its score and the evidence for it, ranked (one graph
 * read). Review data: it names other customers, so never for a customer's own token.
 */
export async function possibleMatches(g: Graph, id: string) {
  const data = await listMatchEvidence(g, id);
  if (!data) throw new NotFoundError('Customer', id);
  return { data, next_cursor: null };
}
