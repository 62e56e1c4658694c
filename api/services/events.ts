/**
 * The event log from the api's side: the change feed for Oracle (every event, oldest first,
 * resumable) and a customer's own history (newest first, in words a person can read).
 */
import { contestHistoryEntry, listHistoryContests, type ContestRecorded } from '../../graph/audit';
import { NotFoundError } from '../../graph/errors';
import type { EventType } from '../../graph/eventSchemas';
import type { PersonaEvent } from '../../graph/events';
import { readCustomerHistory, readFeed, readHistoryEntry, type FeedPage } from '../../graph/feed';
import { CURRENCY_PATTERN, fromMinorUnits } from '../../payments/money';
import type { ApiDeps } from '../deps';
import { mergedInto } from './mergedIds';

export async function eventFeed(deps: ApiDeps, after: string | undefined, limit: number): Promise<FeedPage> {
  return readFeed(deps.graph, { after, limit, lagMs: deps.events.feedLagMs });
}

export interface HistoryItem {
  id: string;
  type: EventType;
  occurred_at: string;
  /** The event's place in the customer's sequence (null for an event of no customer). */
  customer_seq: number | null;
  /** What happened, in a sentence. */
  summary: string;
}

type Payload = Record<string, unknown>;
/** Minor units as the currency writes them ("15.00 EUR", "1500 JPY"). */
function money(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor) || !CURRENCY_PATTERN.test(currency)) return `${minor} ${currency}`;
  return `${fromMinorUnits(minor, currency)} ${currency}`;
}

function str(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}
const words = (v: unknown): string => str(v).replace(/_/g, ' ');
const because = (p: Payload): string => (p.reason ? ` (${str(p.reason)})` : '');
const card = (p: Payload): string =>
  p.type === 'card'
    ? `${str(p.brand) || 'card'} ending ${str(p.last_four)}` +
      `${p.expiry_month ? `, expires ${str(p.expiry_month).padStart(2, '0')}/${str(p.expiry_year)}` : ''}`
    : words(p.type);
const NOTIFICATION: Record<string, (p: Payload) => string> = {
  card_expiring: (p) => `your card expires at the end of ${str(p.expires)} (${str(p.stage_days)}-day reminder)`,
  payment_recovered: () => 'a failed payment was recovered',
  payment_failed: () => 'a payment could not be recovered',
  dunning_reminder: () => 'please update your payment details',
  card_compromised: () => 'a card was blocked for your protection',
  account_takeover: () => 'we suspended your account after suspicious activity',
  security_notice: () => 'a security notice about your account',
  merge_consent: () => 'we asked you to confirm that two profiles are both yours, to merge them',
};

/** An event type in words: `PaymentMethodRemoved` → `payment method removed`. */
const typeWords = (type: unknown): string =>
  str(type)
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase();
/** An RFC 3339 time to the minute, UTC: `2026-11-22 10:12 UTC`. */
const minute = (at: unknown): string => {
  const d = new Date(str(at));
  return Number.isNaN(d.getTime()) ? str(at) : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
};

/** Profile fields in minor units (with `ltv_currency`), by the words that name them. */
const MONEY_FIELDS: Record<string, string> = {
  ltv_minor: 'lifetime value',
  predicted_ltv_minor: 'predicted lifetime value',
};
const amount = (minor: unknown, currency: string): string =>
  minor === null || minor === undefined ? 'none' : money(Number(minor), currency);

