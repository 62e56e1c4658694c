/**
 * The expiry scan's batch activity: reads one page of candidate cards, expires the ones past
 * their month, and warns the customers whose default card enters a stage. Safe to retry and to
 * run twice at once: expiring is conditional on the card still being active, and every warning
 * is claimed under its (card, expiry month, stage) key before it is sent.
 */
import { Context } from '@temporalio/activity';
import type { NotificationSink } from '../clients/notifications';
import type { AccountUpdater } from '../clients/paymentGateway';
import { expireCards, markCardsWarned, readExpiryCandidates, type ExpiryCandidate } from '../graph/expiry';
import type { Graph } from '../graph/graph';
import {
  expiryAction,
  expiryLabel,
  expiryNoticeKey,
  expiryWarningMarker,
  scanWindowEnd,
  warningSettled,
  type ExpiryStage,
} from '../payments/expiry';
import { emptyStageCounts, type ExpiryBatchRequest, type ExpiryBatchResult } from '../temporal/expiry';
import { withoutRenewedCards } from './accountUpdater';
import { activityOwner, deliverNotifications, type DeliveryResult, type NotifyRequest } from './notifications';

/** The notification kind of a card-expiry warning. */
export const CARD_EXPIRING = 'card_expiring';

/** The running activity's context, or null when called directly (a test without one). */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** Reports progress; a cancelled batch (its scan cancelled, or timed out) stops here instead of going on. */
function heartbeat(details: Record<string, unknown>): void {
  const context = activityContext();
  if (!context) return; // called outside an activity (a direct test call): nothing to report to
  context.heartbeat(details);
  // What it did so far is recorded; a retry, if any, redoes only the rest.
  if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
}

/** A warning to send: its notification, its stage, and the marker its card keeps once it is settled. */
type ExpiryWarning = NotifyRequest & { stage: ExpiryStage; marker: string };

/**
 * What a page of cards asks for: the cards to expire, the warnings due, and how many warnings
 * are not for this card (`notWarned`) or were settled before (`settled`).
 */
function planExpiryBatch(
  asOf: string,
  cards: ExpiryCandidate[],
): { toExpire: ExpiryCandidate[]; warnings: ExpiryWarning[]; notWarned: number; settled: number } {
  const toExpire: typeof cards = [];
  const warnings: ExpiryWarning[] = [];
  let notWarned = 0;
  let settled = 0;
  for (const card of cards) {
    if (card.customer_id === null) continue;
    const action = expiryAction(asOf, card.expiry_year, card.expiry_month);
    if (action.kind === 'expire') toExpire.push(card);
    if (action.kind !== 'warn') continue;
    // Warnings are for the card a customer's subscriptions run on, and for active customers.
    if (!card.is_default || card.customer_status !== 'active') {
      notWarned++;
      continue;
    }
    if (warningSettled(card.expiry_warning, card.expiry_year, card.expiry_month, action.stage)) {
      settled++;
      continue;
    }
    warnings.push({
      stage: action.stage,
      customer_id: card.customer_id,
      kind: CARD_EXPIRING,
      key: expiryNoticeKey(card.payment_method_id, card.expiry_year, card.expiry_month, action.stage),
      data: {
        payment_method_id: card.payment_method_id,
        brand: card.brand,
        last_four: card.last_four,
        expires: expiryLabel(card.expiry_year, card.expiry_month),
        days_left: action.daysLeft,
      },
      subject: {
        payment_method_id: card.payment_method_id,
        stage_days: action.stage,
        expires: expiryLabel(card.expiry_year, card.expiry_month),
      },
      marker: expiryWarningMarker(card.expiry_year, card.expiry_month, action.stage),
    });
  }
  return { toExpire, warnings, notWarned, settled };
}

