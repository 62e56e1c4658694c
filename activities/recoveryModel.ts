/**
 * What the recovery's activities (activities/recovery.ts) take and answer about a charge, the
 * charge policy, the clock they apply rules at, and the context the factory builds once from its
 * dependencies: the charge's modules (recoveryCharge.ts, recoveryGateway.ts) take it explicitly.
 */
import { Context } from '@temporalio/activity';
import type { AccountUpdater, CardDescriber, ChargeResult, PaymentGateway } from '../clients/paymentGateway';
import type { Graph } from '../graph/graph';
import type { ProfileRules } from '../graph/interactions';
import type { LedgerEnd, RefusedVerdict } from '../graph/chargeReservation';
import type { DeclineDecision } from '../payments/declines';
import type { RuleTable } from '../payments/networkRules';

export interface ChargeAttempt {
  payment_id: string;
  customer_id: string;
  payment_method_id: string;
  amount: number;
  currency: string;
  /** From workflow data: `<payment id>:<payment method id>[:r<round>][:renewed]`. */
  idempotency_key: string;
  /** The decline the recovery started from (counted against its card before the first charge). */
  reported?: { payment_method_id: string; decline_code: string; advice_code?: string };
  /** The workflow's time when it scheduled the charge: see `clockOf`. */
  at?: string;
  /**
   * `charge` (the default): charge, or — for a key charged before — learn its outcome, sending the
   * identical request again when that is safe. `settle`: only learn what became of the key and of
   * every other attempt of the payment still open (nothing is sent again; a key never charged is
   * `never_sent`): how a recovery that stops finds out whether a charge of unknown outcome went
   * through.
   */
  mode?: 'charge' | 'settle';
}

/**
 * The time the rules and the ledger's windows are applied at: the latest of the workflow's time
 * when it scheduled the activity, the server's time when it scheduled this attempt of it, and this
 * worker's clock. In production they differ by queueing and retries (the latest is the truth); in
 * a time-skipping test the server's clock runs ahead of the machine's, and its days must count.
 */
export function clockOf(at: string | undefined): Date {
  const scheduled = at === undefined ? Number.NaN : Date.parse(at);
  let attempt = Number.NaN;
  try {
    attempt = Context.current().info.currentAttemptScheduledTimestampMs;
  } catch {
    // Called outside an activity (a direct test call): the other two clocks.
  }
  return new Date(
    Math.max(Date.now(), Number.isFinite(scheduled) ? scheduled : 0, Number.isFinite(attempt) ? attempt : 0),
  );
}

/**
 * The payment's other attempt whose success answers a charge (one charge per payment: the ledger
 * resolved it in place of the new key asked for): the method it charged and its key.
 */
export interface OtherAttempt {
  payment_method_id: string;
  idempotency_key: string;
}

/** A gateway answer, with what Persona decides of a decline (made here, recorded in the history). */
export type AnsweredCharge =
  | (Extract<ChargeResult, { outcome: 'succeeded' }> & { renewed_by_updater?: boolean; other_attempt?: OtherAttempt })
  | (Extract<ChargeResult, { outcome: 'declined' }> & { decision: DeclineDecision; renewed_by_updater?: boolean });

/** What a charge attempt came to: the gateway's answer, or why the gateway was not asked. */
export type ChargeOutcome =
  | AnsweredCharge
  /** A card-network rule (or, for a card the processor never named, the per-method cap) says not now. */
  | { outcome: 'limited'; rule?: string; not_before?: string | null; never?: boolean }
  /**
   * Not charged, and never will be under this key: the graph did not allow it (`RefusedVerdict`;
   * `ended` says how a recovery the ledger has ended ended, `stop_request` why a stop was asked
   * for), the gateway has no charge under the key past the settle window (`gateway_has_no_charge`),
   * it refused the one request (`refused`, settle mode only), or a key to settle was never charged.
   */
  | {
      outcome: 'not_charged';
      reason: Exclude<RefusedVerdict, 'limited'> | 'gateway_has_no_charge' | 'refused' | 'never_sent';
      ended?: LedgerEnd;
      stop_request?: string | null;
    };

/** How the charge treats the gateway (config/env.ts). */
export interface ChargePolicy {
  /** How long the processor is known to remember an idempotency key (a key older is never re-sent). */
  keyTtlMs: number;
  /** How long after a key's last request "the gateway has no charge under it" is believed. */
  settleMs: number;
  /** The longest one gateway call may take. */
  clientTimeoutMs: number;
}

export const DEFAULT_CHARGE_POLICY: ChargePolicy = {
  keyTtlMs: 24 * 3_600_000,
  settleMs: 10 * 60_000,
  clientTimeoutMs: 10_000,
};

/** What `createRecoveryActivities` takes. */
export interface RecoveryDeps {
  graph: Graph;
  gateway: PaymentGateway;
  /**
   * The processor, naming a method's card (network and fingerprint), and the network-rule table:
   * with both, every charge is governed per card by the networks' rules (payments/networkRules.ts);
   * without, by the per-method cap alone.
   */
  cards?: CardDescriber | undefined;
  /** The networks' account updater, asked before a retry that Mastercard's MAC 01 asks it for. */
  updater?: AccountUpdater | undefined;
  networkRules?: RuleTable | undefined;
  trustThreshold: number;
  /** The segment and VIP rules a recovered payment is recorded under (as the agents' payments are). */
  profileRules: ProfileRules;
  /** The processor's key memory, the settle window and the client's timeout. */
  chargePolicy?: ChargePolicy | undefined;
}

/** The dependencies the recovery's activities share, built once by `createRecoveryActivities`. */
export interface RecoveryContext {
  graph: Graph;
  gateway: PaymentGateway;
  cards: CardDescriber | undefined;
  updater: AccountUpdater | undefined;
  networkRules: RuleTable | undefined;
  trustThreshold: number;
  profileRules: ProfileRules;
  chargePolicy: ChargePolicy;
}

/** The context of `createRecoveryActivities`: its dependencies, the default charge policy when none is given. */
export function recoveryContext({
  graph,
  gateway,
  trustThreshold,
  profileRules,
  cards,
  updater,
  networkRules,
  chargePolicy = DEFAULT_CHARGE_POLICY,
}: RecoveryDeps): RecoveryContext {
  return { graph, gateway, cards, updater, networkRules, trustThreshold, profileRules, chargePolicy };
}