const SUMMARY: Record<string, (p: Payload) => string> = {
  CustomerCreated: (p) => `Profile created (segment ${str(p.segment)})`,
  CustomerOnboarded: (p) =>
    p.outcome === 'matched' ? 'Signed up again and was recognised as this customer' : 'Signed up',
  CustomerProfileUpdated: (p) => {
    const changed = Object.entries((p.changes ?? {}) as Record<string, { from: unknown; to: unknown }>)
      .filter(([field]) => !(MONEY_FIELDS[`${field}_minor`] && p.ltv_currency))
      .map(([field, c]) =>
        MONEY_FIELDS[field] && typeof p.ltv_currency === 'string'
          ? `${MONEY_FIELDS[field]} ${amount(c.from, p.ltv_currency)} → ${amount(c.to, p.ltv_currency)}`
          : `${words(field)} ${str(c.from)} → ${str(c.to)}`,
      );
    // A payment that only moved a method's last use (payment_methods_used) changes no field.
    const used = Array.isArray(p.payment_methods_used) ? p.payment_methods_used.length : 0;
    if (used > 0) changed.push(`${used === 1 ? 'a payment method' : `${used} payment methods`} used`);
    return `Profile updated: ${changed.join(', ')}${because(p)}`;
  },
  DigitalIdentifierAdded: (p) =>
    `${p.type === 'email' ? 'Email address' : 'Phone number'} added${p.is_verified ? ' (verified)' : ''}`,
  PaymentMethodAdded: (p) => `Payment method added: ${card(p)}${p.is_default ? ' — now the default' : ''}`,
  PaymentMethodStatusChanged: (p) => `A payment method is now ${words(p.to)} (was ${words(p.from)})${because(p)}`,
  DefaultPaymentMethodChanged: (p) => (p.to ? 'Default payment method changed' : 'No default payment method any more'),
  PaymentMethodRemoved: () => 'Payment method removed',
  DeviceLinked: (p) =>
    p.new_device ? 'Signed in from a new device' : `Signed in from a known device (${str(p.login_count)} sign-ins)`,
  DeviceTrustScoreUpdated: (p) => `A device’s trust changed from ${str(p.from)} to ${str(p.to)}${because(p)}`,
  DeviceTrustEarned: (p) => `Your trust on a device changed from ${str(p.from)} to ${str(p.to)}${because(p)}`,
  AddressAdded: () => 'Address added',
  PaymentRecovered: (p) =>
    `Failed payment ${str(p.payment_id)} recovered` +
    `${p.amount ? ` (${money(Number(p.amount), str(p.currency))})` : ''}`,
  PaymentMethodUpdatedByNetwork: (p) =>
    `Your card's issuer sent its new details through the card network: it now expires ${str(p.expiry_to)}` +
    `${p.token_replaced ? ' (reissued)' : ''}`,
  PaymentRecoveryFailed: (p) => `Payment ${str(p.payment_id)} could not be recovered`,
  CustomerNotified: (p) =>
    `${p.channel ? `Sent by ${p.channel === 'sms' ? 'text message' : 'email'}` : 'Not sent (no way to reach you)'}: ` +
    `${(NOTIFICATION[str(p.kind)] ?? ((q: Payload) => words(q.kind)))(p)}`,
  CustomerSuspended: (p) => `Account suspended${because(p)}`,
  CustomerReinstated: (p) => `Account reinstated${because(p)}`,
  PossibleMatchFound: () => 'A possibly related profile was found and noted for review',
  BehavioralProfileRequested: () => 'Behavioural profile requested from fraud checks',
  TrustedDeviceReported: () => 'A trusted device was reported to fraud checks',
  FraudOutcomeApplied: (p) => `Fraud check outcome: ${words(p.outcome)}`,
  FraudOutcomeReversed: (p) =>
    p.refused
      ? 'A report that an earlier fraud decision was wrong came after our review of it: nothing was changed'
      : 'An earlier fraud decision was reversed (false positive)',
  CustomerErased: () => 'Personal data erased at the customer’s request',
  PaymentMethodUsedOnDevice: (p) => `A payment method was used on ${p.new_device ? 'a new' : 'another'} device`,
  GraphRestored: () => 'Persona’s records were restored from a backup',
  OpsActionRecorded: (p) => `Support acted on the account (${words(p.action)}): ${str(p.reason)}`,
  CustomersMerged: (p) => {
    const m = (p.manifest ?? {}) as Record<string, unknown[] | undefined>;
    const n = (k: string, one: string, many: string): string => {
      const count = m[k]?.length ?? 0;
      return `${count} ${count === 1 ? one : many}`;
    };
    const how = p.decided_by === 'consent' ? 'with the consent of both' : 'by support';
    return (
      `Profile ${str(p.merged_id)} was merged into ${str(p.survivor_id)} ${how}: ` +
      `${n('payment_methods', 'payment method', 'payment methods')}, ${n('devices', 'device', 'devices')}, ` +
      `${n('addresses', 'address', 'addresses')} and ${n('identifiers', 'contact detail', 'contact details')} moved`
    );
  },
  CustomersUnmerged: (p) => {
    const kept = Array.isArray(p.not_restored) ? p.not_restored.length : 0;
    return (
      `The merge of profile ${str(p.merged_id)} into ${str(p.survivor_id)} was undone` +
      `${kept ? ` (${kept} ${kept === 1 ? 'item' : 'items'} changed since stayed as they are)` : ''}`
    );
  },
  // Disowned, not deleted (graph/devices.ts): the words say it is kept.
  DeviceRemovedByCustomer: () =>
    'The customer removed a device from their devices (not theirs any more; its record is kept for fraud checks)',
  AddressRemovedByCustomer: () =>
    'The customer removed an address from their addresses (not theirs any more; its record is kept)',
  HistoryEntryContested: (p) =>
    p.contested_event_id
      ? `The customer contested the entry of ${minute(p.contested_occurred_at)} (${typeWords(p.contested_type)})` +
        `${p.words ? `: “${str(p.words)}”` : ''}`
      : 'The customer contested an entry of this history',
  FraudReviewResolved: (p) =>
    p.decision === 'timed_out'
      ? 'Fraud review: no decision in time; the suspension stays'
      : `Fraud review: ${p.decision === 'reinstate' ? 'reinstated' : 'suspension confirmed'}`,
};

/**
 * What the customer's own view says instead: no ops' reasons, no fraud outcome's kind, no fraud
 * review's decision — whoever holds a taken-over session must not learn what fraud checks found
 * or what support wrote about it. Staff (ops, agents with the scope) read the words above.
 */
