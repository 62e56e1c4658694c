/** Customer self-service reads and writes: one graph call each, shaped for the API contract. */
import { getCustomer, updateCustomer } from '../../graph/customers';
import { NotFoundError } from '../../graph/errors';
import type { Graph } from '../../graph/graph';
import { getDigitalIdentifiersByCustomer } from '../../graph/identifiers';
import type { CustomerPatch, CustomerStatus, NewPaymentMethodInput, WalletEntry } from '../../graph/model';
import { listPossibleMatches } from '../../graph/onboarding';
import { addPaymentMethod, getPaymentMethodsByCustomer, removePaymentMethod } from '../../graph/paymentMethods';
import { fromMinorUnits, toMinorUnits } from '../../payments/money';
import { actsAsSelf } from '../auth';
import type { ApiDeps } from '../deps';
import { guardAndRecord, type Actor } from './guards';
import { offerNewPaymentMethod, type RecoveryOffer } from './recovery';

export async function getProfile(g: Graph, id: string) {
  const customer = await getCustomer(g, id);
  if (!customer) throw new NotFoundError('Customer', id);
  const identifiers = await getDigitalIdentifiersByCustomer(g, id);
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
    created_at: customer.created_at,
    updated_at: customer.updated_at,
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

export async function listWallet(g: Graph, id: string) {
  return { data: (await getPaymentMethodsByCustomer(g, id)).map(walletItem), next_cursor: null };
}

/** Who may change a wallet besides the customer: the platform (`customers:write`) and ops. */
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

/** Removes a payment method, under the same rule as adding one. */
export async function removeFromWallet(
  deps: ApiDeps,
  id: string,
  paymentMethodId: string,
  actor: Omit<Actor, 'routeScopes'>,
): Promise<void> {
  await guardAndRecord(deps, id, 'remove_payment_method', { ...actor, routeScopes: WALLET_SCOPES });
  await removePaymentMethod(deps.graph, id, paymentMethodId, { allowStatuses: walletStatusesFor(actor) });
}

export async function possibleMatches(g: Graph, id: string) {
  if (!(await getCustomer(g, id))) throw new NotFoundError('Customer', id);
  return { data: await listPossibleMatches(g, id), next_cursor: null };
}
