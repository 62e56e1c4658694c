/**
 * The expiry scan's batch activity: reads one page of candidate cards, expires the ones past
 * their month, and warns the customers whose default card enters a stage. Safe to retry and to
 * run twice at once: expiring is conditional on the card still being active, and every warning
 * is claimed under its (card, expiry month, stage) key before it is sent.
 */
import { Context } from '@temporalio/activity';
import type { NotificationSink } from '../clients/notifications';
import type { AccountUpdater } from '../clients/paymentGateway';
import { expireCards, markCardsWarned, readExpiryCandidates } from '../graph/expiry';
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
import { activityOwner, deliverNotifications, type NotifyRequest } from './notifications';

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

      const toExpire: typeof cards = [];
      let warnings: (NotifyRequest & { stage: ExpiryStage; marker: string })[] = [];
      let notWarned = 0;
      let settled = 0;
      for (const card of cards) {
        if (card.customer_id === null) continue;
        const action = expiryAction(req.as_of, card.expiry_year, card.expiry_month);
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

      let renewed = 0;
      if (updater && warnings.length > 0) {
        heartbeat({ phase: 'asking the account updater', cursor: req.cursor, cards: warnings.length });
        const asked = await withoutRenewedCards(graph, updater, warnings, (w) => String(w.data?.payment_method_id), {
          // A beat per card: lookups of a big batch take longer than the heartbeat timeout together.
          progress: (done, of) =>
            heartbeat({ phase: 'asking the account updater', cursor: req.cursor, asked: done, of }),
        });
        warnings = asked.kept;
        renewed = asked.renewed;
      }

      heartbeat({ phase: 'expiring', cursor: req.cursor, cards: toExpire.length });
      const expired = await expireCards(graph, toExpire, req.as_of);

      heartbeat({ phase: 'notifying', cursor: req.cursor, warnings: warnings.length });
      // A cancel stops the sends between two of them; what went out is recorded before the batch stops.
      const context = activityContext();
      const delivered = await deliverNotifications({ graph, notifications }, warnings, {
        owner: activityOwner(),
        concurrency: 16,
        onSent: (done, total) => {
          if (done % 100 === 0 || done === total)
            context?.heartbeat({ phase: 'notifying', cursor: req.cursor, sent: done, of: total });
        },
        stopped: () => context?.cancellationSignal.aborted === true,
      });
      heartbeat({ phase: 'notified', cursor: req.cursor });

      // Settled warnings (sent, unreachable, refused — now or before) are remembered on their cards.
      await markCardsWarned(
        graph,
        warnings
          .filter((w) => delivered.get(w.key)?.settled)
          .map((w) => ({ payment_method_id: String(w.data?.payment_method_id), warning: w.marker })),
      );

      const result: ExpiryBatchResult = {
        next_cursor: next,
        scanned: cards.length,
        expired: expired.length,
        notified: emptyStageCounts(),
        already_notified: settled,
        unreachable: 0,
        rejected: 0,
        not_warned: notWarned,
        renewed,
      };
      for (const w of warnings) {
        const outcome = delivered.get(w.key)?.outcome;
        if (outcome === 'sent') result.notified[`${w.stage}`]++;
        else if (outcome === 'unreachable') result.unreachable++;
        else if (outcome === 'rejected') result.rejected++;
        else result.already_notified++;
      }
      return result;
    },
  };
}

export type ExpiryActivities = ReturnType<typeof createExpiryActivities>;