const FOR_THE_CUSTOMER: Record<string, (p: Payload) => string> = {
  CustomerSuspended: () => 'Account suspended while we review it; support can help',
  CustomerReinstated: () => 'Account reinstated',
  PaymentMethodStatusChanged: (p) => `A payment method is now ${words(p.to)} (was ${words(p.from)})`,
  FraudOutcomeApplied: () => 'Our security checks changed your account',
  FraudOutcomeReversed: (p) =>
    p.refused ? 'A security report about your account was recorded' : 'An earlier security decision was reversed',
  FraudReviewResolved: () => 'A security review of your account ended',
  // A reset of the auto-link count says nothing of the policy to whoever holds the customer's session.
  OpsActionRecorded: (p) =>
    p.action === 'reset_auto_links'
      ? 'Support reviewed your account'
      : `Support acted on your account (${words(p.action)})`,
  CustomerProfileUpdated: (p) => SUMMARY.CustomerProfileUpdated?.({ ...p, reason: undefined }) ?? 'Profile updated',
  // Whoever set a device's trust wrote the reason for staff, and every customer on the device reads the event.
  DeviceTrustScoreUpdated: (p) => `A device’s trust changed from ${str(p.from)} to ${str(p.to)}`,
  DeviceTrustEarned: () => 'A device of yours passed a security check',
  // The notice itself went to the customer's verified address; the history does not say why.
  CustomerNotified: (p) =>
    SUMMARY.CustomerNotified?.({ ...p, kind: p.kind === 'account_takeover' ? 'security_notice' : p.kind }) ??
    'Notified',
};

/** Who reads a history: the customer (their own token, their console page) or staff. */
export type HistoryAudience = 'customer' | 'staff';

/**
 * What the customer's own history leaves out: a possible match says another person with the
 * sign-up's name and birth date (or contact details) is on file — an oracle for whoever signs up
 * with someone else's facts and reads the new customer's history. Staff review them; the export
 * drops them too (api/services/privacy.ts).
 */
const HIDDEN_FROM: Record<HistoryAudience, readonly string[]> = {
  customer: ['PossibleMatchFound'],
  staff: [],
};

/** One event in words. Payloads carry no token, and the summary adds none. */
export function describeEvent(e: PersonaEvent, audience: HistoryAudience = 'staff'): HistoryItem {
  const say = (audience === 'customer' ? FOR_THE_CUSTOMER[e.type] : undefined) ?? SUMMARY[e.type];
  const summary = (say ?? ((): string => words(e.type)))(e.payload);
  return { id: e.id, type: e.type, occurred_at: e.occurred_at, customer_seq: e.customer_seq ?? null, summary };
}

/** A customer's history in words; for a merged customer's id, its survivor's, with `merged_into`. */
export async function customerHistory(
  deps: ApiDeps,
  customerId: string,
  before: string | undefined,
  limit: number,
  audience: HistoryAudience = 'staff',
): Promise<{ data: HistoryItem[]; next_cursor: string | null; merged_into?: string }> {
  const page = await readCustomerHistory(deps.graph, customerId, {
    before,
    limit,
    follow: true,
    hidden: HIDDEN_FROM[audience],
  });
  return {
    data: page.data.map((e) => describeEvent(e, audience)),
    next_cursor: page.next_cursor,
    ...mergedInto(page.merged_into),
  };
}

/** One entry of the customer's history, in words; NotFoundError when it is not in that history. */
export async function historyEntry(
  deps: ApiDeps,
  customerId: string,
  eventId: string,
  audience: HistoryAudience = 'staff',
): Promise<HistoryItem> {
  const event = await readHistoryEntry(deps.graph, customerId, eventId, HIDDEN_FROM[audience]);
  if (!event) throw new NotFoundError('History entry', eventId);
  return describeEvent(event, audience);
}

/**
 * The customer contests an entry of their history in their own words (graph/audit.ts): a new
 * event, the entry unchanged. The caller has checked that this is the customer's own request
 * (the console's own-page action); the graph checks the entry is in the customer's history.
 */
export async function contestEntry(
  deps: ApiDeps,
  customerId: string,
  contest: { event_id: string; words: string; request_id: string },
): Promise<ContestRecorded> {
  return contestHistoryEntry(deps.graph, customerId, contest);
}

/** A contested entry as ops read it: when, the customer's words, and the entry in words. */
export interface ContestItem {
  id: string;
  occurred_at: string;
  words: string;
  contested_event_id: string;
  /** The contested entry in words; null when that event is gone. */
  entry: HistoryItem | null;
}

/** The customer's contested history entries, newest first (at most `limit`). */
export async function historyContests(deps: ApiDeps, customerId: string, limit = 50): Promise<ContestItem[]> {
  const contests = await listHistoryContests(deps.graph, customerId, limit);
  return contests.map(({ contest, entry }) => ({
    id: contest.id,
    occurred_at: contest.occurred_at,
    words: str(contest.payload.words),
    contested_event_id: str(contest.payload.contested_event_id),
    entry: entry ? describeEvent(entry) : null,
  }));
}