/** The warnings left once the account updater (if any) is asked: a card it renews is not warned about. */
async function withoutRenewed(
  graph: Graph,
  updater: AccountUpdater | undefined,
  warnings: ExpiryWarning[],
  cursor: ExpiryBatchRequest['cursor'],
): Promise<{ warnings: ExpiryWarning[]; renewed: number }> {
  if (!updater || warnings.length === 0) return { warnings, renewed: 0 };
  heartbeat({ phase: 'asking the account updater', cursor, cards: warnings.length });
  const asked = await withoutRenewedCards(graph, updater, warnings, (w) => String(w.data?.payment_method_id), {
    // A beat per card: lookups of a big batch take longer than the heartbeat timeout together.
    progress: (done, of) => heartbeat({ phase: 'asking the account updater', cursor, asked: done, of }),
  });
  return { warnings: asked.kept, renewed: asked.renewed };
}

/** Sends the warnings, and remembers on their cards those settled; answers each warning's delivery. */
async function sendWarnings(
  deps: { graph: Graph; notifications: NotificationSink },
  warnings: ExpiryWarning[],
  cursor: ExpiryBatchRequest['cursor'],
): Promise<Map<string, DeliveryResult>> {
  heartbeat({ phase: 'notifying', cursor, warnings: warnings.length });
  // A cancel stops the sends between two of them; what went out is recorded before the batch stops.
  const context = activityContext();
  const delivered = await deliverNotifications(deps, warnings, {
    owner: activityOwner(),
    concurrency: 16,
    onSent: (done, total) => {
      if (done % 100 === 0 || done === total) context?.heartbeat({ phase: 'notifying', cursor, sent: done, of: total });
    },
    stopped: () => context?.cancellationSignal.aborted === true,
  });
  heartbeat({ phase: 'notified', cursor });

  // Settled warnings (sent, unreachable, refused — now or before) are remembered on their cards.
  await markCardsWarned(
    deps.graph,
    warnings
      .filter((w) => delivered.get(w.key)?.settled)
      .map((w) => ({ payment_method_id: String(w.data?.payment_method_id), warning: w.marker })),
  );
  return delivered;
}

/** Counts each warning's outcome into the batch's result. */
function countOutcomes(
  result: ExpiryBatchResult,
  warnings: ExpiryWarning[],
  delivered: Map<string, DeliveryResult>,
): void {
  for (const w of warnings) {
    const outcome = delivered.get(w.key)?.outcome;
    if (outcome === 'sent') result.notified[`${w.stage}`]++;
    else if (outcome === 'unreachable') result.unreachable++;
    else if (outcome === 'rejected') result.rejected++;
    else result.already_notified++;
  }
}

export function createExpiryActivities({
  graph,
  notifications,
  updater,
}: {
  graph: Graph;
  notifications: NotificationSink;
  /** The networks' account updater, asked before each warning: a card it renews is not warned about. */
  updater?: AccountUpdater | undefined;
}) {
  return {
    async scanExpiryBatch(req: ExpiryBatchRequest): Promise<ExpiryBatchResult> {
      heartbeat({ phase: 'reading', cursor: req.cursor });
      const { cards, next } = await readExpiryCandidates(graph, req.cursor, scanWindowEnd(req.as_of), req.batch_size, {
        from: req.id_from,
        to: req.id_to,
      });

      const plan = planExpiryBatch(req.as_of, cards);
      const { warnings, renewed } = await withoutRenewed(graph, updater, plan.warnings, req.cursor);

      heartbeat({ phase: 'expiring', cursor: req.cursor, cards: plan.toExpire.length });
      const expired = await expireCards(graph, plan.toExpire, req.as_of);

      const delivered = await sendWarnings({ graph, notifications }, warnings, req.cursor);

      const result: ExpiryBatchResult = {
        next_cursor: next,
        scanned: cards.length,
        expired: expired.length,
        notified: emptyStageCounts(),
        already_notified: plan.settled,
        unreachable: 0,
        rejected: 0,
        not_warned: plan.notWarned,
        renewed,
      };
      countOutcomes(result, warnings, delivered);
      return result;
    },
  };
}

export type ExpiryActivities = ReturnType<typeof createExpiryActivities>;
