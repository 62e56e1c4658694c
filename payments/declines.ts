/**
 * Decline codes and what Persona does about each — the one table the recovery's activities, the
 * gateway simulator and the tests read. A business table: evaluated only in activities
 * (`decideDecline`), whose answers the recovery's history records, so that an edit changes what
 * later declines decide and never what a running recovery's history says (the recovery's workflow
 * modules import only types from here; test/workflows/tables.test.ts edits an entry and replays every
 * history).
 *   fraud_hard: the card is compromised: deactivate it, tell the customer, stop.
 *   hard:       the card will not work again: deactivate it (expired_card → `expired`), cascade.
 *   soft:       this attempt failed: cascade to the next method; the card may work later.
 * `doNotRetry` marks codes after which card-network rules forbid charging that card again; the
 * other card-network rule, a cap on charges per method, is here too.
 */

/**
 * Card-network rule: no method is charged more than this often in 30 days, by any recovery
 * (counted in the graph when a charge is reserved, graph/recovery.ts).
 */
export const MAX_CHARGES_PER_METHOD_IN_30_DAYS = 15;

export type DeclineClass = 'fraud_hard' | 'hard' | 'soft';

export interface DeclineRule {
  class: DeclineClass;
  /** Status the failed method takes, when it is deactivated. */
  status?: 'inactive' | 'expired' | 'compromised';
  doNotRetry: boolean;
}

export const DECLINES = {
  stolen_card: { class: 'fraud_hard', status: 'compromised', doNotRetry: true },
  lost_card: { class: 'fraud_hard', status: 'compromised', doNotRetry: true },
  pickup_card: { class: 'fraud_hard', status: 'compromised', doNotRetry: true },
  fraudulent: { class: 'fraud_hard', status: 'compromised', doNotRetry: true },
  restricted_card: { class: 'fraud_hard', status: 'compromised', doNotRetry: true },
  expired_card: { class: 'hard', status: 'expired', doNotRetry: true },
  incorrect_number: { class: 'hard', status: 'inactive', doNotRetry: true },
  invalid_account: { class: 'hard', status: 'inactive', doNotRetry: true },
  do_not_try_again: { class: 'hard', status: 'inactive', doNotRetry: true },
  do_not_honor: { class: 'soft', doNotRetry: false },
  insufficient_funds: { class: 'soft', doNotRetry: false },
  generic_decline: { class: 'soft', doNotRetry: false },
  processing_error: { class: 'soft', doNotRetry: false },
  try_again_later: { class: 'soft', doNotRetry: false },
  card_velocity_exceeded: { class: 'soft', doNotRetry: false },
  withdrawal_count_limit_exceeded: { class: 'soft', doNotRetry: false },
} as const satisfies Record<string, DeclineRule>;

export type DeclineCode = keyof typeof DECLINES;
export const DECLINE_CODES = Object.keys(DECLINES) as DeclineCode[];

/** An unknown code is treated as a soft decline: never deactivate a card on a guess. */
export function declineRule(code: string): DeclineRule {
  return (DECLINES as Record<string, DeclineRule>)[code] ?? { class: 'soft', doNotRetry: false };
}

/**
 * What a decline decides for a recovery, as an activity answers it (a plain object the workflow's
 * history records): its class, the status the declined method takes (null: it keeps its status),
 * whether the method may be charged again in this recovery, and whether the networks' account
 * updater is asked whether the card was renewed.
 */
export interface DeclineDecision {
  code: string;
  class: DeclineClass;
  status: 'inactive' | 'expired' | 'compromised' | null;
  do_not_retry: boolean;
  ask_updater: boolean;
}

export function decideDecline(code: string): DeclineDecision {
  const rule = declineRule(code);
  return {
    code,
    class: rule.class,
    status: rule.status ?? null,
    do_not_retry: rule.doNotRetry,
    ask_updater: code === 'expired_card',
  };
}

/**
 * The decline code a test token asks for: `tok_decline_insufficient_funds_7` → insufficient_funds.
 * The longest known code after `decline_` wins; null when the token asks for none.
 */
export function declineCodeInToken(token: string): DeclineCode | null {
  const at = token.indexOf('decline_');
  if (at < 0) return null;
  const rest = token.slice(at + 'decline_'.length);
  // The code ends the token or is followed by `_` or `-` (`..._decline_expired_card-42`).
  const matches = DECLINE_CODES.filter(
    (code) => rest === code || rest.startsWith(`${code}_`) || rest.startsWith(`${code}-`),
  );
  return matches.sort((a, b) => b.length - a.length)[0] ?? null;
}
